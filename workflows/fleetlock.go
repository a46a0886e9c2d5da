package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// A fleet's rollouts, load balancer updates and load balancer replacements
// all change its load balancers, so no two of them may run at once. Two
// runs of one kind cannot: each kind has one workflow ID per fleet. Across
// kinds, each run first holds the fleet by starting FleetLockWorkflow as a
// child with one ID per fleet. Temporal runs at most one workflow per ID,
// so of two runs that start at the same moment exactly one holds the fleet,
// where the API's look at the other kinds' runs lets both pass. The child
// lives until its parent releases it or closes (parent close policy
// terminate), so a run that is terminated frees the fleet as well.

// FleetLockWorkflowID is the ID of the workflow that holds fleet.
func FleetLockWorkflowID(fleet string) string { return "fleet-lock-" + fleet }

// ErrTypeFleetBusy is the failure of a run that found its fleet held by a
// run of another kind; it changed nothing.
const ErrTypeFleetBusy = "FleetBusy"

// signalRelease ends a FleetLockWorkflow.
const signalRelease = "release"

// versionFleetLock: version 1 holds the fleet; runs started before it did
// not, and replay without it.
const versionFleetLock = "fleet-lock"

// busyRetries are the waits before each further try of a held fleet: a run
// that was terminated frees its hold only once Temporal has applied its
// parent close policy, a moment after it closed.
var busyRetries = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// FleetLockWorkflow holds a fleet for the run that started it, until that
// run releases it or closes. Cancelling it by hand frees the fleet.
func FleetLockWorkflow(ctx workflow.Context) error {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, signalRelease), func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	return nil
}

// fleetHold is a run's hold of its fleet; nil holds nothing.
type fleetHold struct {
	lock workflow.ChildWorkflowFuture
}

// holdFleet holds fleet for this run, or fails with ErrTypeFleetBusy when
// another run holds it. Neither a stop signal nor a cancellation
// interrupts it: it takes moments, and a hold must not be left behind.
func holdFleet(ctx workflow.Context, fleet string) (*fleetHold, error) {
	if fleet == "" || workflow.GetVersion(ctx, versionFleetLock, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil, nil
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	id := FleetLockWorkflowID(fleet)
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_TERMINATE,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         "holds fleet " + fleet + " for its parent: one rollout, load balancer update or replacement at a time",
	})
	for try := 0; ; try++ {
		lock := workflow.ExecuteChildWorkflow(ctx, FleetLockWorkflow)
		err := lock.GetChildWorkflowExecution().Get(ctx, nil)
		switch {
		case err == nil:
			return &fleetHold{lock: lock}, nil
		case !heldByAnother(err):
			return nil, err
		case try == len(busyRetries):
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"fleet %s is busy: another rollout, load balancer update or load balancer replacement of it is running "+
					"(it holds workflow %s, whose parent `temporal workflow describe --workflow-id %s` names); "+
					"this run changed nothing: start it again once that one has ended; if that parent has ended, and no run of its workflow ID is open "+
					"(a run reset from it in the Web UI uses its hold), the hold outlived it: free the fleet with `temporal workflow cancel --workflow-id %s`",
				fleet, id, id, id), ErrTypeFleetBusy, nil)
		}
		_ = workflow.Sleep(ctx, busyRetries[try])
	}
}

// versionHeldCancel: version 1 has a run under another's hold take its own
// when cancelled (cancelHold).
const versionHeldCancel = "held-run-holds-when-cancelled"

// cancelHold is the hold of its fleet that a run under another run's hold
// (RolloutInput.HeldBy) takes once it is cancelled, for its undo: Temporal
// cancels it when that run is terminated, whose hold then ends too, and
// another run started meanwhile would change the load balancers this one
// puts back. The cancellation may come before the undo or during it.
type cancelHold struct {
	// run is the run's context, whose cancellation watch waits for; nil
	// when the run holds its fleet itself.
	run workflow.Context
	// woke is set once the cancellation came and was acted on; taking
	// while the hold is being taken; closed once the run has released
	// what it held.
	woke, taking, closed bool
	hold                 *fleetHold
}

// watch takes the hold, in a coroutine of its own, once the run is
// cancelled (takeWhenCancelled).
func (h *cancelHold) watch(ctx workflow.Context, r *rollout, in RolloutInput) {
	h.run = ctx
	workflow.Go(ctx, func(ctx workflow.Context) { h.takeWhenCancelled(ctx, r, in) })
}

// takeWhenCancelled waits for the run's cancellation and then, unless the
// run has nothing left to undo, holds the fleet, waiting out busyRetries,
// since a terminated holder's hold ends a moment after the cancellation
// arrives. Where another holds it still (the holder lives, and the
// operator cancelled this run alone), the undo goes on under that hold.
func (h *cancelHold) takeWhenCancelled(ctx workflow.Context, r *rollout, in RolloutInput) {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	defer func() { h.woke, h.taking = true, false }()
	// Past its point of no return there is no undo; once ended, nothing.
	if h.closed || r.committed || r.st.Phase.Done() ||
		workflow.GetVersion(ctx, versionHeldCancel, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	h.taking = true
	hold, err := holdFleet(ctx, in.Fleet)
	if err != nil {
		r.event(ctx, "cancelled: could not hold fleet "+in.Fleet+" for the undo ("+errText(err)+"); the undo goes on regardless, under the hold of "+
			in.HeldBy+", which ran this rollout, if it still runs")
		return
	}
	h.hold = hold
	r.event(ctx, "cancelled: holds fleet "+in.Fleet+" for the undo, as "+in.HeldBy+", which held it for this rollout, may have ended")
}

// settle waits, in a watched run that was cancelled, until the hold was
// taken or given up: the undo goes on under it, and the run's end says how
// it went.
func (h *cancelHold) settle(ctx workflow.Context) {
	if h.run == nil {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(ctx, func() bool { return !h.taking && (h.woke || h.run.Err() == nil) })
}

// release frees the fleet if the hold was taken; a cancellation after it
// takes none.
func (h *cancelHold) release(ctx workflow.Context) {
	h.settle(ctx)
	h.closed = true
	h.hold.release(ctx)
}

// failureType is the type a run that ended with err fails with: that of
// a refusal because the fleet was busy, else typ.
func failureType(err error, typ string) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == ErrTypeFleetBusy {
		return ErrTypeFleetBusy
	}
	return typ
}

// heldByAnother tells whether the start of a hold failed because another
// run holds the fleet: Temporal's answer, or its test environment's.
func heldByAnother(err error) bool {
	var held *temporal.ChildWorkflowExecutionAlreadyStartedError
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &held) || errors.As(err, &started)
}

// versionReleaseUnanswered: version 1 has a release whose signal the
// hold does not take cancel that hold's run instead of waiting for its
// end (fleetHold.release).
const versionReleaseUnanswered = "release-unanswered-hold"

// release frees the fleet and waits until the hold has ended, so that a
// run started once this one has closed finds the fleet free.
//
// The signal fails when the hold has ended (cancelled by hand), or is no
// longer this run's child: in a run reset in the Web UI to a point after
// its hold, the hold is the child of the run it was reset from, ended
// with that run or, when that run was open, still running. Its end never
// reaches this run, and waiting for it would keep the run open for ever,
// and the hold too; so the hold's own run is cancelled, which frees the
// fleet if it still holds it, and only it, never a later run's hold.
func (h *fleetHold) release(ctx workflow.Context) {
	if h == nil {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	err := h.lock.SignalChildWorkflow(ctx, signalRelease, nil).Get(ctx, nil)
	if err != nil && workflow.GetVersion(ctx, versionReleaseUnanswered, workflow.DefaultVersion, 1) == 1 {
		var lock workflow.Execution
		if h.lock.GetChildWorkflowExecution().Get(ctx, &lock) == nil {
			_ = workflow.RequestCancelExternalWorkflow(ctx, lock.ID, lock.RunID).Get(ctx, nil)
		}
		return
	}
	_ = h.lock.Get(ctx, nil)
}
