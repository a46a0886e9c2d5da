package preflight

import (
	"reflect"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// A census reads the servers tagged with a fleet's tag as a rollout does:
// a nameserver's label is blue, its -next is a green left behind, a
// server being deleted is passed over whatever its label, and any other
// label is a stranger; each list in label order.
func TestTakeCensus(t *testing.T) {
	fleet := &config.Fleet{Nameservers: []config.Nameserver{{Label: "ns1"}, {Label: "ns2"}, {Label: "ns3"}}}
	s := func(id int, label, status string) dnsroll.Server {
		return dnsroll.Server{ID: id, Label: label, Status: status}
	}
	servers := []dnsroll.Server{
		s(1, "ns2", "running"),
		s(2, "ns1", "offline"),
		s(3, "ns1-next", "running"),
		s(4, "ns2-next", dnsroll.StatusDeleting),
		s(5, "ns4", "running"),
		s(6, "ns1-next-next", "running"),
		s(7, "ns4-next", "running"),
		s(8, "ns3", dnsroll.StatusDeleting),
		s(9, "ns9", dnsroll.StatusDeleting),
	}
	c := TakeCensus(fleet, servers)
	labels := func(list []dnsroll.Server) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.Label)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		got  []dnsroll.Server
		want []string
	}{
		{"blue", c.Blue, []string{"ns1", "ns2"}},
		{"left", c.Left, []string{"ns1-next"}},
		{"deleting", c.Deleting, []string{"ns2-next", "ns3", "ns9"}},
		{"strangers", c.Strangers, []string{"ns1-next-next", "ns4", "ns4-next"}},
	} {
		if got := labels(tt.got); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := c.Missing(fleet); !reflect.DeepEqual(got, []string{"ns3"}) {
		t.Errorf("missing: %v, want [ns3] (its blue is being deleted)", got)
	}
	if got := TakeCensus(fleet, nil).Missing(fleet); len(got) != 3 {
		t.Errorf("missing before the first rollout: %v, want all three", got)
	}
}

// A green left in another region, plan or image than its nameserver now
// asks for is stale: the rollout creates it anew, so it needs the grant
// to create (Creates). One alike in all three is reused.
func TestStaleGreensAreCreatedAnew(t *testing.T) {
	fleet := &config.Fleet{Nameservers: []config.Nameserver{{Label: "ns1", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}}}
	alike := dnsroll.Server{ID: 3, Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}
	for _, tt := range []struct {
		name string
		edit func(*dnsroll.Server)
		want string
	}{
		{"alike", func(*dnsroll.Server) {}, ""},
		{"another region", func(s *dnsroll.Server) { s.Region = "eu-west" }, "region eu-west, not us-east"},
		{"another plan", func(s *dnsroll.Server) { s.Type = "g6-standard-2" }, "type g6-standard-2, not g6-nanode-1"},
		{"another image", func(s *dnsroll.Server) { s.Image = "linode/ubuntu24.04" }, "image linode/ubuntu24.04, not linode/debian12"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			green := alike
			tt.edit(&green)
			if got := Stale(fleet, green); got != tt.want {
				t.Errorf("Stale = %q, want %q", got, tt.want)
			}
			if got, want := TakeCensus(fleet, []dnsroll.Server{green}).Creates(fleet), tt.want != ""; got != want {
				t.Errorf("Creates = %v, want %v", got, want)
			}
		})
	}
}
