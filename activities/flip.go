package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// StageInput stages one load balancer: Live keeps its traffic, Staged are
// added with none.
type StageInput struct {
	StepFleet
	LB     config.LoadBalancer `json:"lb"`
	Live   []dnsroll.Server    `json:"live"`
	Staged []dnsroll.Server    `json:"staged"`
}

// FlipInput sets the split of one load balancer's queries among its
// staged backends.
type FlipInput struct {
	StepFleet
	LB     config.LoadBalancer `json:"lb"`
	Shares []lb.Share          `json:"shares"`
}

// StatsInput names the load balancer whose counters to read.
type StatsInput struct {
	StepFleet
	LB config.LoadBalancer `json:"lb"`
}

// StatsResult is one load balancer's own counters, per backend.
type StatsResult struct {
	Attempt  int32             `json:"attempt"`
	Backends []lb.BackendStats `json:"backends"`
}

// StageLoadBalancer makes one load balancer know green's backends, health
// checked and up but given no traffic, before the promote decision, so that
// the switch itself is a flip. It runs the driver's playbook; blue keeps
// serving throughout. A driver without two phases has nothing to stage: its
// flip is a full switch.
func (a *Activities) StageLoadBalancer(ctx context.Context, in StageInput) (StepResult, error) {
	st, ok, err := a.stager(in.LB)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if !ok {
		return StepResult{Attempt: attempt(ctx), Note: in.LB.Name + ": driver " + in.LB.Driver + " switches in one phase; nothing staged"}, nil
	}
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	stop := keepAlive(ctx, "staging "+in.LB.Name)
	err = st.Stage(ctx, in.Fleet, in.LB, in.Live, in.Staged)
	stop()
	if err != nil {
		return StepResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "stage", err))
	}
	return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("%s: %s live, %s staged", in.LB.Name, dnsroll.Labels(in.Live, "nothing"), dnsroll.Labels(in.Staged, "nothing"))}, nil
}

// stager is balancer's driver as a Stager; ok is false for a driver that
// switches in one phase and keeps no per-backend counters.
func (a *Activities) stager(balancer config.LoadBalancer) (st Stager, ok bool, err error) {
	d, err := a.driver(balancer)
	if err != nil {
		return nil, false, err
	}
	st, ok = d.(Stager)
	return st, ok, nil
}

// FlipLoadBalancer sets which of one load balancer's staged backends get its
// queries, over the channel the worker keeps open to it, and checks through
// DNS that it answers from them. It is idempotent: a flip to the split the
// load balancer already serves changes nothing, so a retry after a worker
// died mid-flip converges. A driver without two phases is pointed at the
// backends with a share instead (a full switch).
func (a *Activities) FlipLoadBalancer(ctx context.Context, in FlipInput) (StepResult, error) {
	d, err := a.driver(in.LB)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	var live []dnsroll.Server
	for _, s := range in.Shares {
		if s.Weight > 0 {
			live = append(live, s.Server)
		}
	}
	stop := keepAlive(ctx, "flipping "+in.LB.Name)
	defer stop()
	// As for a switch: a rollback to a blue server whose named died during
	// the bake would take the load balancer's traffic down, where green
	// serves it. The flip fails instead, to be retried, and the load
	// balancer is left as it is. One query per server: the flip stays fast.
	err = backendsAnswer(ctx, in.Fleet, live)
	switch st, ok := d.(Stager); {
	case err != nil:
	case ok:
		err = st.Flip(ctx, in.Fleet, in.LB, in.Shares)
	default:
		err = d.Point(ctx, in.Fleet, in.LB, live)
	}
	note := ""
	if errors.Is(err, lb.ErrNotRunning) {
		// Its program died (nginx killed, the machine rebooted): no flip
		// can reach it, round after round, while it serves nothing. Its
		// playbook starts it, serving the side this flip gives the
		// traffic.
		activity.GetLogger(ctx).Warn("load balancer not running; starting it with its playbook", "lb", in.LB.Name, "error", err)
		var staged string
		staged, err = restart(ctx, d, in, live)
		note = " (it was not running: started by its playbook" + staged + ")"
	}
	if err == nil {
		err = confirmServing(ctx, in.Fleet, in.LB, live)
	}
	if err != nil {
		return StepResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "flip", err))
	}
	return StepResult{Attempt: attempt(ctx), Note: in.LB.Name + " → " + shareText(in.Shares) + note}, nil
}

// restart starts a load balancer that was not running through its
// playbook, serving live. A two-phase driver then stages the side left
// without traffic again, and the flip sets the split: the next flip (back
// to blue on a rollback, say) must find that side staged, and the playbook
// pointed at live records live alone. That side may be down (a rollback
// because green died): the load balancer then serves live, and the flip
// says the other side could not be staged.
func restart(ctx context.Context, d LoadBalancer, in FlipInput, live []dnsroll.Server) (note string, err error) {
	if err := d.Point(ctx, in.Fleet, in.LB, live); err != nil {
		return "", err
	}
	st, ok := d.(Stager)
	if !ok {
		return "", nil
	}
	var idle []dnsroll.Server
	for _, s := range in.Shares {
		if s.Weight <= 0 {
			idle = append(idle, s.Server)
		}
	}
	if err := st.Stage(ctx, in.Fleet, in.LB, live, idle); err != nil {
		activity.GetLogger(ctx).Warn("load balancer restarted on the live side; the other could not be staged", "lb", in.LB.Name, "error", err)
		return fmt.Sprintf("; %s could not be staged again: %v", dnsroll.Labels(idle, "nothing"), err), nil
	}
	return "", st.Flip(ctx, in.Fleet, in.LB, in.Shares)
}

// LoadBalancerStats reads one load balancer's per-backend counters, which
// the canary analysis compares between green and blue.
func (a *Activities) LoadBalancerStats(ctx context.Context, in StatsInput) (StatsResult, error) {
	defer keepAlive(ctx, "reading the load balancer's counters")()
	st, ok, err := a.stager(in.LB)
	if err != nil {
		return StatsResult{}, failure(ctx, err)
	}
	if !ok {
		return StatsResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: driver %s keeps no per-backend counters; strategy canary needs dnsdist", in.LB.Name, in.LB.Driver))
	}
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return StatsResult{}, failure(ctx, err)
	}
	stats, err := st.Stats(ctx, in.Fleet, in.LB)
	if err != nil {
		return StatsResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "stats", err))
	}
	return StatsResult{Attempt: attempt(ctx), Backends: stats}, nil
}

func (a *Activities) driver(balancer config.LoadBalancer) (LoadBalancer, error) {
	d, ok := a.Drivers[balancer.Driver]
	if !ok {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: no driver %q on this worker", balancer.Name, balancer.Driver)
	}
	return d, nil
}

// shareText writes a split as "ns1-next 10%, ns1 90%".
func shareText(shares []lb.Share) string {
	total := 0
	for _, s := range shares {
		total += s.Weight
	}
	var parts []string
	for _, s := range shares {
		if s.Weight > 0 {
			parts = append(parts, fmt.Sprintf("%s %d%%", s.Server.Label, s.Weight*100/max(total, 1)))
		}
	}
	if len(parts) == 0 {
		return "no backend"
	}
	return strings.Join(parts, ", ")
}
