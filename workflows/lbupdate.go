package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// LoadBalancerUpdateWorkflow updates a fleet's load balancers where they
// stand, one at a time: for each, DNS through it is checked, the update is
// applied (an nginx reload or binary upgrade, a dnsdist console change),
// and DNS through it is checked again; then, for each but the last, it
// bakes (lb_update.bake): DNS through it is checked every bake interval
// before the next one is touched, so that a fault that shows only after a
// while stops the update at one load balancer. A failure or an abort stops
// it and restores the load balancer being updated, also one baking: its
// update is accepted only once its bake passes, so until then the config
// it ran before is the one known to serve. Those already done keep the
// update.
//
// It shares the rollout's step runner, status and undo stack; its status
// answers QueryStatus and it stops on SignalAbort.

// LBUpdateInput starts a LoadBalancerUpdateWorkflow.
type LBUpdateInput struct {
	// FleetName names the fleet; Fleet, when set, is used as it is instead.
	FleetName string        `json:"fleet_name,omitempty"`
	Fleet     *config.Fleet `json:"fleet,omitempty"`
	// LoadBalancers names the ones to update, in order; empty is all of
	// the fleet's, in its order.
	LoadBalancers []string  `json:"load_balancers,omitempty"`
	Update        lb.Update `json:"update"`
	Reason        string    `json:"reason,omitempty"`
	RequestedBy   string    `json:"requested_by,omitempty"`
}

// Phases of a load balancer update; it ends in PhaseSucceeded,
// PhaseRolledBack (failed, restored), PhaseAborted or PhaseCleanupFailed
// (the restore failed too).
const (
	PhaseUpdatingLBs Phase = "updating-load-balancers"
	PhaseRestoringLB Phase = "restoring-load-balancer"
)

// UndoRestoreLB restores one load balancer's previous config.
const UndoRestoreLB = "RestoreLoadBalancer"

// LoadBalancerUpdateWorkflow: see above.
func LoadBalancerUpdateWorkflow(ctx workflow.Context, in LBUpdateInput) (Status, error) {
	r := &rollout{st: Status{Fleet: in.FleetName, Reason: in.Reason, RequestedBy: in.RequestedBy, Run: Run{Phase: PhasePlanning, StartedAt: workflow.Now(ctx)}}}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.st, nil }); err != nil {
		return r.st, err
	}
	stepCtx, cancel := workflow.WithCancel(ctx)
	var aborted *SignalInput
	event := func(ctx workflow.Context, msg string) {
		r.st.Events = append(r.st.Events, Event{At: workflow.Now(ctx), Message: msg})
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		// Signals are read as every workflow reads them (decodeSignal);
		// those an update does not take are recorded as ignored, not left
		// unread.
		listenSignals(ctx, []string{SignalAbort, SignalRollback, SignalApprove}, event, func(ctx workflow.Context, name string, s SignalInput) {
			switch {
			case name == SignalRollback:
				event(ctx, name+" ignored: an in-place update has nothing to roll back to; abort restores the load balancer being updated")
			case name == SignalApprove:
				event(ctx, name+" ignored: an in-place update has no approval gate")
			case aborted != nil:
				event(ctx, name+" ignored: already stopping ("+SignalAbort+")")
			default:
				aborted = &s
				event(ctx, fmt.Sprintf("abort by %q: %s", s.By, s.Reason))
				cancel()
			}
		})
	})

	name := in.FleetName
	if in.Fleet != nil {
		name = in.Fleet.Name
	}
	hold, err := holdFleet(ctx, name)
	if err == nil {
		err = r.updateLBs(stepCtx, in)
	}
	// What stopped the updates: an abort that comes while they are
	// restored does not make a failure an abort.
	r.conclude(ctx, err, aborted)
	hold.release(ctx)
	if r.st.Phase == PhaseSucceeded {
		return r.st, nil
	}
	// The failure carries the status, so that its readers (the API) have
	// it from Temporal's record, with no worker to answer a query.
	return r.st, temporal.NewNonRetryableApplicationError(r.st.Failure, failureType(err, "LoadBalancerUpdateFailed"), failureCause(err), r.st)
}

// conclude ends a load balancer update whose updates returned err: the
// chosen load balancers restored (the undo stack) unless it succeeded.
// abortedBy is the abort that stopped the updates, if one did.
func (r *rollout) conclude(ctx workflow.Context, err error, abortedBy *SignalInput) {
	if err == nil {
		r.st.Phase, r.st.EndedAt = PhaseSucceeded, workflow.Now(ctx)
		return
	}
	// The step and its error, without Temporal's wrapping, as a rollout's.
	r.st.Failure = errText(err)
	if abortedBy != nil {
		r.st.Failure = "aborted: " + abortedBy.Reason
	}
	// The undo runs on a context the abort did not cancel.
	undoCtx, _ := workflow.NewDisconnectedContext(ctx)
	// Refused before any load balancer was touched, or its restore found
	// nothing to undo: nothing was rolled back.
	end := PhaseFailed
	if len(r.undos) > 0 {
		r.st.Phase = PhaseRestoringLB
		if uerr := r.undos.run(undoCtx); uerr != nil {
			end = PhaseCleanupFailed
			r.st.Failure += "; restore failed: " + errText(uerr)
		} else if r.restored {
			end = PhaseRolledBack
		}
	}
	if abortedBy != nil && end != PhaseCleanupFailed {
		end = PhaseAborted
	}
	r.st.Phase, r.st.EndedAt = end, workflow.Now(ctx)
}

// updateLBs updates each chosen load balancer in turn.
func (r *rollout) updateLBs(ctx workflow.Context, in LBUpdateInput) error {
	var a *activities.Activities
	fleet := in.Fleet
	if fleet == nil {
		if in.FleetName == "" {
			return temporal.NewNonRetryableApplicationError("fleet_name: name the fleet whose load balancers to update", activities.ErrInvalid, nil)
		}
		if err := r.st.exec(ctx, "LoadFleet", in.FleetName, planOptions, a.LoadFleet, in.FleetName, &fleet); err != nil {
			return err
		}
	}
	r.st.Fleet = fleet.Name
	r.plan.Fleet = fleet
	balancers, err := ChooseLBsToUpdate(fleet, in.LoadBalancers, in.Update)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrInvalid, nil)
	}
	probe := r.options(fleet.Steps.ProbeTimeout)
	apply := r.options(fleet.Steps.SwitchTimeout)
	// Runs from before versionLBUpdateBake bake none.
	bake := fleet.LBUpdate.BakeDuration()
	if workflow.GetVersion(ctx, versionLBUpdateBake, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		bake = 0
	}
	r.st.Phase = PhaseUpdatingLBs
	for i, b := range balancers {
		var res activities.StepResult
		check := activities.CheckLBInput{Fleet: fleet, LB: b}
		if err := r.st.exec(ctx, "CheckBefore", b.Name, probe, a.CheckLoadBalancerDNS, check, &res); err != nil {
			return err
		}
		up := activities.UpdateLBInput{Fleet: fleet, LB: b, Update: in.Update, Run: updateRun(ctx)}
		r.undos.push(UndoRestoreLB+" "+b.Name, func(ctx workflow.Context) error {
			var res activities.RestoreResult
			if err := r.st.exec(ctx, "Restore", b.Name, r.cleanupOptions(ctx), a.RestoreLoadBalancer, up, &res); err != nil {
				return err
			}
			if res.NothingRestored {
				r.st.Failure += "; " + res.Note
			} else {
				r.restored = true
			}
			return nil
		})
		if err := r.st.exec(ctx, "Update", b.Name, apply, a.UpdateLoadBalancer, up, &res); err != nil {
			return err
		}
		if err := r.st.exec(ctx, "CheckAfter", b.Name, probe, a.CheckLoadBalancerDNS, check, &res); err != nil {
			return err
		}
		if i < len(balancers)-1 && bake > 0 {
			if err := r.bakeLB(ctx, check, bake, fleet.LBUpdate.BakeInterval.D(), probe); err != nil {
				return err
			}
		}
		// An abort taken while this one was updated and checked restores
		// it, also when the check, which learns of the cancel only when it
		// ends, then reports its result (stopping.commit). Runs from
		// before versionNoCommitAfterStop kept the update.
		if ctx.Err() != nil && workflow.GetVersion(ctx, versionNoCommitAfterStop, workflow.DefaultVersion, 1) == 1 {
			return workflow.ErrCanceled
		}
		// Done and checked: this one keeps its update.
		r.undos = nil
	}
	return nil
}

// versionLBUpdateBake added the bake after each load balancer's update
// but the last (lb_update.bake).
const versionLBUpdateBake = "lbupdate-bake"

// bakeLB checks DNS through check's load balancer, just updated, every
// interval for d (phase baking, step Bake). Its restore stays on the undo
// stack: a failed check or an abort restores it.
func (r *rollout) bakeLB(ctx workflow.Context, check activities.CheckLBInput, d, interval time.Duration, opts workflow.ActivityOptions) error {
	r.st.Phase = PhaseBaking
	s := r.st.begin(ctx, "Bake", check.LB.Name)
	opts.Summary = s.label()
	// When the failed round's check began, not when its retries gave up;
	// the time the checks before it took counts.
	start, began := workflow.Now(ctx), time.Duration(0)
	err := bakeRounds(ctx, s, interval, d, func(ctx workflow.Context) (int32, string, error) {
		began = workflow.Now(ctx).Sub(start).Round(time.Second)
		var res activities.StepResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.CheckLoadBalancerDNS, check).Get(ctx, &res)
		return res.Attempt, res.Note, err
	}, func(round int, err error) string {
		return fmt.Sprintf("the DNS check of round %d, %s into the %s bake: %s", round, began, d, reason(err))
	})
	if err == nil {
		r.st.Phase = PhaseUpdatingLBs
	}
	return s.end(ctx, err)
}

// InputError is a workflow input refused before anything is changed,
// naming its field, so that the API can answer with that field.
type InputError struct {
	Field, Problem string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Problem }

// ChooseLBsToUpdate returns the fleet's load balancers that update u
// changes, named by names (all for none), or refuses it before any is
// changed: a load balancer named twice or unknown, a kind one's driver
// does not take (in a mixed fleet, those before it would already have
// been updated), a console chunk without the chunk that undoes it (a
// failed check after it could not be undone). The API asks it too.
func ChooseLBsToUpdate(fleet *config.Fleet, names []string, u lb.Update) ([]config.LoadBalancer, error) {
	balancers, err := chooseLBs(fleet, names)
	if err != nil {
		return nil, err
	}
	for _, b := range balancers {
		if !slices.Contains(lb.UpdateKinds[b.Driver], u.Kind) {
			return nil, &InputError{"update.kind", fmt.Sprintf("load balancer %s runs %s, which updates in place with kind %s, not %q; "+
				"name the load balancers this kind applies to in load_balancers", b.Name, b.Driver, lb.KindsText(b.Driver), u.Kind)}
		}
	}
	if u.Kind == lb.UpdateConsole && strings.TrimSpace(u.UndoLua) == "" {
		return nil, &InputError{"update.undo_lua", "a console update needs the chunk that puts back what update.lua changes, " +
			"such as setACL({<the ranges before>}); it runs if the update or the DNS check after it fails"}
	}
	return balancers, nil
}

// chooseLBs returns the fleet's load balancers named, in that order, or
// all of them for none. A name given twice is refused.
func chooseLBs(fleet *config.Fleet, names []string) ([]config.LoadBalancer, error) {
	if len(fleet.LoadBalancers) == 0 {
		return nil, &InputError{"fleet", fmt.Sprintf("fleet %s has no load_balancers to update", fleet.Name)}
	}
	if len(names) == 0 {
		return fleet.LoadBalancers, nil
	}
	var out []config.LoadBalancer
	for j, n := range names {
		if slices.Contains(names[:j], n) {
			return nil, &InputError{"load_balancers", fmt.Sprintf("%q is named twice; each load balancer is updated once", n)}
		}
		i := slices.IndexFunc(fleet.LoadBalancers, func(b config.LoadBalancer) bool { return b.Name == n })
		if i < 0 {
			var known []string
			for _, b := range fleet.LoadBalancers {
				known = append(known, b.Name)
			}
			return nil, &InputError{"load_balancers", fmt.Sprintf("fleet %s has no load balancer %q (it has %v)", fleet.Name, n, known)}
		}
		out = append(out, fleet.LoadBalancers[i])
	}
	return out, nil
}

// updateRun names an update's run for the drivers' marks of what it did:
// its workflow ID and the first run of its chain, which a reset (the Web
// UI's, after a failed check) keeps. With the reset run's own ID, its
// restore would find no mark of the update the run before it made, and
// leave that change in place, saying nothing was restored.
func updateRun(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	return info.WorkflowExecution.ID + "/" + cmp.Or(info.FirstRunID, info.WorkflowExecution.RunID)
}
