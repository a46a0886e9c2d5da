package zone

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
)

const testZone = `$ORIGIN Example.COM.
$TTL 3600
@	IN SOA	NS1.Example.com. hostmaster ( 2024010101 7200 900 1209600 300 )
	IN NS	ns1
	IN NS	ns2.example.com.
NS1	IN A	192.0.2.1
ns2	300 IN A	192.0.2.2
WWW	IN A	192.0.2.10
www	IN A	192.0.2.11
www	IN A	192.0.2.10
	IN AAAA	2001:db8::10
mail	IN MX	10 Mail.Example.com.
a.b.deep	IN TXT	"deep"
*.wild	IN A	192.0.2.99
sub	IN NS	ns.sub
ns.sub	IN A	192.0.2.53
$ORIGIN other.example.com.
host	IN A	192.0.2.20
$TTL 60
@	IN TXT	"hello world"
`

func mustParse(t *testing.T, text string) *Zone {
	t.Helper()
	z, err := Parse(strings.NewReader(text), "example.com", "db.example")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestParseNormalises(t *testing.T) {
	z := mustParse(t, testZone)
	if z.Origin() != "example.com." {
		t.Errorf("origin %q", z.Origin())
	}
	if z.Serial() != 2024010101 {
		t.Errorf("serial %d", z.Serial())
	}
	wantNames := []string{
		"*.wild.example.com.", "a.b.deep.example.com.", "example.com.", "host.other.example.com.",
		"mail.example.com.", "ns.sub.example.com.", "ns1.example.com.", "ns2.example.com.",
		"other.example.com.", "sub.example.com.", "www.example.com.",
	}
	if got := z.Names(); !slices.Equal(got, wantNames) {
		t.Errorf("Names() = %q\nwant %q", got, wantNames)
	}
	cases := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		// @ and SOA with relative mbox; $TTL applies; names in RDATA lower-cased.
		{"example.com", dns.TypeSOA, []string{"example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 900 1209600 300"}},
		// Omitted owner repeats the previous one; relative and absolute RDATA.
		{"EXAMPLE.com.", dns.TypeNS, []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."}},
		// Upper-case owner; duplicates merged; sorted.
		{"www.example.com.", dns.TypeA, []string{"www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"}},
		{"www.example.com.", dns.TypeAAAA, []string{"www.example.com. 3600 IN AAAA 2001:db8::10"}},
		// Explicit TTL.
		{"ns2.example.com.", dns.TypeA, []string{"ns2.example.com. 300 IN A 192.0.2.2"}},
		{"mail.example.com.", dns.TypeMX, []string{"mail.example.com. 3600 IN MX 10 mail.example.com."}},
		// Second $ORIGIN and $TTL.
		{"host.other.example.com.", dns.TypeA, []string{"host.other.example.com. 3600 IN A 192.0.2.20"}},
		{"other.example.com.", dns.TypeTXT, []string{"other.example.com. 60 IN TXT \"hello world\""}},
		{"nope.example.com.", dns.TypeA, nil},
	}
	for _, c := range cases {
		if got := z.RRset(c.name, c.qtype); !slices.Equal(got, c.want) {
			t.Errorf("RRset(%s, %s) = %q\nwant %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
	if got := z.Types("www.example.com."); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeAAAA}) {
		t.Errorf("Types(www) = %v", got)
	}
}

func TestParseRRsetTakesFirstTTL(t *testing.T) {
	z := mustParse(t, "@ 60 SOA ns hm 1 2 3 4 5\nx 100 A 192.0.2.1\nx 200 A 192.0.2.2\n")
	want := []string{"x.example.com. 100 IN A 192.0.2.1", "x.example.com. 100 IN A 192.0.2.2"}
	if got := z.RRset("x.example.com.", dns.TypeA); !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"bad A", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n\nwww A 192.0.2.999\n", `zone example.com: db.example:4: bad A A: "192.0.2.999"`},
		{"bad type", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww BOGUS x\n", "zone example.com: db.example:3: "},
		{"include", "$INCLUDE /etc/passwd\n", "zone example.com: db.example:1: $INCLUDE directive not allowed"},
		{"no SOA", "$TTL 60\nwww A 192.0.2.1\n", "zone example.com: db.example: no SOA record at the apex example.com."},
		{"out of zone", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww.example.net. A 192.0.2.1\n", "zone example.com: db.example:3: www.example.net. A is outside the zone"},
		{"out of zone, no final newline", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n; comment\n\nwww.example.net. A 192.0.2.1", "zone example.com: db.example:5: www.example.net. A is outside"},
		{"$ORIGIN outside", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n$ORIGIN example.org.\nwww A 192.0.2.1\n", "zone example.com: db.example:4: www.example.org. A is outside the zone"},
		{"two SOA", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ SOA ns hm (\n 2 2 3 4 5 )\nwww A 192.0.2.1\n", "zone example.com: db.example:4: more than one SOA"},
		{"SOA not at apex", "$TTL 60\nwww SOA ns hm 1 2 3 4 5\n", "zone example.com: db.example:2: SOA at www.example.com."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.text), "example.com", "db.example")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if code := dnsroll.ErrorCode(err); code != dnsroll.EINVALID {
				t.Errorf("ErrorCode = %q, want invalid", code)
			}
		})
	}
	_, err := Parse(strings.NewReader("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww A 192.0.2.999\n"), "example.com", "db.example")
	var ze *Error
	if !errors.As(err, &ze) || ze.Line != 3 || ze.File != "db.example" || ze.Zone != "example.com." {
		t.Errorf("err = %#v, want line 3 of db.example", err)
	}
}

func TestParseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.example.com")
	if err := os.WriteFile(path, []byte(testZone), 0o600); err != nil {
		t.Fatal(err)
	}
	z, err := ParseFile(path, "example.com.")
	if err != nil || z.Serial() != 2024010101 {
		t.Fatalf("ParseFile: %v", err)
	}
	if err := os.WriteFile(path, []byte("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww A x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(path, "example.com"); err == nil || !strings.HasPrefix(err.Error(), "zone example.com: "+path+":3: ") {
		t.Errorf("err = %v, want zone example.com: %s:3: ...", err, path)
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing"), "example.com"); err == nil || !strings.HasPrefix(err.Error(), "zone example.com: ") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestLookup(t *testing.T) {
	z := mustParse(t, testZone)
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		rrs   []string
	}{
		{"www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"}},
		{"WWW.example.com", dns.TypeAAAA, dns.RcodeSuccess, []string{"www.example.com. 3600 IN AAAA 2001:db8::10"}},
		{"www.example.com.", dns.TypeMX, dns.RcodeSuccess, nil},         // NODATA
		{"deep.example.com.", dns.TypeA, dns.RcodeSuccess, nil},         // empty non-terminal
		{"b.deep.example.com.", dns.TypeTXT, dns.RcodeSuccess, nil},     // empty non-terminal
		{"nope.example.com.", dns.TypeA, dns.RcodeNameError, nil},       // NXDOMAIN
		{"x.a.b.deep.example.com.", dns.TypeA, dns.RcodeNameError, nil}, // NXDOMAIN below data
		{"www.example.net.", dns.TypeA, dns.RcodeRefused, nil},          // not our zone
		{"x.wild.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"x.wild.example.com. 3600 IN A 192.0.2.99"}},
		{"y.x.wild.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"y.x.wild.example.com. 3600 IN A 192.0.2.99"}}, // any depth below the closest encloser
		{"x.wild.example.com.", dns.TypeTXT, dns.RcodeSuccess, nil},
	}
	for _, c := range cases {
		got := z.Lookup(c.name, c.qtype)
		if got.Rcode != c.rcode || !slices.Equal(got.RRs, c.rrs) {
			t.Errorf("Lookup(%s, %s) = %s %q, want %s %q", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[got.Rcode], got.RRs, dns.RcodeToString[c.rcode], c.rrs)
		}
	}
	for name, want := range map[string]bool{"sub.example.com.": true, "ns.sub.example.com.": true, "example.com.": false, "www.example.com.": false} {
		if got := z.Delegated(name); got != want {
			t.Errorf("Delegated(%s) = %v", name, got)
		}
	}
}

func TestCanonicalRR(t *testing.T) {
	rr, err := dns.NewRR("WWW.Example.COM 60 IN CNAME Target.Example.NET.")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := CanonicalRR(rr), "www.example.com. 60 IN CNAME target.example.net."; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if rr.Header().Name != "WWW.Example.COM." {
		t.Errorf("CanonicalRR modified its argument: %s", rr.Header().Name)
	}
	txt, _ := dns.NewRR(`t.example.com. 60 IN TXT "Keep Case"`)
	if got := CanonicalRR(txt); got != `t.example.com. 60 IN TXT "Keep Case"` {
		t.Errorf("TXT: %q", got)
	}
}

// BIND syntax in RDATA: relative names, "@", a changed $ORIGIN, class
// before TTL and records split over lines all become the fully qualified,
// lower-case form probes compare with answers.
func TestParseNormalisesRDATA(t *testing.T) {
	z := mustParse(t, `$TTL 1h
@            IN SOA ns1 Hostmaster.Example.com. (
                      5   ; serial
                      1h 15m 2w 5m )
             IN NS   NS1
             IN MX   10 @
apex-alias   IN CNAME @
_sip._tcp    IN SRV  10 5 5060 SipHost
$ORIGIN Sub.Example.COM.
child        IN 60 NS  ns.child
rev          IN PTR  host.example.org.
$ORIGIN example.com.
txt   120    TXT     "Keep Case" "two strings"
`)
	cases := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"example.com.", dns.TypeSOA, "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 5 3600 900 1209600 300"},
		{"example.com.", dns.TypeNS, "example.com. 3600 IN NS ns1.example.com."},
		{"example.com.", dns.TypeMX, "example.com. 3600 IN MX 10 example.com."},
		{"apex-alias.example.com.", dns.TypeCNAME, "apex-alias.example.com. 3600 IN CNAME example.com."},
		{"_sip._tcp.example.com.", dns.TypeSRV, "_sip._tcp.example.com. 3600 IN SRV 10 5 5060 siphost.example.com."},
		{"child.sub.example.com.", dns.TypeNS, "child.sub.example.com. 60 IN NS ns.child.sub.example.com."},
		{"rev.sub.example.com.", dns.TypePTR, "rev.sub.example.com. 3600 IN PTR host.example.org."},
		{"txt.example.com.", dns.TypeTXT, `txt.example.com. 120 IN TXT "Keep Case" "two strings"`},
	}
	for _, c := range cases {
		if got := z.RRset(c.name, c.qtype); len(got) != 1 || got[0] != c.want {
			t.Errorf("RRset(%s, %s) = %q\nwant %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}
