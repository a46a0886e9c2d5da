package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/workflows"
)

// GET of a running rollout whose status query no worker answers is what
// Temporal recorded, and says why it has no steps: without a warning, a
// --wait with no worker running shows the phase it started in forever.
func TestGetRolloutWarnsWhenNoWorkerAnswers(t *testing.T) {
	for _, noWorker := range []bool{false, true} {
		ts := newTestServer(t, nil)
		ts.fake.add("lab", workflows.PhaseProvisioning)
		ts.fake.noWorker = noWorker
		rec := ts.do(t, "GET", "/rollouts/rollout-lab", "", "Bearer "+token)
		var ro struct {
			Warning string `json:"warning"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ro); err != nil || rec.Code != 200 {
			t.Fatalf("no worker %v: %d %s (%v)", noWorker, rec.Code, rec.Body, err)
		}
		if got := strings.Contains(ro.Warning, "is a worker running on task queue "+workflows.TaskQueue); got != noWorker {
			t.Errorf("no worker %v: warning %q", noWorker, ro.Warning)
		}
	}
}
