package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// recordEnv names the directory TestRecordHistories writes to, and the
// prefix of its files: DNSROLL_RECORD_HISTORIES=workflows/testdata/v3.
const recordEnv = "DNSROLL_RECORD_HISTORIES"

// TestRecordHistories records the histories of real lab rollouts, one per
// path through the workflow, for workflows' replay test: every later
// change to the workflow must replay them, or be guarded by a version.
// It runs only when asked, as
//
//	DNSROLL_RECORD_HISTORIES=$PWD/workflows/testdata/v3 go test -run TestRecordHistories ./e2e
func TestRecordHistories(t *testing.T) {
	prefix := os.Getenv(recordEnv)
	if prefix == "" {
		t.Skip(recordEnv + " is not set: nothing to record")
	}
	zones := map[string]string{}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "lab", "zones", "B", "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	serial := regexp.MustCompile(`(?m)^(\s*)\d{10}(\s*;\s*serial)`)
	for i, rev := range []string{"C", "D", "E", "F"} {
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
		writeFile(t, filepath.Join(tl.fleetDir, "lab.yaml"), re.ReplaceAllString(string(b), "rollout:\n"+block))
	}
	record := func(name string, run rollouts.Run) {
		var events []*historypb.HistoryEvent
		it := tl.client.GetWorkflowHistory(context.Background(), run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
		out, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, prefix+"-"+name+".json", string(out))
	}
	want := func(run rollouts.Run, phase workflows.Phase) {
		st, err := tl.wait(t, run)
		if st.Phase != phase {
			t.Fatalf("rollout ended %s (%v), want %s", st.Phase, err, phase)
		}
	}
	start := func(rev string) rollouts.Run {
		run, err := rollouts.Start(context.Background(), tl.client, workflows.RolloutInput{Fleet: tl.fleet.Name, Revision: rev, Reason: "record " + rev, RequestedBy: "e2e"})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	signal := func(run rollouts.Run, name string) {
		if err := rollouts.Signal(context.Background(), tl.client, run, name, workflows.SignalInput{Reason: "recording", By: "e2e"}); err != nil {
			t.Fatal(err)
		}
	}

	run := start("A")
	want(run, workflows.PhaseSucceeded)
	record("first", run)

	rollout("  bake: 4s\n  bake_interval: 2s\n")
	run = start("B")
	want(run, workflows.PhaseSucceeded)
	record("succeeded", run)

	rollout("  bake: 60s\n  bake_interval: 2s\n")
	run = start("C")
	tl.waitForPhase(t, run, workflows.PhaseBaking)
	signal(run, workflows.SignalRollback)
	want(run, workflows.PhaseRolledBack)
	record("rolled-back", run)

	canary := "  strategy: canary\n  canary:\n    steps:\n      - {weight: 10, duration: 3s}\n      - {weight: 50, duration: 3s}\n  bake: 3s\n  bake_interval: 1s\n"
	rollout(canary)
	run = start("D")
	want(run, workflows.PhaseSucceeded)
	record("canary", run)

	rollout(strings.Replace(canary, "duration: 3s}\n  bake", "duration: 60s}\n  bake", 1))
	run = start("E")
	tl.waitStatus(t, run, "the canary at 50%", func(st workflows.Status) bool { return st.Phase == workflows.PhaseCanary && st.GreenShare == 50 })
	signal(run, workflows.SignalRollback)
	want(run, workflows.PhaseRolledBack)
	record("canary-rolled-back", run)

	rollout("  approval: manual\n  approval_timeout: 1h\n  bake: 4s\n")
	run = start("F")
	tl.waitForPhase(t, run, workflows.PhaseAwaitingApproval)
	signal(run, workflows.SignalAbort)
	want(run, workflows.PhaseAborted)
	record("aborted-at-gate", run)
}
