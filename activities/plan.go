package activities

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

// LoadFleet reads a fleet's config and checks that it fits this worker's
// cloud. A cleanup-only run uses it instead of Plan: it needs neither zone
// files nor blue's answers, only where the load balancers and servers are.
func (a *Activities) LoadFleet(ctx context.Context, name string) (*config.Fleet, error) {
	fleet, err := a.Fleets(name)
	if err != nil {
		return nil, failure(ctx, err)
	}
	if err := a.Target.Fits(fleet); err != nil {
		return nil, failure(ctx, err)
	}
	return fleet.ForHistory(), nil
}

// Plan reads the fleet config, parses the revision's zone files (a zone that
// does not parse fails here, before any server exists, naming file and
// line), and finds the blue servers in the cloud. The expected answers are
// worked out by Verify from the same files, so they stay out of history;
// zone contents that BIND would answer with SERVFAIL are warnings here.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (Plan, error) {
	defer keepAlive(ctx, "planning "+in.Fleet)()
	fleet, err := a.Fleets(in.Fleet)
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	if err := a.Target.Fits(fleet); err != nil {
		return Plan{}, failure(ctx, err)
	}
	zones, err := preflight.Zones(fleet, in.Revision)
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	if in.ExpectChanges != nil {
		fleet.Probe.ExpectChanges = in.ExpectChanges
	}
	if in.AllowSerialDecrease {
		fleet.Probe.AllowSerialDecrease = true
	}
	// The plan goes into history, and its fleet into every step's input:
	// without webhook URLs, which Notify looks up by name.
	plan := Plan{Fleet: fleet.ForHistory(), Revision: in.Revision, Blue: map[string]dnsroll.Server{}}
	for _, z := range zones {
		plan.Zones = append(plan.Zones, ZoneFile{Name: z.Name, Path: z.Path, Serial: z.Serial, SHA256: z.SHA256})
		plan.Warnings = append(plan.Warnings, z.Warnings...)
	}
	// Later steps on this worker use the snapshot; others check their
	// own files against its hash.
	paths, err := revisionPaths(fleet, plan.Zones)
	if err != nil {
		return Plan{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "revision %s: listing its Ansible files: %v", in.Revision, err))
	}
	rev, err := a.Bundles.Snapshot(fleet.Dir, paths)
	if err != nil {
		return Plan{}, failure(ctx, fmt.Errorf("revision %s: snapshotting its zone files and Ansible files: %w", in.Revision, err))
	}
	plan.Bundle = rev.Hash

	servers, err := a.Cloud.List(ctx, fleet.Tag())
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	known := map[string]bool{}
	for _, ns := range fleet.Nameservers {
		known[ns.Label] = true
		known[dnsroll.NextLabel(ns.Label)] = true
	}
	for _, s := range servers {
		switch {
		case s.Status == statusDeleting:
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("ignoring %s: it is being deleted", s))
		case !known[s.Label]:
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("ignoring %s: tagged %s but not a nameserver of this fleet", s, fleet.Tag()))
		case s.Label == dnsroll.NextLabel(trimNext(s.Label)):
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("reusing %s left by an earlier rollout; it will be provisioned again", s))
		default:
			plan.Blue[s.Label] = a.withDNSPort(fleet, s)
		}
	}
	if err := checkSerialsAgainstBlue(ctx, &plan); err != nil {
		return Plan{}, failure(ctx, err)
	}
	sort.Strings(plan.Warnings)
	plan.Attempt = attempt(ctx)
	return plan, nil
}

// blueSerialTimeout bounds one query for a blue server's serial.
const blueSerialTimeout = 2 * time.Second

// checkSerialsAgainstBlue refuses, before any server is created, a
// revision whose SOA serial is behind the one blue serves: resolvers and
// secondaries would keep blue's data. Going back on purpose needs
// allow_serial_decrease. Blue that does not answer is a warning here; the
// analysis of green compares serials again.
func checkSerialsAgainstBlue(ctx context.Context, plan *Plan) error {
	if plan.Fleet.Probe.AllowSerialDecrease || len(plan.Blue) == 0 {
		return nil
	}
	labels := make([]string, 0, len(plan.Blue))
	for l := range plan.Blue {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, z := range plan.Zones {
		var lastErr error
		for _, l := range labels {
			b := plan.Blue[l]
			live, err := probe.SOASerial(ctx, b.DNSAddr(), z.Name, blueSerialTimeout)
			if err != nil {
				lastErr = err
				continue
			}
			lastErr = nil
			if c := zone.SerialCompare(z.Serial, live); c == -1 || c == 2 {
				return dnsroll.Errorf(dnsroll.EINVALID,
					"zone %s: revision %s has serial %d, behind the %d that blue %s serves (RFC 1982): resolvers would keep the old data. "+
						"Bump the serial in %s, or, to go back to an older revision on purpose, start the rollout with --allow-serial-decrease (API: \"allow_serial_decrease\": true)",
					z.Name, plan.Revision, z.Serial, live, l, z.Path)
			}
			break
		}
		if lastErr != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("zone %s: could not read blue's serial to compare (%v); green's analysis compares it again", z.Name, lastErr))
		}
	}
	return nil
}

func trimNext(label string) string {
	l, _ := dnsroll.FinalLabel(label)
	return l
}
