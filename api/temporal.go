package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// Temporal is the Backend on a Temporal client.
type Temporal struct {
	Client    client.Client
	Namespace string
	// QueryTimeout bounds the status query (default defaultQueryTimeout).
	// When no worker answers in time, a rollout is shown from what Temporal
	// itself records (fleet, phase, times, failure) without its steps.
	QueryTimeout time.Duration
}

var _ Backend = (*Temporal)(nil)

// Start implements Backend.
func (t *Temporal) Start(ctx context.Context, in workflows.RolloutInput, key string) (rollouts.Run, bool, error) {
	return rollouts.StartOnce(ctx, t.Client, in, key)
}

// Replayed implements Backend.
func (t *Temporal) Replayed(ctx context.Context, in workflows.RolloutInput, key string) (rollouts.Run, bool, error) {
	return rollouts.Replayed(ctx, t.Client, in, key)
}

// Retry implements Backend.
func (t *Temporal) Retry(ctx context.Context, run rollouts.Run) (rollouts.Run, workflows.RolloutInput, error) {
	return rollouts.Retry(ctx, t.Client, run)
}

// Input implements Backend.
func (t *Temporal) Input(ctx context.Context, run rollouts.Run) (workflows.RolloutInput, error) {
	return rollouts.Input(ctx, t.Client, run)
}

// Signal implements Backend.
func (t *Temporal) Signal(ctx context.Context, run rollouts.Run, name string, in workflows.SignalInput) error {
	return rollouts.Signal(ctx, t.Client, run, name, in)
}

// Plan implements Backend.
func (t *Temporal) Plan(ctx context.Context, in workflows.RolloutInput) (workflows.PlanReport, rollouts.Run, error) {
	return rollouts.Plan(ctx, t.Client, in)
}

// Health implements Backend.
func (t *Temporal) Health(ctx context.Context) error {
	_, err := t.Client.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// Get implements Backend. A running rollout is read through its status
// query; a succeeded one from its result; one that failed from the status
// its error carries, else by querying its replayed history.
func (t *Temporal) Get(ctx context.Context, run rollouts.Run) (Rollout, error) {
	info, err := t.describe(ctx, Rollouts, run)
	if err != nil {
		return Rollout{}, err
	}
	run = rollouts.Run{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId()}
	st, unanswered := t.status(ctx, run, info)
	return Rollout{
		ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID,
		State: stateName(info.GetStatus()), Status: st, unanswered: unanswered,
	}, nil
}

// describe reads what Temporal records of run, a run of k's workflow:
// ENOTFOUND when there is none.
func (t *Temporal) describe(ctx context.Context, k Kind, run rollouts.Run) (*workflowpb.WorkflowExecutionInfo, error) {
	d, err := t.Client.DescribeWorkflowExecution(ctx, run.WorkflowID, run.RunID)
	var nf *serviceerror.NotFound
	var bad *serviceerror.InvalidArgument
	if errors.As(err, &nf) || errors.As(err, &bad) {
		// Temporal calls a run ID it cannot parse an invalid argument.
		return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "no %s %s", k.Noun, RolloutID(run))
	}
	if err != nil {
		return nil, fmt.Errorf("describe %s %s: %w", k.Noun, RolloutID(run), err)
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != k.Type {
		return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "no %s %s", k.Noun, RolloutID(run))
	}
	return info, nil
}

// Read implements Backend: a completed run's status is its result; any
// other run's is its status query's answer.
func (t *Temporal) Read(ctx context.Context, k Kind, run rollouts.Run, status any) (rollouts.Run, string, error) {
	info, err := t.describe(ctx, k, run)
	if err != nil {
		return run, "", err
	}
	run = rollouts.Run{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId()}
	state := stateName(info.GetStatus())
	if status == nil {
		return run, state, nil
	}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED:
		// Open: its result would be waited for.
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		if t.Client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, status) == nil {
			return run, state, nil
		}
	default:
		// A run that failed carries its status in its failure's details.
		werr := t.Client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(werr, &app) && app.HasDetails() && app.Details(status) == nil {
			return run, state, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.queryTimeout())
	defer cancel()
	v, err := t.Client.QueryWorkflow(ctx, run.WorkflowID, run.RunID, workflows.QueryStatus)
	if err == nil {
		err = v.Get(status)
	}
	if err != nil {
		return run, state, noWorker(k, run, state, err)
	}
	if s, ok := status.(interface{ Common() *workflows.Run }); ok && info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		s.Common().Retrying, s.Common().Working = rollouts.Pending(ctx, t.Client, run)
	}
	return run, state, nil
}

// codeUnavailable is the error code of a run that no worker answers for,
// codeTimeout of a plan that did not finish in time, and codeCanceled of
// a request whose client hung up (statusClientClosed).
const (
	codeUnavailable = "unavailable"
	codeTimeout     = "timeout"
	codeCanceled    = "canceled"
)

// noWorker is a 503 for a run whose status query went unanswered: Temporal
// has the run, but only a worker can say what it is doing, or, for a run
// that ended before its failure carried its status, what it did. A signal
// still reaches a running one, since Temporal keeps it until a worker
// takes the run.
func noWorker(k Kind, run rollouts.Run, state string, err error) *httpError {
	then := "and a signal sent now waits for a worker"
	if !Open(state) {
		then = "and only a worker can read its status from its history"
	}
	return errorf(http.StatusServiceUnavailable, codeUnavailable,
		"no worker answered the status query of %s %s: is a worker running on task queue %s? Temporal records it as %s, %s (%v)",
		k.Noun, RolloutID(run), workflows.TaskQueue, state, then, err)
}

// LaterChange implements Backend with rollouts.LaterChange.
func (t *Temporal) LaterChange(ctx context.Context, run rollouts.Run) (rollouts.Run, string, error) {
	later, status, err := rollouts.LaterChange(ctx, t.Client, run)
	if err != nil || later.RunID == "" {
		return later, "", err
	}
	return later, stateName(status), nil
}

// StartWorkflow implements Backend: one run of k per fleet, tagged with
// the Fleet search attribute.
func (t *Temporal) StartWorkflow(ctx context.Context, k Kind, fleet string, in any) (rollouts.Run, error) {
	opts := client.StartWorkflowOptions{
		ID: k.ID(fleet), TaskQueue: workflows.TaskQueue, WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.FleetAttr.ValueSet(fleet)),
		StaticSummary:         k.Noun + " of " + fleet,
	}
	run, err := t.Client.ExecuteWorkflow(ctx, opts, k.Type, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return rollouts.Run{}, dnsroll.Errorf(dnsroll.ECONFLICT, "fleet %s already has a running %s: workflow %s run %s", fleet, k.Noun, opts.ID, started.RunId)
	}
	if err != nil {
		return rollouts.Run{}, fmt.Errorf("start %s: %w", k.Noun, err)
	}
	return rollouts.Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// status reads run's status; for an open run whose status query no
// worker answered, it is what Temporal recorded, and unanswered says so.
func (t *Temporal) status(ctx context.Context, run rollouts.Run, info *workflowpb.WorkflowExecutionInfo) (_ workflows.Status, unanswered error) {
	known := recorded(info)
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED:
		st, err := t.query(ctx, run)
		if err == nil {
			return st, nil
		}
		return known, noWorker(Rollouts, run, stateName(info.GetStatus()), err)
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var st workflows.Status
		if err := t.Client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, &st); err == nil {
			return st, nil
		}
		return known, nil
	}
	werr := t.Client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil)
	var app *temporal.ApplicationError
	if errors.As(werr, &app) && app.HasDetails() {
		var st workflows.Status
		if app.Details(&st) == nil && st.Fleet != "" {
			return st, nil
		}
	}
	st, err := t.query(ctx, run)
	if err != nil {
		st = known
	}
	if st.Failure == "" && werr != nil {
		st.Failure = rollouts.Outcome(werr).Error()
	}
	return st, nil
}

func (t *Temporal) query(ctx context.Context, run rollouts.Run) (workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, t.queryTimeout())
	defer cancel()
	return rollouts.Status(ctx, t.Client, run)
}

// defaultQueryTimeout waits out a query held on a worker's sticky queue
// (workflows.StickyScheduleToStartTimeout) with room to spare, on a busy
// worker too; only a run no worker answers takes this long. That wait is
// a long poll, not time lost: a worker that comes back meanwhile takes the
// waiting query at once (TestStatusQueryIsAnsweredByAWorkerThatComesBack),
// so a shorter timeout would show it back no sooner.
const defaultQueryTimeout = 10 * time.Second

func (t *Temporal) queryTimeout() time.Duration {
	if t.QueryTimeout <= 0 {
		return defaultQueryTimeout
	}
	return t.QueryTimeout
}
