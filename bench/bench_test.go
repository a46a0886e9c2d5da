package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const summary = `DNS Performance Testing Tool
[Status] Testing complete (interruption)

Statistics:

  Queries sent:         140870
  Queries completed:    135221 (95.99%)
  Queries lost:         5649 (4.01%)

  Response codes:       NOERROR 135200 (99.98%), SERVFAIL 20 (0.01%), REFUSED 1 (0.00%)
  Average packet size:  request 31, response 69
  Run time (s):         28.174015

  Average Latency (s):  0.009445 (min 0.000028, max 0.247373)
  Latency StdDev (s):   0.024256

Connection Statistics:

  Reconnections:        3

  Average Latency (s):  0.000196 (min 0.000196, max 0.000196)
`

func TestParseSummary(t *testing.T) {
	st, err := parseSummary(summary)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 140870 || st.Completed != 135221 || st.Lost != 5649 || st.Failed != 21 || st.Reconnections != 3 {
		t.Errorf("parsed %+v", st)
	}
	if st.LatAvgMS < 9.44 || st.LatAvgMS > 9.45 || st.LatMaxMS < 247.3 || st.LatMaxMS > 247.4 {
		t.Errorf("latency avg %v max %v, want the queries' 9.445 and 247.373 ms", st.LatAvgMS, st.LatMaxMS)
	}
	if _, err := parseSummary("dnsperf: no such file\n"); err == nil {
		t.Error("output without statistics parsed")
	}
}

// TestLoadLines checks the per-second series: replies by arrival, timeouts
// in the second their query was sent, and nothing after the interrupt.
func TestLoadLines(t *testing.T) {
	l := &load{timeout: 2 * time.Second}
	l.line([]byte("> NOERROR www.example.com A 0.000500"), 300*time.Millisecond)
	l.line([]byte("> SERVFAIL www.example.com A 0.002000"), 1200*time.Millisecond)
	l.line([]byte("> T www.example.com A"), 3500*time.Millisecond)
	l.line([]byte("[Status] Testing complete"), 3600*time.Millisecond)
	l.stopped = true
	l.line([]byte("> T www.example.com A"), 3700*time.Millisecond)
	if len(l.secs) != 2 {
		t.Fatalf("seconds = %+v, want 2", l.secs)
	}
	if s := l.secs[0]; s.Answered != 1 || s.Failed != 0 || s.Lost != 0 || s.LatMaxMS != 0.5 {
		t.Errorf("second 0 = %+v", s)
	}
	if s := l.secs[1]; s.Answered != 1 || s.Failed != 1 || s.Lost != 1 || s.LatMaxMS != 2 {
		t.Errorf("second 1 = %+v, want one SERVFAIL and the timeout sent in it", s)
	}
	if !strings.Contains(l.summary.String(), "Testing complete") {
		t.Error("status line not kept for the summary")
	}
}

func TestSettled(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []sample{{at(0), "A"}, {at(20), "B"}, {at(40), "A"}, {at(60), "B"}, {at(80), "B"}, {at(100), "A"}}
	if got, ok := settled(samples, at(0), at(100), "B"); !ok || !got.Equal(at(60)) {
		t.Errorf("settled on B at %v %v, want 60ms: a flap back to A restarts it", got.Sub(t0), ok)
	}
	if _, ok := settled(samples, at(0), at(200), "B"); ok {
		t.Error("settled on B although the window ends on A")
	}
	if got, ok := settled(samples, at(90), at(200), "A"); !ok || !got.Equal(at(100)) {
		t.Errorf("settled on A at %v %v, want 100ms", got.Sub(t0), ok)
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ts := func(s float64) *timestamppb.Timestamp {
		return timestamppb.New(t0.Add(time.Duration(s * float64(time.Second))))
	}
	ev := func(id int64, s float64, typ enumspb.EventType) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventId: id, EventTime: ts(s), EventType: typ}
	}
	sched := func(id int64, s float64, name string) *historypb.HistoryEvent {
		e := ev(id, s, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
		input := &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(fmt.Sprintf(`{"lb":{"name":"lb%d"},"backends":[{"label":"ns1-next"}]}`, id))}}}
		e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{ActivityType: &commonpb.ActivityType{Name: name}, Input: input}}
		return e
	}
	started := func(id int64, s float64, scheduled int64) *historypb.HistoryEvent {
		e := ev(id, s, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED)
		e.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: scheduled}}
		return e
	}
	completed := func(id int64, s float64, scheduled int64) *historypb.HistoryEvent {
		e := ev(id, s, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
		e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: scheduled}}
		return e
	}
	fired := ev(9, 9, enumspb.EVENT_TYPE_TIMER_FIRED)
	fired.Attributes = &historypb.HistoryEvent_TimerFiredEventAttributes{TimerFiredEventAttributes: &historypb.TimerFiredEventAttributes{StartedEventId: 8}}
	signal := ev(10, 8.5, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
	signal.Attributes = &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: "rollback"}}
	tl := buildTimeline([]*historypb.HistoryEvent{
		ev(1, 0, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
		sched(2, 0.5, "Plan"), started(3, 0.6, 2), completed(4, 2, 3-1),
		// Two switches in parallel: 3-5 s and 4-6 s cover 3 s, not 4.
		sched(5, 3, "SwitchLoadBalancer"), started(6, 3, 5), sched(11, 3, "SwitchLoadBalancer"), started(12, 4, 11),
		completed(13, 5, 5), completed(14, 6, 11),
		ev(8, 7, enumspb.EVENT_TYPE_TIMER_STARTED), fired, signal,
		ev(15, 10, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
	})
	if !tl.Promote.Equal(t0.Add(3*time.Second)) || !tl.Signal.Equal(t0.Add(8500*time.Millisecond)) {
		t.Errorf("promote %v, signal %v", tl.Promote.Sub(t0), tl.Signal.Sub(t0))
	}
	if tl.Wall() != 10*time.Second || tl.Activities != 4400*time.Millisecond || tl.Timers != 2*time.Second {
		t.Errorf("wall %v activities %v timers %v, want 10s 4.4s 2s", tl.Wall(), tl.Activities, tl.Timers)
	}
	if tl.Overhead() != 3600*time.Millisecond {
		t.Errorf("overhead %v, want 3.6s", tl.Overhead())
	}
	if sw := tl.Switches["lb11"]; len(sw) != 1 || sw[0].Ended.Sub(sw[0].Started) != 2*time.Second || len(tl.Switches) != 2 {
		t.Errorf("switches %+v, want lb5 and lb11, lb11's taking 2s", tl.Switches)
	}
}

// In a two-phase switch, the promote is the first flip that sends green
// every query: not a canary step's flip, and not a flip back to blue.
func TestTimelineOfFlips(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	flip := func(id int64, s float64, lb string, green int) *historypb.HistoryEvent {
		in := fmt.Sprintf(`{"lb":{"name":%q},"shares":[{"server":{"label":"ns1-next"},"weight":%d},{"server":{"label":"ns1"},"weight":%d}]}`, lb, green, 100-green)
		return &historypb.HistoryEvent{EventId: id, EventTime: timestamppb.New(t0.Add(time.Duration(s * float64(time.Second)))), EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
			Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
				ActivityType: &commonpb.ActivityType{Name: "FlipLoadBalancer"}, Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(in)}}}}}}
	}
	tl := buildTimeline([]*historypb.HistoryEvent{flip(1, 1, "lb1", 10), flip(2, 2, "lb1", 50), flip(3, 3, "lb1", 100), flip(4, 3.1, "lb2", 100), flip(5, 4, "lb1", 0)})
	if !tl.Promote.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("promote at %v, want the flip to 100%% at 3s", tl.Promote.Sub(t0))
	}
}

func TestWriteRevision(t *testing.T) {
	dir := t.TempDir()
	tmpl, err := os.ReadFile("../lab/zones/A/example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := writeRevision(dir, "example.com", tmpl, 7)
	if err != nil || rev != "r7" {
		t.Fatalf("writeRevision = %q, %v", rev, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "r7", "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("2100000007 ; serial")) || !bytes.Contains(b, []byte(`"revision r7"`)) {
		t.Errorf("revision r7:\n%s", b)
	}
}

// every calls f at once, not a tick later, and returns when stop closes.
func TestEvery(t *testing.T) {
	stop := make(chan struct{})
	calls := 0
	every(stop, time.Hour, func() {
		calls++
		close(stop)
	})
	if calls != 1 {
		t.Errorf("f called %d times, want once", calls)
	}
}

// The bench fleet, and its canary version, load back as the worker loads
// them: a field written as 0 that the defaults would replace is refused
// (the canary's max_drop_rate_increase was).
func TestBenchFleetsLoad(t *testing.T) {
	dir := t.TempDir()
	f, _, err := writeBenchFleet("../fleets/lab.yaml", filepath.Join(dir, "fleets"), filepath.Join(dir, "zones"), 10*time.Second)
	if err != nil {
		t.Fatalf("bench fleet: %v", err)
	}
	b := &bench{fleet: f, fleetDir: filepath.Join(dir, "fleets"), from: "../fleets/lab.yaml", opts: options{canaryStep: 5 * time.Second}}
	groups, err := b.useCanaryFleet()
	if err != nil {
		t.Fatalf("canary fleet: %v", err)
	}
	if len(groups) != 1 || b.fleet.Rollout.Canary.MaxDropRateIncrease != 0.01 {
		t.Errorf("canary fleet: %d groups, max_drop_rate_increase %g; want one group (dnsdist) and the default 0.01", len(groups), b.fleet.Rollout.Canary.MaxDropRateIncrease)
	}
}
