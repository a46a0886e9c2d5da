// Package probe proves over DNS that a nameserver answers a zone correctly:
// the right RCODE, the AA flag and exactly the expected records, over UDP
// and TCP. A rollout runs it against green servers before they take traffic
// and through the load balancers after the switch.
//
// Checks, Reports and Results are plain JSON for workflow history.
package probe

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// Check is one query and the answer an authoritative server must give.
type Check struct {
	// Zone is the zone's apex, fully qualified ("example.com.").
	Zone string `json:"zone"`
	// Name is the fully qualified query name.
	Name string `json:"name"`
	// Type is the query type in presentation form: "A", "SOA", ...
	Type string `json:"type"`
	// Want is the answer the zone file says an authoritative server gives.
	Want zone.Answer `json:"want"`
	// OneProtocol asks the check over the first protocol of the analysis
	// only. It marks the SOA check of a zone outside a large fleet's full
	// set: whether a server answers over TCP is a property of the server,
	// which the full checks prove, so a second query per zone over the
	// other transport would double the cost and prove nothing more.
	OneProtocol bool `json:"one_protocol,omitempty"`
}

// String names the check in reports, e.g. "www.example.com. A".
func (c Check) String() string { return c.Name + " " + c.Type }

// DenialCheckLabel is the label under a zone's apex that is asked for a
// name the zone does not hold, in a signed zone and wherever every name
// is checked: the answer is NXDOMAIN, or its wildcard's, so a server that
// answers names the zone lacks (an added wildcard, a BIND that
// synthesises differently) fails. In a signed zone the NXDOMAIN must also
// be denied by signed NSEC or NSEC3 records.
const DenialCheckLabel = "dnsroll-denial-check"

// Scope says which queries check a zone.
type Scope struct {
	// All checks every owner name in the zone file.
	All bool
	// Names are checked as well (or alone, without All); see Expect for
	// how they are read. A name the zone lacks is expected to be NXDOMAIN.
	Names []string
	// Types, when set, are asked at every name (a type a name lacks is
	// expected to be NODATA). Otherwise each name is asked for the types
	// it holds, and a name holding a CNAME for A as well, which is what
	// resolvers ask and makes the server follow the chain.
	Types []string
}

// Expect builds the checks that prove a server serves z: the apex SOA and
// NS, then every RRset at each of names, or an A query when a name holds no
// records (expecting NXDOMAIN, or NODATA for an empty non-terminal).
// Names at and below a zone cut are asked as Checks says.
//
// Names follow zone file rules: "@" is the apex, a trailing dot makes a name
// absolute and anything else is relative to the zone, except that a name
// already ending in the zone's name ("www.example.com") is taken as
// absolute, since that is what operators mean. Because one name list serves
// every zone of a fleet, absolute names outside z are skipped, and so are
// names at or below a delegation, whose answers are referrals.
func Expect(z *zone.Zone, names []string) []Check {
	return Checks(z, Scope{Names: names})
}

// Checks builds the checks of s for z, in a stable order: the apex SOA and
// NS first, then the zone's names in order (with All), then s.Names.
// DNSSEC records (RRSIG, NSEC, NSEC3) are not asked for: they are not
// RRsets a resolver queries like others. At a zone cut the NS set and DS
// are asked, and below it A at each name the zone holds (glue), whatever
// s.Types says: the answers are referrals and DS, what the parent serves.
func Checks(z *zone.Zone, s Scope) []Check {
	origin := z.Origin()
	var checks []Check
	seen := map[string]bool{}
	add := func(name string, qtype uint16) {
		c := Check{Zone: origin, Name: name, Type: zone.TypeName(qtype), Want: z.Lookup(name, qtype)}
		if !seen[c.String()] {
			seen[c.String()] = true
			checks = append(checks, c)
		}
	}
	var types []uint16
	for _, t := range s.Types {
		if qt, ok := zone.TypeCode(t); ok {
			types = append(types, qt)
		}
	}
	add(origin, dns.TypeSOA)
	add(origin, dns.TypeNS)
	// Asked of an unsigned zone too: a green that drops the signatures of
	// a zone blue signs is bogus to resolvers while the parent holds a DS.
	add(origin, dns.TypeDNSKEY)
	if z.Signed() || s.All {
		add(DenialCheckLabel+"."+strings.TrimPrefix(origin, "."), dns.TypeA)
	}
	var names []string
	if s.All {
		names = z.Names()
	}
	for _, n := range s.Names {
		names = append(names, absolute(n, origin))
	}
	cuts := map[string]bool{}
	for _, c := range z.Cuts() {
		cuts[c] = true
	}
	for _, name := range names {
		switch {
		case !dns.IsSubDomain(origin, name):
		case cuts[name]:
			add(name, dns.TypeNS)
			add(name, dns.TypeDS)
		case z.Delegated(name):
			add(name, dns.TypeA)
		default:
			for _, t := range typesAt(z, name, types) {
				add(name, t)
			}
		}
	}
	return checks
}

// Removed builds the checks of the RRsets only the live revision of z
// holds (zone.Diff's Removed, old against z), and of others at names z
// does not hold (a wildcard's answers that Diff adds, with Why), which
// Checks, asking what z holds, never asks: each is asked for its type,
// or for s.Types when set, expecting what z answers (NXDOMAIN, NODATA, a
// wildcard's answer, a referral). Without s.All only the names of s.Names are. DNSSEC
// records are not asked, as in Checks; have are the zone's checks
// already built, not repeated.
func Removed(z *zone.Zone, gone []zone.RRsetChange, s Scope, have []Check) []Check {
	origin := z.Origin()
	seen := map[string]bool{}
	for _, c := range have {
		seen[c.String()] = true
	}
	listed := map[string]bool{}
	for _, n := range s.Names {
		listed[absolute(n, origin)] = true
	}
	var out []Check
	for _, g := range gone {
		name := zone.NormalName(g.Name)
		if dnssecRecord(g.Type) || !dns.IsSubDomain(origin, name) || !(s.All || listed[name]) {
			continue
		}
		types := s.Types
		if len(types) == 0 {
			types = []string{g.Type}
		}
		for _, t := range types {
			qt, ok := zone.TypeCode(t)
			if !ok {
				continue
			}
			c := Check{Zone: origin, Name: name, Type: zone.TypeName(qt), Want: z.Lookup(name, qt)}
			if !seen[c.String()] {
				seen[c.String()] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// dnssecRecord tells the types of a signed zone's own records: a name's
// other removed RRsets ask it, and NSEC3 owners are hashes, not names.
func dnssecRecord(t string) bool {
	qt, _ := zone.TypeCode(t)
	return qt == dns.TypeRRSIG || qt == dns.TypeNSEC || qt == dns.TypeNSEC3
}

// RemovedZone is the check of a zone only the live revision holds: its
// apex SOA, which a server that still loads it answers. parent, when a
// zone of the revision encloses it, answers it (a referral, NXDOMAIN or
// NODATA); without one the server is not authoritative: REFUSED, as
// zone.Lookup answers a name outside the zone.
func RemovedZone(apex string, parent *zone.Zone) Check {
	apex = zone.NormalName(apex)
	if parent == nil {
		return Check{Zone: apex, Name: apex, Type: "SOA", Want: zone.Answer{Rcode: dns.RcodeRefused}}
	}
	return Check{Zone: parent.Origin(), Name: apex, Type: "SOA", Want: parent.Lookup(apex, dns.TypeSOA)}
}

// typesAt is what to ask at name: the configured types, or those it holds.
func typesAt(z *zone.Zone, name string, configured []uint16) []uint16 {
	if len(configured) > 0 {
		return configured
	}
	var out []uint16
	for _, t := range z.Types(name) {
		switch t {
		// A name's NSEC is asked, so that its signature is checked as
		// every other RRset's is: a validator needs it to deny a type at
		// the name or a name after it. NSEC3 records stand at hashed
		// names, which no query asks.
		case dns.TypeRRSIG, dns.TypeNSEC3:
			continue
		case dns.TypeCNAME:
			out = append(out, dns.TypeA)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		out = []uint16{dns.TypeA}
	}
	return out
}

// absolute makes name fully qualified and lower case under origin, as
// on the wire (zone.NormalName).
func absolute(name, origin string) string {
	return zone.NormalName(relative(name, origin))
}

func relative(name, origin string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	apex := strings.TrimSuffix(origin, ".")
	switch {
	case name == "@" || name == "":
		return origin
	case dns.IsFqdn(name):
		return name
	case name == apex || strings.HasSuffix(name, "."+apex):
		return name + "."
	case origin == ".":
		return name + "."
	}
	return name + "." + origin
}

// AnsweredByItsZone keeps each check with the zone that answers it when
// one server serves several zones of a fleet, origins (fully qualified).
// A name at or below the apex of another of them is answered from the
// deepest such zone, authoritatively, and not as its parent's referral, so
// the parent's check of it is dropped; the child's own checks cover it.
// Only a DS at the child's apex stays the parent's: the parent holds it,
// and named answers it from there, so the child's own check of it (with
// DS in probe.types) is dropped.
func AnsweredByItsZone(checks []Check, origins []string) []Check {
	served := map[string]bool{}
	for _, o := range origins {
		served[dns.CanonicalName(o)] = true
	}
	if len(served) < 2 {
		return checks
	}
	out := checks[:0:0]
	for _, c := range checks {
		zone, name := dns.CanonicalName(c.Zone), dns.CanonicalName(c.Name)
		child := servedBelow(served, zone, name)
		switch {
		case c.Type == "DS" && name == zone && servedAbove(served, zone):
			// The child's apex DS, its parent served too.
		case child == "" || (c.Type == "DS" && child == name):
			out = append(out, c)
		}
	}
	return out
}

// servedAbove reports whether a served apex is a strict ancestor of zone.
func servedAbove(served map[string]bool, zone string) bool {
	for off, end := dns.NextLabel(zone, 0); !end; off, end = dns.NextLabel(zone, off) {
		if served[zone[off:]] {
			return true
		}
	}
	return served["."] && zone != "."
}

// servedBelow returns the served apex nearest to name strictly below
// zone, or "" when name is answered from zone itself.
func servedBelow(served map[string]bool, zone, name string) string {
	if name == zone || !dns.IsSubDomain(zone, name) {
		return ""
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		switch apex := name[off:]; {
		case apex == zone:
			return ""
		case served[apex]:
			return apex // the deepest: the walk goes up from name
		}
	}
	return ""
}
