package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

// LoadFleet reads a fleet's config and checks that it fits this worker's
// cloud. A cleanup-only run uses it instead of Plan: it needs neither zone
// files nor blue's answers, only where the load balancers and servers are.
// The fleet is cut to its first zones (config.Fleet.ForSteps), which the
// load balancers' checks ask, so that a fleet of any size stays small in
// history.
func (a *Activities) LoadFleet(ctx context.Context, name string) (*config.Fleet, error) {
	fleet, err := a.Fleets(name)
	if err != nil {
		return nil, failure(ctx, err)
	}
	if err := a.Target.Fits(fleet); err != nil {
		return nil, failure(ctx, err)
	}
	return fleet.ForSteps(), nil
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
	if err := preflight.Playbooks(fleet); err != nil {
		return Plan{}, failure(ctx, err)
	}
	zones, err := preflight.Zones(fleet, in.Revision)
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	// Steps name the fleet by reference, and resolve it with the
	// overrides (FleetRef).
	ref, err := a.planFleetRef(fleet.ForSteps(), in)
	if err != nil {
		return Plan{}, failure(ctx, fmt.Errorf("fleet %s: keeping its config for the steps: %w", in.Fleet, err))
	}
	ref.apply(fleet)
	// The plan goes into history, and its fleet into every step's input:
	// without webhook URLs, which Notify looks up by name.
	plan := Plan{Fleet: fleet.ForHistory(), Revision: in.Revision, Blue: map[string]dnsroll.Server{}}
	if in.Revision != "" && !fleet.NeedsRevision() {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("revision %s only labels this rollout: no zone file path of fleet %s has %s, so green serves the zone files as they are on the worker now",
			in.Revision, in.Fleet, config.RevisionPlaceholder))
	}
	planned := zoneFiles(zones)
	for _, z := range zones {
		plan.Warnings = append(plan.Warnings, z.Warnings...)
	}
	// Later steps on this worker use the snapshot, and its record of the
	// zones; others check their own files against its hash.
	paths, err := revisionPaths(fleet, planned)
	if err != nil {
		return Plan{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "revision %s: listing its Ansible files: %v", in.Revision, err))
	}
	rev, err := a.Bundles.Snapshot(fleet.Dir, paths, bundleZones(planned))
	if u := unreadable(err); u != nil {
		return Plan{}, failure(ctx, u)
	}
	if err != nil {
		return Plan{}, failure(ctx, fmt.Errorf("revision %s: snapshotting its zone files and Ansible files: %w", in.Revision, err))
	}
	if err := snapshotIsChecked(fleet.Dir, planned, rev); err != nil {
		return Plan{}, failure(ctx, err)
	}
	plan.Bundle = rev.Hash
	if in.SmallHistory {
		plan.Fleet, plan.FleetRef, plan.ZoneCount = fleet.ForSteps(), ref, len(planned)
	} else {
		plan.Zones = planned
	}

	if err := a.checkOffers(ctx, fleet, preflight.NameserverOffers(fleet)); err != nil {
		return Plan{}, failure(ctx, err)
	}
	keyWarnings, err := a.ungivenKeys(ctx, fleet)
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	plan.Warnings = append(plan.Warnings, keyWarnings...)
	if !in.DryRun {
		if err := a.checkLoadBalancerAccess(ctx, fleet); err != nil {
			return Plan{}, failure(ctx, err)
		}
	}
	servers, err := a.Cloud.List(ctx, fleet.Tag())
	if err != nil {
		return Plan{}, failure(ctx, err)
	}
	census := preflight.TakeCensus(fleet, servers)
	for _, s := range census.Deleting {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("ignoring %s: it is being deleted", s))
	}
	for _, s := range census.Strangers {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("ignoring %s: tagged %s but not a nameserver of this fleet", s, fleet.Tag()))
	}
	left := map[string]string{} // green servers an earlier rollout left: ServerID → label
	for _, s := range census.Left {
		if unlike := preflight.Stale(fleet, s); unlike != "" {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("replacing %s left by an earlier rollout: it has %s", s, unlike))
		} else {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("reusing %s left by an earlier rollout; it will be provisioned again", s))
		}
		left[ServerID(s)] = s.Label
	}
	for _, s := range census.Blue {
		plan.Blue[s.Label] = a.withDNSPort(fleet, s)
	}
	if err := refuseLeftOnGreen(ctx, fleet, left); err != nil {
		return Plan{}, failure(ctx, err)
	}
	if err := preflight.Labels(ctx, a.Cloud, fleet); err != nil {
		return Plan{}, failure(ctx, err)
	}
	if err := a.checkGrants(ctx, fleet, append(census.Blue, census.Left...), census.Creates(fleet)); err != nil {
		return Plan{}, failure(ctx, err)
	}
	if err := a.checkLocks(ctx, fleet, append(census.Blue, census.Left...)); err != nil {
		return Plan{}, failure(ctx, err)
	}
	seen := readBlueSerials(ctx, &plan, planned)
	if err := checkSerialsAgainstBlue(&plan, planned, seen); err != nil {
		return Plan{}, failure(ctx, err)
	}
	plan.Changes = changes(a.Bundles, in.LiveBundle, in.LiveUnknown, rev, seen)
	if !fleet.Probe.ChangesExpected() {
		if err := a.refuseZoneChanges(&plan, in.LiveBundle, rev); err != nil {
			return Plan{}, failure(ctx, err)
		}
	}
	if in.Diff > 0 {
		plan.Diffs, plan.MoreDiffs = zoneDiffs(a.Bundles, in.LiveBundle, rev, in.Diff)
	}
	sort.Strings(plan.Warnings)
	plan.Warnings = capWarnings(plan.Warnings)
	plan.Attempt = attempt(ctx)
	return plan, nil
}

// refuseZoneChanges refuses an infrastructure-only rollout (probe.
// expect_changes false) whose zone files change the live revision's
// records, or its zones: green's analysis asks the names the new files
// hold, so a record they drop would pass unseen. A serial bump alone is no
// change. Where this worker has no manifest of the live revision
// (plan.Changes says why), or cannot open either revision's snapshot to
// compare files that differ, a warning says what goes unchecked.
func (a *Activities) refuseZoneChanges(plan *Plan, live string, rev bundle.Manifest) error {
	const fix = ": set expect_changes to true (or in the request) if the change is meant, or roll out the live zone files"
	c := plan.Changes
	if c == nil || c.ZonesAdded == nil {
		why := "no live revision"
		if c != nil && c.Unknown != "" {
			why = c.Unknown
		}
		plan.Warnings = append(plan.Warnings, uncompared(why))
		return nil
	}
	if c.ZonesAdded.Count > 0 || c.ZonesRemoved.Count > 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, noChanges+"this revision adds zones (%s) and removes zones (%s)"+fix, c.ZonesAdded, c.ZonesRemoved)
	}
	// Files that differ in their serial alone are the usual case of an
	// infrastructure-only rollout; each is parsed, up to
	// maxZoneChangeChecks of them.
	differing, unread := differingZones(a.Bundles, live, rev)
	if unread != "" {
		plan.Warnings = append(plan.Warnings, uncompared(unread))
	}
	for i, z := range differing {
		if i == maxZoneChangeChecks {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf(noChanges+"the files of %d zones differ from the live revision's, and only the first %d were compared: "+
				"green's analysis asks only the names the others hold", len(differing), maxZoneChangeChecks))
			break
		}
		d, err := z.diff()
		switch {
		case err != nil:
			plan.Warnings = append(plan.Warnings, fmt.Sprintf(noChanges+"zone %s could not be compared with the live revision's (%v)", z.zone, err))
		case !d.Empty():
			return dnsroll.Errorf(dnsroll.EINVALID, noChanges+"this revision changes zone %s: %s"+fix, z.zone, d.Describe(3))
		}
	}
	return nil
}

// noChanges begins what refuseZoneChanges says.
const noChanges = "probe.expect_changes is false, but "

// uncompared warns that an infrastructure-only rollout's zone files went
// uncompared with the live revision's, and why.
func uncompared(why string) string {
	return noChanges + "the zone files cannot be compared with the live revision's (" + why +
		"): green's analysis asks only the names this revision's zone files hold, so a record they drop goes unseen"
}

// maxZoneChangeChecks bounds the zone files refuseZoneChanges compares
// with the live revision's: an infrastructure-only rollout of a fleet of
// 100,000 zones whose build bumps every serial is compared zone by zone
// only so far, with a warning.
const maxZoneChangeChecks = 1000

// refuseLeftOnGreen refuses a fleet whose load balancers answer from a
// green server that an earlier rollout left (left: ServerID → label): that
// rollout ended cleanup-failed, or failed after the point of no return. A
// new rollout would take the blue servers left for blue and stage them
// live, taking down a load balancer whose blue is gone. A load balancer
// whose queries all go unanswered leaves it open: an error that Plan
// retries. One that refuses them (nothing listens) serves from no server.
//
// Each load balancer is asked more than once (askThrough).
func refuseLeftOnGreen(ctx context.Context, fleet *config.Fleet, left map[string]string) error {
	if len(left) == 0 || len(fleet.Zones) == 0 || len(fleet.Probe.Protocols) == 0 {
		return nil
	}
	for _, lb := range fleet.LoadBalancers {
		heard := askThrough(ctx, fleet, lb, func(id probe.Identity) bool { _, ok := left[id.NSID]; return ok })
		if heard.found {
			return dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s answers from %s (%s), a green server an earlier rollout left serving; "+
				"if that rollout ended cleanup-failed, or its workflow was terminated before its point of no return, `dnsroll rollout cleanup --id <its ID>` puts the load balancers back on blue; "+
				"if it failed or was terminated after the point of no return, finish it by hand: delete the blue servers left, then rename each <label>-next to <label> (README, what each outcome means). "+
				"A new rollout now would take the blue servers left for blue and stage them live", lb.Name, left[heard.id.NSID], heard.id.NSID)
		}
		if !heard.answered {
			return fmt.Errorf("load balancer %s does not answer (%v), so whether it serves from a green server an earlier rollout left (%d of them) cannot be told; "+
				"Plan tries again, for up to 5 minutes. Bring it back, or, if the rollout that left them ended cleanup-failed or was terminated before its point of no return, run `dnsroll rollout cleanup --id <its ID>`", lb.Name, heard.lastErr, len(left))
		}
	}
	return nil
}

// throughAsks is how many times askThrough asks a load balancer over each
// protocol.
const throughAsks = 4

// heard is what askThrough heard from a load balancer.
type heard struct {
	// found says that an answer was from a server looked for; id is its
	// identity.
	found bool
	id    probe.Identity
	// answered says that any query got a reply, or found nothing
	// listening; lastErr is the last query's timeout when none did.
	answered bool
	lastErr  error
}

// askThrough asks balancer for the fleet's first zone throughAsks times
// over each of the fleet's protocols, until an answer comes from a server
// that lookingFor accepts. A lost packet must not hide that server, nor a
// load balancer that splits its queries (a canary) by answering the first
// from another. A reply of any kind (REFUSED, no SOA), or nothing
// listening, is an answer from no server: only a load balancer whose every
// query goes unanswered leaves the question open (heard.answered false).
// The fleet must have a zone and a protocol.
func askThrough(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, lookingFor func(probe.Identity) bool) heard {
	zoneName := fleet.Zones[0].Name
	timeout := max(fleet.Probe.Timeout.D(), time.Second)
	var h heard
	for _, proto := range fleet.Probe.Protocols {
		for range throughAsks {
			id, err := probe.Identify(ctx, balancer.Address, proto, zoneName, timeout)
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				h.lastErr = err // no answer: ask again
				continue
			}
			h.answered = true
			if err == nil && lookingFor(id) {
				h.found, h.id = true, id
				return h
			}
		}
	}
	return h
}

// checkOffers refuses, before anything is created, servers to be made
// that the cloud does not offer (preflight.Offers). A cloud that is not a
// preflight.Catalog is not asked.
func (a *Activities) checkOffers(ctx context.Context, fleet *config.Fleet, offers []preflight.Offer) error {
	catalog, ok := a.Cloud.(preflight.Catalog)
	if !ok {
		return nil
	}
	return preflight.Offers(ctx, catalog, fleet, offers)
}

// checkGrants refuses, before anything is created, a run whose token may
// not create servers (when it creates any), or may not delete or rename
// those of changing (preflight.Grants). A cloud that is not a
// preflight.Grantor is not asked.
func (a *Activities) checkGrants(ctx context.Context, fleet *config.Fleet, changing []dnsroll.Server, creates bool) error {
	grantor, ok := a.Cloud.(preflight.Grantor)
	if !ok {
		return nil
	}
	return preflight.Grants(ctx, grantor, fleet, changing, creates)
}

// checkLocks refuses, before anything is created, a run that would
// delete a server a lock keeps (preflight.Locks): deleting, blue and the
// greens an earlier run left. A cloud that is not a preflight.Locker is
// not asked.
func (a *Activities) checkLocks(ctx context.Context, fleet *config.Fleet, deleting []dnsroll.Server) error {
	locker, ok := a.Cloud.(preflight.Locker)
	if !ok {
		return nil
	}
	return preflight.Locks(ctx, locker, fleet, deleting)
}

// checkLoadBalancerAccess checks, before any server is created, that the
// worker reaches each load balancer as its switch will: its SSH host key
// (recorded at first contact, or refused if it changed, naming the fix),
// then a login as the load balancer's user (its key, and sudo for a user
// other than root), where the driver is a LoginChecker. A refusal names
// the load balancer and the fix; an sshd that does not answer is an
// error Plan retries. Found only at the stage, either cost a rollout the
// creation and provisioning of green, and its deletion.
func (a *Activities) checkLoadBalancerAccess(ctx context.Context, fleet *config.Fleet) error {
	if fleet.Ansible.Connection == "local" {
		return nil
	}
	for _, balancer := range fleet.LoadBalancers {
		if a.HostKeys != nil {
			if err := a.HostKeys.Verify(ctx, balancer.Name, balancer.SSHTarget()); err != nil {
				return atLoadBalancer(balancer.Name, "SSH at "+balancer.SSHTarget(), err)
			}
		}
		if d, ok := a.Drivers[balancer.Driver].(LoginChecker); ok {
			if err := d.CheckLogin(ctx, fleet, balancer); err != nil {
				return atLoadBalancer(balancer.Name, "logging in as the switch will", err)
			}
		}
	}
	return nil
}

// blueSerialTimeout bounds one query for a blue server's serial, and
// blueSerialQueries how many are in flight: a fleet of 100,000 zones is
// compared in seconds.
const (
	blueSerialTimeout = 2 * time.Second
	blueSerialQueries = 32
)

// blueSerial is the SOA serial blue serves for a zone, and which blue
// server said so.
type blueSerial struct {
	serial uint32
	label  string
}

// readBlueSerials asks blue for every zone's serial, blueSerialQueries at
// a time; nil when there is no blue. A zone blue does not answer for is a
// warning and has no entry: green's analysis compares serials again.
func readBlueSerials(ctx context.Context, plan *Plan, zones []ZoneFile) map[string]blueSerial {
	if len(plan.Blue) == 0 {
		return nil
	}
	labels := make([]string, 0, len(plan.Blue))
	for l := range plan.Blue {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	// live asks each blue in turn for zone's serial; label is who answered.
	live := func(z ZoneFile) (serial uint32, label string, err error) {
		for _, l := range labels {
			if serial, err = probe.SOASerial(ctx, plan.Blue[l].DNSAddr(), z.Name, blueSerialTimeout); err == nil {
				return serial, l, nil
			}
		}
		return 0, "", err
	}
	out := map[string]blueSerial{}
	if len(zones) == 0 {
		return out
	}
	// A blue that does not answer for the first zone is down or gone:
	// asking it for every other zone would only wait out the timeouts.
	if _, _, err := live(zones[0]); err != nil {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("could not read blue's serials (zone %s: %v); green's analysis compares them again", zones[0].Name, err))
		return out
	}
	type found struct {
		blueSerial
		err error
	}
	seen := make([]found, len(zones))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(blueSerialQueries, len(zones)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s, l, err := live(zones[i])
				seen[i] = found{blueSerial{s, l}, err}
			}
		}()
	}
	for i := range zones {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, z := range zones {
		if f := seen[i]; f.err != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("zone %s: could not read blue's serial to compare (%v); green's analysis compares it again", z.Name, f.err))
		} else {
			out[z.Name] = f.blueSerial
		}
	}
	return out
}

// checkSerialsAgainstBlue refuses, before any server is created, a
// revision whose SOA serial is behind the one blue serves (seen, from
// readBlueSerials): resolvers and secondaries would keep blue's data.
// Going back on purpose needs allow_serial_decrease.
func checkSerialsAgainstBlue(plan *Plan, zones []ZoneFile, seen map[string]blueSerial) error {
	if plan.Fleet.Probe.AllowSerialDecrease {
		return nil
	}
	for _, z := range zones {
		f, ok := seen[z.Name]
		if !ok {
			continue
		}
		if c := zone.SerialCompare(z.Serial, f.serial); c == -1 || c == 2 {
			return dnsroll.Errorf(dnsroll.EINVALID,
				"zone %s: revision %s has serial %d, behind the %d that blue %s serves (RFC 1982): resolvers would keep the old data. "+
					"Bump the serial in %s, or, to go back to an older revision on purpose, start the rollout with --allow-serial-decrease (API: \"allow_serial_decrease\": true)",
				z.Name, plan.Revision, z.Serial, f.serial, f.label, z.Path)
		}
	}
	return nil
}

// MaxWarnings bounds a plan's warnings, which history and the status
// carry: a fleet of 100,000 zones with a warning each would otherwise
// fill both.
const MaxWarnings = 50

// capWarnings keeps the first MaxWarnings-1 warnings and counts the rest.
func capWarnings(w []string) []string {
	if len(w) <= MaxWarnings {
		return w
	}
	return append(w[:MaxWarnings-1:MaxWarnings-1], fmt.Sprintf("… and %d more warnings like these", len(w)-(MaxWarnings-1)))
}

// bundleZones are zones as a bundle's manifest records them.
// snapshotIsChecked refuses a snapshot whose zone files are not the bytes
// preflight hashed, parsed and checked (a file edited while Plan ran):
// steps on this worker would give green the snapshot's. A retry plans the
// file as it is then.
func snapshotIsChecked(base string, zones []ZoneFile, rev bundle.Manifest) error {
	sums := make(map[string]string, len(rev.Files))
	for _, f := range rev.Files {
		sums[f.Name] = f.SHA256
	}
	var changed []string
	for _, z := range zones {
		if sums[bundle.Name(base, z.Path)] != z.SHA256 {
			changed = append(changed, "zone "+z.Name+" ("+z.Path+")")
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if len(changed) > 3 {
		changed = append(changed[:3], fmt.Sprintf("%d more", len(changed)-3))
	}
	return fmt.Errorf("%s changed while planning, between its check and its snapshot; a retry plans it as it is now", strings.Join(changed, ", "))
}

func bundleZones(zones []ZoneFile) []bundle.Zone {
	out := make([]bundle.Zone, len(zones))
	for i, z := range zones {
		out[i] = bundle.Zone{Name: z.Name, Path: z.Path, Serial: z.Serial}
	}
	return out
}

// ungivenKeys warns of the new nameservers that cannot be given their SSH
// host key (preflight.UngivenKeys), when this worker checks host keys.
func (a *Activities) ungivenKeys(ctx context.Context, fleet *config.Fleet) ([]string, error) {
	uc, ok := a.Cloud.(preflight.UserDataCloud)
	if !ok || a.HostKeys == nil {
		return nil, nil
	}
	return preflight.UngivenKeys(ctx, uc, fleet)
}
