package zone

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// unsignedWithKey has a DNSKEY at its apex (RFC 6605's example key) and
// no signatures: named serves it as an unsigned zone.
const unsignedWithKey = "$TTL 300\n@ SOA ns1 hostmaster 12 3600 600 1209600 300\n NS ns1\n" +
	"@ DNSKEY 257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\nns1 A 192.0.2.53\n"

// ParseApex, and ParseChecked, must give what Parse does, read quickly or
// not: the SOA answer the analysis expects, the serial and the DNSKEY set.
// Only a signed zone, one whose SOA has a signature, has keys to check
// signatures against: a DNSKEY alone signs nothing, and named serves such
// a zone unsigned.
func TestParseApexAsParse(t *testing.T) {
	needlab.Programs(t, signzone.Tools...)
	signed, _, err := signzone.SignDS(t.TempDir(), "sub.example.com.", childText, signzone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"plain":   "$TTL 300\n@ SOA NS1 hostmaster 7 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\n",
		"no $TTL": "@ SOA ns1 hostmaster 7 3600 600 1209600 120\n NS ns1\nns1 A 192.0.2.53\n",
		// $TTL after the first record: BIND gives the SOA its MINTTL, 120.
		"$TTL after the SOA": "$ORIGIN sub.example.com.\n@ IN SOA ns1 hostmaster 16 3600 600 1209600 120\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n",
		"$GENERATE":          "$TTL 300\n@ 60 SOA ns1 hostmaster 8 3600 600 1209600 300\n NS ns1\n$GENERATE 1-3 h$ A 192.0.2.$\nns1 A 192.0.2.53\n",
		"signed":             "$TTL 300\n" + signed, // its records have their TTLs
		"absolute":           "$TTL 300\nsub.example.com. 900 IN SOA ns1.sub.example.com. h.sub.example.com. 9 1 1 1 1\nsub.example.com. NS ns1\nns1 A 192.0.2.53\n",
		"unknown rr":         "$TTL 300\n@ SOA ns1 hostmaster 10 3600 600 1209600 300\n NS ns1\nx TYPE65534 \\# 2 ABCD\nns1 A 192.0.2.53\n",
		"two records":        "$TTL 300\n@ SOA ns1 hostmaster 11 3600 600 1209600 300\n NS ns1\nwww 60 A 192.0.2.1\nwww 30 A 192.0.2.2\nns1 A 192.0.2.53\n",
		"keys, unsigned":     unsignedWithKey,
		// A record written twice with two TTLs: named does not serve the
		// lower, and the quick read must not guess which it serves.
		"duplicate, lower TTL first":  "$TTL 300\n@ SOA ns1 hostmaster 14 3600 600 1209600 300\n NS ns1\nwww 300 A 192.0.2.1\nx A 192.0.2.9\nwww 600 A 192.0.2.1\nns1 A 192.0.2.53\n",
		"duplicate, higher TTL first": "$TTL 300\n@ SOA ns1 hostmaster 15 3600 600 1209600 300\n NS ns1\nwww 600 A 192.0.2.1\nx A 192.0.2.9\nwww 300 A 192.0.2.1\nns1 A 192.0.2.53\n",
		// named loads a TTL over 2^31-1 as 0 (RFC 2181 §8).
		"TTL over the maximum": "$TTL 300\n@ 4294967295 SOA ns1 hostmaster 13 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\nbig 2147483648 A 192.0.2.2\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "zone")
			testfiles.Write(t, path, text)
			z, err := ParseFile(path, "sub.example.com")
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseApex(path, "sub.example.com")
			if err != nil {
				t.Fatal(err)
			}
			if want := z.Apex(); !reflect.DeepEqual(got, want) {
				t.Errorf("ParseApex:\n%+v\nParse:\n%+v", got, want)
			}
			if signed := name == "signed"; z.Signed() != signed || (len(z.Apex().DNSKEYs) > 0) != signed {
				t.Errorf("Signed() %v, Apex has %d keys; want signed %v", z.Signed(), len(z.Apex().DNSKEYs), signed)
			}
			if _, quick := quickApex([]byte(text), "sub.example.com.", path); quick != (name != "no $TTL" && name != "$GENERATE" && name != "$TTL after the SOA") {
				t.Errorf("read quickly: %v", quick)
			}
			// ParseChecked, for files BIND has loaded, gives the same apex.
			checked, err := ParseChecked(path, "sub.example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(checked.Apex(), z.Apex()) {
				t.Errorf("ParseChecked:\n%+v\nParse:\n%+v", checked.Apex(), z.Apex())
			}
			for _, name := range z.Names() {
				for _, typ := range z.Types(name) {
					if got, want := checked.Lookup(name, typ), z.Lookup(name, typ); !reflect.DeepEqual(got, want) {
						t.Errorf("ParseChecked answers %s %s with\n%+v\nParse with\n%+v", name, dns.TypeToString[typ], got, want)
					}
				}
			}
			// And the same answers to every name: the analysis checks
			// every name of a zone it reads in full.
			for _, name := range []string{"sub.example.com.", "ns1.sub.example.com.", "www.sub.example.com.", "h1.sub.example.com.", "x.sub.example.com."} {
				for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, 65534} {
					if got, want := checked.Lookup(name, qt), z.Lookup(name, qt); !reflect.DeepEqual(got, want) {
						t.Errorf("%s %s: ParseChecked answers %+v, Parse %+v", name, dns.Type(qt), got, want)
					}
				}
			}
			if name == "signed" && len(got.DNSKEYs) == 0 {
				t.Error("the signed zone's DNSKEY set is missing")
			}
		})
	}
	if _, err := ParseApex(filepath.Join(t.TempDir(), "absent"), "sub.example.com"); err == nil || !strings.Contains(err.Error(), "zone sub.example.com") {
		t.Errorf("a missing file: %v", err)
	}
	// A file BIND refuses for its SOA is refused by the quick read too.
	path := filepath.Join(t.TempDir(), "zone")
	testfiles.Write(t, path, "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 300\n NS ns1\nns1 A 192.0.2.53\n@ SOA ns1 hostmaster 2 3600 600 1209600 300\n")
	if a, err := ParseApex(path, "sub.example.com"); err == nil {
		t.Errorf("two SOA records: read as serial %d, want an error", a.Serial)
	}
}
