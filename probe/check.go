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
}

// String names the check in reports, e.g. "www.example.com. A".
func (c Check) String() string { return c.Name + " " + c.Type }

// Expect builds the checks that prove a server serves z: the apex SOA and
// NS, then every RRset at each of names, or an A query when a name holds no
// records (expecting NXDOMAIN, or NODATA for an empty non-terminal).
//
// Names follow zone file rules: "@" is the apex, a trailing dot makes a name
// absolute and anything else is relative to the zone, except that a name
// already ending in the zone's name ("www.example.com") is taken as
// absolute, since that is what operators mean. Because one name list serves
// every zone of a fleet, absolute names outside z are skipped, and so are
// names at or below a delegation, whose answers are referrals.
func Expect(z *zone.Zone, names []string) []Check {
	origin := z.Origin()
	var checks []Check
	seen := map[string]bool{}
	add := func(name string, qtype uint16) {
		c := Check{Zone: origin, Name: name, Type: dns.TypeToString[qtype], Want: z.Lookup(name, qtype)}
		if !seen[c.String()] {
			seen[c.String()] = true
			checks = append(checks, c)
		}
	}
	add(origin, dns.TypeSOA)
	add(origin, dns.TypeNS)
	for _, n := range names {
		name := absolute(n, origin)
		if !dns.IsSubDomain(origin, name) || z.Delegated(name) {
			continue
		}
		types := z.Types(name)
		if len(types) == 0 {
			types = []uint16{dns.TypeA}
		}
		for _, t := range types {
			add(name, t)
		}
	}
	return checks
}

// absolute makes name fully qualified and lower case under origin.
func absolute(name, origin string) string {
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
