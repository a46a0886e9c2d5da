package activities

import (
	"context"
	"fmt"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/probe"
)

// keepServed refuses to delete nameserver s while a load balancer of its
// fleet's current config may answer from it. A rollout switches the load
// balancers of the config it planned with; one added to the fleet's file
// by hand since, pointed at blue, is not among them, and deleting blue
// would take its traffic down. So the file is read afresh, and every load
// balancer in it is asked through DNS (askThrough) whether it answers with
// s's NSID. One that answers nothing at all keeps s too, as does a file
// that cannot be read: whether they still use s cannot be told, and a
// server deleted is not brought back.
//
// The error is one the step retries until its deadline
// (steps.switch_timeout), so that an operator who points the load
// balancer at green, or removes it from the file, lets the rollout finish.
// A tag that names no fleet, or Activities without a fleet loader, are not
// checked.
func (a *Activities) keepServed(ctx context.Context, tag string, s dnsroll.Server) error {
	name, ok := config.FleetOfTag(tag)
	if !ok || a.Fleets == nil {
		return nil
	}
	fixed := fmt.Sprintf("; the step tries again until steps.switch_timeout, then the rollout fails after its point of no return with %s kept", s.Label)
	fleet, err := a.Fleets(name)
	if err != nil {
		return fmt.Errorf("keeping %s (%s): fleet %s's file cannot be read (%v), so whether a load balancer added to it still answers from %s cannot be told: fix the file%s",
			s.Label, ServerID(s), name, err, s.Label, fixed)
	}
	if len(fleet.Zones) == 0 || len(fleet.Probe.Protocols) == 0 {
		return nil
	}
	id := ServerID(s)
	for _, balancer := range fleet.LoadBalancers {
		heard := askThrough(ctx, fleet, balancer, func(got probe.Identity) bool { return got.NSID == id })
		switch {
		case heard.found:
			return fmt.Errorf("keeping %s (%s): load balancer %s, in fleet %s's file, still answers from %s, and deleting it would take that load balancer's traffic down; "+
				"a rollout switches only the load balancers its plan had, not one added to the file since: point %s at green (the -next servers the others answer from), "+
				"or remove it from fleet %s's file%s", s.Label, id, balancer.Name, name, s.Label, balancer.Name, name, fixed)
		case !heard.answered:
			return fmt.Errorf("keeping %s (%s): load balancer %s, in fleet %s's file, does not answer (%v), so whether it still answers from %s cannot be told: "+
				"bring it back (on green), or remove it from fleet %s's file if it is gone%s", s.Label, id, balancer.Name, name, heard.lastErr, s.Label, name, fixed)
		}
	}
	return nil
}
