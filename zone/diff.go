package zone

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// RRsetChange is one RRset that differs between two versions of a zone.
// Old is empty for an added RRset, New for a removed one. Why is set
// for an answer no RRset of either file changes: a wildcard's, which an
// empty non-terminal begins or ends (see Diff).
type RRsetChange struct {
	Name string   `json:"name"`
	Type string   `json:"type"`
	Old  []string `json:"old,omitempty"`
	New  []string `json:"new,omitempty"`
	Why  string   `json:"why,omitempty"`
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

// RRset is the answer to one query, keyed by owner name and type: the
// records (for a query that followed a CNAME, the chain and the target's
// records; for a referral, the NS set and glue too) and, for live
// answers, Flags that differ from a plain authoritative answer ("rcode
// SERVFAIL", "no AA flag"). It is how live answers are diffed.
type RRset struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	RRs   Records  `json:"rrs,omitempty"`
	Flags []string `json:"flags,omitempty"`
}

// empty reports whether s says nothing: an empty set is an absent one.
func (s RRset) empty() bool { return len(s.RRs) == 0 && len(s.Flags) == 0 }

// text renders s for a change: its records, then its flags as "; flag".
func (s RRset) text() []string {
	out := s.RRs.Strings()
	for _, f := range s.Flags {
		out = append(out, "; "+f)
	}
	return out
}

// Diff compares every RRset of old and new. A nil zone is empty, which makes
// everything in the other one added or removed. Lists are sorted by name
// and then type. Call Limit before returning a diff from an activity.
// A name one side's wildcard answers and the other holds as an empty
// non-terminal (RFC 4592 §2.2.2) shows the wildcard's answers there as
// removed or added, with Why: no RRset of either file changes there.
func Diff(old, new *Zone) ZoneDiff {
	d := DiffRRsets(old.sets(), new.sets())
	if old != nil && new != nil {
		d.Removed = byNameAndType(append(d.Removed, wildcardEnded(old, new, false)...))
		d.Added = byNameAndType(append(d.Added, wildcardEnded(new, old, true)...))
	}
	if old != nil {
		d.OldSerial = old.Serial()
	}
	if new != nil {
		d.NewSerial = new.Serial()
	}
	d.SerialChanged = old != nil && new != nil && d.OldSerial != d.NewSerial
	return d
}

// wildcardEnded are the answers a wildcard of a synthesises at the names
// that b holds as empty non-terminals and a does not hold: b answers
// them NODATA. Only the empty non-terminals are walked, not the names a
// wildcard covers. added says that a is the new zone, b the old.
func wildcardEnded(a, b *Zone, added bool) []RRsetChange {
	var out []RRsetChange
	for n := range b.exists {
		if len(b.types[n]) > 0 || a.exists[n] {
			continue
		}
		wild := a.wildcardFor(n)
		if wild == "" || occluded(a, n) || occluded(b, n) {
			continue
		}
		why := "now an empty non-terminal, which " + wild + " does not answer, nor the names below it"
		if added {
			why = "no longer an empty non-terminal: " + wild + " answers it"
		}
		for _, t := range a.types[wild] {
			if t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3 {
				continue
			}
			c := RRsetChange{Name: n, Type: TypeName(t), Why: why}
			rrs := NewRecords(a.rrsets[rrKey{wild, t}], n).Strings()
			if added {
				c.New = rrs
			} else {
				c.Old = rrs
			}
			out = append(out, c)
		}
	}
	return out
}

// occluded reports whether a cut or a DNAME of z answers for name.
func occluded(z *Zone, name string) bool {
	cut, dname := z.above(name)
	return cut != "" || dname != ""
}

// byNameAndType sorts changes as DiffRRsets does.
func byNameAndType(l []RRsetChange) []RRsetChange {
	slices.SortFunc(l, func(a, b RRsetChange) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Type, b.Type))
	})
	return l
}

func (z *Zone) sets() []RRset {
	if z == nil {
		return nil
	}
	out := make([]RRset, 0, len(z.rrsets))
	for k, rrs := range z.rrsets {
		out = append(out, RRset{Name: k.name, Type: TypeName(k.qtype), RRs: NewRecords(rrs, "")})
	}
	return out
}

// DiffRRsets compares two servers' answers (or two zones' RRsets) as DNS
// data (Records.Equal). Names (in wire form, NormalName) and types are
// compared case-insensitively.
// An empty set is an absent one. A SOA that differs only in its serial is
// not a change: the serials go in OldSerial and NewSerial, and
// SerialChanged says whether they differ. Changed lists the RRsets whose
// own records changed before those that differ only further down a chain.
func DiffRRsets(old, new []RRset) ZoneDiff {
	type key struct{ name, typ string }
	index := func(sets []RRset) map[key]RRset {
		m := make(map[key]RRset, len(sets))
		for _, s := range sets {
			if !s.empty() {
				m[key{dns.CanonicalName(s.Name), strings.ToUpper(s.Type)}] = s
			}
		}
		return m
	}
	o, n := index(old), index(new)
	keys := make([]key, 0, len(o)+len(n))
	for k := range o {
		keys = append(keys, k)
	}
	for k := range n {
		if _, dup := o[k]; !dup {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].typ < keys[j].typ
	})
	var d ZoneDiff
	// following are the changed RRsets whose own records are the same:
	// they differ further down a CNAME or DNAME chain, after the RRsets
	// where the chain changed, which would be lost among them.
	var following []RRsetChange
	for _, k := range keys {
		os, oldOK := o[k]
		ns, newOK := n[k]
		// Records are rendered only for changes: most RRsets are equal.
		change := func() RRsetChange { return RRsetChange{Name: k.name, Type: k.typ, Old: os.text(), New: ns.text()} }
		switch {
		case !oldOK:
			d.Added = append(d.Added, change())
		case !newOK:
			d.Removed = append(d.Removed, change())
		case k.typ == "SOA":
			oSans, oser := soaSansSerial(os.RRs)
			nSans, nser := soaSansSerial(ns.RRs)
			d.OldSerial, d.NewSerial, d.SerialChanged = oser, nser, oser != nser
			if !oSans.Equal(nSans) || !slices.Equal(os.Flags, ns.Flags) {
				d.Changed = append(d.Changed, change())
			}
		case !os.RRs.Equal(ns.RRs) || !slices.Equal(os.Flags, ns.Flags):
			c := change()
			// Another type at a CNAME answers with the CNAME, whose own
			// query shows its change.
			_, oldCNAME := o[key{k.name, "CNAME"}]
			_, newCNAME := n[key{k.name, "CNAME"}]
			atCNAME := k.typ != "CNAME" && (oldCNAME || newCNAME) && onlyCNAME(os.RRs.ownedBy(k.name)) && onlyCNAME(ns.RRs.ownedBy(k.name))
			if slices.Equal(os.Flags, ns.Flags) && (atCNAME || os.RRs.ownedBy(k.name).Equal(ns.RRs.ownedBy(k.name))) {
				following = append(following, c)
			} else {
				d.Changed = append(d.Changed, c)
			}
		}
	}
	d.Changed = append(d.Changed, following...)
	return d
}

// onlyCNAME reports whether r is a CNAME, with its signatures, and
// nothing else.
func onlyCNAME(r Records) bool {
	return len(r) > 0 && !slices.ContainsFunc(r, func(rr dns.RR) bool {
		sig, ok := rr.(*dns.RRSIG)
		return rr.Header().Rrtype != dns.TypeCNAME && !(ok && sig.TypeCovered == dns.TypeCNAME)
	})
}

// ownedBy is the records of r at name (canonical), but for a CNAME that
// a DNAME above name in r synthesised.
func (r Records) ownedBy(name string) Records {
	synthesised := slices.ContainsFunc(r, func(rr dns.RR) bool {
		owner := dns.CanonicalName(rr.Header().Name)
		return rr.Header().Rrtype == dns.TypeDNAME && owner != name && dns.IsSubDomain(owner, name)
	})
	var out Records
	for _, rr := range r {
		if dns.CanonicalName(rr.Header().Name) == name && !(synthesised && rr.Header().Rrtype == dns.TypeCNAME) {
			out = append(out, rr)
		}
	}
	return out
}

// soaSansSerial is a SOA RRset with serial 0, and the first serial, so
// SOAs can be compared apart from their serials.
func soaSansSerial(rrs Records) (Records, uint32) {
	out := make(Records, len(rrs))
	var serial uint32
	for i, rr := range rrs {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			out[i] = rr
			continue
		}
		if i == 0 {
			serial = soa.Serial
		}
		c := *soa
		c.Serial = 0
		out[i] = &c
	}
	return out, serial
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

// Describe renders up to n changes with their records, added ones first,
// for failure messages that must name what differs, e.g.
// "changed www.example.com. A: [192.0.2.10] → [192.0.2.20]".
func (d ZoneDiff) Describe(n int) string {
	var parts []string
	for i, l := range [][]RRsetChange{d.Added, d.Removed, d.Changed} {
		for _, c := range l {
			if len(parts) == n {
				break
			}
			parts = append(parts, [...]string{"added", "removed", "changed"}[i]+" "+c.String())
		}
	}
	c := d.counts()
	if more := c[0] + c[1] + c[2] - len(parts); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, "; ")
}

// String reads "www.example.com. A: [192.0.2.10] → [192.0.2.20]". Records
// of the change's own name and type show their RDATA only, others (the
// links of a CNAME chain) their type and, at another name, the name; TTLs show only when
// nothing else differs, and an RRSIG's signature only when nothing but
// signatures differs. In a large set, only the records that differ show
// ("[10.0.0.7] → [] (99 records the same)"), and a TTL change its first
// record: failure reasons are clipped, and would cut off the difference.
func (c RRsetChange) String() string {
	oldRRs, newRRs, same := c.Old, c.New, 0
	inBoth := common(c.Old, c.New)
	if o := without(c.Old, inBoth); len(c.Old)-len(o) > largeSet {
		oldRRs, newRRs, same = o, without(c.New, inBoth), len(c.Old)-len(o)
	}
	old, new := c.render(oldRRs, 0), c.render(newRRs, 0)
	if old == new {
		old, new = c.render(oldRRs, withSigs), c.render(newRRs, withSigs)
	}
	if old == new {
		first := func(rrs []string) string {
			if len(rrs) <= largeSet {
				return c.render(rrs, withTTLs)
			}
			return strings.TrimSuffix(c.render(rrs[:1], withTTLs), "]") + fmt.Sprintf(", and %d more]", len(rrs)-1)
		}
		old, new = first(oldRRs), first(newRRs)
	}
	s := fmt.Sprintf("%s %s: %s → %s", c.Name, c.Type, old, new)
	if same > 0 {
		s += fmt.Sprintf(" (%d records the same)", same)
	}
	if c.Why != "" {
		s += " (" + c.Why + ")"
	}
	return s
}

// largeSet is the most records a change shows in full.
const largeSet = 3

// common is the records in both a and b, as many times as in both.
func common(a, b []string) map[string]int {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	out := map[string]int{}
	for _, s := range b {
		if count[s] > 0 {
			count[s]--
			out[s]++
		}
	}
	return out
}

// without is rrs less the records in drop, as many times as counted.
func without(rrs []string, drop map[string]int) []string {
	left := maps.Clone(drop)
	var out []string
	for _, s := range rrs {
		if left[s] > 0 {
			left[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}

// How much of each record render shows: RDATA but an RRSIG's signature,
// then with signatures, then with signatures and TTLs.
const (
	withSigs = 1 + iota
	withTTLs
)

func (c RRsetChange) render(rrs []string, detail int) string {
	out := make([]string, 0, len(rrs))
	for _, s := range rrs {
		f := splitRR(s)
		// A flag ("; AA flag on a referral") is not a record, whatever
		// its spaces.
		if len(f) < 5 || strings.HasPrefix(s, "; ") {
			out = append(out, s)
			continue
		}
		r := f[4]
		if f[3] == "RRSIG" && detail < withSigs {
			r = r[:max(strings.LastIndexByte(r, ' '), 0)]
		}
		switch {
		case f[0] != c.Name:
			r = f[0] + " " + f[3] + " " + r
		case !sameType(f[3], c.Type):
			r = f[3] + " " + r
		}
		if detail == withTTLs {
			r = "ttl " + f[1] + " " + r
		}
		out = append(out, r)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// sameType reports whether a record's type as printed (TYPE259 where
// miekg/dns does not know it) is typ (DOA).
func sameType(printed, typ string) bool {
	if printed == typ {
		return true
	}
	a, okA := TypeCode(printed)
	b, okB := TypeCode(typ)
	return okA && okB && a == b
}

// splitRR splits a record's presentation text ("owner ttl class type
// rdata", single spaces) into those five fields. A name may hold a space
// escaped as "\ ", which is not a separator.
func splitRR(s string) []string {
	var f []string
	start := 0
	for i := 0; i < len(s) && len(f) < 4; i++ {
		switch s[i] {
		case '\\':
			i++ // the escaped character, whatever it is
		case ' ':
			f = append(f, s[start:i])
			start = i + 1
		}
	}
	return append(f, s[start:])
}
