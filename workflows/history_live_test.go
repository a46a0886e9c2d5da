package workflows

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// historyCount's estimate of a history's length holds on a real server:
// a replacement of twelve load balancers, whose drain reads busy counters
// until max_wait, has no more events than 6 an activity, 5 a timer and
// historyOverhead, with its creates, checks and deletes in parallel, and
// its drain rounds are 11 events apart whatever the load balancers. So
// the tests that estimate histories in the test environment, which runs
// days in a second, err high, not low.
func TestHistoryEstimateHoldsOnARealServer(t *testing.T) {
	const lbs = 12
	c, live, in := liveLBReplace(t, lbFleetOf(lbs), 100*time.Millisecond)
	in.Drain.MaxWait = config.Duration(5 * time.Second)
	steps := &busyLBSteps{liveLBSteps: live, start: time.Now()}
	steps.gate.open()
	const id = "lbreplace-history-estimate"
	startLiveWorker(t, c, id, steps)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := executeOnQueueID(ctx, t, c, id, LoadBalancerReplaceWorkflow, in)
	var st LBReplaceStatus
	if err := run.Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	if st.Drain == nil || st.Drain.Ended != "max-wait" {
		t.Fatalf("drain %+v, want ended at max_wait", st.Drain)
	}
	// first and last are the event IDs of the first and last drain readings.
	var events, acts, timers, reads int
	var first, last int64
	it := c.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			acts++
			if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "LoadBalancersQueries" {
				reads++
				last = e.GetEventId()
				if first == 0 {
					first = e.GetEventId()
				}
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			timers++
		}
	}
	est := historyOverhead + 6*acts + 5*timers
	perRound := float64(last-first) / float64(max(reads-1, 1))
	t.Logf("%d events; %d activities (%d drain readings, %.1f events apart), %d timers: estimated %d", events, acts, reads, perRound, timers, est)
	if reads < 5 || events > est {
		t.Errorf("%d events, %d drain readings: want at least 5 readings and at most the estimate %d", events, reads, est)
	}
	// A round is a reading and a timer, however many load balancers.
	if perRound > 11 {
		t.Errorf("drain rounds %.1f events apart with %d load balancers, want at most 11 (a step and a timer)", perRound, lbs)
	}
}

// busyLBSteps are liveLBSteps whose old load balancers get 1,000 queries
// a second: their drain runs to max_wait.
type busyLBSteps struct {
	*liveLBSteps
	start time.Time
}

func (s *busyLBSteps) LoadBalancersQueries(_ context.Context, in activities.LoadBalancersInput) (activities.LoadBalancersQueriesResult, error) {
	res := activities.LoadBalancersQueriesResult{Attempt: 1}
	n := uint64(1000 * time.Since(s.start).Seconds())
	for _, lb := range in.LBs {
		res.LBs = append(res.LBs, activities.LBQueries{Name: lb.Name, Counted: true, Queries: n})
	}
	return res, nil
}
