package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// TestRecordHistories records the histories of real lab rollouts, one per
// path through the workflow, for workflows' replay test: every later
// change to the workflow must replay them, or be guarded by a version.
// It runs only when asked, as
//
//	DNSROLL_RECORD_HISTORIES=$PWD/workflows/testdata/v7 go test -run TestRecordHistories ./e2e
func TestRecordHistories(t *testing.T) {
	if !temporaltest.Recording() {
		t.Skip(temporaltest.RecordEnv + " is not set: nothing to record")
	}
	zones := map[string]string{}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "lab", "zones", "B", "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	serial := regexp.MustCompile(`(?m)^(\s*)\d{10}(\s*;\s*serial)`)
	for i, rev := range []string{"C", "D", "E", "G", "F"} {
		text := serial.ReplaceAllString(string(b), fmt.Sprintf("${1}%d${2}", 2026112303+i))
		zones[rev] = strings.ReplaceAll(text, `"revision B"`, `"revision `+rev+`"`)
	}
	tl := startLabDriver(t, "dnsdist", zones)
	tl.startWorker(t)
	rollout := func(block string) {
		b, err := os.ReadFile(filepath.Join(tl.fleetDir, "lab.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^rollout:\n(  [^\n]*\n)+`)
		testfiles.Write(t, filepath.Join(tl.fleetDir, "lab.yaml"), re.ReplaceAllString(string(b), "rollout:\n"+block))
	}
	record := func(name string, run rollouts.Run) {
		temporaltest.RecordHistory(t, tl.client, run.WorkflowID, run.RunID, name)
	}
	phase := func(p workflows.Phase) func(workflows.Status) bool {
		return func(st workflows.Status) bool { return st.Phase == p }
	}
	var blue map[string]dnsroll.Server
	canary := "  strategy: canary\n  canary:\n    steps:\n      - {weight: 10, duration: 3s}\n      - {weight: 50, duration: 3s}\n  bake: 3s\n  bake_interval: 1s\n"
	for _, c := range []struct {
		name, rev string
		// rollout is the fleet's rollout block from now on ("": as it is).
		rollout string
		// signal is sent once until holds ("": none).
		until  func(workflows.Status) bool
		signal string
		want   workflows.Phase
	}{
		{"first", "A", "", nil, "", workflows.PhaseSucceeded},
		{"succeeded", "B", "  bake: 4s\n  bake_interval: 2s\n", nil, "", workflows.PhaseSucceeded},
		{"rolled-back", "C", "  bake: 60s\n  bake_interval: 2s\n", phase(workflows.PhaseBaking), workflows.SignalRollback, workflows.PhaseRolledBack},
		{"canary", "D", canary, nil, "", workflows.PhaseSucceeded},
		{"canary-rolled-back", "E", strings.Replace(canary, "duration: 3s}\n  bake", "duration: 60s}\n  bake", 1),
			func(st workflows.Status) bool { return st.Phase == workflows.PhaseCanary && st.GreenShare == 50 }, workflows.SignalRollback, workflows.PhaseRolledBack},
		{"canary-approved", "G", strings.Replace(canary, "{weight: 10, duration: 3s}", "{weight: 10, duration: 3s, approve: true}", 1) + "  approval_timeout: 1h\n",
			func(st workflows.Status) bool {
				return st.Phase == workflows.PhaseAwaitingApproval && st.GreenShare == 10
			}, workflows.SignalApprove, workflows.PhaseSucceeded},
		{"aborted-at-gate", "F", "  approval: manual\n  approval_timeout: 1h\n  bake: 4s\n", phase(workflows.PhaseAwaitingApproval), workflows.SignalAbort, workflows.PhaseAborted},
	} {
		if c.rollout != "" {
			rollout(c.rollout)
		}
		run := tl.start(t, workflows.RolloutInput{Revision: c.rev, Reason: "record " + c.rev, RequestedBy: "e2e"})
		if c.signal != "" {
			tl.waitStatus(t, run, c.name, c.until)
			tl.signal(t, run, c.signal, workflows.SignalInput{Reason: "recording", By: "e2e"})
		}
		st, err := tl.wait(t, run)
		if st.Phase != c.want {
			t.Fatalf("%s: rollout ended %s (%v), want %s", c.name, st.Phase, err, c.want)
		}
		record(c.name, run)
		if c.name == "aborted-at-gate" {
			blue = st.Blue // the servers live once it ended, for the cleanup below
		}
	}
	// A cleanup-only run, as `dnsroll rollout cleanup` starts it: every
	// load balancer (dnsdist, one at a time) back on blue, every -next
	// server deleted.
	cleanup := tl.start(t, workflows.RolloutInput{Reason: "record cleanup", RequestedBy: "e2e",
		CleanUp: &workflows.CleanupRequest{From: "rollout-lab:recorded", Blue: blue}})
	if st, err := tl.wait(t, cleanup); st.Phase != workflows.PhaseCleanedUp {
		t.Fatalf("cleanup: ended %s (%v), want %s", st.Phase, err, workflows.PhaseCleanedUp)
	}
	record("cleanup", cleanup)
	// A load balancer update, for LoadBalancerUpdateWorkflow's replay; the
	// replacements' histories come from lab/lbreplace.
	upd := tl.startLBUpdate(t)
	if st, err := tl.wait(t, upd); err != nil {
		t.Fatalf("load balancer update: %s: %v", st.Phase, err)
	}
	record("lbupdate", upd)
}
