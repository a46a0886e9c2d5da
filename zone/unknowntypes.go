package zone

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Types BIND loads and serves whose miekg/dns form is not BIND's wire
// form, so that neither answers nor RRSIGs over them would compare or
// verify: NXT (RFC 2535, obsoleted by NSEC in RFC 3755), which miekg/dns
// reads as if it were NSEC, whose type bitmap has another wire form; and
// ISDN (RFC 1183), whose subaddress is optional, which miekg/dns always
// packs (as an empty string) where BIND packs nothing. dnsroll makes them
// unknown to miekg/dns instead: zone files' records of these types are
// rewritten into RFC 3597's generic form with BIND's RDATA (asGeneric), and
// answers holding them unpack as generic data, so both sides compare, and
// signatures verify, over the bytes BIND serves.
func init() {
	for _, t := range []uint16{dns.TypeNXT, dns.TypeISDN} {
		delete(dns.StringToType, dns.TypeToString[t])
		delete(dns.TypeToRR, t)
		delete(dns.TypeToString, t)
	}
}

// nxtRdata is NXT's RDATA (RFC 2535 §5.2) from BIND's presentation: the
// next owner name, uncompressed, then a bitmap with bit n set for each
// type n present (0-127), without trailing zero octets.
func nxtRdata(f []string) ([]byte, bool) {
	if len(f) < 1 {
		return nil, false
	}
	name := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(f[0]), name, 0, nil, false)
	if err != nil {
		return nil, false
	}
	var bitmap [16]byte
	last := -1
	for _, t := range f[1:] {
		t = strings.Trim(t, "()")
		if t == "" {
			continue
		}
		code, ok := TypeCode(t)
		if !ok {
			// A bare number: "( 127 )".
			v, err := strconv.ParseUint(t, 10, 16)
			code, ok = uint16(v), err == nil
		}
		if !ok || code > 127 {
			return nil, false
		}
		bitmap[code/8] |= 0x80 >> (code % 8)
		last = max(last, int(code/8))
	}
	return append(name[:n], bitmap[:last+1]...), true
}
