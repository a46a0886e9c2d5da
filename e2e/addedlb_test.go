package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

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
	// lb3 at ns1's own address answers through DNS as a load balancer
	// pointed at ns1 would: from ns1, with its NSID.
	added := fmt.Sprintf("  - {name: lb3, address: \"127.0.0.1:%d\", fronts: ns1, driver: nginx}\n", tl.fleet.Lab.LabDNSPort(blue.ID))
	tl.editFleet(t, "\nansible:", added+"\nansible:")
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
	if got := queryTXT(fmt.Sprintf("127.0.0.1:%d", tl.fleet.Lab.LabDNSPort(blue.ID)), "release.example.com."); got != "revision A" {
		t.Errorf("ns1 (blue, behind lb3) answers %s, want revision A", got)
	}
	tl.editFleet(t, added, "")
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("phase %s (%s) err %v, want succeeded once lb3 left the file", st.Phase, st.Failure, err)
	}
	tl.assertOnly(t, "ns1", "ns2")
}
