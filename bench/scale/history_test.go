package main

import (
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func payloads(data ...string) *commonpb.Payloads {
	p := &commonpb.Payloads{}
	for _, d := range data {
		p.Payloads = append(p.Payloads, &commonpb.Payload{Data: []byte(d)})
	}
	return p
}

// The history's figures come from every event: its size is the sum of the
// events' serialized sizes, and the largest payload is found wherever it
// is, here in an activity failure's details, deeper than any input.
func TestMeasureHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	ev := func(id int64, at time.Duration, typ enumspb.EventType) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventId: id, EventTime: timestamppb.New(t0.Add(at)), EventType: typ}
	}
	started := ev(1, 0, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
	started.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: payloads(strings.Repeat("i", 100))}}
	sched := ev(2, time.Second, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	sched.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
		ActivityType: &commonpb.ActivityType{Name: "VerifyGreen"}, Input: payloads(strings.Repeat("v", 300))}}
	done := ev(3, 4*time.Second, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
	done.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
		ScheduledEventId: 2, Result: payloads(`{"checks":10,"reports":[{"passed":18,"failed":1,"errors":1},{"passed":20}],"coverage":{"zones":100000,"sampled":100}}`)}}
	sched2 := ev(4, 5*time.Second, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	sched2.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
		ActivityType: &commonpb.ActivityType{Name: "Provision"}, Input: payloads("p")}}
	failed := ev(5, 7*time.Second, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED)
	failed.Attributes = &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{
		ScheduledEventId: 4, Failure: &failurepb.Failure{Message: "boom", Cause: &failurepb.Failure{FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
			ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Details: payloads("small", strings.Repeat("d", 1000))}}}}}}
	end := ev(6, 9*time.Second, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
	events := []*historypb.HistoryEvent{started, sched, done, sched2, failed, end}

	h := measureHistory(events)
	want := 0
	for _, e := range events {
		want += proto.Size(e)
	}
	if h.Bytes != want || h.Events != 6 {
		t.Errorf("bytes %d in %d events, want %d in 6", h.Bytes, h.Events, want)
	}
	if h.MaxPayload != 1000 || h.Where != "ActivityTaskFailed Provision" {
		t.Errorf("largest payload %d in %q, want 1000 in the Provision failure's details", h.MaxPayload, h.Where)
	}
	if h.Wall() != 9*time.Second {
		t.Errorf("wall %s, want 9s", h.Wall())
	}
	if h.Steps["VerifyGreen"] != 3 || h.Steps["Provision"] != 2 {
		t.Errorf("steps %v", h.Steps)
	}
	if len(h.Analyses) != 1 {
		t.Fatalf("analyses %+v, want the VerifyGreen result", h.Analyses)
	}
	a := h.Analyses[0]
	if a.Checks != 10 || a.Targets != 2 || a.Queries != 40 || a.Coverage["zones"] != float64(100000) {
		t.Errorf("analysis %+v", a)
	}
	r := row{Zones: 100000, History: h}
	if got := r.coverage(); got != "sampled 100, zones 100,000; 40 queries to 2 servers" {
		t.Errorf("coverage %q", got)
	}
	r.History.Analyses[0].Coverage = map[string]any{"soa": 100000.0, "full": 103.0, "names": 100206.0, "sampled": 100.0, "seed": 1901409199.0, "changed": 3.0, "changed_by": "baseline serial"}
	if got, want := r.coverage(), "SOA of 100,000 zones; every name of 103 zones (100 sampled, seed 1901409199; 3 changed); 100,206 names; 40 queries to 2 servers"; got != want {
		t.Errorf("coverage\n%q, want\n%q", got, want)
	}
	r.History.Analyses[0].Coverage["soa_over"] = "udp"
	if got, want := r.coverage(), "SOA of 100,000 zones over udp; every name of 103 zones (100 sampled, seed 1901409199; 3 changed); 100,206 names; 40 queries to 2 servers"; got != want {
		t.Errorf("coverage\n%q, want\n%q", got, want)
	}
}
