package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/dnsdist"
	"github.com/dnsroll/dnsroll/probe"
)

// The lab fleet's nameservers, and the lines to add after ns2 for two more.
const (
	labNS2 = "  - {label: ns2, region: eu-central, type: g6-nanode-1, image: linode/debian12}\n"
	moreNS = "  - {label: ns3, region: us-east, type: g6-nanode-1, image: linode/debian12}\n" +
		"  - {label: ns4, region: eu-central, type: g6-nanode-1, image: linode/debian12}\n"
)

// Four nameservers behind two load balancers, two each: the rollout
// replaces all four and each load balancer ends on exactly its two greens.
func TestRolloutFourNameserversTwoLBs(t *testing.T) {
	testTopology(t, "nginx", strings.NewReplacer(labNS2, labNS2+moreNS,
		"fronts: ns1,", "fronts: [ns1, ns3],", "fronts: ns2,", "fronts: [ns2, ns4],"))
}

// lb1 fronts both nameservers, so ns2 is behind both load balancers.
func TestRolloutLBFrontsTwoNameservers(t *testing.T) {
	testTopology(t, "dnsdist", strings.NewReplacer("fronts: ns1,", "fronts: [ns1, ns2],"))
}

// testTopology rolls revision A, then B, out to the lab fleet as rewrite
// changes it, with a resolver asking every load balancer all through B: no
// question goes unanswered, every nameserver is replaced by the rollout's
// green, and every load balancer answers B from exactly the greens of the
// nameservers it fronts.
func testTopology(t *testing.T, driver string, rewrite *strings.Replacer) {
	tl := startLabRewritten(t, driver, nil, rewrite)
	tl.startWorker(t)
	var labels []string
	for _, ns := range tl.fleet.Nameservers {
		labels = append(labels, ns.Label)
	}
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, labels...)

	p := startSteadyProbe(tl)
	st := tl.rolloutOK(t, "B")
	p.stop()
	if lost, sent := p.lost(); lost > 0 || sent == 0 {
		t.Errorf("the load balancers left %d of %d questions unanswered during the rollout", lost, sent)
	}

	green := tl.assertOnly(t, labels...)
	for _, l := range labels {
		if green[l].ID == blue[l].ID || green[l].ID != st.Green[l].ID {
			t.Errorf("%s is instance %d: blue was %d, the rollout's green %d", l, green[l].ID, blue[l].ID, st.Green[l].ID)
		}
	}
	for _, balancer := range tl.fleet.LoadBalancers {
		if got := queryTXT(balancer.Address, "release.example.com."); got != "revision B" {
			t.Errorf("%s answers %s, want revision B", balancer.Name, got)
		}
		var fronted []dnsroll.Server
		for _, l := range balancer.Fronts {
			fronted = append(fronted, green[l])
		}
		tl.assertBackends(t, driver, balancer, fronted)
	}
}

// assertBackends checks that balancer answers from exactly servers: every
// answer comes from one of them (by NSID and serial), and each of them is
// a backend (nginx's round robin reaches each in turn; dnsdist says which
// backends have a weight).
func (tl *testLab) assertBackends(t *testing.T, driver string, balancer config.LoadBalancer, servers []dnsroll.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var want, wantAddrs []string
	for _, s := range servers {
		id, err := probe.Identify(ctx, s.DNSAddr(), "tcp", "example.com", 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", s.Label, err)
		}
		want, wantAddrs = append(want, id.String()), append(wantAddrs, s.DNSAddr())
	}
	var seen []string
	for range 8 * len(servers) {
		id, err := probe.Identify(ctx, balancer.Address, "tcp", "example.com", 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", balancer.Name, err)
		}
		if !slices.Contains(seen, id.String()) {
			seen = append(seen, id.String())
		}
	}
	for _, id := range seen {
		if !slices.Contains(want, id) {
			t.Errorf("%s answered from %s, not one of %v", balancer.Name, id, want)
		}
	}
	switch driver {
	case "nginx":
		for _, id := range want {
			if !slices.Contains(seen, id) {
				t.Errorf("%s never answered from %s; answered from %v", balancer.Name, id, seen)
			}
		}
	case "dnsdist":
		stats, err := (&dnsdist.Driver{Reach: lb.Reach{Place: config.PlaceIn(tl.Dir())}}).Stats(ctx, tl.fleet, balancer)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range stats {
			if s.Weight > 0 {
				got = append(got, s.Addr)
			}
		}
		slices.Sort(got)
		slices.Sort(wantAddrs)
		if !slices.Equal(got, wantAddrs) {
			t.Errorf("%s sends traffic to %v, want exactly %v", balancer.Name, got, wantAddrs)
		}
	}
}
