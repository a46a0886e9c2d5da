package workflows

import (
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// sharedNS2 is the test fleet with lb1 fronting both nameservers and ns2
// behind both load balancers.
var sharedNS2 = strings.Replace(labFleet, "fronts: ns1}", "fronts: [ns1, ns2]}", 1)

// Any topology: every load balancer is staged, flipped, released and, on
// failure, flipped back with all the nameservers it fronts, in the order
// it lists them, and ends on exactly their green servers.
func TestRolloutAnyTopology(t *testing.T) {
	for _, tt := range []struct {
		name, fleet string
		// stage and flip are lb1's calls; final and blue are where lb1 and
		// lb2 end after a rollout and after one that failed past the flip.
		stage, flip, final, blue string
		servers                  []string
	}{
		{
			name: "four nameservers behind two load balancers", fleet: fourByTwo,
			stage: "Stage lb1 ns1-next,ns3-next", flip: "Flip lb1 ns1-next:100,ns1:0,ns3-next:100,ns3:0",
			final: "ns1-next+ns3-next,ns2-next+ns4-next", blue: "ns1+ns3,ns2+ns4",
			servers: []string{"ns1", "ns2", "ns3", "ns4"},
		},
		{
			name: "a load balancer fronting two nameservers, one of them behind both", fleet: sharedNS2,
			stage: "Stage lb1 ns1-next,ns2-next", flip: "Flip lb1 ns1-next:100,ns1:0,ns2-next:100,ns2:0",
			final: "ns1-next+ns2-next,ns2-next", blue: "ns1+ns2,ns2",
			servers: []string{"ns1", "ns2"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessFleet(t, tt.fleet, "")
			st, err := h.run(t)
			if err != nil {
				t.Fatalf("rollout failed: %v", err)
			}
			// The status lists each load balancer's servers, by their
			// final names once green is renamed.
			renamed := strings.NewReplacer("-next", "")
			wantBackends(t, st, renamed.Replace(tt.final))
			for _, c := range []string{tt.stage, tt.flip, "Switch lb1 " + strings.Split(tt.final, ",")[0]} {
				if !h.rec.has(c) {
					t.Errorf("no call %q: %v", c, h.rec.calls)
				}
			}
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != tt.final {
				t.Errorf("load balancers end on %s, want %s", got, tt.final)
			}
			for _, ns := range tt.servers {
				if !h.rec.has("DeleteServer "+ns) || !h.rec.has("RenameServer "+ns+"-next "+ns) {
					t.Errorf("%s not replaced: %v", ns, h.rec.calls)
				}
			}

			h = newHarnessFleet(t, tt.fleet, "VerifyLoadBalancers")
			st, err = h.run(t)
			if err == nil {
				t.Fatal("the rollout succeeded")
			}
			wantBackends(t, st, tt.blue)
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != tt.blue {
				t.Errorf("after the rollback the load balancers are on %s, want blue %s", got, tt.blue)
			}
		})
	}
}

// wantBackends checks the status's backends of lb1 and lb2 against want:
// each one's servers joined by + (each with weight 100), the two joined
// by a comma.
func wantBackends(t *testing.T, st Status, want string) {
	t.Helper()
	var got []string
	for _, name := range []string{"lb1", "lb2"} {
		var servers []string
		for _, b := range st.Backends[name] {
			if b.Weight != 100 {
				t.Errorf("%s: backend %s has weight %d, want 100", name, b.Server, b.Weight)
			}
			servers = append(servers, b.Server)
		}
		got = append(got, strings.Join(servers, "+"))
	}
	if strings.Join(got, ",") != want {
		t.Errorf("status backends %v, want %s", st.Backends, want)
	}
}

// A canary of a load balancer fronting two nameservers judges the queries
// of both greens against those of both blues.
func TestJudgeCanaryOfSeveralNameservers(t *testing.T) {
	fleet := &config.Fleet{LoadBalancers: []config.LoadBalancer{{Name: "lb1", Fronts: config.Labels{"ns1", "ns2"}}}}
	fleet.Rollout.Canary.MaxDropRateIncrease = 0.01
	blue := map[string]dnsroll.Server{"ns1": {IPv4: "192.0.2.1", DNSPort: 53}, "ns2": {IPv4: "192.0.2.2", DNSPort: 53}}
	green := map[string]dnsroll.Server{"ns1": {IPv4: "192.0.2.9", DNSPort: 53}, "ns2": {IPv4: "192.0.2.10", DNSPort: 53}}
	after := map[string][]lb.BackendStats{"lb1": {
		{Addr: "192.0.2.9:53", Queries: 150}, {Addr: "192.0.2.10:53", Queries: 150, Drops: 30},
		{Addr: "192.0.2.1:53", Queries: 1350}, {Addr: "192.0.2.2:53", Queries: 1350},
	}}
	res, err := judgeCanary(fleet, blue, green, 10, nil, after)
	if err == nil {
		t.Error("10% of green's 300 queries lost passed")
	}
	cs := res.LoadBalancers[0]
	if cs.GreenQueries != 300 || cs.BlueQueries != 2700 || cs.Measured != 10 || cs.GreenDropRate != 0.1 {
		t.Errorf("judged %+v, want green 300 queries (10%%), 10%% dropped, blue 2700", cs)
	}
}
