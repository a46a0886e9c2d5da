package main

import (
	"encoding/json"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dnsroll/dnsroll/bench/internal/wfhistory"
)

// historyFigures are what one rollout's workflow history says about its
// cost. They come from the history the server keeps, so they are what
// Temporal stores and replays, not an estimate.
type historyFigures struct {
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Bytes is the sum of the serialized (protobuf) sizes of every event.
	Events int `json:"events"`
	Bytes  int `json:"bytes"`
	// MaxPayload is the largest Payload's data in any event: workflow
	// input and result, activity inputs and results, failure details,
	// signals, markers and memos alike. Where names its event and, for
	// activities, the activity.
	MaxPayload int        `json:"largest_payload_bytes"`
	Where      string     `json:"largest_payload_in"`
	Analyses   []analysis `json:"analyses"`
	// Steps is the time in seconds from each activity's scheduling to its
	// close, summed per activity type (calls in parallel count each):
	// where the wall time went.
	Steps map[string]float64 `json:"step_seconds"`
}

// analysis is what one Verify activity's result says it checked.
type analysis struct {
	Activity string `json:"activity"`
	// Checks is how many queries a round asks each target per protocol
	// (VerifyResult.checks); Targets how many servers it asked; Queries
	// the answers it judged (passed, failed and unanswered, summed over
	// the targets' reports).
	Checks  int `json:"checks"`
	Targets int `json:"targets"`
	Queries int `json:"queries"`
	// Coverage is the result's coverage record as the activity wrote it,
	// when it has one.
	Coverage map[string]any `json:"coverage,omitempty"`
}

// measureHistory measures a run from its whole history.
func measureHistory(events []*historypb.HistoryEvent) historyFigures {
	var h historyFigures
	h.Started, h.Ended = wfhistory.Span(events)
	activity := map[int64]string{} // scheduled event ID → activity type
	scheduled := map[int64]time.Time{}
	h.Steps = map[string]float64{}
	closed := func(id int64, at time.Time) string {
		kind := activity[id]
		h.Steps[kind] += at.Sub(scheduled[id]).Seconds()
		return kind
	}
	for _, e := range events {
		h.Events++
		h.Bytes += proto.Size(e)
		at := e.GetEventTime().AsTime()
		name := e.GetEventType().String()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			kind := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			activity[e.GetEventId()], scheduled[e.GetEventId()] = kind, at
			name += " " + kind
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			attrs := e.GetActivityTaskCompletedEventAttributes()
			kind := closed(attrs.GetScheduledEventId(), at)
			name += " " + kind
			if strings.HasPrefix(kind, "Verify") {
				h.Analyses = append(h.Analyses, readAnalysis(kind, attrs.GetResult()))
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			name += " " + closed(e.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			closed(e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			closed(e.GetActivityTaskCanceledEventAttributes().GetScheduledEventId(), at)
		}
		if n := largestPayload(e.ProtoReflect()); n > h.MaxPayload {
			h.MaxPayload, h.Where = n, name
		}
	}
	return h
}

var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// largestPayload is the size of the largest Payload's data anywhere in m.
// It walks the message rather than naming fields, so that no event type
// (or one added to the API later) escapes it.
func largestPayload(m protoreflect.Message) int {
	if m.Descriptor().FullName() == payloadName {
		return len(m.Interface().(*commonpb.Payload).GetData())
	}
	largest := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
		case fd.IsList():
			for i := range v.List().Len() {
				largest = max(largest, largestPayload(v.List().Get(i).Message()))
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					largest = max(largest, largestPayload(mv.Message()))
					return true
				})
			}
		default:
			largest = max(largest, largestPayload(v.Message()))
		}
		return true
	})
	return largest
}

// readAnalysis reads a Verify result (activities.VerifyResult as JSON)
// loosely: only the fields it counts, so that results written before or
// after a field was added read alike.
func readAnalysis(kind string, p *commonpb.Payloads) analysis {
	a := analysis{Activity: kind}
	var v struct {
		Checks  int `json:"checks"`
		Reports []struct {
			Passed int `json:"passed"`
			Failed int `json:"failed"`
			Errors int `json:"errors"`
		} `json:"reports"`
		Coverage map[string]any `json:"coverage"`
	}
	if ps := p.GetPayloads(); len(ps) > 0 && json.Unmarshal(ps[0].GetData(), &v) == nil {
		a.Checks, a.Targets, a.Coverage = v.Checks, len(v.Reports), v.Coverage
		for _, r := range v.Reports {
			a.Queries += r.Passed + r.Failed + r.Errors
		}
	}
	return a
}

// Wall is the run's wall time, from its start to its close; zero if
// either is missing.
func (h historyFigures) Wall() time.Duration {
	if h.Started.IsZero() || h.Ended.IsZero() {
		return 0
	}
	return h.Ended.Sub(h.Started)
}
