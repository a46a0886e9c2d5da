package zone

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const cnameZone = `$ORIGIN example.com.
$TTL 300
@      SOA  ns1 hostmaster 1 7200 900 1209600 300
       NS   ns1
ns1    A    192.0.2.1
www    A    192.0.2.10
alias  CNAME www
two    CNAME alias
out    CNAME www.example.net.
dang   CNAME nothere
del    CNAME x.sub
sub    NS   ns.sub
ns.sub A    192.0.2.53
*.w    CNAME www
loop   CNAME loop
l1     CNAME l2
l2     CNAME l1
both   CNAME www
both   TXT  "invalid beside a CNAME"
`

// The answers below are what BIND 9.18 gives for the same zone (checked
// with dig against named): the whole answer section and the RCODE.
func TestLookupFollowsCNAME(t *testing.T) {
	z := mustParse(t, cnameZone)
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		rrs   []string
	}{
		{"alias", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{"alias", dns.TypeCNAME, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com."}},
		{"alias", dns.TypeAAAA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com."}}, // NODATA at the target
		{"two", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com.", "two.example.com. 300 IN CNAME alias.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{"out", dns.TypeA, dns.RcodeSuccess, []string{"out.example.com. 300 IN CNAME www.example.net."}},
		{"dang", dns.TypeA, dns.RcodeNameError, []string{"dang.example.com. 300 IN CNAME nothere.example.com."}},
		{"del", dns.TypeA, dns.RcodeSuccess, []string{"del.example.com. 300 IN CNAME x.sub.example.com."}},
		{"x.w", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.10", "x.w.example.com. 300 IN CNAME www.example.com."}},
		{"loop", dns.TypeA, dns.RcodeSuccess, []string{"loop.example.com. 300 IN CNAME loop.example.com."}},
		{"l1", dns.TypeA, dns.RcodeSuccess, []string{"l1.example.com. 300 IN CNAME l2.example.com.", "l2.example.com. 300 IN CNAME l1.example.com."}},
		{"both", dns.TypeTXT, dns.RcodeSuccess, []string{`both.example.com. 300 IN TXT "invalid beside a CNAME"`}},
	}
	for _, c := range cases {
		got := z.Lookup(c.name+".example.com.", c.qtype)
		if got.Rcode != c.rcode || !slices.Equal(got.RRs, c.rrs) {
			t.Errorf("Lookup(%s, %s) = %s %q\nwant %s %q", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[got.Rcode], got.RRs, dns.RcodeToString[c.rcode], c.rrs)
		}
	}
}

func TestWarnings(t *testing.T) {
	z := mustParse(t, cnameZone)
	want := []string{
		"both.example.com. has a CNAME and other data",
		"l1.example.com.: CNAME loop through l1.example.com. (BIND answers SERVFAIL)",
		"l2.example.com.: CNAME loop through l2.example.com. (BIND answers SERVFAIL)",
		"loop.example.com.: CNAME loop through loop.example.com. (BIND answers SERVFAIL)",
	}
	if got := z.Warnings(10); !slices.Equal(got, want) {
		t.Errorf("Warnings =\n%q\nwant\n%q", got, want)
	}
	if got := z.Warnings(1); len(got) != 2 || got[1] != "and 3 more zone warnings" {
		t.Errorf("Warnings(1) = %q", got)
	}

	// BIND follows 11 CNAMEs in its own zone and answers SERVFAIL at 12.
	chain := func(links int) *Zone {
		var b strings.Builder
		b.WriteString("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nns A 192.0.2.1\n")
		for i := range links {
			fmt.Fprintf(&b, "c%d CNAME c%d\n", i, i+1)
		}
		fmt.Fprintf(&b, "c%d A 192.0.2.2\n", links)
		return mustParse(t, b.String())
	}
	if got := chain(11).Warnings(10); len(got) != 0 {
		t.Errorf("11 links: %q", got)
	}
	if got := chain(12).Warnings(10); len(got) != 1 || got[0] != "c0.example.com.: CNAME chain longer than 11 links (BIND answers SERVFAIL)" {
		t.Errorf("12 links: %q", got)
	}
	if a := chain(12).Lookup("c0.example.com.", dns.TypeA); a.Rcode != dns.RcodeSuccess || len(a.RRs) != 13 {
		t.Errorf("a long chain is still modelled in full: %v", a)
	}
}
