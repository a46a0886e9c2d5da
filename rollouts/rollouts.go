// Package rollouts is the client side of rollouts, shared by the CLI, the
// API and the lab: start one (refusing a second per fleet), read its status,
// signal it, and follow it to the end.
package rollouts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

// Run identifies one rollout.
type Run struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// Start starts a rollout of in.Fleet. If the fleet already has a running
// rollout it returns an ECONFLICT error naming that rollout; it never
// attaches to it.
//
// It looks up the fleet's live revision for the rollout to compare with
// (RolloutInput.LiveBundle), unless in names one; a lookup that fails
// does not stop the rollout, which then says the comparison is unknown.
func Start(ctx context.Context, c client.Client, in workflows.RolloutInput) (Run, error) {
	run, err := start(ctx, c, in, nil)
	return run, startErr(in, err)
}

// start starts a rollout of in with memo, and returns Temporal's error.
func start(ctx context.Context, c client.Client, in workflows.RolloutInput, memo map[string]any) (Run, error) {
	if in.CleanUp == nil {
		in = withLive(ctx, c, in)
	}
	opts := startOptions(in)
	opts.Memo = memo
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.RolloutWorkflow, in)
	if err != nil {
		return Run{}, err
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// startErr is a start's error as Start returns it: ECONFLICT naming the
// fleet's running rollout.
func startErr(in workflows.RolloutInput, err error) error {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return dnsroll.Errorf(dnsroll.ECONFLICT, "fleet %s already has a running rollout: workflow %s run %s", in.Fleet, workflows.WorkflowID(in.Fleet), started.RunId)
	}
	if err != nil {
		return fmt.Errorf("start rollout: %w", err)
	}
	return nil
}

// withLive is in with the fleet's live revision to compare with
// (RolloutInput.LiveBundle) looked up, unless in names one; a lookup that
// fails says why instead (LiveUnknown).
func withLive(ctx context.Context, c client.Client, in workflows.RolloutInput) workflows.RolloutInput {
	if in.LiveBundle == "" && in.LiveUnknown == "" {
		in.LiveBundle, in.LiveUnknown = Live(ctx, c, in.Fleet)
	}
	return in
}

// Live is the bundle of the fleet's last rollout that succeeded
// (LastSucceeded): the live revision a rollout compares with. When the
// lookup cannot tell, why says so instead; both are empty when no rollout
// of the fleet has succeeded.
func Live(ctx context.Context, c client.Client, fleet string) (bundle, why string) {
	live, ok, err := LastSucceeded(ctx, c, fleet)
	switch {
	case err != nil:
		return "", err.Error()
	case ok && live.Bundle == "":
		return "", "the fleet's last successful rollout recorded no bundle"
	}
	return live.Bundle, ""
}

// planExpiry is how long a plan may take before Temporal ends it: its
// Plan step's own deadline (5 minutes) with room to spare.
const planExpiry = 10 * time.Minute

// Plan runs a dry run of a rollout of in (workflows.PlanWorkflow) on a
// worker and waits for its report. A plan that a rollout's Plan step
// would refuse returns that refusal as an EINVALID error.
func Plan(ctx context.Context, c client.Client, in workflows.RolloutInput) (workflows.PlanReport, Run, error) {
	in = withLive(ctx, c, in)
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	run, err := c.ExecuteWorkflow(ctx, planOptions(in, hex.EncodeToString(suffix)), workflows.PlanWorkflow, in)
	if err != nil {
		return workflows.PlanReport{}, Run{}, fmt.Errorf("start plan: %w", err)
	}
	r := Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	var rep workflows.PlanReport
	if err := run.Get(ctx, &rep); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			endAbandonedPlan(ctx, c, r)
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && slices.Contains(activities.NonRetryable, app.Type()) {
			return rep, r, dnsroll.Errorf(dnsroll.EINVALID, "%s", app.Message())
		}
		return rep, r, fmt.Errorf("plan %s: %w", r.WorkflowID, err)
	}
	return rep, r, nil
}

// endAbandonedPlan terminates plan r, whose caller went away (a Ctrl-C
// that hung up on POST /plans): no one will read its report, and it
// would otherwise run, or wait for a worker, until planExpiry. A plan
// creates, changes and signals nothing (its Plan step is a dry run), so
// ending it anywhere leaves nothing behind; terminating rather than
// cancelling ends it without a worker, and adds no command to its
// history. A plan whose wait ran out (ctx's deadline) is not ended here:
// the API's 504 points at it, and it may still finish.
func endAbandonedPlan(ctx context.Context, c client.Client, r Run) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// At worst it runs on until planExpiry, as it did before.
	_ = c.TerminateWorkflow(ctx, r.WorkflowID, r.RunID, "the plan's caller went away before it finished; a plan creates nothing")
}

// LastSucceeded is the status of the fleet's most recently completed
// rollout that succeeded: what is live. Rollouts complete when they
// succeed, and so do cleanup-only runs (phase cleaned-up), which put back
// what was live and are skipped. ok is false when no rollout of the fleet
// has succeeded. It costs a visibility list, which lists closed runs
// latest first, and one read of a result.
func LastSucceeded(ctx context.Context, c client.Client, fleet string) (st workflows.Status, ok bool, err error) {
	if !config.ValidFleetName(fleet) {
		return st, false, fmt.Errorf("fleet name %q is not one a visibility query can name", fleet)
	}
	req := &workflowservice.ListWorkflowExecutionsRequest{PageSize: 10, Query: fmt.Sprintf(
		"WorkflowType = 'RolloutWorkflow' AND %s = '%s' AND ExecutionStatus = 'Completed'", workflows.FleetAttr.GetName(), fleet)}
	for {
		resp, err := c.ListWorkflow(ctx, req)
		if err != nil {
			return st, false, fmt.Errorf("looking up the live revision of fleet %s: %w", fleet, err)
		}
		for _, info := range resp.GetExecutions() {
			if phaseAttr(info.GetSearchAttributes()) == string(workflows.PhaseCleanedUp) {
				continue
			}
			e := info.GetExecution()
			st = workflows.Status{}
			if err := c.GetWorkflow(ctx, e.GetWorkflowId(), e.GetRunId()).Get(ctx, &st); err != nil {
				return st, false, fmt.Errorf("reading rollout %s %s, the live revision of fleet %s: %w", e.GetWorkflowId(), e.GetRunId(), fleet, err)
			}
			if st.Phase != workflows.PhaseCleanedUp {
				return st, true, nil
			}
		}
		if len(resp.GetNextPageToken()) == 0 {
			return workflows.Status{}, false, nil
		}
		req.NextPageToken = resp.GetNextPageToken()
	}
}

// phaseAttr is the Phase search attribute a listed run carries, if any.
func phaseAttr(attrs *commonpb.SearchAttributes) string {
	p, ok := attrs.GetIndexedFields()[workflows.PhaseAttr.GetName()]
	if !ok {
		return ""
	}
	var s string
	if converter.GetDefaultDataConverter().FromPayload(p, &s) != nil {
		return ""
	}
	return s
}

// startOptions start one rollout per fleet, with the search attributes
// known at start (the workflow sets Phase as it goes).
func startOptions(in workflows.RolloutInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       workflows.WorkflowID(in.Fleet),
		TaskQueue:                                workflows.TaskQueue,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    workflows.RolloutAttributes(in),
		// The Web UI shows it at the top of the rollout's page.
		StaticSummary: workflows.RolloutSummary(in),
	}
}

// planOptions start a plan of in, one of many a fleet may have (id makes
// its workflow ID unique), tagged as a rollout is, so that a filter on
// the fleet in the Web UI finds it too.
func planOptions(in workflows.RolloutInput, id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                    workflows.PlanWorkflowID(in.Fleet, id),
		TaskQueue:             workflows.TaskQueue,
		TypedSearchAttributes: workflows.RolloutAttributes(in),
		StaticSummary:         "plan: " + strings.TrimPrefix(workflows.RolloutSummary(in), "roll out "),
		// A plan no worker took is of no use later: it ends rather than
		// waits in Temporal for one.
		WorkflowExecutionTimeout: planExpiry,
	}
}

// Status queries a rollout's status; it works for finished rollouts too.
func Status(ctx context.Context, c client.Client, r Run) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, r.WorkflowID, r.RunID, workflows.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, dnsroll.Errorf(dnsroll.ENOTFOUND, "rollout %s %s not found", r.WorkflowID, r.RunID)
		}
		return st, fmt.Errorf("query %s: %w", r.WorkflowID, err)
	}
	if err := v.Get(&st); err != nil {
		return st, err
	}
	st.Retrying, st.Working = Pending(ctx, c, r)
	return st, nil
}

// Pending reads the rollout's pending steps from Temporal's record of its
// pending activities: those being retried, and the latest progress of
// those on their first attempt. It is best effort: a status without them
// is still the status.
func Pending(ctx context.Context, c client.Client, r Run) (retrying []workflows.Retry, working []workflows.Working) {
	d, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		return nil, nil
	}
	for _, p := range d.GetPendingActivities() {
		var progress string
		if h := p.GetHeartbeatDetails(); h != nil {
			var msg string
			if converter.GetDefaultDataConverter().FromPayloads(h, &msg) == nil {
				progress = msg
			}
		}
		if p.GetAttempt() < 2 || p.GetLastFailure() == nil {
			if progress != "" && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				w := workflows.Working{Activity: p.GetActivityType().GetName(), Progress: progress}
				if t := p.GetLastHeartbeatTime(); t != nil {
					w.At = t.AsTime()
				}
				working = append(working, w)
			}
			continue
		}
		rt := workflows.Retry{
			Activity:  p.GetActivityType().GetName(),
			Attempt:   p.GetAttempt(),
			LastError: failureMessage(p.GetLastFailure()),
			Progress:  progress,
		}
		if t := p.GetScheduledTime(); t != nil && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
			rt.NextAttemptAt = t.AsTime()
		}
		retrying = append(retrying, rt)
	}
	return retrying, working
}

// failureMessage is the innermost message of a failure: what went wrong,
// without Temporal's wrapping.
func failureMessage(f *failurepb.Failure) string {
	msg := f.GetMessage()
	for c := f.GetCause(); c != nil; c = c.GetCause() {
		if c.GetMessage() != "" {
			msg = c.GetMessage()
		}
	}
	if f.GetTimeoutFailureInfo() != nil && f.GetCause() == nil {
		msg = "timed out (" + workflows.TimeoutName(f.GetTimeoutFailureInfo().GetTimeoutType()) + ")"
	}
	return msg
}

// Signal sends abort or rollback to a rollout.
func Signal(ctx context.Context, c client.Client, r Run, name string, in workflows.SignalInput) error {
	err := c.SignalWorkflow(ctx, r.WorkflowID, r.RunID, name, in)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return dnsroll.Errorf(dnsroll.ENOTFOUND, "no running rollout %s %s", r.WorkflowID, r.RunID)
	}
	return err
}

// Wait blocks until the rollout ends. It calls onChange with every new
// status while it waits (polling the status query), and returns the final
// status and the rollout's error (nil on success).
func Wait(ctx context.Context, c client.Client, r Run, poll time.Duration, onChange func(workflows.Status)) (workflows.Status, error) {
	done := make(chan error, 1)
	go func() {
		done <- c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, nil)
	}()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			st, qerr := Status(ctx, c, r)
			if qerr == nil && onChange != nil {
				onChange(st)
			}
			return st, Outcome(err)
		case <-tick.C:
			if st, err := Status(ctx, c, r); err == nil && onChange != nil {
				onChange(st)
			}
		case <-ctx.Done():
			return workflows.Status{}, ctx.Err()
		}
	}
}

// Outcome reduces a workflow error to the rollout's own message.
func Outcome(err error) error {
	if err == nil {
		return nil
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return errors.New(app.Message())
	}
	return err
}
