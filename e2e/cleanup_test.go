package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/workflows"
)

// A cleanup that fails (the cloud refuses the token while green is being
// deleted) is tried again: a round after the token works deletes green.
// A cleanup that keeps failing ends cleanup-failed with the list of what
// to undo, and `dnsroll rollout cleanup` undoes it once the cause is gone.
// Blue serves throughout, and no -next server is left.
func TestCleanupRetriesThenCleanupCommand(t *testing.T) {
	bin := requireLab(t)
	dir := writeFleet(t, "nginx", nil)
	path := filepath.Join(dir, "lab.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Rounds 5 s, then 10 s apart (the lab's retry_maximum_interval): a
	// refusal that lasts gives up after three rounds.
	testfiles.Write(t, path, strings.Replace(string(b), "steps:\n", "steps:\n  cleanup_timeout: 20s\n", 1))
	fleet, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tl := launchLab(t, dir, fleet, lab.Options{TemporalBin: bin, BootDelay: 200 * time.Millisecond}, 2*time.Minute)
	tl.startWorker(t)
	c := tl.startAPI(t)
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")
	sim := tl.Sim()
	revoked := linodesim.Fault{Method: "DELETE", PathPrefix: "/v4/linode/instances", Status: 401}

	abortDuringProvisioning := func(t *testing.T) workflows.Status {
		t.Helper()
		run := tl.start(t, workflows.RolloutInput{Revision: "B"})
		tl.waitForActivity(t, run, "ProvisionNameservers")
		sim.InjectFault(revoked)
		tl.signal(t, run, workflows.SignalAbort, workflows.SignalInput{Reason: "wrong zone"})
		st, _ := tl.wait(t, run)
		return st
	}

	t.Run("a round after a failed one works", func(t *testing.T) {
		revoked.Count = 1
		st := abortDuringProvisioning(t)
		if st.Phase != workflows.PhaseAborted {
			t.Fatalf("phase = %s (%s), want aborted after a second cleanup round", st.Phase, st.Failure)
		}
		if st.Cleanup == nil || st.Cleanup.Round != 1 || !strings.Contains(st.Cleanup.LastError, "401") {
			t.Errorf("cleanup = %+v, want one failed round with the 401", st.Cleanup)
		}
		tl.assertOnly(t, "ns1", "ns2")
	})

	t.Run("cleanup-failed, then dnsroll rollout cleanup", func(t *testing.T) {
		revoked.Count = 1000
		st := abortDuringProvisioning(t)
		if st.Phase != workflows.PhaseCleanupFailed {
			t.Fatalf("phase = %s (%s), want cleanup-failed", st.Phase, st.Failure)
		}
		if st.Cleanup == nil || st.Cleanup.Round < 2 {
			t.Errorf("cleanup = %+v, want rounds before giving up", st.Cleanup)
		}
		green := map[string]int{}
		for _, s := range sim.Instances() {
			if strings.HasSuffix(s.Label, "-next") {
				green[s.Label] = s.ID
			}
		}
		var left []string
		for _, l := range st.Cleanup.Left {
			left = append(left, l.Name)
			if l.ID != green[l.Name] {
				t.Errorf("left %s with ID %d, the cloud has it as %d", l.Name, l.ID, green[l.Name])
			}
		}
		if strings.Join(left, ",") != "ns1-next,ns2-next" || len(green) != 2 {
			t.Fatalf("left = %v, cloud's -next servers %v; want both listed", left, green)
		}
		out, code := cli(t, c.URL, apiToken, "status", "--fleet", "lab")
		if code != 0 || !strings.Contains(out, "left to undo:") || !strings.Contains(out, "dnsroll rollout cleanup --id ") {
			t.Errorf("status of a cleanup-failed rollout: exit %d, want what is left and the command:\n%s", code, out)
		}
		tl.wantAnswers(t, "", "revision A,revision A")

		sim.ClearFaults() // the operator fixed the token
		out, code = cli(t, c.URL, apiToken, "cleanup", "--fleet", "lab", "--reason", "token fixed", "--wait", "--poll", "200ms")
		t.Logf("dnsroll rollout cleanup --wait (exit %d):\n%s", code, out)
		if code != 0 || !strings.Contains(out, "==> cleaned-up") || !strings.Contains(out, "cleaned up after rollout-lab:") {
			t.Errorf("cleanup: exit %d, want 0 and cleaned-up", code)
		}
		tl.assertKept(t, blue)
		tl.wantAnswers(t, "", "revision A,revision A")
		// A second cleanup has nothing to do, and says so.
		if out, code := cli(t, c.URL, apiToken, "cleanup", "--fleet", "lab"); code != 1 || !strings.Contains(out, "only a cleanup-failed rollout") {
			t.Errorf("cleanup of a cleaned-up fleet: exit %d, want 1 with the reason:\n%s", code, out)
		}
	})
}
