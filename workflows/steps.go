package workflows

import (
	"cmp"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// planOptions bound the Plan step, which runs before the fleet's own step
// settings are known: the defaults of config.Steps, with a short heartbeat
// timeout since Plan heartbeats every few seconds and a dead worker's Plan
// should move on in seconds, not at its deadline.
var planOptions = stepOptions(5*time.Minute, 10*time.Second, time.Second, 30*time.Second, 0)

// options are the fleet's deadline and retries for one step (see
// config.Steps).
func (r *rollout) options(timeout config.Duration) workflow.ActivityOptions {
	s := r.plan.Fleet.Steps
	return stepOptions(timeout.D(), s.HeartbeatTimeout.D(), s.RetryInitialInterval.D(), s.RetryMaximumInterval.D(), s.MaxAttempts)
}

// stepOptions makes deadline the step's deadline across all its attempts:
// an error that a retry may fix (a 5xx, a 429, a timeout, a lost
// connection) is retried with exponential backoff until the deadline
// passes, or maxAttempts (0: no cap) have run; the non-retryable error
// types (invalid input, a rejected config, a 4xx) fail at once. Every step
// heartbeats, so a step on a crashed worker is retried within the
// heartbeat timeout rather than at its deadline.
func stepOptions(deadline, heartbeat, initial, maxInterval time.Duration, maxAttempts int) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		ScheduleToCloseTimeout: deadline,
		StartToCloseTimeout:    deadline,
		HeartbeatTimeout:       heartbeat,
		WaitForCancellation:    true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        initial,
			BackoffCoefficient:     2,
			MaximumInterval:        maxInterval,
			MaximumAttempts:        int32(maxAttempts),
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
}

// cleanupStepFloor is the least time a cleanup step gets, even at
// steps.cleanup_timeout, so that the last round's steps may still run.
const cleanupStepFloor = 5 * time.Second

// cleanupOptions try harder than forward steps: leaving green behind costs
// money and confuses the next rollout, and a switch back to blue that
// gives up leaves a load balancer on servers about to go. During the
// cleanup's rounds a step gets no more than the time left before
// steps.cleanup_timeout (r.cleanupUntil), so that it bounds the cleanup.
// They are undo steps (undoStep).
func (r *rollout) cleanupOptions(ctx workflow.Context) workflow.ActivityOptions {
	o := r.options(r.plan.Fleet.Steps.SwitchTimeout)
	o.ScheduleToCloseTimeout *= 3
	o.RetryPolicy.MaximumAttempts *= 3
	if !r.cleanupUntil.IsZero() {
		within(&o, r.cleanupUntil.Sub(workflow.Now(ctx)))
	}
	return undoStep(ctx, o)
}

// undoStep is o for an undo step: on the undo task queue of ctx's
// workflow (UndoTaskQueue), whose slots forward steps never take, so that
// an undo does not wait out its deadline behind other fleets' forward
// steps. Every undo step's options pass through here. Replay does not
// compare an activity's task queue with history's (the SDK matches a
// scheduled activity by its ID and type alone), so runs that scheduled
// their undo steps on the workflow's own queue replay unchanged.
func undoStep(ctx workflow.Context, o workflow.ActivityOptions) workflow.ActivityOptions {
	o.TaskQueue = UndoTaskQueue(workflow.GetInfo(ctx).TaskQueueName)
	return o
}

// within bounds o's step to left, or cleanupStepFloor at the least.
func within(o *workflow.ActivityOptions, left time.Duration) {
	left = max(left, cleanupStepFloor)
	o.ScheduleToCloseTimeout = min(o.ScheduleToCloseTimeout, left)
	o.StartToCloseTimeout = min(o.StartToCloseTimeout, left)
}

// call is a started step whose result is not yet in.
type call struct {
	step   *Step
	future workflow.Future
	max    int32
}

// begin records a step as running. Activities are begun by start; steps
// the workflow runs itself (the approval gate, a bake, a canary step) call
// it directly, and end when they end.
func (run *Run) begin(ctx workflow.Context, name, target string) *Step {
	s := &Step{Name: name, Target: target, Phase: run.Phase, State: StepRunning, StartedAt: workflow.Now(ctx)}
	run.Steps = append(run.Steps, s)
	return s
}

// end records how step s ended and returns err attributed to it: a
// *stepError, which names the step in messages, unless it succeeded or was
// cancelled.
func (s *Step) end(ctx workflow.Context, err error) error {
	s.EndedAt = workflow.Now(ctx)
	switch {
	case err == nil:
		s.State = StepSucceeded
		return nil
	case temporal.IsCanceledError(err):
		s.State = StepCanceled
		return err
	}
	s.State = StepFailed
	if s.Error == "" {
		s.Error = reason(err)
	}
	return &stepError{step: s, err: err}
}

// start schedules an activity and records it as a running step, one
// that may run beside others: a stop looks among them for a failure not
// yet acted on (alreadyFailed).
func (run *Run) start(ctx workflow.Context, name, target string, opts workflow.ActivityOptions, fn, in any) *call {
	c := run.startAlone(ctx, name, target, opts, fn, in)
	run.started = append(run.started, c)
	return c
}

// startAlone is start for a step waited for at once, whose failure its
// caller acts on as it ends, or passes over (a replacement's parent
// check, asked again): a stop that comes later is not for it.
func (run *Run) startAlone(ctx workflow.Context, name, target string, opts workflow.ActivityOptions, fn, in any) *call {
	s := run.begin(ctx, name, target)
	if opts.Summary == "" {
		// The Web UI shows it beside the activity: the step as the CLI names it.
		opts.Summary = s.label()
	}
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fn, in)
	return &call{step: s, future: f, max: opts.RetryPolicy.MaximumAttempts}
}

// alreadyFailed is the failure of a step that has ended but that the
// workflow has not acted on yet, if any: one of several run at once, all
// of which are waited for before a failure is acted on (waitEach). A
// stop signal that comes meanwhile cuts that wait short, but the step
// failed first, and the outcome is its failure. Steps run alone
// (startAlone) are not among them.
func (run *Run) alreadyFailed(ctx workflow.Context) error {
	for _, c := range run.started {
		if !c.future.IsReady() {
			continue
		}
		if err := c.future.Get(ctx, nil); err != nil && !temporal.IsCanceledError(err) {
			return &stepError{step: c.step, err: err}
		}
	}
	return nil
}

// wait blocks for the step's result and records its outcome.
func (c *call) wait(ctx workflow.Context, out any) error {
	err := c.future.Get(ctx, out)
	if err == nil {
		c.step.Attempts, c.step.Note = resultRecord(out)
	} else if !temporal.IsCanceledError(err) {
		c.step.Attempts = failedAttempts(err, c.max)
	}
	return c.step.end(ctx, err)
}

// stepError is a step's failure together with the step it came from, so a
// message built from the error names the step, the target and the error
// of the same failure, however many steps ran in parallel.
type stepError struct {
	step *Step
	err  error
}

func (e *stepError) Error() string { return e.step.label() + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// label is how messages name a step: "DeleteServer ns1".
func (s *Step) label() string {
	if s.Target != "" {
		return s.Name + " " + s.Target
	}
	return s.Name
}

// unwrapStep returns err without the step it is attributed to, for
// passing on as a cause.
func unwrapStep(err error) error {
	var se *stepError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

// exec runs one activity as one step.
func (run *Run) exec(ctx workflow.Context, name, target string, opts workflow.ActivityOptions, fn, in, out any) error {
	return run.startAlone(ctx, name, target, opts, fn, in).wait(ctx, out)
}

// waitAll waits for every call and returns the first error.
func waitAll(ctx workflow.Context, calls []*call) error {
	return waitEach(ctx, calls, func(int, activities.StepResult) {})
}

// waitEach waits for every call, in order, and hands each result that
// came back to done with the call's index; it returns the first error.
// Fanned-out steps all finish before a failure is acted on.
func waitEach[T any](ctx workflow.Context, calls []*call, done func(i int, res T)) error {
	var first error
	for i, c := range calls {
		var res T
		if err := c.wait(ctx, &res); err != nil {
			first = cmp.Or(first, err)
			continue
		}
		done(i, res)
	}
	return first
}

// neverStartedReason is reason's word for a step no worker started before
// its deadline.
const neverStartedReason = "never started within its deadline: no worker had a free slot (dnsroll worker --max-concurrent-activities) " +
	"or none polled its task queue (undo steps run on dnsroll-undo, which workers from before it do not poll); add workers, or upgrade them all"

// reason is the innermost message of an activity error: what the operator
// needs, without Temporal's wrapping.
func reason(err error) string {
	var timeout *temporal.TimeoutError
	timedOut := errors.As(err, &timeout)
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if timedOut {
			// Retries ran out of time: say so, with the last attempt's error.
			return "gave up at the " + TimeoutName(timeout.TimeoutType()) + "; last error: " + app.Message()
		}
		// A server ends the retries of a step whose next attempt would
		// start past its deadline with the last attempt's error, and says
		// why only in the retry state.
		var act *temporal.ActivityError
		if errors.As(err, &act) && act.RetryState() == enumspb.RETRY_STATE_TIMEOUT {
			return "gave up at the step deadline; last error: " + app.Message()
		}
		return app.Message()
	}
	if timedOut && neverStarted(err, timeout) {
		return neverStartedReason
	}
	if timedOut {
		return "timed out (" + TimeoutName(timeout.TimeoutType()) + ")"
	}
	if temporal.IsCanceledError(err) {
		return "canceled"
	}
	return err.Error()
}

// neverStarted tells whether err, which timed out, is that of a step no
// attempt of which ever started. Temporal reports a deadline that passed
// while the step waited in its task queue as a schedule-to-start timeout
// (steps set none of their own, so it is their deadline), with no last
// failure and no started event; schedule-to-close is taken the same way.
// A step that ran and failed before it has a last failure.
func neverStarted(err error, timeout *temporal.TimeoutError) bool {
	switch timeout.TimeoutType() {
	case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
	default:
		return false
	}
	var act *temporal.ActivityError
	return errors.Unwrap(timeout) == nil && errors.As(err, &act) && act.StartedEventID() == 0
}

// TimeoutName says which deadline a step's timeout of type t is, as its
// error and a retrying step's last error (rollouts.Pending) name it.
func TimeoutName(t enumspb.TimeoutType) string {
	switch t {
	case enumspb.TIMEOUT_TYPE_HEARTBEAT:
		return "no heartbeat"
	case enumspb.TIMEOUT_TYPE_START_TO_CLOSE:
		return "step deadline"
	case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
		return "step deadline"
	}
	return t.String()
}

// failedAttempts reads the attempt number that activities attach to their
// errors; a step that timed out after all its retries used them all.
func failedAttempts(err error, max int32) int32 {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.HasDetails() {
		var n int32
		if app.Details(&n) == nil {
			return n
		}
	}
	var act *temporal.ActivityError
	if errors.As(err, &act) && act.RetryState() == enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED {
		return max
	}
	return 0
}

// resultRecord is what out, an activity's result, puts in its step
// record: the attempt that produced it and the note it leaves.
func resultRecord(out any) (attempt int32, note string) {
	switch v := out.(type) {
	case *activities.Plan:
		return v.Attempt, ""
	case *activities.ServerResult:
		return v.Attempt, ""
	case *activities.ProvisionResult:
		return v.Attempt, ""
	case *activities.VerifyResult:
		return v.Attempt, v.Summary
	case *activities.StepResult:
		return v.Attempt, v.Note
	case *activities.RestoreResult:
		return v.Attempt, v.Note
	}
	return 1, ""
}
