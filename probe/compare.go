package probe

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// RecursionCheckName is asked with recursion desired to prove a server
// refuses to recurse. It is under .invalid (RFC 6761), so even a server
// that does recurse makes no query on the Internet for it.
const RecursionCheckName = "dnsroll-recursion-check.invalid."

// answers are one server's answers to every check over one protocol.
type answers struct {
	sets    []zone.RRset
	replied []bool
	// nxdomain marks the NXDOMAIN answers, whose sets carry no flag for
	// it: see existence.
	nxdomain []bool
	serials  map[string]uint32
}

// collect turns observations into comparable answers: the answer
// section with its RRSIGs and, for a referral, its NS set and glue. An RCODE other than
// NOERROR and NXDOMAIN, and an AA flag other than expected, become
// flags ("rcode SERVFAIL"), so that they show up as differences too.
func collect(checks []Check, obs []observed) *answers {
	a := &answers{sets: make([]zone.RRset, len(obs)), replied: make([]bool, len(obs)), nxdomain: make([]bool, len(obs)), serials: map[string]uint32{}}
	for i, o := range obs {
		c := checks[i]
		var flags []string
		if o.got.Rcode != dns.RcodeSuccess && o.got.Rcode != dns.RcodeNameError {
			flags = append(flags, "rcode "+rcode(o.got.Rcode))
		}
		switch {
		case o.replied && !o.aa && !c.Want.Referral && c.Want.Rcode != dns.RcodeRefused:
			flags = append(flags, "no AA flag")
		case o.replied && o.aa && c.Want.Referral && o.got.Rcode != dns.RcodeNameError:
			// An NXDOMAIN is no referral: a cut one side lacks shows
			// as added or removed, not as a flag.
			flags = append(flags, "AA flag on a referral")
		}
		rrs := o.got.RRs.Merge(o.got.Authority).Merge(o.got.Additional).Merge(zone.FromWire(o.sigs))
		a.sets[i] = zone.RRset{Name: c.Name, Type: c.Type, RRs: rrs, Flags: flags}
		a.replied[i], a.nxdomain[i] = o.replied, o.got.Rcode == dns.RcodeNameError
		if o.soa {
			a.serials[o.zone] = o.serial
		}
	}
	return a
}

// nx reports whether the answer to check i was NXDOMAIN.
func (a *answers) nx(i int) bool { return i < len(a.nxdomain) && a.nxdomain[i] }

// complete reports whether every baseline server answered every query.
func complete(base map[string]*answers) bool {
	for _, a := range base {
		for _, ok := range a.replied {
			if !ok {
				return false
			}
		}
	}
	return true
}

// compare diffs a target's answers with its baseline's, per zone, and
// records the comparisons in rep. When changes are not expected every
// query is a diff check, and problem names the differing RRsets; when they
// are, note summarises the differences.
//
// What is compared is every query of the checks, asked of both servers:
// with all_names, every name and type in the new zone files, plus
// probe.names and probe.types, and, with changes expected, what the live
// revision's files hold and the new ones do not (Removed), when the
// worker has them. Zone transfers are closed, so otherwise names and
// types that only blue has are seen only when probe.names or probe.types
// list them; the SOA serial check still catches a blue that is ahead. Differences in the RCODE and a missing AA flag count as
// differences (see existence for NOERROR against NXDOMAIN).
func compare(rep *Report, checks []Check, got, base *answers, bname string, s Settings) (problem, note string) {
	type side struct {
		old, new []zone.RRset
		skipped  []int
	}
	zones := map[string]*side{}
	for i, c := range checks {
		z := zones[c.Zone]
		if z == nil {
			z = &side{}
			zones[c.Zone] = z
		}
		if !got.replied[i] || !base.replied[i] {
			z.skipped = append(z.skipped, i)
			continue
		}
		o, n := existence(base.sets[i], got.sets[i], base.nx(i), got.nx(i))
		z.old, z.new = append(z.old, o), append(z.new, n)
	}
	var comps []Comparison
	var differs []bool
	defer func() {
		rep.Diffs, rep.DiffsOmitted = bound(comps, differs, s.Samples)
		note, problem = clip(note, maxReason), clip(problem, maxReason)
	}()
	for _, name := range slices.Sorted(maps.Keys(zones)) {
		z := zones[name]
		d := zone.DiffRRsets(z.old, z.new)
		comps = append(comps, Comparison{Zone: name, Against: bname, Compared: len(z.new), Skipped: len(z.skipped), Summary: d.Summary(), Diff: clipSets(d.Limit(s.Samples), 10)})
		differs = append(differs, !d.Empty() || len(z.skipped) > 0)
		if s.ExpectChanges {
			if !d.Empty() {
				note = joinNote(note, fmt.Sprintf("differs from %s as expected: %s", bname, d.Summary()))
				if !d.SerialChanged {
					note = joinNote(note, "the content of "+name+" changed but its serial did not")
				}
			}
			if len(z.skipped) > 0 {
				note = joinNote(note, fmt.Sprintf("%d queries of %s not compared: no answer from it or %s", len(z.skipped), name, bname))
			}
			continue
		}
		differ := 0
		for _, l := range [][]zone.RRsetChange{d.Added, d.Removed, d.Changed} {
			for _, c := range l {
				differ++
				rep.add(Result{Check: c.Name + " " + c.Type, Kind: KindDiff, Outcome: OutcomeFail, Detail: clip("differs from "+bname+": "+c.String(), 400)}, s.Samples)
			}
		}
		for range len(z.new) - differ {
			rep.add(Result{Kind: KindDiff, Outcome: OutcomePass}, 0)
		}
		for _, i := range z.skipped {
			rep.add(Result{Check: checks[i].String(), Kind: KindDiff, Outcome: OutcomeError, Detail: "not compared: no answer from this server or " + bname}, s.Samples)
		}
		if !d.Empty() {
			problem = joinNote(problem, fmt.Sprintf("differs from %s: %s", bname, d.Describe(3)))
		}
		if len(z.skipped) > 0 {
			problem = joinNote(problem, fmt.Sprintf("could not be compared with %s for %d queries of %s: no answer", bname, len(z.skipped), name))
		}
	}
	return problem, note
}

// existence flags the RCODEs of two answers with the same records (none,
// or a CNAME chain) where one is NXDOMAIN and the other NOERROR: one
// server says that the name does not exist, the other that it holds other
// types, such as a TXT at a name of probe.names asked for A. Answers whose
// records differ show a name added or removed already, and stay as they
// are.
func existence(old, new zone.RRset, oldNX, newNX bool) (zone.RRset, zone.RRset) {
	if oldNX == newNX || !old.RRs.Equal(new.RRs) {
		return old, new
	}
	flag := func(s zone.RRset, nx bool) zone.RRset {
		rc := dns.RcodeSuccess
		if nx {
			rc = dns.RcodeNameError
		}
		s.Flags = append(slices.Clip(s.Flags), "rcode "+rcode(rc))
		return s
	}
	return flag(old, oldNX), flag(new, newNX)
}

// bound keeps every comparison while there are at most n, else the n
// first of those that differ, and others to fill n: a fleet of any size
// makes a small report. It returns how many it left out.
func bound(comps []Comparison, differs []bool, n int) ([]Comparison, int) {
	if len(comps) <= n {
		return comps, 0
	}
	var kept, same []Comparison
	for i, c := range comps {
		if differs[i] {
			kept = append(kept, c)
		} else if len(same) < n {
			same = append(same, c)
		}
	}
	kept = append(kept, same...)[:n]
	return kept, len(comps) - n
}

// clipSets keeps at most n records of each side of each change, so one
// huge RRset cannot bloat workflow history.
func clipSets(d zone.ZoneDiff, n int) zone.ZoneDiff {
	cut := func(rrs []string) []string {
		if len(rrs) <= n {
			return rrs
		}
		return append(slices.Clone(rrs[:n]), fmt.Sprintf("; and %d more", len(rrs)-n))
	}
	for _, l := range []*[]zone.RRsetChange{&d.Added, &d.Removed, &d.Changed} {
		*l = slices.Clone(*l)
		for i := range *l {
			(*l)[i].Old, (*l)[i].New = cut((*l)[i].Old), cut((*l)[i].New)
		}
	}
	return d
}

// joinNote joins a note or problem to a, unless a is already longer
// than the analysis keeps: with many zones, joining all would be
// quadratic.
func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case len(a) > maxReason:
		return a
	}
	return a + "; " + b
}

// Comparison is how one zone's answers on a target compare with its
// baseline's (green against blue), over the queries both answered.
type Comparison struct {
	Zone     string `json:"zone"`
	Against  string `json:"against"`
	Compared int    `json:"compared"`
	// Skipped queries got no answer from one of the two servers.
	Skipped int           `json:"skipped,omitempty"`
	Summary string        `json:"summary"`
	Diff    zone.ZoneDiff `json:"diff"`
}

// checkSerials adds a serial check per zone to rep: the serial seen must
// be the zone file's and not behind the baseline's in RFC 1982 order. It
// returns the failures' details. allowBehind skips the order check, for a
// deliberate return to an older revision.
//
// Afterwards rep.Serials keeps at most samples zones, those that failed
// first, so that a report stays small for any number of zones.
func checkSerials(rep *Report, want map[string]uint32, base *answers, bname string, samples int, allowBehind bool) []string {
	wants := make(map[string]uint32, len(want))
	for z, s := range want {
		wants[dns.CanonicalName(z)] = s
	}
	zones := map[string]bool{}
	for z := range wants {
		zones[z] = true
	}
	for z := range rep.Serials {
		zones[z] = true
	}
	var problems, bad []string
	defer func() { rep.Serials = keepSerials(rep.Serials, bad, samples) }()
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		res := Result{Check: z + " serial", Kind: KindSerial, Outcome: OutcomeFail}
		got, seen := rep.Serials[z]
		w, hasWant := wants[z]
		var b uint32
		hasBase := false
		if base != nil {
			b, hasBase = base.serials[z]
		}
		switch {
		case !seen:
			res.Outcome, res.Detail = OutcomeError, "no SOA serial seen for "+z
		case hasWant && got != w:
			res.Detail = fmt.Sprintf("serves %s serial %d, want %d from the zone file (%s it)", z, got, w, order(got, w))
		case hasBase && !allowBehind && zone.SerialCompare(got, b) == -1:
			res.Detail = fmt.Sprintf("serves %s serial %d, behind %s's %d (RFC 1982)", z, got, bname, b)
		case hasBase && !allowBehind && zone.SerialCompare(got, b) == 2:
			res.Detail = fmt.Sprintf("serves %s serial %d, exactly 2^31 from %s's %d: their order is undefined (RFC 1982)", z, got, bname, b)
		default:
			res.Outcome = OutcomePass
		}
		rep.add(res, samples)
		if res.Outcome == OutcomeFail {
			problems = append(problems, res.Detail)
		}
		if res.Outcome != OutcomePass {
			bad = append(bad, z)
		}
	}
	return problems
}

// keepSerials is at most n of serials: those of the zones in bad
// first, then the others in name order.
func keepSerials(serials map[string]uint32, bad []string, n int) map[string]uint32 {
	if len(serials) <= n {
		return serials
	}
	kept := map[string]uint32{}
	for _, z := range append(bad, slices.Sorted(maps.Keys(serials))...) {
		if s, ok := serials[z]; ok && len(kept) < n {
			kept[z] = s
		}
	}
	return kept
}

func order(a, b uint32) string {
	switch zone.SerialCompare(a, b) {
	case -1:
		return "behind"
	case 1:
		return "ahead of"
	}
	return "not comparable with"
}

// checkRecursion asks RecursionCheckName with recursion desired. An
// authoritative-only server answers REFUSED without RA; anything else
// means it would resolve for anyone (an open resolver, usable for
// amplification attacks). A server authoritative for the root zone
// (root) owns the name's zone too, and answers it NXDOMAIN with the AA
// flag and without RA.
func (p *Prober) checkRecursion(ctx context.Context, addr, proto string, root bool) Result {
	res := Result{Check: "recursion " + proto, Kind: KindRecursion, Protocol: proto, Outcome: OutcomeError}
	r, err := p.query(ctx, addr, proto, RecursionCheckName, dns.TypeA, true)
	switch {
	case err != nil:
		res.Detail = describe(err, p)
	case r.msg.RecursionAvailable:
		res.Outcome, res.Detail = OutcomeFail, fmt.Sprintf("a recursive query for %s got %s with the RA flag: the server offers recursion", RecursionCheckName, rcode(r.msg.Rcode))
	case root && r.msg.Rcode == dns.RcodeNameError && r.msg.Authoritative:
		res.Outcome = OutcomePass
	case r.msg.Rcode != dns.RcodeRefused:
		res.Outcome, res.Detail = OutcomeFail, fmt.Sprintf("a recursive query for %s got %s, want REFUSED from an authoritative-only server", RecursionCheckName, rcode(r.msg.Rcode))
	default:
		res.Outcome = OutcomePass
	}
	return res
}
