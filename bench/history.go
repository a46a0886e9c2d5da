package main

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bench/internal/wfhistory"
	"github.com/dnsroll/dnsroll/workflows"
)

// timeline is what a rollout's workflow history says about its timing. The
// history is the workflow's own record, so these times are the server's.
type timeline struct {
	Started, Ended time.Time
	// Promote is when the workflow decided to switch: the scheduling of
	// its first flip of every query to green (FlipLoadBalancer), or, in
	// rollouts from before the two-phase switch, of its first
	// SwitchLoadBalancer activity.
	Promote time.Time
	// Signal is when the rollback signal arrived; zero without one.
	Signal time.Time
	// Activities and Timers are how long at least one activity ran, and at
	// least one timer (the bake's deliberate waits) was pending.
	Activities, Timers time.Duration
	// Busy is the union of both.
	Busy time.Duration
	// Switches are each load balancer's switches of every query to green,
	// in order.
	Switches map[string][]switchActivity
}

// switchActivity is one switch to green (a flip, or a SwitchLoadBalancer
// activity): its last attempt's start, its end, and how many attempts it
// took.
type switchActivity struct {
	Started, Ended time.Time
	Attempts       int32
}

// Wall is the rollout's wall time.
func (t timeline) Wall() time.Duration { return t.Ended.Sub(t.Started) }

// Overhead is the wall time in which the rollout neither ran an activity
// nor waited on purpose: scheduling, workflow tasks and dispatch.
func (t timeline) Overhead() time.Duration { return t.Wall() - t.Busy }

type interval struct{ from, to time.Time }

func readTimeline(ctx context.Context, c client.Client, wid, rid string) (timeline, error) {
	events, err := wfhistory.Events(ctx, c, wid, rid)
	if err != nil {
		return timeline{}, err
	}
	return buildTimeline(events), nil
}

func buildTimeline(events []*historypb.HistoryEvent) timeline {
	var tl timeline
	tl.Started, tl.Ended = wfhistory.Span(events)
	started := map[int64]time.Time{} // activity scheduled ID → start
	timers := map[int64]time.Time{}  // timer started event ID → start
	var acts, tims []interval
	tl.Switches = map[string][]switchActivity{}
	// Scheduled switches to green by activity type, then by scheduled ID.
	toGreen := map[string]map[int64]string{flipActivity: {}, playbookSwitch: {}}
	promote := map[string]time.Time{}
	switches := map[string]map[string][]switchActivity{flipActivity: {}, playbookSwitch: {}}
	kindOf := map[int64]string{}
	for _, e := range events {
		at := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			attrs := e.GetActivityTaskScheduledEventAttributes()
			kind := attrs.GetActivityType().GetName()
			lb, green := switchTarget(kind, attrs.GetInput())
			if _, known := toGreen[kind]; !known || !green {
				break
			}
			if promote[kind].IsZero() {
				promote[kind] = at
			}
			toGreen[kind][e.GetEventId()], kindOf[e.GetEventId()] = lb, kind
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			attrs := e.GetActivityTaskStartedEventAttributes()
			id := attrs.GetScheduledEventId()
			started[id] = at
			if kind, ok := kindOf[id]; ok {
				lb := toGreen[kind][id]
				switches[kind][lb] = append(switches[kind][lb], switchActivity{Started: at, Attempts: attrs.GetAttempt()})
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			acts = closeInterval(acts, started, id, at)
			if kind, ok := kindOf[id]; ok {
				lb := toGreen[kind][id]
				if sw := switches[kind][lb]; len(sw) > 0 {
					sw[len(sw)-1].Ended = at
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			acts = closeInterval(acts, started, e.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			acts = closeInterval(acts, started, e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			acts = closeInterval(acts, started, e.GetActivityTaskCanceledEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			timers[e.GetEventId()] = at
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			tims = closeInterval(tims, timers, e.GetTimerFiredEventAttributes().GetStartedEventId(), at)
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			tims = closeInterval(tims, timers, e.GetTimerCanceledEventAttributes().GetStartedEventId(), at)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			if tl.Signal.IsZero() && e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == workflows.SignalRollback {
				tl.Signal = at
			}
		}
	}
	// A rollout flips if it stages; one from before switches with playbooks.
	kind := flipActivity
	if promote[kind].IsZero() {
		kind = playbookSwitch
	}
	tl.Promote, tl.Switches = promote[kind], switches[kind]
	tl.Activities, tl.Timers = union(acts), union(tims)
	tl.Busy = union(append(acts, tims...))
	return tl
}

// The activities that switch a load balancer.
const (
	flipActivity   = "FlipLoadBalancer"
	playbookSwitch = "SwitchLoadBalancer"
)

// switchTarget reads the load balancer a switch activity switches from
// its input (activities.FlipInput or SwitchInput as JSON), and whether it
// sends every query to green: a flip that gives green (the -next server)
// a weight of 100, or a playbook switch to a -next backend.
func switchTarget(kind string, in *commonpb.Payloads) (lb string, toGreen bool) {
	var v struct {
		LB struct {
			Name string `json:"name"`
		} `json:"lb"`
		Backends []dnsroll.Server `json:"backends"`
		Shares   []struct {
			Server dnsroll.Server `json:"server"`
			Weight int            `json:"weight"`
		} `json:"shares"`
	}
	if p := in.GetPayloads(); len(p) > 0 {
		_ = json.Unmarshal(p[0].GetData(), &v)
	}
	green := func(s dnsroll.Server) bool { return strings.HasSuffix(s.Label, "-next") }
	switch kind {
	case flipActivity:
		for _, s := range v.Shares {
			if green(s.Server) && s.Weight == 100 {
				toGreen = true
			}
		}
	case playbookSwitch:
		toGreen = len(v.Backends) > 0 && green(v.Backends[0])
	}
	return v.LB.Name, toGreen
}

func closeInterval(out []interval, open map[int64]time.Time, id int64, at time.Time) []interval {
	if from, ok := open[id]; ok {
		out = append(out, interval{from, at})
	}
	return out
}

// union is the total length covered by the intervals.
func union(ivs []interval) time.Duration {
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].from.Before(ivs[j].from) })
	var total time.Duration
	var cur interval
	for i, iv := range ivs {
		switch {
		case i == 0:
			cur = iv
		case iv.from.After(cur.to):
			total += cur.to.Sub(cur.from)
			cur = iv
		case iv.to.After(cur.to):
			cur.to = iv.to
		}
	}
	if len(ivs) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}
