package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/probe"
)

// Verify queries every target with the plan's checks over each configured
// protocol and requires every zone's SOA serial to be the expected one. It
// serves both "verify green directly" and "verify through the load balancers".
func (a *Activities) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	reports := make([]probe.Report, len(in.Targets))
	var wg sync.WaitGroup
	for i, t := range in.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = a.Prober.Probe(ctx, t.Addr, in.Fleet.Probe.Protocols, in.Checks)
		}()
	}
	wg.Wait()
	heartbeat(ctx, "probed")

	var errs []string
	for i, r := range reports {
		if err := r.Err(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", in.Targets[i].Name, err))
		}
	}
	if len(errs) == 0 && len(in.Serials) > 0 {
		if err := probe.CheckSerials(reports, in.Serials); err != nil {
			errs = append(errs, err.Error())
		}
	}
	res := VerifyResult{Reports: reports, Attempt: attempt(ctx)}
	if len(errs) > 0 {
		return res, failure(ctx, errors.New(strings.Join(errs, "; ")))
	}
	return res, nil
}

// SwitchLoadBalancer points one load balancer at its backends through the
// load balancer's driver. Pointing it where it already points is a no-op.
func (a *Activities) SwitchLoadBalancer(ctx context.Context, in SwitchInput) (StepResult, error) {
	d, ok := a.Drivers[in.LB.Driver]
	if !ok {
		return StepResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: no driver %q on this worker", in.LB.Name, in.LB.Driver))
	}
	heartbeat(ctx, "switching "+in.LB.Name)
	if err := d.Point(ctx, in.Fleet, in.LB, in.Backends); err != nil {
		return StepResult{}, failure(ctx, fmt.Errorf("load balancer %s: %w", in.LB.Name, err))
	}
	names := make([]string, len(in.Backends))
	for i, b := range in.Backends {
		names[i] = b.Label
	}
	return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("%s → %s", in.LB.Name, strings.Join(names, ","))}, nil
}
