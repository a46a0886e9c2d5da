package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// terminate ends the run as an operator does with `temporal workflow
// terminate`: none of its undo steps run.
func (tl *testLab) terminate(t *testing.T, run rollouts.Run) {
	t.Helper()
	out, err := exec.Command(requireLab(t), "workflow", "terminate", "--address", tl.TemporalAddress(),
		"--workflow-id", run.WorkflowID, "--run-id", run.RunID, "--reason", "e2e: operator gave up on it").CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow terminate: %v: %s", err, out)
	}
}

// A rollout whose workflow was terminated while it baked, with both load
// balancers on green, ran none of its undo steps: `dnsroll rollout status
// --follow` says so and names `dnsroll rollout cleanup`, which puts every
// load balancer back on blue and deletes green, and frees the fleet for
// the next rollout. One terminated while blue was being deleted, past its
// point of no return, is refused a cleanup, which changes nothing.
func TestTerminatedRolloutCleanedUp(t *testing.T) {
	tl := startLab(t, nil)
	tl.startWorker(t)
	c := tl.startAPI(t)
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")

	tl.editFleet(t, "bake: 3s", "bake: 10m")
	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitStatus(t, run, "both load balancers baking on green", func(st workflows.Status) bool {
		return st.Phase == workflows.PhaseBaking && len(st.OnGreen) == 2
	})
	if !tl.wantAnswers(t, "while baking", "revision B,revision B") {
		t.FailNow()
	}
	tl.terminate(t, run)
	id := api.RolloutID(run)

	out, code := cli(t, c.URL, apiToken, "status", "--fleet", "lab", "--follow", "--poll", "200ms")
	if code != 3 || !strings.Contains(out, "state     terminated, phase baking") ||
		!strings.Contains(out, "none of its undo steps ran") || !strings.Contains(out, "`dnsroll rollout cleanup --id "+id+"`") {
		t.Errorf("status --follow of the terminated rollout: exit %d, want 3 naming the cleanup of %s:\n%s", code, id, out)
	}
	// Terminated, nothing moved back.
	tl.wantAnswers(t, "after the termination", "revision B,revision B")
	tl.assertOnly(t, "ns1", "ns2", "ns1-next", "ns2-next")

	out, code = cli(t, c.URL, apiToken, "cleanup", "--fleet", "lab", "--reason", "terminated by mistake", "--wait", "--poll", "200ms")
	t.Logf("dnsroll rollout cleanup --wait (exit %d):\n%s", code, out)
	if code != 0 || !strings.Contains(out, "==> cleaned-up") || !strings.Contains(out, "cleaned up after "+id) {
		t.Errorf("cleanup: exit %d, want 0 and cleaned-up after %s", code, id)
	}
	tl.wantAnswers(t, "after the cleanup", "revision A,revision A")
	for _, lb := range tl.fleet.LoadBalancers {
		var servers []dnsroll.Server
		for _, l := range lb.Fronts {
			servers = append(servers, blue[l])
		}
		tl.assertBackends(t, "nginx", lb, servers)
	}
	tl.assertKept(t, blue)
	if n := len(tl.Sim().Instances()); n != 2 {
		t.Errorf("simulator holds %d instances, want blue's 2", n)
	}

	// The fleet is free: the terminated run's hold ended with it, and the
	// cleanup released its own. The next rollout takes it and runs up to
	// its point of no return (below).
	d, err := tl.client.DescribeWorkflowExecution(context.Background(), workflows.FleetLockWorkflowID("lab"), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := d.WorkflowExecutionInfo.Status; st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("the fleet's hold %s is %s after the cleanup, want it ended", d.WorkflowExecutionInfo.Execution.GetRunId(), st)
	}
	tl.editFleet(t, "bake: 10m", "bake: 3s")

	t.Run("terminated while deleting blue", func(t *testing.T) {
		blue := tl.assertOnly(t, "ns1", "ns2")
		for _, s := range blue {
			tl.Sim().InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: fmt.Sprintf("/v4/linode/instances/%d", s.ID), Status: 500, Count: 1000})
		}
		// It holds the fleet, so the fleet was free. The cloud refuses to
		// delete blue: it stays in deleting-blue, retrying, until it is
		// terminated. (The refusals stay: an attempt still in flight on
		// the worker must not delete blue after the test has looked.)
		run := tl.start(t, workflows.RolloutInput{Revision: "B"})
		tl.waitForPhase(t, run, workflows.PhaseDeletingBlue)
		tl.terminate(t, run)
		left := tl.assertOnly(t, "ns1", "ns2", "ns1-next", "ns2-next")

		id := api.RolloutID(run)
		out, code := cli(t, c.URL, apiToken, "status", "--id", id, "--follow", "--poll", "200ms")
		if code != 3 || !strings.Contains(out, "point of no return") || !strings.Contains(out, "rename each <label>-next to <label>") {
			t.Errorf("status --follow: exit %d, want 3 with the finish by hand:\n%s", code, out)
		}
		out, code = cli(t, c.URL, apiToken, "cleanup", "--fleet", "lab", "--wait", "--poll", "200ms")
		if code != 1 || !strings.Contains(out, "past its point of no return") || !strings.Contains(out, "rename each <label>-next to <label>") {
			t.Errorf("cleanup past the point of no return: exit %d, want 1 with the finish by hand:\n%s", code, out)
		}
		tl.wantAnswers(t, "after the refused cleanup", "revision B,revision B")
		for label, s := range tl.assertOnly(t, "ns1", "ns2", "ns1-next", "ns2-next") {
			if s.ID != left[label].ID {
				t.Errorf("%s is Linode %d, was %d: the refused cleanup changed the fleet", label, s.ID, left[label].ID)
			}
		}
	})
}

// A rollout terminated between failed cleanup rounds has its cleanup
// recorded but nothing listed left yet (cleanup.left is filled when a run
// ends cleanup-failed): the cleanup after it names the green servers it
// knew, with their IDs. A cleanup-only run terminated in turn passes on
// those of its request, which its status does not show. Here the fleet
// file drops ns2 in between: by the fleet's labels alone, ns2-next would
// stay running, a server nobody tracks.
func TestCleanupAfterTerminatedCleanupRoundsDeletesWhatTheFleetDropped(t *testing.T) {
	tl := startLab(t, nil)
	tl.startWorker(t)
	c := tl.startAPI(t)
	tl.rolloutOK(t, "A")
	tl.assertOnly(t, "ns1", "ns2")
	sim := tl.Sim()
	sim.InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: "/v4/linode/instances", Status: 401, Count: 1000})
	terminateBetweenRounds := func(t *testing.T, run rollouts.Run) {
		t.Helper()
		tl.waitStatus(t, run, "a failed cleanup round", func(st workflows.Status) bool { return st.Cleanup != nil && st.Cleanup.Round >= 1 })
		tl.terminate(t, run)
	}
	latest := func(t *testing.T) rollouts.Run {
		t.Helper()
		d, err := tl.client.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("lab"), "")
		if err != nil {
			t.Fatal(err)
		}
		return rollouts.Run{WorkflowID: d.WorkflowExecutionInfo.Execution.GetWorkflowId(), RunID: d.WorkflowExecutionInfo.Execution.GetRunId()}
	}

	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForActivity(t, run, "ProvisionNameservers")
	tl.signal(t, run, workflows.SignalAbort, workflows.SignalInput{Reason: "wrong zone"})
	terminateBetweenRounds(t, run)
	green := tl.assertOnly(t, "ns1", "ns2", "ns1-next", "ns2-next")

	tl.editFleet(t, "  - {label: ns2, region: eu-central, type: g6-nanode-1, image: linode/debian12}\n", "")
	tl.editFleet(t, "fronts: ns2", "fronts: ns1")
	if out, code := cli(t, c.URL, apiToken, "cleanup", "--id", api.RolloutID(run)); code != 0 {
		t.Fatalf("cleanup after %s: exit %d:\n%s", api.RolloutID(run), code, out)
	}
	cleanup := latest(t)
	in, err := rollouts.Input(context.Background(), tl.client, cleanup)
	if err != nil {
		t.Fatal(err)
	}
	want := workflows.Leftover{Kind: workflows.LeftoverServer, Name: "ns2-next", ID: green["ns2-next"].ID, Action: "delete"}
	if in.CleanUp == nil || !slices.Contains(in.CleanUp.Left, want) {
		t.Errorf("cleanup after %s started with %+v, want %+v among what is left", api.RolloutID(run), in.CleanUp, want)
	}
	terminateBetweenRounds(t, cleanup)

	sim.ClearFaults()
	out, code := cli(t, c.URL, apiToken, "cleanup", "--id", api.RolloutID(cleanup), "--wait", "--poll", "200ms")
	if code != 0 || !strings.Contains(out, "==> cleaned-up") {
		t.Errorf("cleanup after the terminated cleanup %s: exit %d, want 0 and cleaned-up:\n%s", api.RolloutID(cleanup), code, out)
	}
	tl.assertOnly(t, "ns1", "ns2")
}
