package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays histories of earlier runs of every
// workflow, recorded from real lab runs, against today's workflow code. A
// change that would break runs in flight during an upgrade of dnsroll
// fails here; guard such changes with workflow.GetVersion. Record new
// histories with DNSROLL_RECORD_HISTORIES=$PWD/workflows/testdata/vN set:
// e2e's TestRecordHistories records rollouts and a load balancer update,
// lab/lbreplace's tests the replacements.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories in testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
