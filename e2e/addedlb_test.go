package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/worker"
	"github.com/dnsroll/dnsroll/workflows"
)

// A load balancer added to the fleet's file by hand while a rollout runs,
// pointed at blue, is not one the rollout switches. Its blue server is
// kept, the delete step saying which load balancer answers from it and
// what to do, while green serves through the rollout's own load balancers;
// once the added one is removed from the file, the rollout finishes. Before,
// the rollout deleted that blue server and reported success.
func TestBlueIsKeptForALoadBalancerAddedMidRollout(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	blue := tl.fleetServers(t)["ns1"]
	tl.editFleet(t, "approval: auto", "approval: manual")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForPhase(t, run, workflows.PhaseAwaitingApproval)
	// lb3, a third lab nginx as lb1 and lb2 are, is added to the file and
	// pointed at ns1 (blue).
	port, err := lab.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	added := fmt.Sprintf("  - {name: lb3, address: \"127.0.0.1:%d\", fronts: ns1, driver: nginx}\n", port)
	tl.editFleet(t, "\nansible:", added+"\nansible:")
	lb3 := tl.pointAdded(t, "lb3", blue)
	if got := queryTXT(lb3.Address, "release.example.com."); got != "revision A" {
		t.Fatalf("lb3, pointed at ns1 (blue), answers %s, want revision A", got)
	}
	tl.signal(t, run, workflows.SignalApprove, workflows.SignalInput{By: "test"})
	tl.waitStatus(t, run, "the delete of ns1 kept for lb3", func(st workflows.Status) bool {
		return slices.ContainsFunc(st.Retrying, func(r workflows.Retry) bool {
			return strings.Contains(r.LastError, "load balancer lb3") && strings.Contains(r.LastError, "still answers from ns1")
		})
	})
	if _, ok := tl.fleetServers(t)["ns1"]; !ok {
		t.Fatal("ns1 (blue) was deleted while lb3, in the fleet's file, answered from it")
	}
	tl.wantAnswers(t, "while ns1 is kept", "revision B,revision B")
	if got := queryTXT(lb3.Address, "release.example.com."); got != "revision A" {
		t.Errorf("lb3 answers %s from ns1 (blue), want revision A", got)
	}
	tl.editFleet(t, added, "")
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("phase %s (%s) err %v, want succeeded once lb3 left the file", st.Phase, st.Failure, err)
	}
	tl.assertOnly(t, "ns1", "ns2")
}

// pointAdded starts load balancer name, added to the fleet's file since the
// lab started, as the lab starts its own: its driver pointed at backends.
// The lab stops it with the others.
func (tl *testLab) pointAdded(t *testing.T, name string, backends ...dnsroll.Server) config.LoadBalancer {
	t.Helper()
	fleet, err := config.Load(filepath.Join(tl.fleetDir, tl.fleet.Name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(fleet.LoadBalancers, func(b config.LoadBalancer) bool { return b.Name == name })
	if i < 0 {
		t.Fatalf("no load balancer %s in the fleet's file", name)
	}
	balancer := fleet.LoadBalancers[i]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := worker.Drivers(tl.Runner(), tl.Dir(), nil)[balancer.Driver].Point(ctx, fleet, balancer, backends); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return balancer
}
