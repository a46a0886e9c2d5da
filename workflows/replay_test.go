package workflows

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll/config"
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

// A cleanup-only run recorded before versionCleanupTrustsLeft swept green
// twice, createSettle apart, even when the failed run had learnt every
// -next server's ID. Its history replays unchanged: the v7 cleanup's, as
// the same run with such a left list in its request would have recorded
// it (replay compares the steps scheduled, not their inputs).
func TestReplayCleanupOfARunThatLearntEveryID(t *testing.T) {
	err := replayEdited(t, "testdata/v7-cleanup.json", func(in *RolloutInput) {
		if in.CleanUp == nil {
			t.Fatalf("the v7 cleanup's input has no cleanup: %+v", in)
		}
		in.CleanUp.Left = []Leftover{
			{Kind: LeftoverServer, Name: "ns1-next", ID: 11, Action: "delete"},
			{Kind: LeftoverServer, Name: "ns2-next", ID: 12, Action: "delete"},
		}
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// A load balancer update of two load balancers recorded before
// versionLBUpdateBake replays without a bake, also when its fleet has one:
// a run started before an upgrade whose LoadFleet a newer worker ran,
// defaulting lb_update.bake to a minute.
func TestReplayLBUpdateFromBeforeTheBake(t *testing.T) {
	err := replayEdited(t, "testdata/v8-lbupdate-abort-in-the-check-after-lb2.json", func(in *LBUpdateInput) {
		if in.Fleet == nil || len(in.Fleet.LoadBalancers) != 2 {
			t.Fatalf("the v8 update's input has no fleet of two load balancers: %+v", in)
		}
		bake := config.Duration(time.Minute)
		in.Fleet.LBUpdate = config.LBUpdate{Bake: &bake, BakeInterval: config.Duration(10 * time.Second)}
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// replayEdited replays the history in file with its workflow's input, a
// T, changed by edit. Replay compares the steps scheduled, not their
// inputs: it shows what the same run with that input would have done.
func replayEdited[T any](t *testing.T, file string, edit func(*T)) error {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var hist map[string]any
	if err := json.Unmarshal(b, &hist); err != nil {
		t.Fatal(err)
	}
	started := hist["events"].([]any)[0].(map[string]any)["workflowExecutionStartedEventAttributes"].(map[string]any)
	payload := started["input"].(map[string]any)["payloads"].([]any)[0].(map[string]any)
	data, err := base64.StdEncoding.DecodeString(payload["data"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var in T
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatalf("%s's input %s: %v", file, data, err)
	}
	edit(&in)
	if data, err = json.Marshal(in); err != nil {
		t.Fatal(err)
	}
	payload["data"] = base64.StdEncoding.EncodeToString(data)
	if b, err = json.Marshal(hist); err != nil {
		t.Fatal(err)
	}
	h, err := client.HistoryFromJSON(bytes.NewReader(b), client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := worker.NewWorkflowReplayer()
	Register(r)
	return r.ReplayWorkflowHistory(nil, h)
}
