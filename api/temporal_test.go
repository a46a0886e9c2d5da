package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// fakeClient is the part of a Temporal client that Temporal.Get uses: one
// execution, its result or error, and a status query that may fail.
type fakeClient struct {
	client.Client
	info   *workflowpb.WorkflowExecutionInfo
	result *workflows.Status // nil: the run ended with err
	err    error
	query  *workflows.Status // nil: no worker answers
	// queryDelay is how long the worker takes to answer the query.
	queryDelay time.Duration
	// pending are the run's pending activities, as Temporal describes them.
	pending  []*workflowpb.PendingActivityInfo
	describe error
	listed   []*workflowpb.WorkflowExecutionInfo
	// listErr fails ListWorkflow.
	listErr error
	// startErr fails ExecuteWorkflow; started records its calls.
	startErr error
	started  []string
	// signalErr fails SignalWorkflow.
	signalErr error
	// runs are the runs Describe answers by run ID; the latest (no run
	// ID), and any other, is info.
	runs map[string]*workflowpb.WorkflowExecutionInfo
}

func (f *fakeClient) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, wf any, _ ...any) (client.WorkflowRun, error) {
	f.started = append(f.started, fmt.Sprintf("%s %s %s %v", wf, opts.ID, opts.TaskQueue, opts.WorkflowExecutionErrorWhenAlreadyStarted))
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &fakeRun{f: f, id: opts.ID}, nil
}

func (f *fakeClient) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: f.listed}, f.listErr
}

func (f *fakeClient) DescribeWorkflowExecution(_ context.Context, _, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if info, ok := f.runs[runID]; ok && runID != "" {
		return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info}, nil
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: f.info, PendingActivities: f.pending}, f.describe
}

func (f *fakeClient) SignalWorkflow(context.Context, string, string, string, any) error {
	return f.signalErr
}

func (f *fakeClient) GetWorkflow(context.Context, string, string) client.WorkflowRun {
	return &fakeRun{f: f}
}

func (f *fakeClient) QueryWorkflow(ctx context.Context, _, _ string, _ string, _ ...any) (converter.EncodedValue, error) {
	if f.query == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.queryDelay == 0 {
		// At once, whatever the timeout: a select on a deadline a loaded
		// machine let pass would pick either case.
		return jsonValue{f.query}, nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(f.queryDelay):
	}
	return jsonValue{f.query}, nil
}

type fakeRun struct {
	client.WorkflowRun
	f  *fakeClient
	id string
}

func (r *fakeRun) GetID() string    { return r.id }
func (r *fakeRun) GetRunID() string { return "r1" }

func (r *fakeRun) Get(ctx context.Context, v any) error {
	if s := r.f.info.GetStatus(); s == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || s == enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED {
		// An open run's result is waited for.
		<-ctx.Done()
		return ctx.Err()
	}
	if r.f.result == nil {
		return r.f.err
	}
	return jsonValue{r.f.result}.Get(v)
}

type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return true }
func (j jsonValue) Get(ptr any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

// rolloutInfo is what Temporal describes of run r1 of rollout-lab, in
// status since start, with the search attributes kv (name, value, ...).
func rolloutInfo(tb testing.TB, status enumspb.WorkflowExecutionStatus, start time.Time, kv ...string) *workflowpb.WorkflowExecutionInfo {
	return &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-lab", RunId: "r1"},
		Type:      &commonpb.WorkflowType{Name: "RolloutWorkflow"},
		Status:    status, StartTime: timestamppb.New(start),
		SearchAttributes: keywordAttrs(tb, kv...),
	}
}

// baking is the status a worker answers of a rollout baking after its Plan.
func baking() *workflows.Status {
	return &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseBaking, Steps: []*workflows.Step{{Name: "Plan"}}}}
}

func keywordAttrs(tb testing.TB, kv ...string) *commonpb.SearchAttributes {
	out := &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}
	for i := 0; i < len(kv); i += 2 {
		p, err := converter.GetDefaultDataConverter().ToPayload(kv[i+1])
		if err != nil {
			tb.Fatal(err)
		}
		out.IndexedFields[kv[i]] = p
	}
	return out
}

// Get reads running rollouts through the query, succeeded ones from their
// result, failed ones from their error's details or the query, and falls
// back to what Temporal records when no worker answers.
func TestTemporalGet(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	info := func(status enumspb.WorkflowExecutionStatus, attrs ...string) *workflowpb.WorkflowExecutionInfo {
		i := rolloutInfo(t, status, start, attrs...)
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			i.CloseTime = timestamppb.New(start.Add(time.Minute))
		}
		return i
	}
	queried := baking()
	failed := workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseFailed}, Failure: "VerifyGreen failed"}
	tests := []struct {
		name        string
		client      *fakeClient
		wantState   string
		wantPhase   workflows.Phase
		wantSteps   int
		wantFailure string
	}{
		{"running, queried", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING), query: queried}, "running", workflows.PhaseBaking, 1, ""},
		{"running, no worker", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "Fleet", "lab", "Phase", "provisioning")}, "running", workflows.PhaseProvisioning, 0, ""},
		{"running, before its first task", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "Fleet", "lab")}, "running", workflows.PhasePlanning, 0, ""},
		{"succeeded, from the result", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED), result: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseSucceeded, Steps: []*workflows.Step{{}, {}}}}}, "completed", workflows.PhaseSucceeded, 2, ""},
		{"failed, status in the error", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED), err: temporal.NewNonRetryableApplicationError("VerifyGreen failed; blue is serving", workflows.ErrTypeFailed, nil, failed)}, "failed", workflows.PhaseFailed, 0, "VerifyGreen failed"},
		{"failed, queried", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED), err: temporal.NewNonRetryableApplicationError("aborted", workflows.ErrTypeAborted, nil),
			query: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseAborted, Steps: []*workflows.Step{{}}}, Failure: "aborted by ci"}}, "failed", workflows.PhaseAborted, 1, "aborted by ci"},
		{"failed, no worker", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "Fleet", "lab", "Phase", "aborted"), err: temporal.NewNonRetryableApplicationError("aborted by ci; blue is serving", workflows.ErrTypeAborted, nil)},
			"failed", workflows.PhaseAborted, 0, "aborted by ci; blue is serving"},
		// Details of another shape decode (from JSON) into an empty
		// Status: the status is then what Temporal recorded, not nothing.
		{"failed, details not a status", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "Fleet", "lab", "Phase", "failed"), err: temporal.NewNonRetryableApplicationError("plan refused", "Other", nil, workflows.Status{})},
			"failed", workflows.PhaseFailed, 0, "plan refused"},
		{"terminated", &fakeClient{info: info(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "Fleet", "lab", "Phase", "switching"), err: errors.New("workflow terminated: by hand")},
			"terminated", workflows.PhaseSwitching, 0, "workflow terminated: by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Temporal{Client: tt.client, QueryTimeout: 50 * time.Millisecond}
			ro, err := b.Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab"})
			if err != nil {
				t.Fatal(err)
			}
			if ro.ID != "rollout-lab:r1" || ro.State != tt.wantState || ro.Phase != tt.wantPhase || len(ro.Steps) != tt.wantSteps || ro.Failure != tt.wantFailure {
				t.Errorf("got %s %s/%s, %d steps, failure %q; want %s/%s, %d steps, failure %q",
					ro.ID, ro.State, ro.Phase, len(ro.Steps), ro.Failure, tt.wantState, tt.wantPhase, tt.wantSteps, tt.wantFailure)
			}
		})
	}
}

// A status query that reaches a worker's sticky queue between two of its
// polls is answered only once Temporal gives up on that queue, after
// workflows.StickyScheduleToStartTimeout, and sends it on to the task
// queue; in the lab that happened to one query in 500. The API waits longer
// than that by default, so such a rollout is shown whole, with its steps,
// not as if no worker ran.
func TestTemporalGetWaitsOutAStickyQueue(t *testing.T) {
	c := &fakeClient{
		info:       rolloutInfo(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Now(), "Fleet", "lab", "Phase", "baking"),
		query:      baking(),
		queryDelay: workflows.StickyScheduleToStartTimeout + 200*time.Millisecond,
	}
	ro, err := (&Temporal{Client: c}).Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ro.Steps) != 1 {
		t.Errorf("a rollout whose worker answered after %s shows %d steps, want its 1: the API gave up on the query first", c.queryDelay, len(ro.Steps))
	}
}

// A rollout read with no worker to answer its status query says so: the
// status Temporal recorded has its phase but not its open approval gate,
// which the API then leaves to the workflow to check.
func TestTemporalGetSaysNoWorkerAnswered(t *testing.T) {
	info := rolloutInfo(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Now(), "Fleet", "lab", "Phase", "awaiting-approval")
	for _, tt := range []struct {
		name  string
		query *workflows.Status
		want  string
	}{
		{"answered", &workflows.Status{Fleet: "lab", ApprovalGate: 1, Run: workflows.Run{Phase: workflows.PhaseAwaitingApproval}}, ""},
		{"no worker", nil, "no worker answered the status query of rollout rollout-lab:r1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ro, err := (&Temporal{Client: &fakeClient{info: info, query: tt.query}, QueryTimeout: 10 * time.Millisecond}).Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab"})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(ro.unanswered); (tt.want == "") != (ro.unanswered == nil) || !strings.Contains(got, tt.want) {
				t.Errorf("unanswered %v, want %q", ro.unanswered, tt.want)
			}
		})
	}
}

// With no worker to ask, a rollout's revision comes from its Revision
// search attribute.
func TestTemporalGetRevisionWithoutWorker(t *testing.T) {
	c := &fakeClient{info: rolloutInfo(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Now(), "Fleet", "lab", "Phase", "baking", "Revision", "B")}
	ro, err := (&Temporal{Client: c, QueryTimeout: 10 * time.Millisecond}).Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab"})
	if err != nil {
		t.Fatal(err)
	}
	if ro.Fleet != "lab" || ro.Revision != "B" || ro.Phase != workflows.PhaseBaking {
		t.Errorf("got fleet %q revision %q phase %q, want lab B baking", ro.Fleet, ro.Revision, ro.Phase)
	}
}

// A list shows each rollout's Fleet, Revision and Phase search attributes;
// one started before Revision existed has none.
func TestTemporalList(t *testing.T) {
	exec := func(run string, attrs ...string) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-lab", RunId: run},
			Type:      &commonpb.WorkflowType{Name: "RolloutWorkflow"},
			Status:    enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, StartTime: timestamppb.Now(), CloseTime: timestamppb.Now(),
			SearchAttributes: keywordAttrs(t, attrs...),
		}
	}
	c := &fakeClient{listed: []*workflowpb.WorkflowExecutionInfo{
		exec("r2", "Fleet", "lab", "Phase", "succeeded", "Revision", "B"),
		exec("r1", "Fleet", "lab", "Phase", "succeeded"),
	}}
	got, _, err := (&Temporal{Client: c}).List(context.Background(), Filter{Fleet: "lab", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d rollouts, want 2", len(got))
	}
	for i, want := range []Summary{
		{ID: "rollout-lab:r2", Fleet: "lab", Revision: "B", Phase: workflows.PhaseSucceeded, State: "completed"},
		{ID: "rollout-lab:r1", Fleet: "lab", Revision: "", Phase: workflows.PhaseSucceeded, State: "completed"},
	} {
		g := got[i]
		if g.ID != want.ID || g.Fleet != want.Fleet || g.Revision != want.Revision || g.Phase != want.Phase || g.State != want.State {
			t.Errorf("rollout %d = %s %s rev %q %s/%s, want %s %s rev %q %s/%s", i,
				g.ID, g.Fleet, g.Revision, g.State, g.Phase, want.ID, want.Fleet, want.Revision, want.State, want.Phase)
		}
	}
}

// A status the visibility store does not know is a 400 about the status
// filter. Temporal 1.29 (the one `make dev` runs) refuses 'Paused', which
// the API offers, and the refusal named no field and blamed the page
// token as much as the filter.
func TestTemporalListStatusTemporalDoesNotKnow(t *testing.T) {
	c := &fakeClient{listErr: serviceerror.NewInvalidArgument("invalid query: invalid expression: invalid ExecutionStatus value 'Paused'")}
	ts := newTestServer(t, func(cfg *Config) { cfg.Backend = &Temporal{Client: c} })
	rec := ts.do(t, "GET", "/rollouts?status=paused", "", "Bearer "+token)
	if e := errorBody(t, rec); rec.Code != 400 || e.Field != "status" || !strings.Contains(e.Message, "'Paused'") {
		t.Errorf("status=paused refused by Temporal: %d %+v, want 400 about field status, with Temporal's reason", rec.Code, e)
	}
}

// A list Temporal refuses as an invalid argument (a page token it no
// longer takes, as after its restart) is the client's to fix: a 400 that
// says why, not an internal error.
func TestTemporalListRefusedIsABadRequest(t *testing.T) {
	c := &fakeClient{listErr: serviceerror.NewInvalidArgument("invalid next page token")}
	ts := newTestServer(t, func(cfg *Config) { cfg.Backend = &Temporal{Client: c} })
	rec := ts.do(t, "GET", "/rollouts?fleet=lab", "", "Bearer "+token)
	if e := errorBody(t, rec); rec.Code != 400 || !strings.Contains(e.Message, "invalid next page token") {
		t.Errorf("a list Temporal refused: %d %+v, want 400 with Temporal's reason", rec.Code, e)
	}
}

// A load balancer run's fleet is read from its workflow ID, and it shows
// no phase: only rollouts keep theirs in a search attribute.
func TestTemporalListLoadBalancerRuns(t *testing.T) {
	c := &fakeClient{listed: []*workflowpb.WorkflowExecutionInfo{{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "lbupdate-edge", RunId: "r1"},
		Type:      &commonpb.WorkflowType{Name: "LoadBalancerUpdateWorkflow"},
		Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, StartTime: timestamppb.Now(),
	}}}
	got, _, err := (&Temporal{Client: c}).List(context.Background(), Filter{Kind: LBUpdates, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "lbupdate-edge:r1" || got[0].Fleet != "edge" || got[0].Phase != "" || got[0].State != "running" {
		t.Errorf("listed %+v, want lbupdate-edge:r1 of fleet edge, running, no phase", got)
	}
}

func TestTemporalGetNotFound(t *testing.T) {
	for _, c := range []*fakeClient{
		{describe: serviceerror.NewNotFound("workflow not found")},
		// A run ID Temporal cannot parse: a typo, not the server's fault.
		{describe: serviceerror.NewInvalidArgument("invalid RunId")},
		{info: &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-lab", RunId: "r"}, Type: &commonpb.WorkflowType{Name: "Other"}}},
	} {
		_, err := (&Temporal{Client: c}).Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab", RunID: "r"})
		if dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
			t.Errorf("err = %v, want not found", err)
		}
	}
}

// A rollout paused in Temporal is read through its status query, as a
// running one is: its result, which an ended run's status is read from,
// would be waited for until the run ends.
func TestTemporalGetPausedRun(t *testing.T) {
	c := &fakeClient{
		info:  rolloutInfo(t, enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED, time.Now(), "Fleet", "lab", "Phase", "baking"),
		query: baking(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ro, err := (&Temporal{Client: c}).Get(ctx, rollouts.Run{WorkflowID: "rollout-lab"})
	if err != nil || ro.State != "paused" || len(ro.Steps) != 1 || ro.Failure != "" || ctx.Err() != nil {
		t.Errorf("got %s %s, %d steps, failure %q (%v, ctx %v); want paused with the queried status, at once", ro.State, ro.Phase, len(ro.Steps), ro.Failure, err, ctx.Err())
	}
}

// A signal to a run that has ended is ENOTFOUND, which the API answers
// as a 409 saying so, not a 500.
func TestTemporalSignalEndedRun(t *testing.T) {
	c := &fakeClient{signalErr: serviceerror.NewNotFound("workflow execution already completed")}
	err := (&Temporal{Client: c}).Signal(context.Background(), rollouts.Run{WorkflowID: "rollout-lab", RunID: "r1"}, workflows.SignalAbort, workflows.SignalInput{})
	if dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND {
		t.Errorf("err = %v, want not found", err)
	}
}

// Two starts with one Idempotency-Key that race: the one that loses,
// refused as the fleet's rollout is running, finds that rollout started
// with its key and gets it back, replayed, not a conflict about it.
func TestTemporalStartWithAKeyLosesTheRaceToItself(t *testing.T) {
	in := workflows.RolloutInput{Fleet: "lab", Revision: "B", RequestedBy: "ci"}
	req, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	key, sum := sha256.Sum256([]byte("job-41")), sha256.Sum256(req)
	memo, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"key": hex.EncodeToString(key[:]), "request": hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{
		// When the start looked, the fleet had no rollout.
		describe: serviceerror.NewNotFound("workflow not found"),
		startErr: serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already started", "", "r7"),
		runs: map[string]*workflowpb.WorkflowExecutionInfo{"r7": {
			Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-lab", RunId: "r7"},
			Memo:      &commonpb.Memo{Fields: map[string]*commonpb.Payload{"dnsroll_start_key": memo}},
		}},
	}
	run, replayed, err := (&Temporal{Client: c}).Start(context.Background(), in, "job-41")
	if err != nil || !replayed || run != (rollouts.Run{WorkflowID: "rollout-lab", RunID: "r7"}) {
		t.Errorf("got %+v, replayed %v, %v; want rollout-lab:r7 replayed", run, replayed, err)
	}
}

// A plan that the Plan step refuses is an EINVALID error with the
// refusal's message, which the API answers as a 400 saying why; any other
// failure is the server's.
func TestTemporalPlanRefused(t *testing.T) {
	for _, typ := range activities.NonRetryable {
		c := &fakeClient{err: temporal.NewNonRetryableApplicationError("SOA serial of example.com would go back from 8 to 7", typ, nil)}
		_, _, err := (&Temporal{Client: c}).Plan(context.Background(), workflows.RolloutInput{Fleet: "lab", Revision: "B"})
		if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "would go back from 8 to 7") {
			t.Errorf("%s: err = %v, want invalid with the refusal", typ, err)
		}
	}
	c := &fakeClient{err: temporal.NewApplicationError("worker lost", "Other")}
	if _, _, err := (&Temporal{Client: c}).Plan(context.Background(), workflows.RolloutInput{Fleet: "lab", Revision: "B"}); err == nil || dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		t.Errorf("another failure: err = %v, want one that is not invalid", err)
	}
}

func TestListQuery(t *testing.T) {
	got := ListQuery(Filter{Fleet: "lab", State: "timed-out", Phase: workflows.PhaseAborted})
	want := "WorkflowType = 'RolloutWorkflow' AND Fleet = 'lab' AND ExecutionStatus = 'TimedOut' AND Phase = 'aborted'"
	if got != want {
		t.Errorf("ListQuery = %q, want %q", got, want)
	}
	// A load balancer run's fleet is its workflow ID's: the API sets the
	// Fleet attribute, a run started otherwise may lack it.
	got = ListQuery(Filter{Kind: LBReplacements, Fleet: "lab", State: "running"})
	want = "WorkflowType = 'LoadBalancerReplaceWorkflow' AND WorkflowId = 'lbreplace-lab' AND ExecutionStatus = 'Running'"
	if got != want {
		t.Errorf("ListQuery = %q, want %q", got, want)
	}
	for _, s := range States {
		if queryStates[s] == "" {
			t.Errorf("state %s has no visibility name", s)
		}
	}
}

// Load balancer runs start one per fleet under their own workflow ID and
// type, and read through the status query while they run, their result
// once they succeed.
// A load balancer run's status says which of its steps are being retried,
// and why the last attempt failed, as a rollout's does: before, a step
// that failed attempt after attempt showed as running, 0 attempts.
func TestTemporalLoadBalancerRunsShowRetries(t *testing.T) {
	retried := &workflowpb.PendingActivityInfo{
		ActivityType: &commonpb.ActivityType{Name: "CreateLoadBalancer"}, Attempt: 9,
		State:       enumspb.PENDING_ACTIVITY_STATE_SCHEDULED,
		LastFailure: &failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "[429] Too Many Requests"}},
	}
	for _, k := range []Kind{LBReplacements, LBUpdates} {
		t.Run(k.Noun, func(t *testing.T) {
			c := &fakeClient{
				info: &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: k.ID("lab"), RunId: "r1"},
					Type: &commonpb.WorkflowType{Name: k.Type}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING},
				query:   &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseCreatingNewLBs}},
				pending: []*workflowpb.PendingActivityInfo{retried},
			}
			var st workflows.LBReplaceStatus
			if _, _, err := (&Temporal{Client: c}).Read(context.Background(), k, rollouts.Run{WorkflowID: k.ID("lab")}, &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Retrying) != 1 || st.Retrying[0].Activity != "CreateLoadBalancer" || st.Retrying[0].Attempt != 9 || st.Retrying[0].LastError != "[429] Too Many Requests" {
				t.Errorf("retrying = %+v, want CreateLoadBalancer at attempt 9 after a 429", st.Retrying)
			}
		})
	}
}

// A long step is not silent: the status carries the latest progress of a
// step on its first attempt (the Ansible task a provisioning runs), with
// when it was reported; a step waiting for its first attempt is not at
// work, whatever details it carries.
func TestTemporalShowsALongStepsProgress(t *testing.T) {
	details, err := converter.GetDefaultDataConverter().ToPayloads("ansible-playbook nameserver.yml: nameserver : Install BIND packages")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	c := &fakeClient{
		info: &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-lab", RunId: "r1"},
			Type: &commonpb.WorkflowType{Name: "RolloutWorkflow"}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING},
		query: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseProvisioning}},
		pending: []*workflowpb.PendingActivityInfo{
			{ActivityType: &commonpb.ActivityType{Name: "ProvisionNameservers"}, Attempt: 1, State: enumspb.PENDING_ACTIVITY_STATE_STARTED,
				HeartbeatDetails: details, LastHeartbeatTime: timestamppb.New(at)},
			{ActivityType: &commonpb.ActivityType{Name: "VerifyGreen"}, Attempt: 1, State: enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, HeartbeatDetails: details},
		},
	}
	ro, err := (&Temporal{Client: c}).Get(context.Background(), rollouts.Run{WorkflowID: "rollout-lab"})
	if err != nil {
		t.Fatal(err)
	}
	want := []workflows.Working{{Activity: "ProvisionNameservers", Progress: "ansible-playbook nameserver.yml: nameserver : Install BIND packages", At: at}}
	if len(ro.Working) != 1 || ro.Working[0] != want[0] || len(ro.Retrying) != 0 {
		t.Errorf("working %+v, retrying %+v; want %+v and no retries", ro.Working, ro.Retrying, want)
	}
}

func TestTemporalLoadBalancerRuns(t *testing.T) {
	ctx := context.Background()
	c := &fakeClient{}
	run, err := (&Temporal{Client: c}).StartWorkflow(ctx, LBReplacements, "lab", workflows.LBReplaceInput{Fleet: "lab"})
	if err != nil || run.WorkflowID != "lbreplace-lab" || c.started[0] != "LoadBalancerReplaceWorkflow lbreplace-lab dnsroll true" {
		t.Errorf("start: %+v, %v, %q", run, err, c.started)
	}
	c.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "r0")
	if _, err := (&Temporal{Client: c}).StartWorkflow(ctx, LBUpdates, "lab", nil); dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.Contains(err.Error(), "lbupdate-lab run r0") {
		t.Errorf("second start: %v, want a conflict naming lbupdate-lab run r0", err)
	}

	info := func(typ string, status enumspb.WorkflowExecutionStatus) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: "lbreplace-lab", RunId: "r1"}, Type: &commonpb.WorkflowType{Name: typ}, Status: status}
	}
	for _, tt := range []struct {
		name      string
		client    *fakeClient
		wantState string
		wantPhase workflows.Phase
		wantErr   string
	}{
		{"running, queried", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING), query: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseDraining}}}, "running", workflows.PhaseDraining, ""},
		{"succeeded, from the result", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED), result: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseSucceeded}}}, "completed", workflows.PhaseSucceeded, ""},
		{"failed, queried", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED), err: errors.New("x"), query: &workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseRolledBack}}}, "failed", workflows.PhaseRolledBack, ""},
		{"running, no worker", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING)}, "", "", "is a worker running on task queue dnsroll?"},
		// An ended run's failure carries its status: no worker needed.
		{"failed, no worker", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED),
			err: temporal.NewNonRetryableApplicationError("x", "ReplaceFailed", nil, workflows.LBReplaceStatus{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseRolledBack}})},
			"failed", workflows.PhaseRolledBack, ""},
		// One from before the failure carried it still needs a worker, and
		// the error says the run has ended, not that it is running.
		{"failed without its status, no worker", &fakeClient{info: info("LoadBalancerReplaceWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED), err: errors.New("x")},
			"", "", "Temporal records it as failed"},
		{"a rollout is not a replacement", &fakeClient{info: info("RolloutWorkflow", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING)}, "", "", "no load balancer replacement lbreplace-lab"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var st workflows.LBReplaceStatus
			run, state, err := (&Temporal{Client: tt.client, QueryTimeout: 20 * time.Millisecond}).Read(ctx, LBReplacements, rollouts.Run{WorkflowID: "lbreplace-lab"}, &st)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || run.RunID != "r1" || state != tt.wantState || st.Phase != tt.wantPhase || st.Fleet != "lab" {
				t.Errorf("got %+v %s %s/%s (%v), want %s/%s", run, st.Fleet, state, st.Phase, err, tt.wantState, tt.wantPhase)
			}
		})
	}
}
