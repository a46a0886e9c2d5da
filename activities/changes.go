package activities

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dnsroll/dnsroll/bundle"
)

// Changes is what a rollout changes against the live revision, the bundle
// of the fleet's last rollout that succeeded, for the operator at the
// approval gate. It is bounded: each list counts every name but lists at
// most MaxChangeNames, so a fleet of 100,000 zones keeps its plan and
// status small.
type Changes struct {
	// Live is the live revision's bundle; empty when it is not known.
	Live string `json:"live,omitempty"`
	// ZonesChanged are the zones whose planned SOA serial differs from the
	// one blue serves; ZonesUnread counts those blue did not tell.
	ZonesChanged Names `json:"zones_changed"`
	ZonesUnread  int   `json:"zones_unread,omitempty"`
	// ZonesAdded and ZonesRemoved are against the live revision's zones,
	// and the Ansible lists against its nameserver playbook's files: nil
	// when this worker has no manifest of it, and Unknown says why.
	ZonesAdded     *Names `json:"zones_added,omitempty"`
	ZonesRemoved   *Names `json:"zones_removed,omitempty"`
	AnsibleChanged *Names `json:"ansible_changed,omitempty"`
	AnsibleAdded   *Names `json:"ansible_added,omitempty"`
	AnsibleRemoved *Names `json:"ansible_removed,omitempty"`
	Unknown        string `json:"unknown,omitempty"`
}

// Names is a bounded list: Count names, the first MaxChangeNames of them
// (in name order) listed.
type Names struct {
	Count int      `json:"count"`
	Names []string `json:"names,omitempty"`
}

// MaxChangeNames bounds each list of Changes.
const MaxChangeNames = 20

// names bounds sorted names.
func names(all []string) Names {
	return Names{Count: len(all), Names: slices.Clip(all[:min(len(all), MaxChangeNames)])}
}

// String is the list for a line of text: the names, and how many more.
func (n Names) String() string {
	if n.Count == 0 {
		return "none"
	}
	s := strings.Join(n.Names, ", ")
	if more := n.Count - len(n.Names); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// changes compares the planned revision with what is live: the planned
// zones' serials with blue's (by zone, from readBlueSerials: nil when
// there is no blue, and no entry for a zone blue did not tell), and the planned manifest with the
// live one's, which this worker's store has when a rollout it planned
// put it there. why is the starter's reason when live is empty.
func changes(store bundle.Store, live, why string, planned bundle.Manifest, blue map[string]blueSerial) *Changes {
	c := &Changes{Live: live}
	var changed []string
	for _, z := range planned.Zones {
		switch s, ok := blue[z.Name]; {
		case blue == nil:
		case !ok:
			c.ZonesUnread++
		case s.serial != z.Serial:
			changed = append(changed, z.Name)
		}
	}
	slices.Sort(changed)
	c.ZonesChanged = names(changed)
	was, ok, err := store.Load(live)
	switch {
	case live == "" && why != "":
		c.Unknown = "unknown: " + why
		return c
	case live == "":
		c.Unknown = "no earlier rollout of this fleet succeeded: nothing to compare with"
		return c
	case err != nil:
		c.Unknown = fmt.Sprintf("unknown: reading the manifest of %s: %v", bundle.Short(live), err)
		return c
	case !ok:
		c.Unknown = "unknown: this worker has no manifest of " + bundle.Short(live)
		return c
	}
	added, removed := zoneNames(planned.Zones, was.Zones), zoneNames(was.Zones, planned.Zones)
	c.ZonesAdded, c.ZonesRemoved = &added, &removed
	ansible := map[string][]string{}
	for _, f := range bundle.Changed(withoutZones(was), withoutZones(planned)) {
		i := strings.LastIndexByte(f, ' ')
		ansible[f[i+1:]] = append(ansible[f[i+1:]], f[:i])
	}
	ch, ad, rm := names(ansible["changed"]), names(ansible["added"]), names(ansible["removed"])
	c.AnsibleChanged, c.AnsibleAdded, c.AnsibleRemoved = &ch, &ad, &rm
	return c
}

// zoneNames are the names of the zones of a that b does not have, sorted.
func zoneNames(a, b []bundle.Zone) Names {
	in := make(map[string]bool, len(b))
	for _, z := range b {
		in[z.Name] = true
	}
	var out []string
	for _, z := range a {
		if !in[z.Name] {
			out = append(out, z.Name)
		}
	}
	slices.Sort(out)
	return names(out)
}

// withoutZones is m without its zone files, whose paths may change with
// the revision: what is left are the nameserver playbook's files. A zone
// file's name in m is its path (Zone.Path, on the worker that planned m)
// relative to that worker's fleet directory, or the path itself.
func withoutZones(m bundle.Manifest) bundle.Manifest {
	byBase := make(map[string][]string, len(m.Zones))
	for _, z := range m.Zones {
		p := filepath.ToSlash(z.Path)
		byBase[path.Base(p)] = append(byBase[path.Base(p)], p)
	}
	out := bundle.Manifest{Hash: m.Hash}
	for _, f := range m.Files {
		if !slices.ContainsFunc(byBase[path.Base(f.Name)], func(p string) bool { return p == f.Name || strings.HasSuffix(p, "/"+f.Name) }) {
			out.Files = append(out.Files, f)
		}
	}
	return out
}
