package activities

import (
	"context"
	"fmt"
	"sort"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/zone"
)

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
	if err := fleet.ValidateRevision(in.Revision); err != nil {
		return Plan{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "%v", err))
	}
	if fleet.Ansible.Connection == "ssh" && a.AuthorizedKeys == 0 {
		return Plan{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID,
			"fleet %s provisions new VMs over SSH, but this worker creates them with no SSH public key, so nobody could log in: "+
				"set DNSROLL_SSH_AUTHORIZED_KEYS to the public key of the key Ansible uses, or set ANSIBLE_PRIVATE_KEY_FILE to derive it", fleet.Name))
	}
	if in.ExpectChanges != nil {
		fleet.Probe.ExpectChanges = in.ExpectChanges
	}
	if in.AllowSerialDecrease {
		fleet.Probe.AllowSerialDecrease = true
	}
	plan := Plan{Fleet: fleet, Revision: in.Revision, Blue: map[string]dnsroll.Server{}}
	for _, zc := range fleet.Zones {
		path := fleet.ZoneFile(zc, in.Revision)
		z, err := zone.ParseFile(path, zc.Name)
		if err != nil {
			return Plan{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "%v", err))
		}
		plan.Zones = append(plan.Zones, ZoneFile{Name: zc.Name, Path: path, Serial: z.Serial()})
		for _, w := range z.Warnings(5) {
			plan.Warnings = append(plan.Warnings, "zone "+zc.Name+": "+w)
		}
	}

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
			plan.Blue[s.Label] = withDNSPort(fleet, s)
		}
	}
	sort.Strings(plan.Warnings)
	plan.Attempt = attempt(ctx)
	return plan, nil
}

func trimNext(label string) string {
	l, _ := dnsroll.FinalLabel(label)
	return l
}
