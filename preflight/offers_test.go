package preflight

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// firewalls is a Catalog whose account has the Cloud Firewalls in drops,
// each dropping the ports listed; any other firewall ID is unknown, and
// Dropped fails for it as the Linode API does (404).
type firewalls struct{ drops map[int][]string }

func (c firewalls) Missing(_ context.Context, spec dnsroll.ServerSpec) ([]dnsroll.Unoffered, error) {
	if _, ok := c.drops[spec.FirewallID]; !ok && spec.FirewallID != 0 {
		return []dnsroll.Unoffered{{Field: "firewall_id"}}, nil
	}
	return nil, nil
}

func (c firewalls) Dropped(_ context.Context, id int, need []string) (int, []string, error) {
	dropped, ok := c.drops[id]
	if !ok {
		return 0, nil, fmt.Errorf("GET /networking/firewalls/%d: 404 Not found", id)
	}
	var out []string
	for _, p := range need {
		if slices.Contains(dropped, p) {
			out = append(out, p)
		}
	}
	return id, out, nil
}

// Offers refuses a firewall that drops what a new server needs: SSH only
// where Ansible provisions over SSH, DNS always; a firewall the account
// lacks is refused as missing, not asked for its rules.
func TestOffersFirewalls(t *testing.T) {
	cloud := firewalls{drops: map[int][]string{0: nil, 5: nil, 22: {"22/tcp"}, 53: {"53/udp"}}}
	fleet := func(connection string, firewalls ...int) *config.Fleet {
		f := &config.Fleet{Ansible: config.Ansible{Connection: connection}}
		for i, id := range firewalls {
			f.Nameservers = append(f.Nameservers, config.Nameserver{Label: fmt.Sprintf("ns%d", i+1), Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", FirewallID: id})
		}
		return f
	}
	for _, tt := range []struct {
		name  string
		fleet *config.Fleet
		want  string // "" for no refusal
	}{
		{"SSH dropped, provisioned over SSH", fleet("ssh", 22), "nameservers[0].firewall_id: Cloud Firewall 22 drops inbound 22/tcp from everywhere, so Ansible could not provision new servers over SSH"},
		{"SSH dropped, provisioned locally", fleet("local", 22), ""},
		{"DNS dropped by the second nameserver's firewall", fleet("ssh", 0, 53), "nameservers[1].firewall_id: Cloud Firewall 53 drops inbound 53/udp from everywhere, so DNS queries could not reach them"},
		{"an unknown firewall", fleet("ssh", 99), "nameservers[0].firewall_id: this account has no Cloud Firewall 99"},
		{"an unknown firewall behind a known one, in one region, plan and image", fleet("ssh", 5, 99), "nameservers[1].firewall_id: this account has no Cloud Firewall 99"},
		{"firewalls that pass SSH and DNS", fleet("ssh", 0, 5), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Offers(context.Background(), cloud, tt.fleet, NameserverOffers(tt.fleet))
			wantErr(t, err, tt.want)
			if tt.want != "" && dnsroll.ErrorCode(err) != dnsroll.EINVALID {
				t.Errorf("err = %v (code %q), want a refusal (%q): no retry makes the firewall right", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
			}
		})
	}
}

// A load balancer's replacement is made as the first nameserver it fronts,
// behind the load balancer's own firewall: a firewall the account lacks
// is refused under the load balancer's field, which is where to fix it.
func TestOffersNameTheLoadBalancersFirewall(t *testing.T) {
	f := &config.Fleet{Ansible: config.Ansible{Connection: "ssh"},
		Nameservers:   []config.Nameserver{{Label: "ns1", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}},
		LoadBalancers: []config.LoadBalancer{{Name: "lb1", Fronts: config.Labels{"ns1"}, FirewallID: 99}}}
	offers, err := LoadBalancerOffers(f)
	if err != nil {
		t.Fatal(err)
	}
	err = Offers(context.Background(), firewalls{drops: map[int][]string{0: nil}}, f, offers)
	wantErr(t, err, "load_balancers[0] (lb1-next is made as nameserver ns1, the first it fronts): load_balancers[0].firewall_id: this account has no Cloud Firewall 99")
}
