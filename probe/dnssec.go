package probe

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// KindDNSSEC: in a signed zone, every authoritative RRset of an answer
// carries an RRSIG that is valid now and for Settings.SignaturesValidFor
// more, and that verifies against the zone file's DNSKEY set; an
// NXDOMAIN, a no-data answer and an answer a wildcard made carry signed
// NSEC or NSEC3 records that prove them.
const KindDNSSEC = "dnssec"

// signed is what a signed zone's answers are checked against.
type signed struct {
	keys     map[uint16][]*dns.DNSKEY // by key tag
	validFor time.Duration
	now      time.Time
}

// signers makes, for each zone of keys with a DNSKEY set, what its
// answers' signatures are checked against.
func signers(keys map[string]zone.Records, validFor time.Duration, now time.Time) map[string]*signed {
	out := map[string]*signed{}
	for z, set := range keys {
		s := &signed{keys: map[uint16][]*dns.DNSKEY{}, validFor: validFor, now: now}
		for _, rr := range set {
			if k, ok := rr.(*dns.DNSKEY); ok {
				s.keys[k.KeyTag()] = append(s.keys[k.KeyTag()], k)
			}
		}
		if len(s.keys) > 0 {
			out[zone.NormalName(z)] = s
		}
	}
	return out
}

// checkDNSSEC checks the signatures of obs, one server's answers over one
// protocol, and adds a result per RRset (each once, though several
// answers hold it) to rep. Referrals and answers of unsigned zones are
// not checked: the parent does not sign a delegation's NS set or glue.
func checkDNSSEC(rep *Report, checks []Check, obs []observed, zones map[string]*signed, samples int) {
	if len(zones) == 0 {
		return
	}
	done := map[string]bool{}
	for i, o := range obs {
		c := checks[i]
		s := zones[zone.NormalName(c.Zone)]
		if s == nil || !o.replied {
			continue
		}
		if c.Want.Referral {
			// The parent signs what proves an unsigned delegation has
			// no DS, not the delegation's NS set or glue.
			s.checkDenial(rep, c.Zone, o.denial, done, samples)
			continue
		}
		switch o.got.Rcode {
		case dns.RcodeSuccess:
			s.checkSets(rep, c.Zone, o.got.RRs, o.sigs, done, samples)
			// A no-data or wildcard answer's NSEC or NSEC3 records, and
			// that they prove it.
			s.checkDenial(rep, c.Zone, o.denial, done, samples)
			addOnce(rep, unproved(c, o), done, samples)
		case dns.RcodeNameError:
			// The CNAMEs that lead to the name denied are signed too, and
			// one a wildcard made needs its own proof.
			s.checkSets(rep, c.Zone, o.got.RRs, o.sigs, done, samples)
			addOnce(rep, unprovedWildcards(c.Zone, o), done, samples)
			key := c.Name + " NXDOMAIN"
			if done[key] {
				continue
			}
			done[key] = true
			denial := only(o.denial, dns.TypeNSEC, dns.TypeNSEC3)
			if len(denial) == 0 {
				rep.add(Result{Check: key, Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: "no NSEC or NSEC3 record denies the name"}, samples)
				continue
			}
			// The name denied is the end of the answer's CNAME chain.
			if denied := chainEnd(c.Name, o.got.RRs); dns.IsSubDomain(zone.NormalName(c.Zone), denied) {
				if why := uncovered(denied, c.Zone, denial); why != "" {
					rep.add(Result{Check: key, Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: why}, samples)
				}
			}
			s.checkDenial(rep, c.Zone, o.denial, done, samples)
		}
	}
}

// addOnce adds each of results to rep but those done, and marks them done.
func addOnce(rep *Report, results []Result, done map[string]bool, samples int) {
	for _, res := range results {
		if !done[res.Check] {
			done[res.Check] = true
			rep.add(res, samples)
		}
	}
}

// checkDenial checks the signatures of the NSEC and NSEC3 RRsets of zone
// in authority, an answer's authority section, each once (done).
func (s *signed) checkDenial(rep *Report, zoneName string, authority []dns.RR, done map[string]bool, samples int) {
	s.checkSets(rep, zoneName, only(authority, dns.TypeNSEC, dns.TypeNSEC3), authority, done, samples)
}

// checkSets checks the signatures, among sigs, of the RRsets of zone
// in rrs, each once (done).
func (s *signed) checkSets(rep *Report, zoneName string, rrs, sigs []dns.RR, done map[string]bool, samples int) {
	for _, set := range rrsets(rrs, zoneName) {
		k := set[0].Header().Name + " " + zone.TypeName(set[0].Header().Rrtype)
		if !done[k] {
			done[k] = true
			rep.add(s.check(k, set, sigs), samples)
		}
	}
}

// rrsets groups the records of zone apex origin that the zone signs:
// not those outside it, nor CNAMEs synthesised from a DNAME in the same
// answer (servers do not sign them).
func rrsets(rrs []dns.RR, origin string) [][]dns.RR {
	origin = zone.NormalName(origin)
	var dnames []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeDNAME {
			dnames = append(dnames, rr.Header().Name)
		}
	}
	index := map[[2]any]int{}
	var out [][]dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		// SIG (RFC 2535) is itself a signature, which BIND does not sign.
		if h.Rrtype == dns.TypeRRSIG || h.Rrtype == dns.TypeSIG || !dns.IsSubDomain(origin, h.Name) {
			continue
		}
		synth := false
		for _, d := range dnames {
			synth = synth || (h.Rrtype == dns.TypeCNAME && h.Name != d && dns.IsSubDomain(d, h.Name))
		}
		if synth {
			continue
		}
		k := [2]any{h.Name, h.Rrtype}
		if i, ok := index[k]; ok {
			out[i] = append(out[i], rr)
			continue
		}
		index[k] = len(out)
		out = append(out, []dns.RR{rr})
	}
	return out
}

// check is the result for one RRset (named name, "www.example.com. A")
// given the RRSIGs received with it. One signature that is valid long
// enough and verifies is enough, as it is for resolvers; otherwise the
// first problem found is the detail.
func (s *signed) check(name string, set []dns.RR, sigs []dns.RR) Result {
	res := Result{Check: name, Kind: KindDNSSEC, Outcome: OutcomePass}
	h := set[0].Header()
	// Resolvers take a DNSKEY set only when a key the parent's DS names
	// signed it: a key-signing key (the SEP flag), where the zone has one.
	// A zone-signing key's signature alone leaves the whole zone bogus.
	sepOnly := h.Rrtype == dns.TypeDNSKEY && s.hasSEP()
	problem := "no RRSIG"
	if sepOnly {
		problem = "no RRSIG by a key-signing key (a DNSKEY with the SEP flag, 257), which resolvers need over the DNSKEY set"
	}
	first := true
	for _, rr := range sigs {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.TypeCovered != h.Rrtype || !zone.SameName(sig.Hdr.Name, h.Name) || sepOnly && !s.isSEP(sig.KeyTag) {
			continue
		}
		p, note := s.problem(sig, set)
		if p == "" {
			res.Detail = note
			return res
		}
		if first {
			problem, first = p, false
		}
	}
	res.Outcome, res.Detail = OutcomeFail, problem
	return res
}

// hasSEP says whether the zone's DNSKEY set has a key-signing key.
func (s *signed) hasSEP() bool {
	for tag := range s.keys {
		if s.isSEP(tag) {
			return true
		}
	}
	return false
}

// isSEP says whether a key of tag has the SEP flag.
func (s *signed) isSEP(tag uint16) bool {
	for _, k := range s.keys[tag] {
		if k.Flags&dns.SEP != 0 {
			return true
		}
	}
	return false
}

// problem is what is wrong with sig over set, or "". A signature of an
// algorithm that Go cannot verify (Ed448, GOST) is taken on its times and
// key tag alone, which note says: failing it would fail every rollout of
// a zone that BIND serves and resolvers validate.
func (s *signed) problem(sig *dns.RRSIG, set []dns.RR) (problem, note string) {
	inception, expiration := sigTime(sig.Inception, s.now), sigTime(sig.Expiration, s.now)
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case expiration.Before(s.now):
		return "RRSIG expired " + stamp(expiration), ""
	case inception.After(s.now):
		return "RRSIG not valid before " + stamp(inception), ""
	case expiration.Before(s.now.Add(s.validFor)):
		return fmt.Sprintf("RRSIG expires %s, within the %s that it must stay valid (bake and probe.signature_margin)", stamp(expiration), s.validFor), ""
	}
	keys := s.keys[sig.KeyTag]
	if len(keys) == 0 {
		return fmt.Sprintf("RRSIG by key tag %d, which is not in the zone's DNSKEY set", sig.KeyTag), ""
	}
	var err error
	for _, k := range keys {
		if err = sig.Verify(k, set); err == nil {
			return "", ""
		}
		if errors.Is(err, dns.ErrAlg) {
			return "", fmt.Sprintf("RRSIG by key tag %d (algorithm %d): times and key checked; the signature itself is not verified here (%v)", sig.KeyTag, sig.Algorithm, err)
		}
	}
	return fmt.Sprintf("RRSIG by key tag %d does not verify against the zone's DNSKEY set: %v", sig.KeyTag, err), ""
}

// sigTime reads a signature time, which is seconds modulo 2^32 (RFC
// 4034 §3.1.5), as the time nearest to now.
func sigTime(v uint32, now time.Time) time.Time {
	d := int32(v - uint32(now.Unix()))
	return now.Add(time.Duration(d) * time.Second).Truncate(time.Second)
}

// newKSKs is a result for each zone whose DNSKEY set, as the target
// (role) answers it, is signed by none of the keys that sign it as the
// baseline (bname) answers it. The parent's DS names a key that signs the
// baseline's set, the one resolvers validate today; a set it does not
// sign is bogus to them from the moment the target serves, however good
// its own signatures, unless the parent already names the target's key.
// So is a zone the target serves without a DNSKEY set while the baseline
// signs it, until the parent's DS is gone.
func newKSKs(checks []Check, got, against *answers, role, bname string) []Result {
	var out []Result
	for i, c := range checks {
		if c.Type != "DNSKEY" || i >= len(got.sets) || i >= len(against.sets) {
			continue
		}
		// The DS names one of the keys that sign blue's set, by their SEP
		// flag where it has any; green's set keeps the chain if any of
		// them signs it, whatever green's flags say.
		now, before := dnskeySigners(got.sets[i].RRs, false), dnskeySigners(against.sets[i].RRs, true)
		if len(before) == 0 || noDSInFleet(checks, c.Zone, got, against) {
			continue
		}
		if len(now) == 0 && got.replied[i] && len(got.sets[i].Flags) == 0 {
			what := "the zone unsigned"
			if hasType(got.sets[i].RRs, dns.TypeDNSKEY) {
				what = "the zone's keys unsigned (no RRSIG over its DNSKEY set)"
			}
			out = append(out, Result{Check: c.Name + " DNSKEY", Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: fmt.Sprintf(
				"%s serves %s, %s signs it with key-signing key %s: if the parent holds a DS for the zone (dig DS %s), validating resolvers "+
					"would find it bogus once %s serves, until the DS is gone from the parent and its TTL has passed: remove the DS at the parent and wait out its TTL, "+
					"then start the rollout with --allow-new-ksk (API \"allow_new_ksk\": true)",
				role, what, bname, tagsText(before), c.Name, role)})
			continue
		}
		if len(now) == 0 || slices.ContainsFunc(now, func(t uint16) bool { return slices.Contains(before, t) }) {
			continue
		}
		out = append(out, Result{Check: c.Name + " DNSKEY", Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: fmt.Sprintf(
			"%s's set is signed by key %s, %s's by key-signing key %s: validating resolvers, whose DS from the parent names %s's key, "+
				"would find the zone bogus once %s serves, unless the parent's DS already names %s (a double-DS rollover): check the DS at the parent, then start the rollout with --allow-new-ksk (API \"allow_new_ksk\": true)",
			role, tagsText(now), bname, tagsText(before), bname, role, tagsText(now))})
	}
	return out
}

// noDSInFleet reports whether zone's parent is among the zones checked
// and holds no DS for it, as both the target and the baseline answer it:
// no chain of trust leads to the zone, so its keys break none. A parent
// outside the fleet is not asked (its servers are not known here).
func noDSInFleet(checks []Check, zone string, got, against *answers) bool {
	for i, c := range checks {
		if c.Type == "DS" && c.Name == zone && c.Zone != zone && i < len(got.sets) && i < len(against.sets) {
			return got.replied[i] && against.replied[i] && len(got.sets[i].Flags) == 0 && len(against.sets[i].Flags) == 0 &&
				!hasType(got.sets[i].RRs, dns.TypeDS) && !hasType(against.sets[i].RRs, dns.TypeDS)
		}
	}
	return false
}

// hasType reports whether rrs hold a record of type t.
func hasType(rrs []dns.RR, t uint16) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == t })
}

// dnskeySigners are the key tags of the RRSIGs over the DNSKEY set in
// rrs: with sepOnly, those by its key-signing keys (SEP flag), or by any
// of its keys where the set has none.
func dnskeySigners(rrs []dns.RR, sepOnly bool) []uint16 {
	sep := map[uint16]bool{}
	for _, rr := range rrs {
		if k, ok := rr.(*dns.DNSKEY); ok && k.Flags&dns.SEP != 0 && sepOnly {
			sep[k.KeyTag()] = true
		}
	}
	var out []uint16
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeDNSKEY && (len(sep) == 0 || sep[sig.KeyTag]) && !slices.Contains(out, sig.KeyTag) {
			out = append(out, sig.KeyTag)
		}
	}
	slices.Sort(out)
	return out
}

func tagsText(tags []uint16) string {
	s := make([]string, len(tags))
	for i, t := range tags {
		s[i] = strconv.Itoa(int(t))
	}
	return strings.Join(s, " and ")
}

// chainEnd is the name the CNAMEs of rrs lead to from qname.
func chainEnd(qname string, rrs []dns.RR) string {
	name := zone.NormalName(qname)
	for range len(rrs) {
		next := ""
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok && zone.SameName(c.Hdr.Name, name) {
				next = zone.NormalName(c.Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return name
}

// uncovered says what the denial records of an NXDOMAIN for qname in the
// zone apex fail to prove, or "" when they prove it (RFC 4035 §5.4, RFC
// 5155 §8.4): that qname does not exist, and that no wildcard at its
// closest encloser could have answered it. Signatures are checked apart.
func uncovered(qname, apex string, denial []dns.RR) string {
	qname, apex = zone.NormalName(qname), zone.NormalName(apex)
	nsec, nsec3 := splitDenial(denial, apex)
	if len(nsec3) > 0 {
		return uncoveredNSEC3(qname, apex, nsec3)
	}
	n := nsecCovering(nsec, qname, apex)
	if n == nil {
		return fmt.Sprintf("no NSEC covers %s (%s): validating resolvers find the denial bogus", qname, nsecSpans(nsec))
	}
	if wild := wildcardAt(nsecEncloser(qname, n)); nsecCovering(nsec, wild, apex) == nil {
		return fmt.Sprintf("no NSEC covers %s, the wildcard that could answer %s (%s): validating resolvers find the denial bogus", wild, qname, nsecSpans(nsec))
	}
	return ""
}

// uncoveredNSEC3 is uncovered for an NSEC3 chain: an NSEC3 that matches
// the closest encloser, one that covers the next closer name, and one that
// covers the wildcard at the closest encloser.
func uncoveredNSEC3(qname, apex string, nsec3 []*dns.NSEC3) string {
	ce, next := closestEncloser(qname, apex, nsec3)
	switch {
	case ce == "":
		return fmt.Sprintf("no NSEC3 matches an encloser of %s: validating resolvers find the denial bogus", qname)
	case nsec3Covering(nsec3, next) == nil:
		return fmt.Sprintf("no NSEC3 covers %s, the next closer name of %s: validating resolvers find the denial bogus", next, qname)
	case nsec3Covering(nsec3, wildcardAt(ce)) == nil:
		return fmt.Sprintf("no NSEC3 covers %s, the wildcard that could answer %s: validating resolvers find the denial bogus", wildcardAt(ce), qname)
	}
	return ""
}

// closestEncloser is the longest proper ancestor of qname in the zone
// apex that an NSEC3 of nsec3 matches, and the next closer name, one
// label longer (RFC 5155 §8.3); "" when none matches.
func closestEncloser(qname, apex string, nsec3 []*dns.NSEC3) (ce, next string) {
	labels := dns.SplitDomainName(qname)
	for i := 1; i <= len(labels); i++ {
		ce := dns.Fqdn(strings.Join(labels[i:], "."))
		if dns.IsSubDomain(apex, ce) && nsec3Matching(nsec3, ce) != nil {
			return ce, dns.Fqdn(strings.Join(labels[i-1:], "."))
		}
	}
	return "", ""
}

// unproved is a failure for each proof that a NOERROR answer to c in a
// signed zone lacks: a no-data answer (no record of the type asked at the
// end of its CNAME chain, and the zone's SOA) must prove the type absent
// (RFC 4035 §3.1.3.1, RFC 5155 §8.5-8.7), and an RRset that a wildcard
// made must come with proof that the name asked does not exist (RFC 4035
// §5.3.4, RFC 5155 §8.8). Without them validating resolvers find the
// answer bogus, however good its signatures.
func unproved(c Check, o observed) []Result {
	apex := zone.NormalName(c.Zone)
	out := unprovedWildcards(apex, o)
	soa := func(rr dns.RR) bool {
		return rr.Header().Rrtype == dns.TypeSOA && zone.SameName(rr.Header().Name, apex)
	}
	qtype, ok := zone.TypeCode(c.Type)
	if !ok || qtype == dns.TypeSIG || !slices.ContainsFunc(o.denial, soa) {
		// Not a no-data answer of this zone, or one to a query for SIG,
		// which BIND answers as a query for signatures, as it does RRSIG
		// (lib/ns/query.c asks its database for any type): without an
		// NSEC in an NSEC zone, whatever the name. No zone could be
		// served otherwise; the answer is still compared with blue's,
		// and the signatures of its NSEC3 records checked.
		return out
	}
	// The server follows CNAMEs for every type but CNAME itself.
	name := zone.NormalName(c.Name)
	if qtype != dns.TypeCNAME {
		name = chainEnd(c.Name, o.got.RRs)
	}
	held := slices.ContainsFunc(o.got.RRs, func(rr dns.RR) bool { return rr.Header().Rrtype == qtype && zone.SameName(rr.Header().Name, name) })
	if !held && dns.IsSubDomain(apex, name) {
		// Named by the name denied, as the answer's RRsets are: each CNAME
		// that leads to it shows the same proof.
		if why := unprovedNoData(name, qtype, apex, o.denial); why != "" {
			out = append(out, Result{Check: name + " " + c.Type + " NODATA", Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: why})
		}
	}
	return out
}

// unprovedWildcards is a failure for each RRset of the zone apex in o's
// answer section that a wildcard made without the proof that the name
// asked does not exist, whatever the answer's rcode: a wildcard CNAME
// to a name that does not exist answers NXDOMAIN, and needs it too.
func unprovedWildcards(apex string, o observed) []Result {
	apex = zone.NormalName(apex)
	var out []Result
	for _, set := range rrsets(o.got.RRs, apex) {
		h := set[0].Header()
		if wild := expandedFrom(set, o.sigs); wild != "" {
			if why := unprovedWildcard(h.Name, wild, zone.TypeName(h.Rrtype), apex, o.denial); why != "" {
				out = append(out, Result{Check: h.Name + " " + zone.TypeName(h.Rrtype) + " wildcard", Kind: KindDNSSEC, Outcome: OutcomeFail, Detail: why})
			}
		}
	}
	return out
}

// unprovedNoData says what the denial records of a no-data answer for
// qtype at qname fail to prove, or "": an NSEC or NSEC3 that matches
// qname and lists neither qtype nor CNAME (but as besideCNAME allows);
// for an empty non-terminal, an NSEC whose span holds it and the names
// below it; or, for a name a wildcard answers, proof that the name does not exist and the
// wildcard's own record without the type. An opt-out NSEC3 covering the
// next closer name proves an insecure delegation's DS (or an empty
// non-terminal above only such delegations) absent, which resolvers take
// as an insecure answer (RFC 5155 §8.6 and its erratum 3441).
func unprovedNoData(qname string, qtype uint16, apex string, denial []dns.RR) string {
	nsec, nsec3 := splitDenial(denial, apex)
	const bogus = ": validating resolvers find the no-data answer bogus"
	t := zone.TypeName(qtype)
	switch {
	case len(nsec3) > 0:
		if m := nsec3Matching(nsec3, qname); m != nil {
			return listed("NSEC3", qname, qname, m.TypeBitMap, qtype, bogus)
		}
		// Else the proof that qname does not exist and its wildcard's
		// record: the message says which NSEC3 of them is missing.
		noMatch := fmt.Sprintf("no NSEC3 matches %s to prove it has no %s", qname, t)
		ce, next := closestEncloser(qname, apex, nsec3)
		if ce == "" {
			return noMatch + ", nor any name above it, to show its closest encloser" + bogus
		}
		cover := nsec3Covering(nsec3, next)
		switch {
		case cover == nil:
			return noMatch + fmt.Sprintf(", and none covers %s, the next closer name, to prove it does not exist", next) + bogus
		case cover.Flags&1 != 0:
			return "" // opt-out: insecure
		}
		w := nsec3Matching(nsec3, wildcardAt(ce))
		if w == nil {
			return noMatch + fmt.Sprintf(", nor %s, the wildcard that would answer it", wildcardAt(ce)) + bogus
		}
		return listed("NSEC3", wildcardAt(ce), qname, w.TypeBitMap, qtype, bogus)
	case len(nsec) == 0:
		return fmt.Sprintf("no NSEC or NSEC3 record proves that %s has no %s", qname, t) + bogus
	}
	for _, n := range nsec {
		switch {
		case zone.SameName(n.Hdr.Name, qname):
			return listed("NSEC", qname, qname, n.TypeBitMap, qtype, bogus)
		case nsecCovers(n, qname, apex) && dns.IsSubDomain(qname, n.NextDomain):
			return "" // an empty non-terminal
		}
	}
	if n := nsecCovering(nsec, qname, apex); n != nil {
		wild := wildcardAt(nsecEncloser(qname, n))
		for _, w := range nsec {
			if zone.SameName(w.Hdr.Name, wild) {
				return listed("NSEC", wild, qname, w.TypeBitMap, qtype, bogus)
			}
		}
	}
	return fmt.Sprintf("no NSEC matches %s to prove it has no %s (%s)", qname, t, nsecSpans(nsec)) + bogus
}

// listed says, when bitmap, that of the NSEC or NSEC3 (kind) of owner,
// lists qtype, or CNAME where qtype cannot stand beside one, that it
// cannot prove qname has no qtype; owner is qname or the wildcard that
// answers it.
func listed(kind, owner, qname string, bitmap []uint16, qtype uint16, bogus string) string {
	for _, t := range []uint16{qtype, dns.TypeCNAME} {
		if slices.Contains(bitmap, t) && (t == qtype || !besideCNAME(qtype)) {
			what := owner
			if !zone.SameName(owner, qname) {
				what = owner + ", the wildcard that answers " + qname + ","
			}
			return fmt.Sprintf("the %s of %s lists %s in its type bitmap, so it does not prove that %s has no %s", kind, what, zone.TypeName(t), qname, zone.TypeName(qtype)) + bogus
		}
	}
	return ""
}

// besideCNAME says whether a no-data answer for t may be proved by a
// record that lists CNAME. KEY and NSEC may stand at a CNAME's name (RFC
// 4035 §2.5, RFC 3007), and servers answer them from that name without
// following the CNAME (BIND: cname_ok is false for them in its zone
// database's find), so their no-data answer there is proved by the
// name's own NSEC or NSEC3, which must list the CNAME: no zone can serve
// another. BIND's validator takes that proof for these types, and for
// CNAME and NXT (dns_nsec_noexistnodata, dns_nsec3_noexistnodata), so it
// is the rule here; Unbound's finds it bogus whatever the type, which no
// rollout can change.
func besideCNAME(t uint16) bool {
	return t == dns.TypeKEY || t == dns.TypeNSEC || t == dns.TypeCNAME || t == dns.TypeNXT
}

// expandedFrom is the wildcard that set was made from, or "": its RRSIG
// counts fewer labels than its owner has (RFC 4034 §3.1.3), but for the
// wildcard's own name asked as it is.
func expandedFrom(set []dns.RR, sigs []dns.RR) string {
	h := set[0].Header()
	labels := dns.SplitDomainName(h.Name)
	for _, rr := range sigs {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.TypeCovered != h.Rrtype || !zone.SameName(sig.Hdr.Name, h.Name) {
			continue
		}
		n := int(sig.Labels)
		if n >= len(labels) || n == len(labels)-1 && labels[0] == "*" {
			return ""
		}
		return wildcardAt(dns.Fqdn(strings.Join(labels[len(labels)-n:], ".")))
	}
	return ""
}

// unprovedWildcard says what the denial records of an answer for qtype
// that wildcard made for name fail to prove, or "": that no closer match
// exists, by an NSEC covering name or an NSEC3 covering the next closer
// name (RFC 4035 §5.3.4, RFC 5155 §8.8). The NSEC must show the
// wildcard's parent as name's closest encloser, as Unbound's
// val_nsec_proves_positive_wildcard asks: one that shows a closer name
// (b.wild → c.wild covering a.b.wild) proves it exists, so *.wild could
// not have answered.
func unprovedWildcard(name, wildcard, qtype, apex string, denial []dns.RR) string {
	nsec, nsec3 := splitDenial(denial, apex)
	const bogus = ": validating resolvers find the wildcard answer bogus"
	switch {
	case len(nsec3) > 0:
		labels := dns.SplitDomainName(name)
		next := dns.Fqdn(strings.Join(labels[len(labels)-dns.CountLabel(wildcard):], "."))
		if nsec3Covering(nsec3, next) == nil {
			return fmt.Sprintf("no NSEC3 covers %s, the next closer name of %s, which the wildcard %s answers for %s", next, name, wildcard, qtype) + bogus
		}
	case len(nsec) > 0:
		n := nsecCovering(nsec, name, apex)
		if n == nil {
			return fmt.Sprintf("no NSEC covers %s, which the wildcard %s answers for %s (%s)", name, wildcard, qtype, nsecSpans(nsec)) + bogus
		}
		if ce := nsecEncloser(name, n); !zone.SameName(wildcardAt(ce), wildcard) {
			return fmt.Sprintf("the NSEC %s → %s covers %s but shows %s as its closest encloser, so the wildcard %s cannot have answered it for %s", n.Hdr.Name, n.NextDomain, name, ce, wildcard, qtype) + bogus
		}
	default:
		return fmt.Sprintf("no NSEC or NSEC3 record proves that %s does not exist, which the wildcard %s answers for %s", name, wildcard, qtype) + bogus
	}
	return ""
}

// splitDenial parts the NSEC and NSEC3 records of denial that belong to
// the zone apex: an NSEC at or below it, an NSEC3 one label below it
// (RFC 5155 §3). Only they can prove anything of the zone: another
// zone's are not signed by its keys, nor signature-checked here (rrsets
// leaves them out).
func splitDenial(denial []dns.RR, apex string) (nsec []*dns.NSEC, nsec3 []*dns.NSEC3) {
	for _, rr := range denial {
		switch d := rr.(type) {
		case *dns.NSEC:
			if dns.IsSubDomain(apex, d.Hdr.Name) {
				nsec = append(nsec, d)
			}
		case *dns.NSEC3:
			if dns.IsSubDomain(apex, d.Hdr.Name) && dns.CountLabel(d.Hdr.Name) == dns.CountLabel(apex)+1 {
				nsec3 = append(nsec3, d)
			}
		}
	}
	return nsec, nsec3
}

// nsecCovering is the NSEC of nsec whose span holds name, or nil.
func nsecCovering(nsec []*dns.NSEC, name, apex string) *dns.NSEC {
	for _, n := range nsec {
		if nsecCovers(n, name, apex) {
			return n
		}
	}
	return nil
}

// nsecEncloser is the closest encloser of qname that n, whose span
// holds it, shows: the longer of the names qname shares with n's owner
// and with its next name.
func nsecEncloser(qname string, n *dns.NSEC) string {
	ce := commonAncestor(qname, n.Hdr.Name)
	if a := commonAncestor(qname, n.NextDomain); dns.CountLabel(a) > dns.CountLabel(ce) {
		ce = a
	}
	return ce
}

// wildcardAt is the wildcard name directly below ce.
func wildcardAt(ce string) string {
	return "*." + strings.TrimPrefix(ce, ".")
}

// nsec3Matching is the NSEC3 of nsec3 whose owner is name's hash, or nil.
func nsec3Matching(nsec3 []*dns.NSEC3, name string) *dns.NSEC3 {
	for _, n := range nsec3 {
		if nsec3Hash(n, name) == nsec3Owner(n) {
			return n
		}
	}
	return nil
}

// nsec3Covering is the NSEC3 of nsec3 whose span holds name's hash, or
// nil.
func nsec3Covering(nsec3 []*dns.NSEC3, name string) *dns.NSEC3 {
	for _, n := range nsec3 {
		if nsec3Covers(n, name) {
			return n
		}
	}
	return nil
}

// nsec3Owner is the hash n's owner name holds, its first label, in upper
// case as dns.HashName writes hashes.
func nsec3Owner(n *dns.NSEC3) string {
	first, _, _ := strings.Cut(n.Hdr.Name, ".")
	return strings.ToUpper(first)
}

// nsec3Hash is name hashed with n's parameters.
func nsec3Hash(n *dns.NSEC3, name string) string {
	return dns.HashName(name, n.Hash, n.Iterations, n.Salt)
}

// nsec3Covers says whether name's hash falls strictly inside n's span, the
// last NSEC3 of the chain wrapping round (RFC 5155 §8.3). miekg/dns's own
// Cover misreads an NSEC3 of the root zone, whose owner has one label.
func nsec3Covers(n *dns.NSEC3, name string) bool {
	h, owner, next := nsec3Hash(n, name), nsec3Owner(n), strings.ToUpper(n.NextDomain)
	if h == "" {
		return false
	}
	if owner < next {
		return owner < h && h < next
	}
	return h > owner || h < next
}

// nsecCovers says whether name falls strictly inside n's span, from its
// owner to its next name, the last NSEC of the zone wrapping to the apex.
func nsecCovers(n *dns.NSEC, name, apex string) bool {
	owner, next := n.Hdr.Name, n.NextDomain
	if canonicalCompare(owner, name) >= 0 {
		return false
	}
	return canonicalCompare(name, next) < 0 || zone.SameName(next, apex) || canonicalCompare(next, owner) <= 0
}

// canonicalCompare orders names as DNSSEC does (RFC 4034 §6.1): label by
// label from the root, each compared as lower-case octets.
func canonicalCompare(a, b string) int {
	la, lb := wireLabels(a), wireLabels(b)
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// wireLabels are name's labels as octets, escapes decoded, with A to Z
// lower-cased and no other octet changed (RFC 4034 §6.1: they are not
// characters of any encoding).
func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return [][]byte{asciiLower([]byte(name))}
	}
	var out [][]byte
	for i := 0; i < n && buf[i] != 0; i += int(buf[i]) + 1 {
		out = append(out, asciiLower(buf[i+1:i+1+int(buf[i])]))
	}
	return out
}

// asciiLower is b, copied, with A to Z lower-cased.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// commonAncestor is the longest name that both a and b are at or below.
func commonAncestor(a, b string) string {
	n := dns.CompareDomainName(a, b)
	labels := dns.SplitDomainName(a)
	if n == 0 || len(labels) == 0 {
		return "."
	}
	return dns.Fqdn(strings.Join(labels[len(labels)-n:], "."))
}

// nsecSpans lists the spans of nsec for a message.
func nsecSpans(nsec []*dns.NSEC) string {
	s := make([]string, len(nsec))
	for i, n := range nsec {
		s[i] = "NSEC " + n.Hdr.Name + " → " + n.NextDomain
	}
	return strings.Join(s, ", ")
}
