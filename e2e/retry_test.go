package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// A rollout that failed on a broken zone is fixed by the operator, then
// retried (same input, new run) and, for another failure, reset from the
// Web UI's reset (here the CLI's): neither duplicates a VM.
func TestRetryAndResetAfterFailure(t *testing.T) {
	// BIND refuses it, and so does planning, which reads zones as BIND does.
	broken := readZone(t, "B") + "release IN CNAME www\n"
	tl := startBlue(t, "nginx", map[string]string{"C": broken})
	blue := tl.assertOnly(t, "ns1", "ns2")

	failed, st, err := tl.rollout(t, "C")
	if err == nil || st.Phase != workflows.PhaseFailed {
		t.Fatalf("rollout of a broken zone: phase %s err %v", st.Phase, err)
	}
	if !strings.Contains(err.Error(), "Plan lab failed") || !strings.Contains(err.Error(), "CNAME and other data") {
		t.Errorf("failure %q does not say what broke", err)
	}
	tl.assertOnly(t, "ns1", "ns2")

	// The operator fixes the zone, then retries with the same input.
	testfiles.Write(t, tl.fleet.ZoneFile(tl.fleet.Zones[0], "C"), readZone(t, "B"))
	run, _, err := rollouts.Retry(context.Background(), tl.client, failed)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = tl.wait(t, run); err != nil || st.Revision != "C" {
		t.Fatalf("retried rollout: revision %q err %v", st.Revision, err)
	}
	green := tl.assertOnly(t, "ns1", "ns2")
	if green["ns1"].ID == blue["ns1"].ID {
		t.Errorf("retry did not replace ns1")
	}

	// Reset the succeeded run to its start: it runs again from the top and
	// the idempotent steps converge on one new pair of servers.
	out, err := exec.Command(requireLab(t), "workflow", "reset", "--address", tl.TemporalAddress(),
		"--workflow-id", run.WorkflowID, "--run-id", run.RunID, "--type", "FirstWorkflowTask", "--reason", "e2e reset").CombinedOutput()
	if err != nil {
		t.Fatalf("temporal workflow reset: %v: %s", err, out)
	}
	reset := rollouts.Run{WorkflowID: run.WorkflowID}
	if st, err = tl.wait(t, reset); err != nil {
		t.Fatalf("reset rollout: %v", err)
	}
	tl.assertOnly(t, "ns1", "ns2")
	tl.wantAnswers(t, "", "revision B,revision B")
}

func readZone(t *testing.T, rev string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "lab", "zones", rev, "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A rollout that failed after the point of no return leaves the load
// balancers on green and a blue server alive. Starting it again would
// take that blue for blue and stage it live; the new run is refused at
// Plan instead, before anything changes, and says how to finish.
func TestRetryAfterThePointOfNoReturnIsRefused(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	blue := tl.assertOnly(t, "ns1", "ns2")
	tl.Sim().InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: fmt.Sprintf("/v4/linode/instances/%d", blue["ns2"].ID), Status: 403, Count: 1})
	failed, st, err := tl.rollout(t, "B")
	if err == nil || st.Phase != workflows.PhaseFailed || !strings.Contains(st.Failure, "point of no return") {
		t.Fatalf("rollout with ns2's delete refused: phase %s, failure %q, err %v", st.Phase, st.Failure, err)
	}
	left := tl.assertOnly(t, "ns2", "ns1-next", "ns2-next")

	run, _, err := rollouts.Retry(context.Background(), tl.client, failed)
	if err != nil {
		t.Fatal(err)
	}
	st, err = tl.wait(t, run)
	if err == nil || st.Phase != workflows.PhaseFailed || !strings.Contains(st.Failure, "Plan lab failed") ||
		!strings.Contains(st.Failure, "-next") || !strings.Contains(st.Failure, "dnsroll rollout cleanup") {
		t.Fatalf("retry: phase %s, failure %q, err %v; want refused at Plan naming the green server served", st.Phase, st.Failure, err)
	}
	tl.wantAnswers(t, "after the refused retry", "revision B,revision B")
	for label, s := range tl.assertOnly(t, "ns2", "ns1-next", "ns2-next") {
		if s.ID != left[label].ID {
			t.Errorf("%s is Linode %d, was %d: the refused retry changed the fleet", label, s.ID, left[label].ID)
		}
	}
}
