package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
)

// temporalHistoryCap is the most events Temporal keeps in a workflow's
// history (limit.historyCount.error): past it the run is terminated.
const temporalHistoryCap = 51200

// historyCount estimates, from what a test environment's run did, how
// many events the run's history on a real server would hold: the test
// environment keeps no history, but every event comes from a command the
// workflow issued or what answered it. The estimate errs high:
//   - an activity: ActivityTaskScheduled, Started and Completed (or
//     Failed), and the workflow task its result wakes, 3 (Scheduled,
//     Started, Completed): 6, even when activities run in parallel and
//     the server would wake one task for several results. A retry is
//     counted again, though history records only the last attempt.
//   - a timer: TimerStarted and TimerFired, and the workflow task it
//     wakes: 5 (a timer cancelled before it fires has 1).
//   - the rest, a constant historyOverhead: the run's start and end, its
//     first workflow task, the version markers and the search attribute
//     each upserts (2 for each of some 20 change IDs), the fleet lock's
//     child workflow and the signal that frees it.
type historyCount struct {
	mu                 sync.Mutex
	activities, timers int
	// inputBytes are the activities' inputs as JSON, the bulk of the
	// history's size, which Temporal caps at 50 MB.
	inputBytes int
	byType     map[string]int
}

const historyOverhead = 100

// countHistory counts env's activities and timers from now on. It
// replaces env's activity-started listener.
func countHistory(env *testsuite.TestWorkflowEnvironment) *historyCount {
	h := &historyCount{byType: map[string]int{}}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		// Every activity here takes one input.
		var in json.RawMessage
		_ = args.Get(&in)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.activities++
		h.byType[info.ActivityType.Name]++
		h.inputBytes += len(in)
	})
	env.SetOnTimerScheduledListener(func(string, time.Duration) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.timers++
	})
	return h
}

// events is the estimate of the history's length.
func (h *historyCount) events() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return historyOverhead + 6*h.activities + 5*h.timers
}

func (h *historyCount) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d activities %v, %d timers, inputs %d KB", h.activities, h.byType, h.timers, h.inputBytes/1024)
}

// lbFleetOf is lbFleet with n load balancers: lb3 and on front ns1 and
// ns2 in turn, each on an address of its own that the glue does not name.
func lbFleetOf(n int) string {
	lb2 := `{name: lb2, address: "198.51.100.2:53", fronts: ns2, driver: dnsdist}`
	more := []string{lb2}
	for i := 3; i <= n; i++ {
		more = append(more, fmt.Sprintf(`{name: lb%d, address: "198.51.100.%d:53", fronts: ns%d, driver: dnsdist}`, i, i, 2-i%2))
	}
	return strings.Replace(lbFleet, lb2, strings.Join(more, "\n  - "), 1)
}
