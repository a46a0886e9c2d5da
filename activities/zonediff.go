package activities

import (
	"cmp"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/zone"
)

// ZoneChange is what a revision changes in one zone against the live
// revision: its RRsets added, removed and changed, and its serials.
type ZoneChange struct {
	Zone string        `json:"zone"`
	Diff zone.ZoneDiff `json:"diff"`
}

// MaxZoneDiffs bounds the zones a plan diffs: a revision that rewrites
// a fleet of 100,000 zones is shown by the first ones and a count.
const MaxZoneDiffs = 20

// zoneDiffs compares each zone of the planned revision whose file
// differs from the live revision's (both as this worker's bundle store
// keeps them) RRset by RRset, each diff cut to perZone entries of a kind.
// Zones added or removed are Changes' to say, and so is why there is
// nothing to compare with: without the live snapshot it returns nothing.
func zoneDiffs(store bundle.Store, live string, planned bundle.Manifest, perZone int) (diffs []ZoneChange, more int) {
	pairs, _ := differingZones(store, live, planned)
	for _, p := range pairs {
		if len(diffs) == MaxZoneDiffs {
			more++
			continue
		}
		d, err := p.diff()
		if err != nil {
			continue
		}
		if !d.Empty() || d.SerialChanged {
			diffs = append(diffs, ZoneChange{Zone: p.zone, Diff: d.Limit(perZone)})
		}
	}
	return diffs, more
}

// zoneFilePair is one zone's file in the live revision and in the planned
// one, as this worker's bundle store keeps them.
type zoneFilePair struct{ zone, from, to string }

// diff compares the two files RRset by RRset.
func (p zoneFilePair) diff() (zone.ZoneDiff, error) {
	old, err := zone.ParseFile(p.from, p.zone)
	if err != nil {
		return zone.ZoneDiff{}, err
	}
	cur, err := zone.ParseFile(p.to, p.zone)
	if err != nil {
		return zone.ZoneDiff{}, err
	}
	return zone.Diff(old, cur), nil
}

// differingZones are the planned revision's zones, by name, whose file
// differs from the live revision's; none without the live manifest.
// unread says why files that differ cannot be read: this worker's
// snapshot of either revision is gone or damaged.
func differingZones(store bundle.Store, live string, planned bundle.Manifest) (pairs []zoneFilePair, unread string) {
	was, ok, err := store.Load(live)
	if live == "" || !ok || err != nil {
		return nil, ""
	}
	oldFiles, newFiles := filesOfZones(was), filesOfZones(planned)
	zones := slices.Clone(planned.Zones)
	slices.SortFunc(zones, func(a, b bundle.Zone) int { return cmp.Compare(a.Name, b.Name) })
	for _, z := range zones {
		from, ok := oldFiles[z.Name]
		to := newFiles[z.Name]
		if !ok || from.SHA256 == to.SHA256 {
			continue
		}
		pairs = append(pairs, zoneFilePair{zone: z.Name, from: from.Name, to: to.Name})
	}
	if len(pairs) == 0 {
		return nil, ""
	}
	oldRoot, ok := store.Open(live)
	if !ok {
		return nil, "this worker's snapshot of " + bundle.Short(live) + " is gone or damaged"
	}
	newRoot, ok := store.Open(planned.Hash)
	if !ok {
		return nil, "this worker's snapshot of the planned " + bundle.Short(planned.Hash) + " is gone or damaged"
	}
	for i := range pairs {
		pairs[i].from, pairs[i].to = bundle.In(oldRoot, pairs[i].from), bundle.In(newRoot, pairs[i].to)
	}
	return pairs, ""
}

// filesOfZones maps each zone of m to its file in m. A manifest names files
// relative to the fleet's directory at the time, and its zones by their
// path then, so a zone's file is the one whose name ends its path: the
// fleet's directory may differ between two revisions. Each zone tries
// the few endings of its path, so a fleet of 100,000 zones takes no
// longer than reading its manifest.
func filesOfZones(m bundle.Manifest) map[string]bundle.File {
	byName := make(map[string]bundle.File, len(m.Files))
	for _, f := range m.Files {
		byName[f.Name] = f
	}
	out := make(map[string]bundle.File, len(m.Zones))
	for _, z := range m.Zones {
		path := filepath.ToSlash(z.Path)
		for name := path; ; {
			if f, ok := byName[name]; ok {
				out[z.Name] = f
				break
			}
			i := strings.IndexByte(name, '/')
			if i < 0 {
				break
			}
			name = name[i+1:]
		}
	}
	return out
}
