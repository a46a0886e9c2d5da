package linode_test

import (
	"slices"
	"testing"

	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// Dropped reads a Cloud Firewall's inbound rules as Linode applies them,
// first match first and the policy for the rest, and names the ports a new
// server needs that it drops from everywhere. A firewall_id of 0 means the
// account's default firewall for new Linodes. It errs towards passing: an
// accept from some addresses may be the worker's, a drop from some is not
// a drop from all.
func TestDropped(t *testing.T) {
	need := []string{"22/tcp", "53/udp", "53/tcp"}
	e := newEnvWith(t, linodesim.Options{DefaultFirewall: 100, FirewallRules: map[int]linodesim.Firewall{
		100: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{
			{Action: "ACCEPT", Protocol: "TCP", Ports: "22", IPv4: []string{"203.0.113.0/24"}}}},
		101: {InboundPolicy: "ACCEPT", Inbound: []linodesim.FirewallRule{
			{Action: "DROP", Protocol: "TCP", Ports: "1-1024"}}},
		102: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{
			{Action: "ACCEPT", Protocol: "TCP", Ports: "22, 53"}, {Action: "ACCEPT", Protocol: "UDP", Ports: "53"}}},
		103: {InboundPolicy: "ACCEPT", Inbound: []linodesim.FirewallRule{
			{Action: "DROP", Protocol: "TCP", Ports: "22", IPv4: []string{"198.51.100.7/32"}}}},
		104: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{
			{Action: "DROP", Protocol: "UDP", Ports: "53"}, {Action: "ACCEPT", Protocol: "UDP"}, {Action: "ACCEPT", Protocol: "TCP"}}},
		105: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{{RuleSet: 42}}},
		106: {Disabled: true, InboundPolicy: "DROP"},
	}})
	for _, tc := range []struct {
		name     string
		firewall int
		wantID   int
		want     []string
	}{
		{"the account's default, SSH from some addresses only", 0, 100, []string{"53/udp", "53/tcp"}},
		{"a drop of low TCP ports from everywhere", 101, 101, []string{"22/tcp", "53/tcp"}},
		{"accepts for each", 102, 102, nil},
		{"a drop from one address", 103, 103, nil},
		{"a drop before a broader accept", 104, 104, []string{"53/udp"}},
		{"a Rule Set, which may accept", 105, 105, nil},
		{"a disabled firewall", 106, 106, nil},
	} {
		id, dropped, err := e.cloud.Dropped(ctx(t), tc.firewall, need)
		if err != nil || id != tc.wantID || !slices.Equal(dropped, tc.want) {
			t.Errorf("%s: Dropped(%d) = %d, %v, %v; want %d, %v", tc.name, tc.firewall, id, dropped, err, tc.wantID, tc.want)
		}
	}

	// An account whose new Linodes get Linode Interfaces puts them behind
	// its default for public interfaces.
	interfaces := newEnvWith(t, linodesim.Options{DefaultFirewall: 100, DefaultInterfaceFirewall: 102, InterfacesForNewLinodes: "linode_only",
		FirewallRules: map[int]linodesim.Firewall{100: {InboundPolicy: "DROP"}, 102: {}}})
	if id, dropped, err := interfaces.cloud.Dropped(ctx(t), 0, need); err != nil || id != 102 || dropped != nil {
		t.Errorf("an account on Linode Interfaces: Dropped = %d, %v, %v; want 102's verdict, nothing dropped", id, dropped, err)
	}
	// A token that may not read which default applies: a port is dropped
	// only when both defaults drop it.
	interfaces.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/account/settings", Status: 403, Count: -1})
	if _, dropped, err := interfaces.cloud.Dropped(ctx(t), 0, need); err != nil || dropped != nil {
		t.Errorf("unknown interfaces, one default accepting: Dropped = %v, %v; want nothing", dropped, err)
	}
	both := newEnvWith(t, linodesim.Options{DefaultFirewall: 100, DefaultInterfaceFirewall: 101, FirewallRules: map[int]linodesim.Firewall{
		100: {InboundPolicy: "DROP"}, 101: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{{Action: "ACCEPT", Protocol: "TCP", Ports: "22"}}}}})
	both.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/account/settings", Status: 403, Count: -1})
	if id, dropped, err := both.cloud.Dropped(ctx(t), 0, need); err != nil || id != 100 || !slices.Equal(dropped, []string{"53/udp", "53/tcp"}) {
		t.Errorf("unknown interfaces, both defaults dropping DNS: Dropped = %d, %v, %v; want 100, DNS dropped", id, dropped, err)
	}
	// With no default firewall, a server made without one is unfiltered.
	open := newEnvWith(t, linodesim.Options{})
	if id, dropped, err := open.cloud.Dropped(ctx(t), 0, need); err != nil || id != 0 || dropped != nil {
		t.Errorf("no default firewall: Dropped = %d, %v, %v; want nothing", id, dropped, err)
	}
	// A token that may not read firewalls proves nothing.
	e.sim.InjectFault(linodesim.Fault{PathPrefix: "/v4/networking/firewalls", Status: 403, Count: -1})
	if _, dropped, err := e.cloud.Dropped(ctx(t), 0, need); err != nil || dropped != nil {
		t.Errorf("a token that may not read firewalls: %v, %v; want nothing proven", dropped, err)
	}
	e.sim.ClearFaults()
	// As on Linode, a create that names no firewall is put behind the
	// default one.
	if _, err := e.cloud.Create(ctx(t), spec("ns1-next", tag), nil); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Instances()[0].FirewallID; got != 100 {
		t.Errorf("a server created without a firewall is behind %d, want the default, 100", got)
	}
}
