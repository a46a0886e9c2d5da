package rollouts

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/workflows"
)

// Input reads the input a rollout was started with, from its history.
func Input(ctx context.Context, c client.Client, r Run) (workflows.RolloutInput, error) {
	var in workflows.RolloutInput
	iter := c.GetWorkflowHistory(ctx, r.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !iter.HasNext() {
		return in, dnsroll.Errorf(dnsroll.ENOTFOUND, "rollout %s %s not found", r.WorkflowID, r.RunID)
	}
	ev, err := iter.Next()
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
// fleet has a rollout running, or when r is a cleanup-only run that a
// later run of the fleet followed (cleanupIsLatest).
func Retry(ctx context.Context, c client.Client, r Run) (Run, workflows.RolloutInput, error) {
	in, err := Input(ctx, c, r)
	if err != nil {
		return Run{}, in, err
	}
	if in.CleanUp != nil {
		if err := cleanupIsLatest(ctx, c, r, in.CleanUp); err != nil {
			return Run{}, in, err
		}
	}
	in.LiveBundle, in.LiveUnknown = "", ""
	run, err := Start(ctx, c, in)
	return run, in, err
}

// cleanupIsLatest refuses to retry r, a run that cleaned up after
// another, unless it is still the fleet's latest run. The cleanup points
// the load balancers at the blue servers it was given before it checks
// that they answer, and a later rollout may have deleted them: the retry
// would then take the fleet down.
func cleanupIsLatest(ctx context.Context, c client.Client, r Run, req *workflows.CleanupRequest) error {
	if r.RunID == "" {
		return nil
	}
	desc, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, "")
	if err != nil {
		return fmt.Errorf("describe %s: %w", r.WorkflowID, err)
	}
	latest := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if latest == r.RunID {
		return nil
	}
	return dnsroll.Errorf(dnsroll.ECONFLICT, "cannot retry %s:%s: it cleaned up after %s, pointing the load balancers at the blue servers that run recorded, "+
		"but the fleet's later run %s:%s may have deleted them, and the retry would take the fleet down; start a new rollout instead",
		r.WorkflowID, r.RunID, req.From, r.WorkflowID, latest)
}
