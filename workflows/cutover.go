package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// awaitApproval holds the rollout before the switch until an approve signal
// arrives. Without one before the deadline the rollout stops with an
// *approvalTimeout, which deletes green and leaves blue untouched.
func (r *rollout) awaitApproval(ctx workflow.Context) error {
	if !r.plan.Fleet.Rollout.Gated() {
		return nil
	}
	return r.approvalGate(ctx, "")
}

// approvalGate waits for an approve signal given after it opens, for at
// most rollout.approval_timeout; next names what it holds back, if
// anything: a load balancer, or a canary's next step.
func (r *rollout) approvalGate(ctx workflow.Context, next string) error {
	rc := r.plan.Fleet.Rollout
	r.approved = false
	if gatesNumbered(ctx) {
		r.st.ApprovalGate++
	}
	r.st.ApproveBy = workflow.Now(ctx).Add(rc.ApprovalTimeout.D())
	r.setPhase(ctx, PhaseAwaitingApproval)
	r.notify(ctx, config.EventAwaitingApproval)
	s := r.st.begin(ctx, "AwaitApproval", next)
	ok, err := workflow.AwaitWithTimeout(ctx, rc.ApprovalTimeout.D(), func() bool { return r.approved })
	if err == nil && !ok {
		err = &approvalTimeout{after: rc.ApprovalTimeout.D()}
		r.event(ctx, "approval timed out after "+rc.ApprovalTimeout.D().String())
	}
	return s.end(ctx, err)
}

// approvalTimeout stops a rollout whose approval did not come in time.
type approvalTimeout struct{ after time.Duration }

func (e *approvalTimeout) Error() string { return fmt.Sprintf("not approved within %s", e.after) }

// cutOver moves the load balancers to green by the fleet's strategy, then
// bakes: blue stays alive while the load balancers are analysed, so a
// rollback is a switch away.
func (r *rollout) cutOver(ctx workflow.Context) error {
	fleet := r.plan.Fleet
	if err := r.holdBeforeNoWayBack(ctx); err != nil {
		return err
	}
	if err := r.commitIfNoBlue(ctx); err != nil {
		return err
	}
	switch fleet.Rollout.Strategy {
	case config.StrategyCanary:
		if r.skipCanary(ctx) {
			// Nothing to compare green with: all at once, as below.
		} else if err := r.canary(ctx); err != nil {
			return err
		}
		if err := r.switchAndVerify(ctx, fleet.LoadBalancers); err != nil {
			return err
		}
	case config.StrategyOneAtATime:
		// Each load balancer but the last bakes alone before the next one
		// switches; the last bakes with all of them, below.
		for i, lb := range fleet.LoadBalancers {
			// approval: each holds each load balancer after the first
			// until the operator approves it, the one before having
			// baked. A fleet's first rollout has nothing to go back to,
			// so nothing to decide between load balancers.
			if i > 0 && fleet.Rollout.Approval == config.ApprovalEach && !r.noBlue {
				if err := r.approvalGate(ctx, lb.Name); err != nil {
					return err
				}
			}
			if err := r.switchAndVerify(ctx, []config.LoadBalancer{lb}); err != nil {
				return err
			}
			if i < len(fleet.LoadBalancers)-1 {
				if err := r.bake(ctx, []config.LoadBalancer{lb}); err != nil {
					return err
				}
			}
		}
	default:
		if err := r.switchAndVerify(ctx, fleet.LoadBalancers); err != nil {
			return err
		}
	}
	r.notify(ctx, config.EventSwitched)
	return r.bake(ctx, fleet.LoadBalancers)
}

// commitIfNoBlue commits the rollout, as deleting blue does, if a load
// balancer fronts no blue server (version "no-blue-no-way-back"): a flip
// back would leave it nothing to send queries to, which every driver
// refuses, and the cleanup would retry it until steps.cleanup_timeout.
// From here an abort or rollback is rejected and a failure leaves green
// serving.
func (r *rollout) commitIfNoBlue(ctx workflow.Context) error {
	without := r.withoutBlue()
	if len(without) == 0 || workflow.GetVersion(ctx, "no-blue-no-way-back", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	// A stop taken while the last step before the switch ran is carried
	// out: nothing has flipped yet. Runs from before
	// versionNoCommitAfterStop committed whatever a stop said.
	if workflow.GetVersion(ctx, versionNoCommitAfterStop, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		r.committed = true
	} else if err := r.commit(ctx); err != nil {
		return err
	}
	r.noBlue, r.undos = true, nil
	r.st.NoWayBack = r.noWayBack()
	r.event(ctx, fmt.Sprintf("no way back from here: %s front no blue server (the fleet's first rollout), so abort and rollback are refused from the switch on", strings.Join(without, ", ")))
	return nil
}

// withoutBlue names the load balancers that front no blue server.
func (r *rollout) withoutBlue() []string {
	var without []string
	for _, balancer := range r.plan.Fleet.LoadBalancers {
		if len(serversOf(r.st.Blue, balancer.Fronts)) == 0 {
			without = append(without, balancer.Name)
		}
	}
	return without
}

// holdBeforeNoWayBack holds a fleet's first rollout for approval once,
// before the switch, where its canary steps asked for approval: the
// canary is skipped (skipCanary), and with it the holds, and past the
// switch there is no way back (commitIfNoBlue). approval: manual already
// held it.
func (r *rollout) holdBeforeNoWayBack(ctx workflow.Context) error {
	rc := r.plan.Fleet.Rollout
	if rc.Strategy != config.StrategyCanary || rc.Gated() || len(r.withoutBlue()) == 0 ||
		!slices.ContainsFunc(rc.Canary.Steps, func(s config.CanaryStep) bool { return s.Approve }) {
		return nil
	}
	r.event(ctx, "the canary's holds for approval, skipped with the canary on a fleet's first rollout, are one hold for approval before the switch, past which there is no way back")
	return r.approvalGate(ctx, "")
}

// skipCanary says whether the canary steps are skipped because a load
// balancer fronts no blue server (the fleet's first rollout; version
// "no-blue-no-canary"). Such a load balancer sends green every query at
// any weight, so the steps would show a share that is not, and judge
// green against a blue that answered nothing.
func (r *rollout) skipCanary(ctx workflow.Context) bool {
	if !r.noBlue || workflow.GetVersion(ctx, "no-blue-no-canary", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false
	}
	r.event(ctx, "canary skipped: with no blue server to share the queries with, green would have all of them at every step and nothing to be compared with; the switch is all at once")
	return true
}

// switchAndVerify points lbs at green and checks DNS through them.
func (r *rollout) switchAndVerify(ctx workflow.Context, lbs []config.LoadBalancer) error {
	r.setPhase(ctx, PhaseSwitching)
	if r.twoPhase {
		if err := r.flipLBs(ctx, lbs, 100, "FlipLoadBalancer", r.options(r.plan.Fleet.Steps.SwitchTimeout)); err != nil {
			return err
		}
	} else {
		r.undos.push(UndoSwitchBackToBlue, r.switchBackToBlue)
		if err := r.switchLBs(ctx, lbs, r.st.Green, "SwitchLoadBalancer", true); err != nil {
			return err
		}
	}
	r.setPhase(ctx, PhaseVerifyLBs)
	return r.verify(ctx, "VerifyLoadBalancers", a.VerifyLoadBalancers, lbTargetsOf(lbs), nil)
}

// bake analyses DNS through lbs every bake interval for the bake duration.
// A failed round fails the rollout, which rolls it back; a rollback signal
// interrupts the wait at once.
func (r *rollout) bake(ctx workflow.Context, lbs []config.LoadBalancer) error {
	rc := r.plan.Fleet.Rollout
	if rc.BakeDuration() <= 0 {
		return nil
	}
	r.setPhase(ctx, PhaseBaking)
	targets := lbTargetsOf(lbs)
	s := r.st.begin(ctx, "Bake", targetNames(targets))
	return s.end(ctx, r.analyse(ctx, s, targets, nil, rc.BakeDuration()))
}

func passSummary(res activities.VerifyResult) string {
	passed := 0
	for _, rep := range res.Reports {
		passed += rep.Passed
	}
	return fmt.Sprintf("%d checks passed in the last round", passed)
}

func lbTargetsOf(lbs []config.LoadBalancer) []activities.ProbeTarget {
	var out []activities.ProbeTarget
	for _, lb := range lbs {
		out = append(out, activities.ProbeTarget{Name: lb.Name, Addr: lb.Address})
	}
	return out
}
