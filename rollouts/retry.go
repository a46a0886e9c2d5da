package rollouts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/workflows"
)

// Input reads the input a rollout was started with, from its history.
func Input(ctx context.Context, c client.Client, r Run) (workflows.RolloutInput, error) {
	var in workflows.RolloutInput
	iter := c.GetWorkflowHistory(ctx, r.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var ev *historypb.HistoryEvent
	var err error
	if iter.HasNext() {
		ev, err = iter.Next()
	}
	// Temporal answers an unknown run with a NotFound from the history's
	// first page, which HasNext holds for Next to return.
	var nf *serviceerror.NotFound
	if ev == nil && (err == nil || errors.As(err, &nf)) {
		return in, dnsroll.Errorf(dnsroll.ENOTFOUND, "rollout %s %s not found", r.WorkflowID, r.RunID)
	}
	if err != nil {
		return in, fmt.Errorf("history of %s: %w", r.WorkflowID, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return in, fmt.Errorf("history of %s does not start with the workflow's start", r.WorkflowID)
	}
	err = converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in)
	return in, err
}

// Retry starts a new rollout with the input of an earlier one, typically
// one that failed, and returns the new run and that input. Activities are
// idempotent, so whatever the earlier run left behind is found and reused,
// never duplicated. The live revision is looked up again, not taken from
// the earlier input: another rollout may have succeeded since, and the
// approval gate's diff must be against what is live now. The errors are
// Input's and Start's: ENOTFOUND for an unknown run, ECONFLICT when the
// fleet has a rollout running, when r rolled out a load balancer
// replacement's zone records (HeldBy), or when r is a cleanup-only run
// that a later run of the fleet followed (noLaterChange).
func Retry(ctx context.Context, c client.Client, r Run) (Run, workflows.RolloutInput, error) {
	in, err := Input(ctx, c, r)
	if err != nil {
		return Run{}, in, err
	}
	if in.HeldBy != "" {
		// The request is sound; the run's place in a replacement forbids it.
		return Run{}, in, dnsroll.Errorf(dnsroll.ECONFLICT, "rollout %s rolled out the zone records of load balancer replacement %s, whose new load balancers it switched too: "+
			"it cannot run again on its own; send zone-revision to that replacement while it waits for one, or start a new rollout", r.WorkflowID, in.HeldBy)
	}
	if in.CleanUp != nil {
		if err := noLaterChange(ctx, c, r, in.CleanUp); err != nil {
			return Run{}, in, err
		}
	}
	in.LiveBundle, in.LiveUnknown = "", ""
	run, err := Start(ctx, c, in)
	return run, in, err
}

// noLaterChange refuses to retry r, a run that cleaned up after
// another, unless no later run of the fleet may have changed it. The
// cleanup points the load balancers at the blue servers it was given
// before it checks that they answer, and a later rollout may have deleted
// them: the retry would then take the fleet down.
func noLaterChange(ctx context.Context, c client.Client, r Run, req *workflows.CleanupRequest) error {
	if r.RunID == "" {
		return nil
	}
	later, _, err := LaterChange(ctx, c, r)
	if err != nil || later.RunID == "" {
		return err
	}
	return dnsroll.Errorf(dnsroll.ECONFLICT, "cannot retry %s:%s: it cleaned up after %s, pointing the load balancers at the blue servers that run recorded, "+
		"but the fleet's later run %s:%s may have deleted them, and the retry would take the fleet down; start a new rollout instead",
		r.WorkflowID, r.RunID, req.From, r.WorkflowID, later.RunID)
}

// LaterChange is the newest run of r's workflow, started after r, that
// may have changed the fleet, and its status; an empty Run when there is
// none. A run refused because its fleet was busy (failure type
// workflows.ErrTypeFleetBusy), or that failed at its plan, changed
// nothing and is passed over (changedNothing). The
// latest run is read from Temporal's record; the runs between r and it
// from its visibility store, which lists a run a moment after it starts:
// a rollout between two others is minutes old by then.
func LaterChange(ctx context.Context, c client.Client, r Run) (Run, enumspb.WorkflowExecutionStatus, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, "")
	if err != nil {
		return Run{}, 0, fmt.Errorf("describe %s: %w", r.WorkflowID, err)
	}
	latest := desc.GetWorkflowExecutionInfo()
	if latest.GetExecution().GetRunId() == r.RunID {
		return Run{}, 0, nil
	}
	mine, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		return Run{}, 0, fmt.Errorf("describe %s:%s: %w", r.WorkflowID, r.RunID, err)
	}
	since := mine.GetWorkflowExecutionInfo().GetStartTime().AsTime()
	runs := []*workflowpb.WorkflowExecutionInfo{latest}
	// The workflow ID is one Temporal has just described, made of a valid
	// fleet name: no quote to escape.
	req := &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s' AND StartTime > '%s'",
		r.WorkflowID, since.UTC().Format(time.RFC3339Nano))}
	for {
		resp, err := c.ListWorkflow(ctx, req)
		if err != nil {
			return Run{}, 0, fmt.Errorf("listing the runs of %s after %s: %w", r.WorkflowID, r.RunID, err)
		}
		runs = append(runs, resp.GetExecutions()...)
		if len(resp.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = resp.GetNextPageToken()
	}
	slices.SortStableFunc(runs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return b.GetStartTime().AsTime().Compare(a.GetStartTime().AsTime())
	})
	// The latest run comes twice when the visibility store lists it too,
	// maybe still as running though it has ended: Describe's answer, the
	// first, is the one to trust.
	seen := map[string]bool{r.RunID: true}
	for _, info := range runs {
		run := Run{WorkflowID: r.WorkflowID, RunID: info.GetExecution().GetRunId()}
		if seen[run.RunID] {
			continue
		}
		seen[run.RunID] = true
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED || !changedNothing(ctx, c, run) {
			return run, info.GetStatus(), nil
		}
	}
	return Run{}, 0, nil
}

// changedNothing tells whether run, which failed, changed nothing: it was
// refused because its fleet was busy, or it ended before any step past
// its plan, every step it ran having begun in phase planning, as a
// rollout that Plan refused (the way every rollout ends while a load
// balancer answers from the green a cleanup-failed run left, whose refusal
// says to run `dnsroll rollout cleanup`). A run whose failure or status
// cannot be read is taken to have changed the fleet.
func changedNothing(ctx context.Context, c client.Client, run Run) bool {
	err := c.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil)
	var app *temporal.ApplicationError
	switch {
	case !errors.As(err, &app):
		return false
	case app.Type() == workflows.ErrTypeFleetBusy:
		return true
	}
	var st workflows.Status
	if !app.HasDetails() || app.Details(&st) != nil || !st.Phase.Done() {
		return false
	}
	for _, step := range st.Steps {
		if step == nil || step.Phase != workflows.PhasePlanning {
			return false
		}
	}
	return true
}
