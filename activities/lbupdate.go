package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/probe"
)

// InPlaceUpdater is a load balancer driver that updates a running load
// balancer without taking it out of service (LoadBalancerUpdateWorkflow).
type InPlaceUpdater interface {
	// Update applies u and returns once the load balancer serves with it,
	// with a note for the operator. Idempotent where the update's own
	// content is: a dnsdist console chunk is sent again on a retry, as
	// there is no telling whether a chunk whose reply was lost ran (the
	// docs/load-balancers.md asks for chunks that may run twice). It keeps what Restore
	// needs on the load balancer.
	Update(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (string, error)
	// Restore undoes a failed or half-done Update of the same u (u.ID
	// included) and says what it did. With nothing to undo it changes
	// nothing, and says so.
	Restore(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, u lb.Update) (lb.Restored, error)
}

// UpdateLBInput is one in-place update of one load balancer.
type UpdateLBInput struct {
	Fleet  *config.Fleet       `json:"fleet"`
	LB     config.LoadBalancer `json:"lb"`
	Update lb.Update           `json:"update"`
	// Run names the update's run for the drivers' marks (lb.Update.ID):
	// its workflow ID and the first run ID of its chain, which a reset
	// of the workflow keeps, so that a restore in the reset run finds
	// what the update before the reset left. Empty in histories from
	// before it: the step's own run then.
	Run string `json:"run,omitempty"`
}

// UpdateLoadBalancer updates one load balancer in place with its driver.
func (a *Activities) UpdateLoadBalancer(ctx context.Context, in UpdateLBInput) (StepResult, error) {
	return a.inPlace(ctx, in, "updating", func(u InPlaceUpdater) (string, error) {
		return u.Update(ctx, in.Fleet, in.LB, withID(ctx, in))
	})
}

// RestoreResult is what RestoreLoadBalancer did.
type RestoreResult struct {
	StepResult
	// NothingRestored: the restore changed nothing, since the update had
	// changed nothing or its change stays (the note says which). False,
	// as in histories from before it, when the update was put back.
	NothingRestored bool `json:"nothing_restored,omitempty"`
}

// RestoreLoadBalancer undoes a failed in-place update of one load
// balancer: its previous config, or the old nginx master. Its note is the
// driver's word on what it restored, if anything.
func (a *Activities) RestoreLoadBalancer(ctx context.Context, in UpdateLBInput) (RestoreResult, error) {
	var did lb.Restored
	res, err := a.inPlace(ctx, in, "restoring", func(u InPlaceUpdater) (string, error) {
		var err error
		did, err = u.Restore(ctx, in.Fleet, in.LB, withID(ctx, in))
		return did.Note, err
	})
	return RestoreResult{StepResult: res, NothingRestored: err == nil && !did.Undone}, err
}

// withID gives in's update the ID of its run (in.Run, else the workflow
// run whose step ctx is), unless it has one: the Update activity, its
// retries and its Restore share it, and no other update has it.
func withID(ctx context.Context, in UpdateLBInput) lb.Update {
	u := in.Update
	switch {
	case u.ID != "":
	case in.Run != "":
		u.ID = in.Run
	case activity.IsActivity(ctx):
		run := activity.GetInfo(ctx).WorkflowExecution
		u.ID = run.ID + "/" + run.RunID
	}
	return u
}

// inPlace runs op, an update or its undo, with in.LB's driver, heartbeating
// as doing, and notes what op says it did.
func (a *Activities) inPlace(ctx context.Context, in UpdateLBInput, doing string, op func(InPlaceUpdater) (string, error)) (StepResult, error) {
	u, err := a.updater(in.LB)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	stop := keepAlive(ctx, doing+" "+in.LB.Name)
	defer stop()
	note, err := op(u)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	return StepResult{Attempt: attempt(ctx), Note: in.LB.Name + ": " + note}, nil
}

// CheckLBInput names the load balancer to check DNS through.
type CheckLBInput struct {
	Fleet *config.Fleet       `json:"fleet"`
	LB    config.LoadBalancer `json:"lb"`
}

// CheckLoadBalancerDNS checks that a load balancer answers, over each of
// the fleet's protocols, for each zone of in.Fleet (the first
// config.StepZones of the fleet's, see LoadFleet), confirmAsks times
// on fresh connections, so that every worker is likely asked: the check
// before and after an in-place update.
func (a *Activities) CheckLoadBalancerDNS(ctx context.Context, in CheckLBInput) (StepResult, error) {
	defer keepAlive(ctx, "checking the load balancer's answers")()
	timeout := max(in.Fleet.Probe.Timeout.D(), time.Second)
	if len(in.Fleet.Zones) == 0 || len(in.Fleet.Probe.Protocols) == 0 {
		return StepResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "fleet %s: zones and probe.protocols are needed to check DNS through %s", in.Fleet.Name, in.LB.Name))
	}
	n := 0
	for _, z := range in.Fleet.Zones {
		for _, proto := range in.Fleet.Probe.Protocols {
			for range confirmAsks {
				if _, err := probe.Identify(ctx, in.LB.Address, proto, z.Name, timeout); err != nil {
					return StepResult{}, failure(ctx, fmt.Errorf("load balancer %s (%s): no %s answer for %s: %w", in.LB.Name, in.LB.Address, proto, z.Name, err))
				}
				n++
			}
		}
	}
	return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("%s: %d answers", in.LB.Name, n)}, nil
}

func (a *Activities) updater(balancer config.LoadBalancer) (InPlaceUpdater, error) {
	d, err := a.driver(balancer)
	if err != nil {
		return nil, err
	}
	u, ok := d.(InPlaceUpdater)
	if !ok {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: driver %s cannot update in place", balancer.Name, balancer.Driver)
	}
	return u, nil
}
