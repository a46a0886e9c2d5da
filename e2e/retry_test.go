package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
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
	if got := strings.Join(tl.answers(t), ","); got != "revision B,revision B" {
		t.Errorf("answers = %s", got)
	}
}

func readZone(t *testing.T, rev string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "lab", "zones", rev, "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
