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
