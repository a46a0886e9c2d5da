package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// a is used only for its method values: workflows name activities by method.
var a *activities.Activities

// Workflow error types; the API and CLI map them to outcomes.
const (
	ErrTypeFailed     = "RolloutFailed"
	ErrTypeAborted    = "RolloutAborted"
	ErrTypeRolledBack = "RolloutRolledBack"
	// ErrTypeCleanedUp is the error of cleanup-only runs that succeeded
	// before such runs completed instead (closed runs keep it).
	ErrTypeCleanedUp = "RolloutCleanedUp"
)

// rollout is one run of RolloutWorkflow: its status and the state the
// compensation needs.
type rollout struct {
	st   Status
	plan activities.Plan
	stopping
	cancelSteps workflow.CancelFunc
	// undos undo the steps that changed the world, top last (undo.go).
	undos undoStack
	// twoPhase is set for rollouts that stage green and then flip (flip.go).
	twoPhase bool
	// stageBegun are the load balancers whose stage has begun, in a
	// rollout that stages in turn (nil otherwise): only they may know green.
	stageBegun []config.LoadBalancer
	// flipsInFlight counts the forward flips running; flipBack holds the
	// flip back to blue that a stop signal started at once.
	flipsInFlight int
	flipBack      []*call
	// undoing is set once the compensation has begun: a stop signal then
	// changes nothing (onStopSignal).
	undoing bool
	// shares is each load balancer's percentage of queries on green.
	shares map[string]int
	// cleanupOf names the rollout a cleanup-only run finishes.
	cleanupOf string
	// leftGreen are the -next servers that run's cleanup left, which a
	// cleanup-only run deletes with the fleet's greens.
	leftGreen []Leftover
	// approved is set by the approve signal while awaiting approval.
	approved bool
	// notes sends the webhook notifications.
	notes notifier
	// cancelHold is the hold a run under another's takes when cancelled.
	cancelHold cancelHold
	// cleanupUntil is when the cleanup's rounds give up
	// (steps.cleanup_timeout), once they have begun.
	cleanupUntil time.Time
	// noBlue is set when the switch begins on a load balancer that fronts
	// no blue server, as on the fleet's first rollout: it commits the
	// rollout, since there is nothing to go back to (cutover.go).
	noBlue bool
	// restored is set when a load balancer update's restore put back what
	// the update changed (lbupdate.go): only then did it roll back.
	restored bool
}

type stopRequest struct {
	signal string
	in     SignalInput
}

// RolloutWorkflow replaces a fleet's nameservers blue-green: create green,
// provision, verify, switch the load balancers, verify again, delete blue,
// rename green. A failure, abort or rollback before blue is deleted puts the
// load balancers back on blue and deletes green.
func RolloutWorkflow(ctx workflow.Context, in RolloutInput) (Status, error) {
	r := &rollout{st: Status{
		Fleet: in.Fleet, Revision: in.Revision, Reason: in.Reason, RequestedBy: in.RequestedBy, ExtraLoadBalancers: in.ExtraLoadBalancers,
		Run:  Run{StartedAt: workflow.Now(ctx)},
		Blue: map[string]dnsroll.Server{}, Green: map[string]dnsroll.Server{},
	}}
	r.setPhase(ctx, PhasePlanning)
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.st, nil }); err != nil {
		return r.st, err
	}
	stepsCtx, cancel := workflow.WithCancel(ctx)
	r.cancelSteps = cancel
	workflow.Go(ctx, r.listenForSignals)

	var hold *fleetHold
	var err error
	if in.HeldBy == "" {
		hold, err = holdFleet(ctx, in.Fleet)
	} else {
		r.cancelHold.watch(ctx, r, in)
	}
	switch {
	case err != nil:
	case in.CleanUp != nil:
		err = r.cleanupOnly(stepsCtx, in)
	default:
		err = r.forward(stepsCtx, in)
	}
	if why := r.stopReason(err); why != notStopped {
		r.cancelHold.settle(ctx)
		err = r.compensate(ctx, why, cmp.Or(r.failedFirst, err))
	} else {
		r.finish(ctx, PhaseSucceeded)
	}
	hold.release(ctx)
	r.cancelHold.release(ctx)
	r.notes.drain(ctx)
	return r.st, err
}

// stopReason says why the forward steps stopped.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedFailed
	stoppedAborted
	stoppedRolledBack
	stoppedApprovalTimedOut
	stoppedForCleanup
)

// stopReason classifies how the forward steps ended: the signal that
// stopped them, the approval deadline, a cleanup-only run, or a failure.
func (r *rollout) stopReason(err error) stopReason {
	var timedOut *approvalTimeout
	switch {
	case errors.Is(err, errCleanupOnly):
		return stoppedForCleanup
	case errors.As(err, &timedOut):
		return stoppedApprovalTimedOut
	case r.failedFirst != nil:
		return stoppedFailed
	case r.stop != nil && r.stop.signal == SignalRollback:
		return stoppedRolledBack
	case r.stop != nil:
		return stoppedAborted
	case err == nil:
		return notStopped
	case temporal.IsCanceledError(err):
		return stoppedAborted
	}
	return stoppedFailed
}

// forward runs the rollout's steps in order.
func (r *rollout) forward(ctx workflow.Context, in RolloutInput) error {
	// Version 1 keeps history small for a fleet of any size: the plan,
	// and so every step's input, carries no zone list, and the steps
	// that need the zones read them from the revision's bundle. Older
	// rollouts planned with every zone, and their steps read them there.
	small := workflow.GetVersion(ctx, "small-histories", workflow.DefaultVersion, 1) >= 1
	planIn := activities.PlanInput{Fleet: in.Fleet, Revision: in.Revision, Overrides: in.overrides(), SmallHistory: small,
		LiveBundle: in.LiveBundle, LiveUnknown: in.LiveUnknown}
	if err := r.st.exec(ctx, "Plan", in.Fleet, planOptions, a.Plan, planIn, &r.plan); err != nil {
		return err
	}
	fleet := r.plan.Fleet
	r.st.Blue, r.st.Warnings, r.st.Bundle, r.st.Changes = r.plan.Blue, r.plan.Warnings, r.plan.Bundle, r.plan.Changes
	// Version 1 added the approval gate, strategies, the bake window and
	// notifications. The path without them is retired: its minimum is 1,
	// so a rollout started before it (by dnsroll before 2026-11-23) fails
	// to replay rather than run a path no longer tested; finish such
	// rollouts before upgrading workers.
	workflow.GetVersion(ctx, "safety-controls", 1, 1)
	// Version 1 of the two-phase switch stages green before the promote
	// decision and flips; rollouts that started before it switch with the
	// driver's playbook.
	r.twoPhase = workflow.GetVersion(ctx, "two-phase-switch", workflow.DefaultVersion, 1) >= 1
	r.notes.start(ctx, r.plan.Fleet.Notifications.Webhooks, r.event)
	r.notify(ctx, config.EventStarted)

	r.setPhase(ctx, PhaseCreating)
	if err := r.createGreen(ctx, fleet); err != nil {
		return err
	}

	r.setPhase(ctx, PhaseProvisioning)
	var prov activities.ProvisionResult
	if err := r.st.exec(ctx, "ProvisionNameservers", "green", r.options(fleet.Steps.ProvisionTimeout), a.ProvisionNameservers,
		activities.ProvisionInput{StepFleet: r.plan.StepFleet(), Servers: r.greenServers(), Zones: r.plan.Zones, Bundle: r.plan.Bundle, Revision: r.plan.Revision}, &prov); err != nil {
		return err
	}

	r.setPhase(ctx, PhaseVerifyGreen)
	if err := r.verify(ctx, "VerifyGreen", a.VerifyGreen, r.greenTargets(), blueTargets(r.st.Blue)); err != nil {
		return err
	}

	if r.twoPhase {
		if err := r.stageLBs(ctx); err != nil {
			return err
		}
	}
	if err := r.awaitApproval(ctx); err != nil {
		return err
	}
	if err := r.cutOver(ctx); err != nil {
		return err
	}
	// The point of no return: once blue is being deleted, a rollback has
	// nothing to go back to.
	if err := r.commit(ctx); err != nil {
		return err
	}
	r.undos = nil
	r.st.NoWayBack = r.noWayBack()
	r.setPhase(ctx, PhaseDeletingBlue)
	if r.twoPhase {
		// Blue is taken out of every load balancer once its outstanding
		// queries have drained, before it is deleted. It is housekeeping:
		// every load balancer was flipped to green and confirmed through
		// DNS, so a release that fails leaves blue staged with no traffic,
		// which the next rollout's stage and release remove; it must not
		// fail a rollout that has committed.
		if err := r.switchLBs(ctx, fleet.LoadBalancers, r.st.Green, "ReleaseBlue", true); err != nil {
			if temporal.IsCanceledError(err) {
				return err
			}
			warning := fmt.Sprintf("%s failed: %s; blue stays staged, with no traffic, on the load balancers until the next rollout releases it", stepName(err, "ReleaseBlue"), reason(err))
			r.st.Warnings = append(r.st.Warnings, warning)
			r.event(ctx, warning)
		}
	}
	if err := r.deleteBlue(ctx, fleet); err != nil {
		return err
	}
	r.setPhase(ctx, PhaseRenaming)
	return r.renameGreen(ctx, fleet)
}

// createGreen ensures every nameserver's -next server exists and runs.
func (r *rollout) createGreen(ctx workflow.Context, fleet *config.Fleet) error {
	r.undos.push(UndoDeleteGreen, r.deleteGreen)
	opts := r.options(fleet.Steps.CreateTimeout)
	var calls []*call
	for _, ns := range fleet.Nameservers {
		spec := dnsroll.ServerSpec{Label: dnsroll.NextLabel(ns.Label), Region: ns.Region, Type: ns.Type, Image: ns.Image, Tags: []string{fleet.Tag()}, FirewallID: ns.FirewallID}
		in := activities.EnsureServerInput{StepFleet: r.plan.StepFleet(), Spec: spec}
		calls = append(calls, r.st.start(ctx, "EnsureServer", spec.Label, opts, a.EnsureServer, in))
	}
	return waitEach(ctx, calls, func(i int, res activities.ServerResult) {
		r.st.Green[fleet.Nameservers[i].Label] = res.Server
	})
}

// switchLBs points each load balancer at the servers it fronts in servers.
// A load balancer none of whose nameservers has a server gets no backend.
// They switch at once, but for those of stagesByRestart on the way back
// to blue (versionSwitchBackInTurn), which switch one at a time once the
// others have started, each with its share of the cleanup's time left.
func (r *rollout) switchLBs(ctx workflow.Context, lbs []config.LoadBalancer, servers map[string]dnsroll.Server, step string, toGreen bool) error {
	opts, fleet := r.options(r.plan.Fleet.Steps.SwitchTimeout), r.plan.StepFleet()
	if !toGreen {
		opts, fleet = r.cleanupOptions(ctx), r.plan.UndoStepFleet()
	}
	inTurn := !toGreen && anyStagesByRestart(lbs) && workflow.GetVersion(ctx, versionSwitchBackInTurn, workflow.DefaultVersion, 1) == 1
	pointed := make([][]lb.Share, len(lbs))
	start := func(i int, o workflow.ActivityOptions) *call {
		backends := serversOf(servers, lbs[i].Fronts)
		for _, b := range backends {
			pointed[i] = append(pointed[i], lb.Share{Server: b, Weight: 100})
		}
		in := activities.SwitchInput{StepFleet: fleet, LB: lbs[i], Backends: backends}
		o.Summary = step + " " + lbs[i].Name + " → " + dnsroll.Labels(backends, "no backend")
		return r.st.start(ctx, step, lbs[i].Name, o, a.SwitchLoadBalancer, in)
	}
	switched := func(i int) {
		r.markLB(lbs[i].Name, toGreen)
		r.setBackends(lbs[i].Name, pointed[i])
	}
	var calls []*call
	var indexes, turns []int
	for i, balancer := range lbs {
		if inTurn && stagesByRestart[balancer.Driver] {
			turns = append(turns, i)
			continue
		}
		calls, indexes = append(calls, start(i, opts)), append(indexes, i)
	}
	var first error
	for k, i := range turns {
		// One that fails stays where it was; the next is still switched.
		var res activities.StepResult
		if err := start(i, r.turnOptions(ctx, len(turns)-k)).wait(ctx, &res); err != nil {
			first = cmp.Or(first, err)
			continue
		}
		switched(i)
	}
	return cmp.Or(first, waitEach(ctx, calls, func(i int, _ activities.StepResult) { switched(indexes[i]) }))
}

// turnOptions are those of a switch back to blue made in turn, with left
// switches (this one among them) still to make. During the cleanup's
// rounds each gets at most switch_timeout and its share of the time left,
// so that a load balancer that does not answer neither holds the others
// on green for long nor carries the round past steps.cleanup_timeout: the
// next round tries it again.
func (r *rollout) turnOptions(ctx workflow.Context, left int) workflow.ActivityOptions {
	o := r.cleanupOptions(ctx)
	if r.cleanupUntil.IsZero() {
		return o
	}
	share := max(r.cleanupUntil.Sub(workflow.Now(ctx))/time.Duration(left), cleanupStepFloor)
	share = min(share, r.plan.Fleet.Steps.SwitchTimeout.D())
	o.ScheduleToCloseTimeout = min(o.ScheduleToCloseTimeout, share)
	o.StartToCloseTimeout = min(o.StartToCloseTimeout, share)
	return o
}

// versionSwitchBackInTurn: version 1 switches the load balancers of
// stagesByRestart back to blue one at a time. A switch may restart
// dnsdist: a cleanup-only run after an upgrade of dnsroll that changed its
// settings points load balancers that never had them. Earlier runs
// switched all at once.
const versionSwitchBackInTurn = "switch-back-restarting-drivers-in-turn"

// anyStagesByRestart tells whether any of lbs has a driver of
// stagesByRestart.
func anyStagesByRestart(lbs []config.LoadBalancer) bool {
	return slices.ContainsFunc(lbs, func(b config.LoadBalancer) bool { return stagesByRestart[b.Driver] })
}

// setBackends records the servers load balancer name now points at.
func (r *rollout) setBackends(name string, shares []lb.Share) {
	if r.st.Backends == nil {
		r.st.Backends = map[string][]Backend{}
	}
	backends := []Backend{}
	for _, s := range shares {
		backends = append(backends, Backend{Server: s.Server.Label, Weight: s.Weight})
	}
	r.st.Backends[name] = backends
}

// verify probes targets with the plan's checks, as step, through the
// activity fn; baseline, when given, are the servers the targets must agree
// with (blue, for green).
func (r *rollout) verify(ctx workflow.Context, step string, fn any, targets, baseline []activities.ProbeTarget) error {
	_, err := r.verifyAs(ctx, step, fn, targets, baseline, true)
	return err
}

// versionVerifyAsksRemoved gives Verify the live revision's bundle
// (VerifyInput.Live), so that it asks green what that revision holds and
// this one removes. Earlier runs asked only what the planned zones hold.
const versionVerifyAsksRemoved = "verify-asks-removed"

// verifyAs runs one Verify; asStep false keeps it out of the step list
// (bake rounds are summarised in one step instead).
func (r *rollout) verifyAs(ctx workflow.Context, step string, fn any, targets, baseline []activities.ProbeTarget, asStep bool) (activities.VerifyResult, error) {
	fleet := r.plan.Fleet
	// A plan with a small history has no zones: Verify reads them, and
	// their serials, from the bundle.
	var serials map[string]uint32
	if len(r.plan.Zones) > 0 {
		serials = map[string]uint32{}
		for _, z := range r.plan.Zones {
			serials[z.Name] = z.Serial
		}
	}
	in := activities.VerifyInput{StepFleet: r.plan.StepFleet(), Targets: targets, Checks: r.plan.Checks, Serials: serials, Baseline: baseline, Zones: r.plan.Zones, Bundle: r.plan.Bundle, Revision: r.plan.Revision}
	if c := r.plan.Changes; c != nil && c.Live != "" && workflow.GetVersion(ctx, versionVerifyAsksRemoved, workflow.DefaultVersion, 1) >= 1 {
		in.Live = c.Live
	}
	var res activities.VerifyResult
	opts := r.options(fleet.Steps.ProbeTimeout)
	var err error
	if asStep {
		err = r.st.exec(ctx, step, targetNames(targets), opts, fn, in, &res)
	} else {
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fn, in).Get(ctx, &res)
	}
	if err == nil {
		r.recordAnalysis(step, res)
	} else if failed, ok := failedAnalysis(err); ok {
		r.recordAnalysis(step, failed)
	}
	return res, err
}

func (r *rollout) deleteBlue(ctx workflow.Context, fleet *config.Fleet) error {
	var calls []*call
	for _, label := range sortedKeys(r.st.Blue) {
		in := activities.DeleteServerInput{Tag: fleet.Tag(), Server: r.st.Blue[label]}
		calls = append(calls, r.st.start(ctx, "DeleteServer", label, r.options(fleet.Steps.SwitchTimeout), a.DeleteServer, in))
	}
	return waitAll(ctx, calls)
}

func (r *rollout) renameGreen(ctx workflow.Context, fleet *config.Fleet) error {
	var calls []*call
	for _, label := range sortedKeys(r.st.Green) {
		in := activities.RenameInput{Tag: fleet.Tag(), Server: r.st.Green[label], To: label}
		calls = append(calls, r.st.start(ctx, "RenameServer", r.st.Green[label].Label, r.options(fleet.Steps.SwitchTimeout), a.RenameServer, in))
	}
	if err := waitAll(ctx, calls); err != nil {
		return err
	}
	for label, s := range r.st.Green {
		s.Label = label
		r.st.Green[label] = s
	}
	// The load balancers point at the same servers, now by their names.
	for _, backends := range r.st.Backends {
		for i, b := range backends {
			if final, ok := dnsroll.FinalLabel(b.Server); ok {
				backends[i].Server = final
			}
		}
	}
	return nil
}

// compensate undoes a rollout that did not finish, on a context that
// survives cancellation, and returns the error the workflow ends with. The
// error carries the final status as its details, so a failed rollout can be
// read from its result without a worker replaying it.
func (r *rollout) compensate(ctx workflow.Context, stop stopReason, cause error) error {
	r.undoing = true
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	outcome, errType, why := r.outcome(stop, cause)
	r.st.Failure = why
	if (stop == stoppedAborted || stop == stoppedRolledBack) && r.stop != nil {
		r.st.StoppedBy = r.stop.signal
	}
	cause = failureCause(cause)
	if r.committed {
		// Blue is (partly) gone: green keeps serving; a rerun finishes the
		// job. Even a cancellation must not switch back to deleted servers.
		if outcome != PhaseFailed {
			why += "; " + r.pastNoReturn()
			r.st.Failure = why
		}
		r.finish(ctx, PhaseFailed)
		return temporal.NewNonRetryableApplicationError(why, ErrTypeFailed, cause, r.st)
	}
	r.setPhase(ctx, PhaseRollingBack)
	if len(r.undos) == 0 {
		// Nothing was changed: Plan failed, or the rollout stopped before
		// green was created.
		r.finish(ctx, outcome)
		return temporal.NewNonRetryableApplicationError(why, failureType(cause, errType), nil, r.st)
	}
	// Version 1 retries the cleanup in rounds until steps.cleanup_timeout.
	rounds := workflow.GetVersion(ctx, "cleanup-rounds", workflow.DefaultVersion, 1) >= 1
	if err := r.cleanUp(ctx, rounds); err != nil {
		r.st.Failure = fmt.Sprintf("%s; cleanup failed: %s failed: %s — on green: %v; `dnsroll rollout cleanup` undoes what is left (status: cleanup.left)",
			why, stepName(err, "cleanup"), reason(err), r.st.OnGreen)
		if r.st.Cleanup == nil {
			r.st.Cleanup = &Cleanup{}
		}
		r.st.Cleanup.NextRoundAt = time.Time{}
		r.st.Cleanup.Left = r.leftovers()
		r.finish(ctx, PhaseCleanupFailed)
		return temporal.NewNonRetryableApplicationError(r.st.Failure, ErrTypeFailed, cause, r.st)
	}
	r.finish(ctx, outcome)
	if stop == stoppedForCleanup {
		// A cleanup-only run did what it was started for: it completes,
		// with the status as its result, rather than count as a failure
		// (`--status failed`, the failed-workflow alert). Only the close
		// command differs, which replay does not compare.
		return nil
	}
	return temporal.NewNonRetryableApplicationError(why+"; blue is serving and green was deleted", errType, nil, r.st)
}

// failureCause is what the error a stopped rollout ends with passes on as
// its cause: the failed step's error, without the step; nothing when the
// steps were cancelled (an abort or rollback interrupted one, or the
// workflow was cancelled). Temporal closes a workflow whose error holds a
// CanceledError anywhere in its chain as cancelled, dropping the failure's
// message and details, so a cleanup-failed run would hide from
// `--status failed`, the failed-workflow alert and the Web UI.
func failureCause(err error) error {
	if temporal.IsCanceledError(err) {
		return nil
	}
	return unwrapStep(err)
}

// outcome is the phase, error type and message of a rollout that stopped.
func (r *rollout) outcome(stop stopReason, cause error) (Phase, string, string) {
	switch stop {
	case stoppedForCleanup:
		return PhaseCleanedUp, ErrTypeCleanedUp, "cleaned up after " + r.cleanupOf
	case stoppedApprovalTimedOut:
		if r.trafficMoved() {
			// approval: each, at a gate after the first load balancer,
			// or a canary step's hold.
			return PhaseRolledBack, ErrTypeRolledBack, "rolled back: " + unwrapStep(cause).Error() + " (rollout.approval_timeout)"
		}
		return PhaseAborted, ErrTypeAborted, "aborted: " + unwrapStep(cause).Error() + " (rollout.approval_timeout)"
	case stoppedRolledBack:
		if !r.trafficMoved() {
			// aborted means the load balancers were never moved.
			return PhaseAborted, ErrTypeAborted, "aborted" + r.stop.in.describe() + " (a rollback asked before any load balancer was switched)"
		}
		return PhaseRolledBack, ErrTypeRolledBack, "rolled back" + r.stop.in.describe()
	case stoppedAborted:
		// A first rollout's flips push undos after it committed: nothing
		// is undone past the point of no return, so nothing rolls back.
		if r.stop == nil && r.trafficMoved() && !r.committed {
			return PhaseRolledBack, ErrTypeRolledBack, "rolled back: the workflow was cancelled after the switch"
		}
		if r.stop == nil {
			return PhaseAborted, ErrTypeAborted, "aborted: the workflow was cancelled"
		}
		if r.trafficMoved() {
			// rolled-back means traffic went to green and came back.
			return PhaseRolledBack, ErrTypeRolledBack, "rolled back" + r.stop.in.describe() + " (an abort asked after the switch)"
		}
		return PhaseAborted, ErrTypeAborted, "aborted" + r.stop.in.describe()
	}
	why := fmt.Sprintf("%s failed: %s", stepName(cause, "rollout"), reason(cause))
	switch {
	case r.committed:
		// Nothing is undone past this point, so nothing was rolled back.
		return PhaseFailed, ErrTypeFailed, why + "; failed after the " + r.pastNoReturn()
	case r.trafficMoved():
		// A failure after the switch is a rollback the operator did not have to ask for.
		return PhaseRolledBack, ErrTypeRolledBack, why + "; rolled back automatically"
	}
	return PhaseFailed, ErrTypeFailed, why
}

// pastNoReturn explains a rollout that stopped after blue deletion began.
const pastNoReturn = "point of no return: the load balancers stay on green (blue is being or has been deleted); " +
	"finish by hand: delete the blue servers that remain, then rename each <label>-next to <label> (README, what each outcome means); " +
	"a new rollout is refused until then: it would take the remaining blue servers for blue"

// pastNoReturnWithoutBlue explains a rollout with no blue that stopped
// after its switch began.
const pastNoReturnWithoutBlue = "point of no return: there is no blue to go back to (the fleet's first rollout: its load balancers had no nameserver before it), " +
	"so the load balancers stay where the switch took them, on green; finish by hand: rename each <label>-next to <label> (README, what each outcome means); " +
	"a new rollout is refused until then"

// pastNoReturn explains why nothing is undone once the rollout committed.
func (r *rollout) pastNoReturn() string {
	if r.noBlue {
		return pastNoReturnWithoutBlue
	}
	return pastNoReturn
}

// noWayBack is why an abort or rollback is rejected once the rollout
// committed.
func (r *rollout) noWayBack() string {
	if r.noBlue {
		return "the fleet's first rollout has no blue to go back to (its load balancers had no nameserver before it), and its switch has begun; roll out a fixed revision instead"
	}
	return "blue servers are being deleted, so there is nothing to roll back to; roll out the previous revision instead (dnsroll rollout start --revision <previous> --allow-serial-decrease: its SOA serials are behind the live ones)"
}

// stepName names the step err came from, or fallback when err is not a
// step's failure.
func stepName(err error, fallback string) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.step.label()
	}
	return fallback
}

func (s SignalInput) describe() string {
	out := ""
	if s.By != "" {
		out += " by " + s.By
	}
	if s.Reason != "" {
		out += ": " + s.Reason
	}
	return out
}

func (r *rollout) finish(ctx workflow.Context, p Phase) {
	r.cancelHold.settle(ctx)
	r.setPhase(ctx, p)
	r.st.EndedAt = workflow.Now(ctx)
	r.notify(ctx, terminalEvents[p])
}

// terminalEvents maps an outcome to its notification.
var terminalEvents = map[Phase]string{
	PhaseSucceeded:     config.EventSucceeded,
	PhaseFailed:        config.EventFailed,
	PhaseCleanupFailed: config.EventFailed,
	PhaseCleanedUp:     config.EventRolledBack,
	PhaseAborted:       config.EventAborted,
	PhaseRolledBack:    config.EventRolledBack,
}

// recordAnalysis keeps the latest result of each verify step.
func (r *rollout) recordAnalysis(step string, res activities.VerifyResult) {
	for i := range r.st.Analysis {
		if r.st.Analysis[i].Step == step {
			r.st.Analysis[i].Result = res
			return
		}
	}
	r.st.Analysis = append(r.st.Analysis, Analysis{Step: step, Result: res})
}

func targetNames(ts []activities.ProbeTarget) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ",")
}

func (r *rollout) setPhase(ctx workflow.Context, p Phase) {
	r.st.Phase = p
	if err := workflow.UpsertTypedSearchAttributes(ctx, PhaseAttr.ValueSet(string(p))); err != nil {
		workflow.GetLogger(ctx).Warn("cannot update the Phase search attribute", "error", err)
	}
	workflow.GetLogger(ctx).Info("rollout phase", "fleet", r.st.Fleet, "phase", string(p))
	workflow.SetCurrentDetails(ctx, r.currentDetails())
}

// currentDetails is what the Web UI shows above a running rollout's
// history (Current Details, markdown): the phase and the revision with its
// bundle hash, so the operator sees exactly what is being deployed.
func (r *rollout) currentDetails() string {
	d := fmt.Sprintf("**%s** · fleet `%s` · revision `%s`", r.st.Phase, r.st.Fleet, r.st.Revision)
	if r.st.Bundle != "" {
		d += fmt.Sprintf(" · bundle `%s`", r.st.Bundle)
	}
	if n := max(r.plan.ZoneCount, len(r.plan.Zones)); n > 0 {
		d += fmt.Sprintf(" · %d zones", n)
	}
	if r.st.Phase == PhaseAwaitingApproval && !r.st.ApproveBy.IsZero() {
		or := "or it is aborted"
		if len(r.st.OnGreen) > 0 {
			or = "or " + strings.Join(r.st.OnGreen, ", ") + map[bool]string{true: " goes", false: " go"}[len(r.st.OnGreen) == 1] + " back to blue"
		}
		d += fmt.Sprintf("\n\nsend `approve` (or `abort`) by %s, %s", r.st.ApproveBy.UTC().Format("2006-01-02 15:04 MST"), or)
		if r.st.ApprovalGate > 0 {
			// A run from before versionApproveGate numbers none, and
			// ignores an approve naming one.
			d += fmt.Sprintf("; this is approval gate %d: `{\"gate\": %d}` in the approve's input approves this gate and no later one", r.st.ApprovalGate, r.st.ApprovalGate)
		}
	}
	return d
}

// markLB records whether load balancer name sends any queries to green.
func (r *rollout) markLB(name string, onGreen bool) {
	if onGreen {
		r.setShare(name, 100)
	} else {
		r.setShare(name, 0)
	}
	r.markOnGreen(name, onGreen)
}

// setShare records the percentage of load balancer name's queries that go
// to green, and the fleet's share: the mean over its load balancers.
func (r *rollout) setShare(name string, percent int) {
	if r.shares == nil {
		r.shares = map[string]int{}
	}
	r.shares[name] = percent
	total := 0
	for _, balancer := range r.plan.Fleet.LoadBalancers {
		total += r.shares[balancer.Name]
	}
	r.st.GreenShare = total / max(len(r.plan.Fleet.LoadBalancers), 1)
}

func (r *rollout) markOnGreen(name string, onGreen bool) {
	out := r.st.OnGreen[:0:0]
	for _, n := range r.st.OnGreen {
		if n != name {
			out = append(out, n)
		}
	}
	if onGreen {
		out = append(out, name)
		sort.Strings(out)
	}
	r.st.OnGreen = out
}

func (r *rollout) greenServers() []dnsroll.Server {
	var out []dnsroll.Server
	for _, l := range sortedKeys(r.st.Green) {
		out = append(out, r.st.Green[l])
	}
	return out
}

func (r *rollout) greenTargets() []activities.ProbeTarget {
	var out []activities.ProbeTarget
	for _, s := range r.greenServers() {
		out = append(out, activities.ProbeTarget{Name: s.Label, Addr: s.DNSAddr()})
	}
	return out
}

func blueTargets(blue map[string]dnsroll.Server) []activities.ProbeTarget {
	var out []activities.ProbeTarget
	for _, l := range sortedKeys(blue) {
		out = append(out, activities.ProbeTarget{Name: blue[l].Label, Addr: blue[l].DNSAddr()})
	}
	return out
}

func sortedKeys(m map[string]dnsroll.Server) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
