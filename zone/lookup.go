package zone

import (
	"fmt"
	"sort"

	"github.com/miekg/dns"
)

// MaxChain bounds how many CNAMEs Lookup follows. BIND 9.18 gives up on
// in-zone chains after 11 links and answers SERVFAIL, so a longer chain
// is worth a warning (see Warnings); Lookup still models the full chain,
// because that is what the zone file asks for.
const MaxChain = 32

// bindChainLimit is how many CNAMEs BIND 9.18 follows inside its own
// zones before answering SERVFAIL (measured on 9.18.49).
const bindChainLimit = 11

// Delegated reports whether name is at or below a zone cut (a non-apex NS).
// Servers answer such names with a referral, which Lookup does not model.
func (z *Zone) Delegated(name string) bool {
	name = dns.CanonicalName(name)
	for n := name; n != z.origin && dns.IsSubDomain(z.origin, n); {
		if z.cuts[n] {
			return true
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	return false
}

// Lookup is what an authoritative server for the zone should answer for
// (name, qtype), as the whole answer section: NOERROR with the RRset;
// NOERROR with no RRs (NODATA) when the name, or an empty non-terminal,
// exists with other types; NXDOMAIN when it does not exist; REFUSED
// outside the zone. A wildcard is used when the name does not exist and
// "*.<closest encloser>" does. A CNAME is followed inside the zone, as BIND
// does: the answer holds the chain and the target's RRset, and the RCODE
// is the target's (NXDOMAIN for a dangling in-zone CNAME). The chain stops
// at a target outside the zone or below a delegation (the answer is then
// the CNAMEs alone), at a loop, or after MaxChain links. Not modelled:
// referrals for names at and below delegations (see Delegated), DNAME and
// DNSSEC.
func (z *Zone) Lookup(name string, qtype uint16) Answer {
	name = dns.CanonicalName(name)
	if !dns.IsSubDomain(z.origin, name) {
		return Answer{Rcode: dns.RcodeRefused}
	}
	var rrs []string
	seen := map[string]bool{}
	for links := 0; ; links++ {
		a, target := z.step(name, qtype)
		rrs = append(rrs, a.RRs...)
		seen[name] = true
		if target == "" || seen[target] || links == MaxChain ||
			!dns.IsSubDomain(z.origin, target) || z.Delegated(target) {
			sort.Strings(rrs)
			if target != "" {
				a.Rcode = dns.RcodeSuccess
			}
			return Answer{Rcode: a.Rcode, RRs: rrs}
		}
		name = target
	}
}

// step answers (name, qtype) at one name. target is the CNAME target
// when the answer is a CNAME that a server would follow.
func (z *Zone) step(name string, qtype uint16) (a Answer, target string) {
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
		return Answer{Rcode: dns.RcodeSuccess, RRs: canonicalSet(set, synth)}, ""
	}
	if cn := z.rrsets[rrKey{owner, dns.TypeCNAME}]; len(cn) > 0 {
		return Answer{Rcode: dns.RcodeSuccess, RRs: canonicalSet(cn[:1], synth)}, dns.CanonicalName(cn[0].(*dns.CNAME).Target)
	}
	return Answer{Rcode: dns.RcodeSuccess}, ""
}

// wildcardFor returns the wildcard owner that synthesises name, or "".
func (z *Zone) wildcardFor(name string) string {
	for ce := name; ce != z.origin; {
		i, _ := dns.NextLabel(ce, 0)
		ce = ce[i:]
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
// answers: CNAME loops and chains longer than BIND follows (both answered
// with SERVFAIL), and CNAMEs beside other data at one name. Sorted; at
// most max entries, then a count.
func (z *Zone) Warnings(max int) []string {
	var out []string
	for _, name := range z.Names() {
		cn := z.rrsets[rrKey{name, dns.TypeCNAME}]
		if len(cn) == 0 {
			continue
		}
		if len(z.Types(name)) > 1 {
			out = append(out, fmt.Sprintf("%s has a CNAME and other data", name))
		}
		seen := map[string]bool{name: true}
		links := 0
		for t := name; ; {
			_, next := z.step(t, dns.TypeA)
			if next == "" || !dns.IsSubDomain(z.origin, next) || z.Delegated(next) {
				break
			}
			links++
			if seen[next] {
				out = append(out, fmt.Sprintf("%s: CNAME loop through %s (BIND answers SERVFAIL)", name, next))
				break
			}
			if links > bindChainLimit {
				out = append(out, fmt.Sprintf("%s: CNAME chain longer than %d links (BIND answers SERVFAIL)", name, bindChainLimit))
				break
			}
			seen[next], t = true, next
		}
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("and %d more zone warnings", len(out)-max))
	}
	return out
}
