package zone

import (
	"bytes"
	"os"
	"regexp"

	"github.com/miekg/dns"
)

// Apex is what an analysis needs of a zone it checks at its SOA only.
type Apex struct {
	Origin string
	// SOA is the answer to the apex SOA query, as Lookup gives it.
	SOA    Answer
	Serial uint32
	// DNSKEYs are the keys the zone's signatures are checked against:
	// empty for an unsigned zone, even one that holds a DNSKEY.
	DNSKEYs Records
}

// Apex is z's apex.
func (z *Zone) Apex() *Apex {
	a := &Apex{Origin: z.origin, SOA: z.Lookup(z.origin, dns.TypeSOA), Serial: z.Serial()}
	if z.Signed() {
		a.DNSKEYs = z.DNSKEYs()
	}
	return a
}

// quickUnsafeRE finds what miekg/dns may read otherwise than BIND, or not
// at all: $GENERATE and $INCLUDE.
var quickUnsafeRE = regexp.MustCompile(`(?i)(?:^|[\r\n])[ \t]*\$(GENERATE|INCLUDE)\b`)

// ParseApex reads the apex SOA and DNSKEY set of the zone file at path
// (for origin) with miekg/dns alone. Parse runs named-compilezone, a
// process per file: 100,000 zones would take half an hour to read for
// checks that only ask their SOA. A file whose apex miekg/dns might read
// otherwise than BIND (no $TTL, whose default BIND takes from the SOA;
// $GENERATE; a line it cannot read; no SOA at the apex) is read by Parse.
func ParseApex(path, origin string) (*Apex, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		z, err := ParseFile(path, origin) // its error names the zone
		if err != nil {
			return nil, err
		}
		return z.Apex(), nil
	}
	if a, ok := quickApex(data, NormalName(origin), path); ok {
		return a, nil
	}
	z, err := Parse(bytes.NewReader(data), origin, path)
	if err != nil {
		return nil, err
	}
	return z.Apex(), nil
}

// ParseChecked reads the zone file at path (for origin) that BIND has
// already loaded without error (preflight checks a large fleet's files in
// one named-checkconf run, the nameserver role before named loads them):
// a simple file, with $TTL and without $GENERATE or $INCLUDE, whose
// RRsets each have one TTL (BIND and miekg/dns set an RRset written with
// several differently), with miekg/dns alone, which reads it as BIND
// does; any other as ParseFile does, through named-compilezone, a
// process per file (about 20 ms).
func ParseChecked(path, origin string) (*Zone, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ParseFile(path, origin) // its error names the zone
	}
	if ttlFirst(data) && !quickUnsafeRE.Match(data) {
		if z, err := parse(bytes.NewReader(data), origin, path, false); err == nil && !z.mixedTTLs {
			return z, nil
		}
	}
	return parse(bytes.NewReader(data), origin, path, true)
}

// ttlFirst reports whether a $TTL comes before the file's first record:
// a record before it without a TTL of its own gets the SOA's minimum from
// BIND, which only named-compilezone reads as BIND does.
func ttlFirst(data []byte) bool {
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0 || line[0] == ';' || bytes.HasPrefix(line, []byte("$ORIGIN")):
		case bytes.HasPrefix(line, []byte("$TTL")):
			return true
		default:
			return false
		}
	}
	return false
}

func quickApex(data []byte, origin, filename string) (*Apex, bool) {
	if !ttlFirst(data) || quickUnsafeRE.Match(data) {
		return nil, false
	}
	var soa dns.RR
	var keys []dns.RR
	signed := false
	zp := dns.NewZoneParser(bytes.NewReader(data), origin, filename)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if NormalName(rr.Header().Name) != origin {
			continue
		}
		loadedTTL(rr)
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			if soa != nil {
				return nil, false
			}
			soa = rr
		case dns.TypeDNSKEY:
			keys = append(keys, rr)
		case dns.TypeRRSIG:
			signed = signed || rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA
		}
	}
	if zp.Err() != nil || soa == nil {
		return nil, false
	}
	if !signed {
		keys = nil
	}
	return &Apex{Origin: origin, SOA: Answer{Rcode: dns.RcodeSuccess, RRs: NewRecords([]dns.RR{soa}, "")},
		Serial: soa.(*dns.SOA).Serial, DNSKEYs: NewRecords(keys, "")}, true
}
