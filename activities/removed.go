package activities

import (
	"fmt"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

// liveZones is what Verify reads of the live revision, blue's, to ask
// green what that revision holds and the planned one does not: by
// canonical apex, the live file of each planned zone whose file differs,
// and the zones the planned revision removes.
type liveZones struct {
	files   map[string]string
	removed []string
}

// liveRevision reads the live revision from this worker's bundle store,
// as Plan's diff does; why says why it cannot.
func (a *Activities) liveRevision(live string, zones []ZoneFile) (lz *liveZones, why string) {
	was, ok, err := a.Bundles.Load(live)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("reading the manifest of %s: %v", bundle.Short(live), err)
	case !ok:
		return nil, "this worker has no manifest of " + bundle.Short(live)
	}
	root, ok := a.Bundles.Open(live)
	if !ok {
		return nil, "this worker's snapshot of " + bundle.Short(live) + " is gone or damaged"
	}
	sums := make(map[string]string, len(zones))
	for _, z := range zones {
		sums[dns.CanonicalName(z.Name)] = z.SHA256
	}
	lz = &liveZones{files: map[string]string{}}
	for name, f := range filesOfZones(was) {
		// A file of the same hash holds nothing else; one of no recorded
		// hash is compared.
		if sum, ok := sums[dns.CanonicalName(name)]; ok && (sum == "" || sum != f.SHA256) {
			lz.files[dns.CanonicalName(name)] = bundle.In(root, f.Name)
		}
	}
	for _, z := range was.Zones {
		if _, ok := sums[dns.CanonicalName(z.Name)]; !ok {
			lz.removed = append(lz.removed, dns.CanonicalName(z.Name))
		}
	}
	return lz, ""
}

// removedChecks are the checks of the RRsets the live file of z holds and
// z does not (probe.Removed), beside its checks have, and of the names
// z's wildcard newly answers where the live file had an empty
// non-terminal: no name of z, they are not among its checks either.
func (lz *liveZones) removedChecks(z *zone.Zone, scope probe.Scope, have []probe.Check) ([]probe.Check, error) {
	path := lz.files[z.Origin()]
	if path == "" {
		return nil, nil
	}
	old, err := zone.ParseFile(path, z.Origin())
	if err != nil {
		return nil, fmt.Errorf("the live revision's file of %s: %w", z.Origin(), err)
	}
	d := zone.Diff(old, z)
	asked := d.Removed
	for _, c := range d.Added {
		if c.Why != "" {
			asked = append(asked, c)
		}
	}
	return probe.Removed(z, asked, scope, have), nil
}

// zoneChecks asks of each zone the revision removes its apex SOA
// (probe.RemovedZone), answered by the deepest planned zone above it,
// which is parsed for it, if any.
func (lz *liveZones) zoneChecks(zones []ZoneFile) ([]probe.Check, error) {
	planned := make(map[string]*ZoneFile, len(zones))
	for i, zf := range zones {
		planned[dns.CanonicalName(zf.Name)] = &zones[i]
	}
	parents := map[string]*zone.Zone{}
	var out []probe.Check
	for _, apex := range lz.removed {
		var parent *ZoneFile
		for off, end := dns.NextLabel(apex, 0); !end && parent == nil; off, end = dns.NextLabel(apex, off) {
			parent = planned[apex[off:]]
		}
		if parent == nil && apex != "." {
			parent = planned["."]
		}
		if parent == nil {
			out = append(out, probe.RemovedZone(apex, nil))
			continue
		}
		z := parents[parent.Name]
		if z == nil {
			var err error
			if z, err = zone.ParseChecked(parent.Path, parent.Name); err != nil {
				return nil, err
			}
			parents[parent.Name] = z
		}
		out = append(out, probe.RemovedZone(apex, z))
	}
	return out, nil
}
