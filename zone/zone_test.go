package zone

import (
	"errors"
	"fmt"
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

// apex starts a test zone for example.com whose SOA and nameserver do not
// matter to the test.
const apex = `$TTL 300
@ SOA ns1 hm 1 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.1
`

// lookupCase is a question to a test zone and BIND's answer to it: the
// RCODE and the answer section.
type lookupCase struct {
	name  string
	qtype uint16
	rcode int
	rrs   []string
}

// checkLookups asks z every case and fails on each answered otherwise or
// with a referral.
func checkLookups(t *testing.T, z *Zone, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		got := z.Lookup(c.name, c.qtype)
		if got.Rcode != c.rcode || got.Referral || !slices.Equal(got.RRs.Strings(), c.rrs) {
			t.Errorf("Lookup(%s, %s) = %s %q referral %v\nwant %s %q", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[got.Rcode], got.RRs.Strings(), got.Referral, dns.RcodeToString[c.rcode], c.rrs)
		}
	}
}

// recs are records written as text, as Records.
func recs(t *testing.T, texts ...string) Records {
	t.Helper()
	var rrs []dns.RR
	for _, s := range texts {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	return NewRecords(rrs, "")
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
		if got := z.RRset(c.name, c.qtype).Strings(); !slices.Equal(got, c.want) {
			t.Errorf("RRset(%s, %s) = %q\nwant %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
	if got := z.Types("www.example.com."); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeAAAA}) {
		t.Errorf("Types(www) = %v", got)
	}
}

// BIND serves an RRset whose lines give different TTLs with the lowest
// of them when the lines are apart, and $GENERATE takes $TTL.
func TestParseTTLsAsBINDServes(t *testing.T) {
	z := mustParse(t, "$TTL 300\n@ 60 SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.53\nx 600 A 192.0.2.1\ny A 192.0.2.3\nx 100 A 192.0.2.2\n$GENERATE 1-2 g$ A 192.0.2.$\n")
	want := []string{"x.example.com. 100 IN A 192.0.2.1", "x.example.com. 100 IN A 192.0.2.2"}
	if got := z.RRset("x.example.com.", dns.TypeA).Strings(); !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if got := z.RRset("g2.example.com.", dns.TypeA).Strings(); !slices.Equal(got, []string{"g2.example.com. 300 IN A 192.0.2.2"}) {
		t.Errorf("$GENERATE: %q", got)
	}
}

// Zones that BIND loads and miekg/dns alone does not read as BIND does:
// no $TTL and no TTL on the SOA (the SOA minimum is used), out-of-zone
// data (ignored, with a note), unknown types in RFC 3597 form, escaped
// names, $GENERATE with a nibble modifier, LOC without seconds.
func TestParseWhatBINDLoads(t *testing.T) {
	z := mustParse(t, `$ORIGIN example.com.
@ SOA ns hm 1 2 3 4 301
  NS ns
ns A 192.0.2.53
www.example.net. A 192.0.2.1
unk TYPE65534 \# 2 ABCD
\070oo A 192.0.2.7
loc LOC 52 22 N 4 53 E 0m
$GENERATE 10-11 ${0,4,n}ip6 AAAA 2001:db8::$
`)
	cases := map[string][]string{
		"ns.example.com. A":          {"ns.example.com. 301 IN A 192.0.2.53"},
		"unk.example.com. TYPE65534": {`unk.example.com. 301 CLASS1 TYPE65534 \# 2 abcd`},
		"foo.example.com. A":         {"foo.example.com. 301 IN A 192.0.2.7"},
		"loc.example.com. LOC":       {"loc.example.com. 301 IN LOC 52 22 0.000 N 04 53 0.000 E 0m 1m 10000m 10m"},
		"a.0.ip6.example.com. AAAA":  {"a.0.ip6.example.com. 301 IN AAAA 2001:db8::10"},
	}
	for q, want := range cases {
		f := strings.Fields(q)
		qt, _ := dns.StringToType[f[1]]
		if f[1] == "TYPE65534" {
			qt = 65534
		}
		if got := z.RRset(f[0], qt).Strings(); !slices.Equal(got, want) {
			t.Errorf("%s: got %q want %q", q, got, want)
		}
	}
	if got := z.Warnings(10); len(got) != 1 || !strings.Contains(got[0], "db.example:5: ignoring out-of-zone data (www.example.net)") {
		t.Errorf("warnings %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.53\n"
	cases := []struct{ name, text, want string }{
		{"bad A", head + "\nwww A 192.0.2.999\n", `zone example.com: db.example:6: near '192.0.2.999': bad dotted quad`},
		{"bad type", head + "www BOGUS x\n", "zone example.com: db.example:5: unknown RR type 'BOGUS'"},
		{"include", "$INCLUDE /etc/passwd\n", "zone example.com: db.example:1: $INCLUDE is not allowed: a zone file may not read other files on the worker; put the records it names in this file"},
		// BIND ends a line at a bare carriage return too: the directive
		// after one would read the worker's file, and the error or the
		// records would show its contents.
		{"include after a carriage return", head + "www A 192.0.2.1\r$INCLUDE /etc/passwd\n", "zone example.com: db.example:5: $INCLUDE is not allowed"},
		{"include after a carriage return and blanks", head + "www A 192.0.2.1\r \t$include /etc/passwd\n", "zone example.com: db.example:5: $INCLUDE is not allowed"},
		{"no SOA", "$TTL 60\nwww A 192.0.2.1\n", "zone example.com: db.example: BIND refuses the zone: has 0 SOA records"},
		// The file is another zone's: named reads each record as out of
		// zone and then finds no SOA. The message says whose it is.
		{"another zone's file", "$ORIGIN example.org.\n" + head, "zone example.com: db.example:3: the file's records are for example.org, not example.com: correct the zone's name in the fleet, or the file's $ORIGIN"},
		{"two SOA", head + "@ SOA ns hm (\n 2 2 3 4 5 )\nwww A 192.0.2.1\n", "zone example.com: db.example:5: example.com: multiple RRs of singleton type"},
		// A name written without its trailing dot is relative to the
		// zone: the message says so, where BIND shows the doubled name.
		{"NS without a trailing dot", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns.example.com\nns A 192.0.2.53\n",
			"NS 'ns.example.com.example.com' has no address records (A or AAAA) (ns.example.com.example.com: a name without a trailing dot is relative to the zone; end it with a dot: ns.example.com.)"},
		{"SOA not at apex", "$TTL 60\nwww SOA ns hm 1 2 3 4 5\n", "zone example.com: db.example:2: SOA record not at top of zone"},
		// Windows editors save one; BIND reads it into the first line and
		// refuses the file with "unexpected end of input", whatever that
		// line holds.
		{"byte order mark", "\ufeff" + head, "zone example.com: db.example:1: the file begins with a UTF-8 byte order mark (EF BB BF), which BIND reads as part of its first line and refuses: save the file without it"},
		{"CNAME and other data", head + "www CNAME ns\nwww TXT x\n", "zone example.com: db.example:6: www.example.com: CNAME and other data"},
		// A DKIM key pasted as one string: BIND says only "syntax error".
		{"TXT string over 255 bytes", head + "k._domainkey TXT \"v=DKIM1; p=" + strings.Repeat("A", 290) + "\"\n", "zone example.com: db.example:5: syntax error (a string holds at most 255 bytes, and this record has one of 301: split it into quoted strings (\"...\" \"...\"), which TXT readers such as DKIM join)"},
		{"unquoted string over 255 bytes", head + "long TXT " + strings.Repeat("x", 256) + "\n", "zone example.com: db.example:5: near 'xxxx"},
		{"unquoted string over 255 bytes, hint", head + "long TXT " + strings.Repeat("x", 256) + "\n", "syntax error (a string holds at most 255 bytes, and this record has one of 256:"},
		{"string over 255 bytes on a continuation line", head + "k TXT (\"a\"\n \"" + strings.Repeat("\\065", 256) + "\" )\n", "db.example:5: syntax error (a string holds at most 255 bytes, and this record has one of 256:"},
		// named loads this; miekg/dns refuses IPv4-mapped hints (RFC 9460 §7.3
		// says clients ignore them). The message names the record.
		{"IPv4-mapped ipv6hint", head + "svc SVCB 1 . ipv6hint=::ffff:198.51.100.100\n", `zone example.com: db.example: BIND loads this zone but dnsroll cannot read its record "svc.example.com. 60 IN SVCB 1 . ipv6hint=::ffff:198.51.100.100" (miekg/dns: "ipv6hint=::ffff:198.51.100.100")`},
		// named-checkzone loads these; named (9.18.28 and later) does not.
		// named loads it, then answers it truncated and empty, over TCP
		// too: no resolver gets it.
		{"an RRset no message holds", head + bigTXT(100, 645), "zone example.com: db.example: big.example.com. TXT takes 66,044 bytes in an answer"},
		{"101 records in one RRset", head + manyLines(101, "big A 10.0.%d.%d\n"), "zone example.com: db.example: big.example.com. A has 101 records; named refuses to load more than 100 records of one type at a name (max-records-per-type): keep at most that many"},
		{"101 types at one name", head + manyLines(101, "many TYPE%d \\# 1 01\n"), "zone example.com: db.example: many.example.com. has 101 RRsets (types, and signatures of each type); named refuses to load more than 100 at a name (max-types-per-name): move some of its data to other names"},
		{"51 signed types at one name", head + manyLines(51, "many TYPE%d \\# 1 01\n") + manyLines(51, signature), "zone example.com: db.example: many.example.com. has 102 RRsets (types, and signatures of each type)"},
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
	_, err := Parse(strings.NewReader(head+"www A 192.0.2.999\n"), "example.com", "db.example")
	var ze *Error
	if !errors.As(err, &ze) || ze.Line != 5 || ze.File != "db.example" || ze.Zone != "example.com." {
		t.Errorf("err = %#v, want line 5 of db.example", err)
	}
}

// bigTXT is n TXT records at big, each of size bytes of text.
func bigTXT(n, size int) string {
	var b strings.Builder
	for i := range n {
		text := fmt.Sprintf("%04d", i) + strings.Repeat("x", size-4)
		b.WriteString("big TXT")
		for len(text) > 0 {
			k := min(len(text), 255)
			fmt.Fprintf(&b, " %q", text[:k])
			text = text[k:]
		}
		b.WriteString("\n")
	}
	return b.String()
}

// manyLines is n lines of format, numbered from 1 (as two numbers, i/250
// and i%250, when format takes two; as 65279+i, a private type, when one).
func manyLines(n int, format string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if strings.Count(format, "%d") == 2 {
			fmt.Fprintf(&b, format, i/250, i%250)
		} else {
			fmt.Fprintf(&b, format, 65279+i)
		}
	}
	return b.String()
}

// signature is an RRSIG over the private type numbered by manyLines.
const signature = "many RRSIG TYPE%d 13 3 60 20300101000000 20200101000000 1 example.com. AAAA\n"

// The limits are named's, not one more or less.
func TestParseAtNamedLimits(t *testing.T) {
	const head = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.53\n"
	for _, text := range []string{
		head + manyLines(100, "big A 10.0.%d.%d\n"),
		head + manyLines(100, "many TYPE%d \\# 1 01\n"),
		head + manyLines(50, "many TYPE%d \\# 1 01\n") + manyLines(50, signature),
	} {
		if _, err := Parse(strings.NewReader(text), "example.com", "db.example"); err != nil {
			t.Errorf("at the limit: %v", err)
		}
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
	if err := os.WriteFile(path, []byte("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww A x\n NS ns\nns A 192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(path, "example.com"); err == nil || !strings.HasPrefix(err.Error(), "zone example.com: "+path+":3: ") {
		t.Errorf("err = %v, want zone example.com: %s:3: ...", err, path)
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing"), "example.com"); err == nil || !strings.HasPrefix(err.Error(), "zone example.com: ") {
		t.Errorf("missing file: err = %v", err)
	}
	// The root zone is named ".", not "".
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing"), "."); err == nil || !strings.HasPrefix(err.Error(), "zone .: ") {
		t.Errorf("missing file of the root zone: err = %v", err)
	}
	if got := (&Error{Zone: ".", File: "root.zone", Line: 4, Msg: "bad"}).Error(); got != "zone .: root.zone:4: bad" {
		t.Errorf("an error in the root zone: %q", got)
	}
}

func TestLookup(t *testing.T) {
	z := mustParse(t, testZone)
	checkLookups(t, z, []lookupCase{
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
	})
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
NS1          IN A    192.0.2.1
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
		if got := z.RRset(c.name, c.qtype).Strings(); len(got) != 1 || got[0] != c.want {
			t.Errorf("RRset(%s, %s) = %q\nwant %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}
}

// Records written differently but equal on the wire are equal: SVCB keys
// out of order, upper-case hex, a NAPTR regexp with "\.", escaped and
// upper-case names. A changed byte is not.
func TestRecordsCompareAsData(t *testing.T) {
	same := [][2]string{
		{`h.example.com. 60 IN HTTPS 1 . alpn=h2 port=8443`, `h.example.com. 60 IN HTTPS 1 . port=8443 alpn=h2`},
		{`t.example.com. 60 IN TLSA 3 1 1 ABCDEF0123`, `t.example.com. 60 IN TLSA 3 1 1 abcdef0123`},
		{`n.example.com. 60 IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example\.com!" .`, `n.example.com. 60 IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .`},
		{`\070oo.example.com. 60 IN MX 10 MAIL.Example.com.`, `foo.example.com. 60 IN MX 10 mail.example.com.`},
	}
	for _, p := range same {
		a, b := recs(t, p[0]), recs(t, p[1])
		if !a.Equal(b) {
			t.Errorf("%s\nand %s\ndiffer, want equal", p[0], p[1])
		}
	}
	if recs(t, `t.example.com. 60 IN TLSA 3 1 1 ABCDEF0123`).Equal(recs(t, `t.example.com. 60 IN TLSA 3 1 1 ABCDEF0124`)) {
		t.Error("different TLSA data compare equal")
	}
	big := func(last string) Records {
		return recs(t, `t.example.com. 60 IN TXT "`+strings.Repeat("a", 250)+`" "`+strings.Repeat("b", 250)+`" "`+last+`"`)
	}
	if !big("x").Equal(big("x")) || big("x").Equal(big("y")) {
		t.Error("records larger than the packing buffer are not compared by their data")
	}
	if recs(t, `t.example.com. 60 IN TXT "Case"`).Equal(recs(t, `t.example.com. 60 IN TXT "case"`)) {
		t.Error("TXT is compared case-insensitively; RFC 4034 §6.2 lowers names only")
	}
	if recs(t, `t.example.com. 60 IN A 192.0.2.1`).Equal(recs(t, `t.example.com. 61 IN A 192.0.2.1`)) {
		t.Error("a TTL change is not a change")
	}
	// Canonical order: by RDATA octets within an RRset (RFC 4034 §6.3).
	got := recs(t, "x.example.com. 60 IN A 192.0.2.10", "x.example.com. 60 IN A 192.0.2.9").Strings()
	if want := []string{"x.example.com. 60 IN A 192.0.2.9", "x.example.com. 60 IN A 192.0.2.10"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if !SameName(`\070oo.Example.com`, "foo.example.com.") || SameName("foo.example.com.", "fop.example.com.") {
		t.Error("SameName")
	}
}

// DSYNC (RFC 9859), which BIND prints with its scheme mnemonic, parses
// and compares as data, and lines after an IPSECKEY are read.
func TestParseDSYNCAndIPSECKEY(t *testing.T) {
	z := mustParse(t, `$TTL 60
@ SOA ns hm 1 2 3 4 5
 NS ns
ns A 192.0.2.1
_dsync DSYNC CDS 1 5359 ds-boot.example.com.
ipk IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
after A 192.0.2.9
`)
	if got := z.RRset("_dsync.example.com.", TypeDSYNC).Strings(); len(got) != 1 || got[0] != "_dsync.example.com. 60 IN DSYNC CDS 1 5359 ds-boot.example.com." {
		t.Errorf("DSYNC: %q", got)
	}
	if got := z.RRset("after.example.com.", dns.TypeA).Strings(); len(got) != 1 {
		t.Errorf("the record after an IPSECKEY: %q", got)
	}
	if recs(t, "d.example.com. 60 IN DSYNC CDS 1 5359 a.example.com.").Equal(recs(t, "d.example.com. 60 IN DSYNC CDS 1 5360 a.example.com.")) {
		t.Error("DSYNC records that differ compare equal")
	}
}

// Without named-compilezone, miekg/dns reads the file alone, with BIND's
// rules where it can (minimum TTL of an RRset, out-of-zone data ignored),
// and a note says the reading may differ from BIND's.
func TestParseWithoutCompiler(t *testing.T) {
	saved := compilerPath
	compilerPath = func() string { return "" }
	defer func() { compilerPath = saved }()
	z := mustParse(t, "$TTL 300\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.53\nx 600 A 192.0.2.1\ny A 192.0.2.3\nx 100 A 192.0.2.2\nwww.example.net. A 192.0.2.9\n")
	if got := z.RRset("x.example.com.", dns.TypeA).Strings(); !slices.Equal(got, []string{"x.example.com. 100 IN A 192.0.2.1", "x.example.com. 100 IN A 192.0.2.2"}) {
		t.Errorf("TTLs: %q", got)
	}
	notes := strings.Join(z.Notes(), "\n")
	for _, want := range []string{"read without named-compilezone", "db.example:8: ignoring out-of-zone data (www.example.net. A)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	// What BIND would refuse about the SOA is refused without it too: the
	// serial is the apex SOA's, and a zone has one.
	for _, tt := range []struct{ text, want string }{
		{"$TTL 300\n NS ns\nns A 192.0.2.53\n", "no SOA record at the apex example.com."},
		{"$TTL 300\n@ SOA ns hm 1 2 3 4 5\nsub SOA ns hm 2 2 3 4 5\n", "db.example:3: SOA at sub.example.com., want it at the apex example.com."},
		{"$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ SOA ns hm 2 2 3 4 5\n", "db.example:3: more than one SOA record"},
	} {
		_, err := Parse(strings.NewReader(tt.text), "example.com", "db.example")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.text, err, tt.want)
		}
	}
}

// named loads a TTL up to 2^31-1 as it is, and a larger one as 0 (RFC
// 2181 §8): the answers the checks expect carry the same.
func TestParseTTLAtTheMaximum(t *testing.T) {
	z := mustParse(t, apex+"max 2147483647 A 192.0.2.1\nover 2147483648 A 192.0.2.2\n")
	for name, want := range map[string]uint32{"max.example.com.": 2147483647, "over.example.com.": 0} {
		if rrs := z.RRset(name, dns.TypeA); len(rrs) != 1 || rrs[0].Header().Ttl != want {
			t.Errorf("%s: %q, want TTL %d", name, rrs.Strings(), want)
		}
	}
}

// WKS and NSAP, which miekg/dns does not know, and GPOS and X25, which
// BIND prints quoted (GPOS with empty fields too), parse and compare as
// data.
func TestParseWKSAndGPOS(t *testing.T) {
	z := mustParse(t, `$TTL 60
@ SOA ns hm 1 2 3 4 5
 NS ns
ns A 192.0.2.1
wks WKS 10.0.0.1 6 ( 0 1 2 21 23 )
gpos GPOS "-22.6882" "116.8652" "250.0"
gpos0 GPOS "" "" ""
nsap NSAP 0x47000580005a0000000001e133ffffff00016100
x25 X25 "123456789"
after A 192.0.2.9
`)
	if got := z.RRset("wks.example.com.", TypeWKS).Strings(); len(got) != 1 || got[0] != "wks.example.com. 60 IN WKS 10.0.0.1 6 0 1 2 21 23" {
		t.Errorf("WKS: %q", got)
	}
	gpos := z.RRset("gpos.example.com.", dns.TypeGPOS)
	if !gpos.Equal(recs(t, "gpos.example.com. 60 IN GPOS -22.6882 116.8652 250.0")) {
		t.Errorf("GPOS: %q", gpos.Strings())
	}
	if got := z.RRset("nsap.example.com.", 22).Strings(); len(got) != 1 || got[0] != `nsap.example.com. 60 CLASS1 TYPE22 \# 20 47000580005a0000000001e133ffffff00016100` {
		t.Errorf("NSAP: %q", got)
	}
	// A type miekg/dns has no name for, in an RRSIG and an NSEC bitmap.
	signed := mustParse(t, "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\nnsap NSAP 0x47\n"+
		"nsap RRSIG NSAP 13 3 60 20261101000000 20261001000000 12345 example.com. AAAA\nnsap NSEC ns.example.com. NSAP RRSIG NSEC\n"+
		"ptr NSAP-PTR host.example.com.\nptr RRSIG NSAP-PTR 13 3 60 20261101000000 20261001000000 12345 example.com. AAAA\n")
	if got := signed.RRset("nsap.example.com.", dns.TypeRRSIG); len(got) != 1 || got[0].(*dns.RRSIG).TypeCovered != 22 {
		t.Errorf("RRSIG over NSAP: %q", got.Strings())
	}
	if got := signed.RRset("ptr.example.com.", dns.TypeRRSIG); len(got) != 1 || got[0].(*dns.RRSIG).TypeCovered != dns.TypeNSAPPTR {
		t.Errorf("RRSIG over NSAP-PTR: %q", got.Strings())
	}
	if !z.RRset("x25.example.com.", dns.TypeX25).Equal(recs(t, "x25.example.com. 60 IN X25 123456789")) {
		t.Errorf("X25: %q", z.RRset("x25.example.com.", dns.TypeX25).Strings())
	}
	if len(z.RRset("gpos0.example.com.", dns.TypeGPOS)) != 1 || len(z.RRset("after.example.com.", dns.TypeA)) != 1 {
		t.Errorf("empty GPOS or the record after it missing: %q", z.Names())
	}
	if recs(t, "w.example.com. 60 IN WKS 10.0.0.1 6 21").Equal(recs(t, "w.example.com. 60 IN WKS 10.0.0.1 6 22")) {
		t.Error("WKS records that differ compare equal")
	}
}

// One-byte fields such as DSYNC's scheme and WKS's protocol are read as a
// mnemonic in any case or as a decimal number that fits in a byte.
func TestMnemonicOrNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint8
		ok   bool
	}{{"udp", 17, true}, {"TCP", 6, true}, {"17", 17, true}, {"255", 255, true}, {"256", 0, false}, {"sctp", 0, false}, {"", 0, false}} {
		if got, ok := mnemonicOrNumber(wksProtocols, c.in); got != c.want && ok || ok != c.ok {
			t.Errorf("mnemonicOrNumber(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Records are one when their canonical wire data is (RFC 4034 §6.2): MX
// exchanges differing in case are one record, SVCB targets differing in
// case are two, as named serves them.
func TestDuplicatesAsWireData(t *testing.T) {
	z := mustParse(t, apex+"dupl MX 10 some.example.\nDuPl MX 10 Some.EXAMPLE.\nsvc SVCB 10 A.exAmple.\nsvc SVCB 10 a.EXampLE.\nsvc SVCB \\# 13 000a0161074558616D704C4500\n")
	if got := z.RRset("dupl.example.com.", dns.TypeMX).Strings(); len(got) != 1 {
		t.Errorf("MX set %q, want one record", got)
	}
	if got := z.RRset("svc.example.com.", dns.TypeSVCB).Strings(); len(got) != 2 {
		t.Errorf("SVCB set %q, want the two targets as written", got)
	}
}

// BIND loads an MX, SRV or NS that names a CNAME, saying it is illegal
// (RFC 2181 §10.3): a delegation to one is lame to many resolvers, so
// the warning reaches the operator. So does a delegation to a name
// below it without an address (glue), which named loads with an error
// and no resolver can follow.
func TestParseKeepsBINDIntegrityWarnings(t *testing.T) {
	z := mustParse(t, `$TTL 300
@ SOA ns hm 1 2 3 4 5
  NS ns
ns A 192.0.2.53
mx MX 10 alias
sub NS alias
alias CNAME ns
noglue NS ns.noglue
`)
	got := strings.Join(z.Warnings(10), "\n")
	for _, want := range []string{"mx.example.com/MX 'alias.example.com' is a CNAME (illegal)", "sub.example.com/NS 'alias.example.com' is a CNAME (illegal)",
		"noglue.example.com/NS 'ns.noglue.example.com' has no REQUIRED GLUE address records (A or AAAA)"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q, want one with %q", got, want)
		}
	}
}
