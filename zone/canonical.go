package zone

import (
	"strings"

	"github.com/miekg/dns"
)

// CanonicalRR renders rr in the one form that zone files and DNS answers are
// compared in: dns.RR.String() with the owner and the domain names inside
// common RDATA (NS, CNAME, MX, SOA, SRV, ...) fully qualified and lower case,
// and tabs turned into single spaces. Names are case-insensitive, and
// servers may change their case through name compression; the TTL is kept
// because a TTL change is a real change. rr is not modified.
func CanonicalRR(rr dns.RR) string {
	rr = dns.Copy(rr)
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	lower := func(names ...*string) {
		for _, n := range names {
			*n = dns.CanonicalName(*n)
		}
	}
	switch r := rr.(type) {
	case *dns.NS:
		lower(&r.Ns)
	case *dns.CNAME:
		lower(&r.Target)
	case *dns.DNAME:
		lower(&r.Target)
	case *dns.PTR:
		lower(&r.Ptr)
	case *dns.MX:
		lower(&r.Mx)
	case *dns.SOA:
		lower(&r.Ns, &r.Mbox)
	case *dns.SRV:
		lower(&r.Target)
	case *dns.NAPTR:
		lower(&r.Replacement)
	case *dns.KX:
		lower(&r.Exchanger)
	case *dns.AFSDB:
		lower(&r.Hostname)
	case *dns.RP:
		lower(&r.Mbox, &r.Txt)
	}
	return strings.ReplaceAll(rr.String(), "\t", " ")
}

// SerialCompare compares SOA serials in RFC 1982 serial number arithmetic,
// where serials wrap around at 2^32: it returns -1 if a is before b, 0 if
// they are equal, +1 if a is after b, and 2 when the order is undefined
// (the serials are exactly 2^31 apart).
func SerialCompare(a, b uint32) int {
	switch d := b - a; {
	case d == 0:
		return 0
	case d == 1<<31:
		return 2
	case d < 1<<31:
		return -1
	default:
		return 1
	}
}

// SerialBehind reports whether serial a is behind b, i.e. a server holding
// a has not loaded the zone at b yet. An undefined order is not "behind".
func SerialBehind(a, b uint32) bool { return SerialCompare(a, b) == -1 }
