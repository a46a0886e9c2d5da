package zone

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
)

// bindChainLimit is how many CNAMEs (written or synthesised from a
// DNAME) BIND 9.18 puts in one answer from its own zones: with one more
// it stops and answers SERVFAIL (measured on 9.18.49).
const bindChainLimit = 11

// Delegated reports whether name is at or below a zone cut (a non-apex NS)
// that no DNAME above it occludes. Servers answer such names with a
// referral (see Lookup).
func (z *Zone) Delegated(name string) bool {
	cut, _ := z.above(NormalName(name))
	return cut != ""
}

// Cuts lists the zone's delegation points, sorted, but for those that a
// DNAME above them occludes.
func (z *Zone) Cuts() []string {
	var out []string
	for _, n := range z.Names() {
		if cut, _ := z.above(n); z.cuts[n] && cut == n {
			out = append(out, n)
		}
	}
	return out
}

// above finds what answers for name before its own data: the highest zone
// cut at or above it, or the highest DNAME strictly above it, whichever
// is higher (a DNAME occludes the names below it, a cut the names at and
// below it, a DNAME at the cut included). At most one of them is set.
func (z *Zone) above(name string) (cut, dname string) {
	for n := name; dns.IsSubDomain(z.origin, n); {
		if n != name && len(z.rrsets[rrKey{n, dns.TypeDNAME}]) > 0 {
			cut, dname = "", n
		}
		// A cut beside a DNAME occludes it.
		if n != z.origin && z.cuts[n] {
			cut, dname = n, ""
		}
		if n == z.origin {
			break
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	return cut, dname
}

// Lookup is what BIND, authoritative for the zone, answers to (name,
// qtype) without DNSSEC: NOERROR with the RRset; NOERROR with no RRs
// (NODATA) when the name, or an empty non-terminal, exists with other
// types; NXDOMAIN when it does not exist; REFUSED outside the zone; a
// referral at or below a zone cut (except DS at the cut, which the
// parent answers). A wildcard is used when the name does not exist and
// "*.<closest encloser>" does. CNAMEs are followed inside the zone, and a
// DNAME above the name answers with the DNAME and a CNAME synthesised
// from it (RFC 6672), followed in turn: the answer holds the chain and
// the target's RRset, and the RCODE is the target's. The chain stops at a
// target outside the zone or below a cut (the answer is then the chain
// alone). A loop, or more than 11 CNAMEs, is SERVFAIL with the chain so
// far, as BIND answers.
func (z *Zone) Lookup(name string, qtype uint16) Answer {
	name = NormalName(name)
	if !dns.IsSubDomain(z.origin, name) {
		return Answer{Rcode: dns.RcodeRefused}
	}
	if cut, _ := z.above(name); cut != "" && !(cut == name && qtype == dns.TypeDS) {
		return z.referral(cut)
	}
	var rrs Records
	seen := map[string]bool{}
	cnames := 0
	for {
		seen[name] = true
		a, target := z.step(name, qtype)
		for _, rr := range a.RRs {
			// A message carries a record once: a chain that passes
			// one DNAME twice shows it once.
			if !slices.Contains(rrs, rr) {
				rrs = append(rrs, rr)
			}
		}
		if target == "" {
			a.RRs = rrs
			a.RRs.sort()
			return a
		}
		cnames++
		switch {
		case seen[target] || cnames > bindChainLimit:
			a = Answer{Rcode: dns.RcodeServerFailure, RRs: rrs}
		case !dns.IsSubDomain(z.origin, target) || z.Delegated(target):
			a = Answer{Rcode: dns.RcodeSuccess, RRs: rrs}
		default:
			name = target
			continue
		}
		a.RRs.sort()
		return a
	}
}

// referral is the answer for names at or below cut: its NS set, and the
// glue the zone holds for those name servers: addresses at or below a
// zone cut (this one or a sibling's, even one a DNAME occludes: see
// glue). As BIND 9.18 does, addresses that are the zone's own data,
// written or synthesised from a wildcard, are not added; they are
// Optional.
func (z *Zone) referral(cut string) Answer {
	a := Answer{Rcode: dns.RcodeSuccess, Referral: true, Authority: z.rrsets[rrKey{cut, dns.TypeNS}]}
	for _, rr := range a.Authority {
		ns := rr.(*dns.NS).Ns
		if !dns.IsSubDomain(z.origin, ns) {
			continue
		}
		if z.glue(ns) {
			a.Additional = append(a.Additional, z.rrsets[rrKey{ns, dns.TypeA}]...)
			a.Additional = append(a.Additional, z.rrsets[rrKey{ns, dns.TypeAAAA}]...)
		} else {
			a.Optional = append(a.Optional, z.addresses(ns)...)
		}
	}
	a.Authority = NewRecords(a.Authority, "")
	a.Additional = NewRecords(a.Additional, "")
	a.Optional = NewRecords(a.Optional, "")
	return a
}

// glue reports whether name is at or below a zone cut, whatever DNAME
// is above that cut: named sends the addresses there as glue for a
// referral, though a query for name gets the DNAME (measured on
// 9.18.49).
func (z *Zone) glue(name string) bool {
	for n := name; n != z.origin && dns.IsSubDomain(z.origin, n); {
		if z.cuts[n] {
			return true
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			return false
		}
		n = n[i:]
	}
	return false
}

// addresses are the A and AAAA records of name, or those its wildcard
// synthesises when name does not exist: what named adds for a name
// server when its glue cache misses (measured on 9.18.49).
func (z *Zone) addresses(name string) []dns.RR {
	owner, synth := name, ""
	if !z.exists[name] {
		owner, synth = z.wildcardFor(name), name
	}
	return slices.Concat(records(z.rrsets[rrKey{owner, dns.TypeA}], synth), records(z.rrsets[rrKey{owner, dns.TypeAAAA}], synth))
}

// step answers (name, qtype) at one name. target is the CNAME target
// when the answer is a CNAME (written, or synthesised from a DNAME) that
// a server would follow.
func (z *Zone) step(name string, qtype uint16) (a Answer, target string) {
	if _, d := z.above(name); d != "" {
		dn := z.rrsets[rrKey{d, dns.TypeDNAME}][0].(*dns.DNAME)
		target = name[:len(name)-len(d)] + dn.Target
		if dn.Target == "." {
			target = name[:len(name)-len(d)]
		}
		// IsDomainName measures the name on the wire, where a \DDD
		// escape is one octet.
		if _, ok := dns.IsDomainName(target); !ok {
			return Answer{Rcode: dns.RcodeYXDomain, RRs: Records{dn}}, ""
		}
		cn := &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: dn.Hdr.Ttl}, Target: target}
		if qtype == dns.TypeCNAME {
			// The synthesised CNAME is the answer; named does not follow it.
			return Answer{Rcode: dns.RcodeSuccess, RRs: Records{dn, cn}}, ""
		}
		return Answer{Rcode: dns.RcodeSuccess, RRs: Records{dn, cn}}, target
	}
	owner := name
	if !z.exists[name] {
		owner = z.wildcardFor(name)
		if owner == "" {
			return Answer{Rcode: dns.RcodeNameError}, ""
		}
	}
	synth := ""
	if owner != name {
		synth = name
	}
	if set := z.rrsets[rrKey{owner, qtype}]; len(set) > 0 || qtype == dns.TypeCNAME {
		return Answer{Rcode: dns.RcodeSuccess, RRs: records(set, synth)}, ""
	}
	if cn := z.rrsets[rrKey{owner, dns.TypeCNAME}]; len(cn) > 0 && !besideCNAME(qtype) {
		return Answer{Rcode: dns.RcodeSuccess, RRs: records(cn[:1], synth)}, cn[0].(*dns.CNAME).Target
	}
	return Answer{Rcode: dns.RcodeSuccess}, ""
}

// besideCNAME says whether t may stand beside a CNAME (RFC 4035 §2.5,
// RFC 3007): DNSSEC's signatures and denial, and KEY. BIND loads them
// there and answers a query for them from the name itself, NODATA where
// it has none, without following the CNAME.
func besideCNAME(t uint16) bool {
	return t == dns.TypeNSEC || t == dns.TypeKEY || t == dns.TypeSIG || t == dns.TypeRRSIG
}

// records is a zone's RRset (already canonical) as Records, with the
// owner replaced by owner when it is set (wildcard synthesis).
func records(set []dns.RR, owner string) Records {
	if owner == "" {
		return Records(set)
	}
	out := Records(set).Copy()
	for _, rr := range out {
		rr.Header().Name = owner
	}
	return out
}

// wildcardFor returns the wildcard owner that synthesises name, or "".
func (z *Zone) wildcardFor(name string) string {
	for ce := name; ce != z.origin; {
		i, end := dns.NextLabel(ce, 0)
		ce = ce[i:]
		if end { // past a top-level label: the root, in a root zone
			ce = "."
		}
		if !z.exists[ce] {
			continue
		}
		wild := "*." + ce
		if ce == "." {
			wild = "*."
		}
		if z.exists[wild] {
			return wild
		}
		return ""
	}
	return ""
}

// Warnings lists things that load in BIND and named-checkzone but break
// answers: out-of-zone data BIND ignored, an MX, SRV or NS that BIND
// finds names a CNAME (illegal, RFC 2181 §10.3), CNAME loops and chains
// longer than BIND follows (both answered with SERVFAIL, which the checks
// expect), CNAMEs beside other data at one name, names that end in the
// zone's name twice (see repeatsOrigin), and targets in the zone that
// nothing holds (see missingTargets). Sorted by name; at most max
// entries, then a count.
func (z *Zone) Warnings(max int) []string {
	out := z.Notes()
	for _, name := range z.Names() {
		if meant := z.repeatsOrigin(name); meant != "" {
			out = append(out, fmt.Sprintf("%s: the name ends in the zone's name twice: if %s was meant, end it with a dot", name, meant))
		}
		out = append(out, z.missingTargets(name)...)
		cn := z.rrsets[rrKey{name, dns.TypeCNAME}]
		if len(cn) == 0 || z.Delegated(name) {
			continue
		}
		if slices.ContainsFunc(z.Types(name), func(t uint16) bool { return t != dns.TypeCNAME && !besideCNAME(t) }) {
			out = append(out, fmt.Sprintf("%s has a CNAME and other data", name))
		}
		a := z.Lookup(name, dns.TypeA)
		if a.Rcode != dns.RcodeServerFailure {
			continue
		}
		if n := countCNAMEs(a.RRs); n > bindChainLimit {
			out = append(out, fmt.Sprintf("%s: CNAME chain longer than %d links (BIND answers SERVFAIL)", name, bindChainLimit))
		} else {
			out = append(out, fmt.Sprintf("%s: CNAME loop (BIND answers SERVFAIL)", name))
		}
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("and %d more zone warnings", len(out)-max))
	}
	return out
}

func countCNAMEs(rrs Records) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeCNAME {
			n++
		}
	}
	return n
}

// targetTypes are the types whose data names another name that a
// resolver goes on to ask: missingTargets checks them.
var targetTypes = []uint16{dns.TypeCNAME, dns.TypeMX, dns.TypeSRV, dns.TypeSVCB, dns.TypeHTTPS,
	dns.TypeNS, dns.TypeDNAME, dns.TypeNAPTR, dns.TypePTR}

// missingTargets names the targets of name's records of targetTypes that
// are in the zone, answered by it (not below a cut or a DNAME) and that
// nothing holds, not even a wildcard: each answers NXDOMAIN (a delegation
// to such a name is lame). The usual cause is a name outside the zone
// written without its trailing dot, as a conversion to BIND's syntax can
// leave it (mail.example.com in example.com. is
// mail.example.com.example.com.): the warning then says which name was
// likely meant. The new servers serve such a record as written, and BIND
// refuses only an apex NS of this kind, so only the zone file shows the
// mistake.
func (z *Zone) missingTargets(name string) []string {
	var out []string
	for _, t := range targetTypes {
		seen := map[string]bool{}
		for _, rr := range z.rrsets[rrKey{name, t}] {
			target := recordTarget(rr)
			if target == "" || seen[target] || !dns.IsSubDomain(z.origin, target) {
				continue
			}
			seen[target] = true
			if cut, dname := z.above(target); cut != "" || dname != "" || z.exists[target] || z.wildcardFor(target) != "" {
				continue
			}
			w := fmt.Sprintf("%s: %s %s names nothing in the zone", name, dns.TypeToString[t], target)
			if meant := withoutOrigin(target, z.origin); meant != "" {
				w += fmt.Sprintf(": if %s was meant, end it with a dot", meant)
			}
			out = append(out, w)
		}
	}
	return out
}

// repeatsOrigin is name less its last copy of the origin when it ends in
// the origin twice (mail.example.com. for mail.example.com.example.com.),
// else "": an owner written without its trailing dot, which BIND loads
// under the wrong name and missingTargets cannot see when the records
// that name it make the same slip.
func (z *Zone) repeatsOrigin(name string) string {
	o := strings.TrimSuffix(z.origin, ".")
	rel, ok := strings.CutSuffix(name, "."+z.origin)
	if o == "" || !ok || (rel != o && !strings.HasSuffix(rel, "."+o)) {
		return ""
	}
	return rel + "."
}

// withoutOrigin is target less the origin that a missing trailing dot
// added, where what is left is a name of two labels or more under a
// top-level domain of the root zone (mail.example.com. for
// mail.example.com.example.com., user.github.io.): else "", as for
// www.atlas.example.com., a name the zone itself lacks.
func withoutOrigin(target, origin string) string {
	rel, ok := strings.CutSuffix(target, "."+origin)
	if !ok || origin == "." || !strings.Contains(rel, ".") {
		return ""
	}
	tld := rel[strings.LastIndexByte(rel, '.')+1:]
	if _, icann := publicsuffix.PublicSuffix(tld); !icann {
		return ""
	}
	return rel + "."
}

// recordTarget is the name rr points to for an answer to follow: "" for
// the types missingTargets passes over, for SVCB's "." (the owner) and
// NAPTR's (none: its regexp rewrites).
func recordTarget(rr dns.RR) string {
	var target string
	switch r := rr.(type) {
	case *dns.CNAME:
		target = r.Target
	case *dns.MX:
		target = r.Mx
	case *dns.SRV:
		target = r.Target
	case *dns.SVCB:
		target = r.Target
	case *dns.HTTPS:
		target = r.Target
	case *dns.NS:
		target = r.Ns
	case *dns.DNAME:
		target = r.Target
	case *dns.NAPTR:
		target = r.Replacement
	case *dns.PTR:
		target = r.Ptr
	}
	if target == "." {
		return ""
	}
	return NormalName(target)
}
