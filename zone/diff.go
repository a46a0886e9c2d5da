package zone

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// RRsetChange is one RRset that differs between two versions of a zone.
// Old is empty for an added RRset, New for a removed one.
type RRsetChange struct {
	Name string   `json:"name"`
	Type string   `json:"type"`
	Old  []string `json:"old,omitempty"`
	New  []string `json:"new,omitempty"`
}

// ZoneDiff is what changed between two versions of a zone, so a rollout can
// show (and gate on) unexpected changes before green takes traffic. A SOA
// that differs only in its serial is reported by SerialChanged alone.
type ZoneDiff struct {
	Added         []RRsetChange `json:"added,omitempty"`
	Removed       []RRsetChange `json:"removed,omitempty"`
	Changed       []RRsetChange `json:"changed,omitempty"`
	SerialChanged bool          `json:"serial_changed,omitempty"`
	OldSerial     uint32        `json:"old_serial"`
	NewSerial     uint32        `json:"new_serial"`
	// MoreAdded, MoreRemoved and MoreChanged count entries dropped by Limit.
	MoreAdded   int `json:"more_added,omitempty"`
	MoreRemoved int `json:"more_removed,omitempty"`
	MoreChanged int `json:"more_changed,omitempty"`
}

// Diff compares every RRset of old and new. A nil zone is empty, which makes
// everything in the other one added or removed. Lists are sorted by name
// and then type. Call Limit before returning a diff from an activity.
func Diff(old, new *Zone) ZoneDiff {
	var d ZoneDiff
	keys := map[rrKey]bool{}
	for _, z := range []*Zone{old, new} {
		if z == nil {
			continue
		}
		for k := range z.rrsets {
			keys[k] = true
		}
	}
	if old != nil {
		d.OldSerial = old.Serial()
	}
	if new != nil {
		d.NewSerial = new.Serial()
	}
	d.SerialChanged = old != nil && new != nil && d.OldSerial != d.NewSerial
	sorted := make([]rrKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].name != sorted[j].name {
			return sorted[i].name < sorted[j].name
		}
		return dns.TypeToString[sorted[i].qtype] < dns.TypeToString[sorted[j].qtype]
	})
	for _, k := range sorted {
		c := RRsetChange{Name: k.name, Type: dns.TypeToString[k.qtype], Old: old.set(k), New: new.set(k)}
		switch {
		case len(c.Old) == 0:
			d.Added = append(d.Added, c)
		case len(c.New) == 0:
			d.Removed = append(d.Removed, c)
		case k.qtype == dns.TypeSOA && old != nil && new != nil:
			if soaSansSerial(old.soa) != soaSansSerial(new.soa) {
				d.Changed = append(d.Changed, c)
			}
		case !slices.Equal(c.Old, c.New):
			d.Changed = append(d.Changed, c)
		}
	}
	return d
}

func (z *Zone) set(k rrKey) []string {
	if z == nil {
		return nil
	}
	return canonicalSet(z.rrsets[k], "")
}

func soaSansSerial(soa *dns.SOA) string {
	c := *soa
	c.Serial = 0
	return CanonicalRR(&c)
}

// Empty reports whether no RRset changed; a serial bump alone is empty.
func (d ZoneDiff) Empty() bool {
	return d.counts() == [3]int{}
}

func (d ZoneDiff) counts() [3]int {
	return [3]int{len(d.Added) + d.MoreAdded, len(d.Removed) + d.MoreRemoved, len(d.Changed) + d.MoreChanged}
}

// summaryMax bounds how many RRsets Summary names.
const summaryMax = 10

// Summary is one line for operators, e.g.
// "1 added, 0 removed, 2 changed: www.example.com. A, mail.example.com. MX".
// It names at most 10 RRsets, added ones first.
func (d ZoneDiff) Summary() string {
	if d.Empty() {
		if d.SerialChanged {
			return fmt.Sprintf("no changes (serial %d -> %d)", d.OldSerial, d.NewSerial)
		}
		return "no changes"
	}
	var names []string
	for _, l := range [][]RRsetChange{d.Added, d.Removed, d.Changed} {
		for _, c := range l {
			names = append(names, c.Name+" "+c.Type)
		}
	}
	c := d.counts()
	if n := c[0] + c[1] + c[2] - min(len(names), summaryMax); n > 0 {
		names = append(names[:min(len(names), summaryMax)], fmt.Sprintf("and %d more", n))
	}
	return fmt.Sprintf("%d added, %d removed, %d changed: %s", c[0], c[1], c[2], strings.Join(names, ", "))
}

// Limit keeps at most n entries in each list and counts the dropped ones
// in the More fields, so the diff of a rewritten zone stays small enough for
// workflow history. Counts in Summary and Empty stay exact.
func (d ZoneDiff) Limit(n int) ZoneDiff {
	cut := func(l []RRsetChange, more *int) []RRsetChange {
		if len(l) <= n {
			return l
		}
		*more += len(l) - n
		return slices.Clone(l[:n])
	}
	d.Added = cut(d.Added, &d.MoreAdded)
	d.Removed = cut(d.Removed, &d.MoreRemoved)
	d.Changed = cut(d.Changed, &d.MoreChanged)
	return d
}
