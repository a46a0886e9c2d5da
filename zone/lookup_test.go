package zone

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
)

const cnameZone = apex + `www    A    192.0.2.10
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
`

// The answers below are what BIND 9.18 gives for the same zone (checked
// with dig against named): the whole answer section and the RCODE.
func TestLookupFollowsCNAME(t *testing.T) {
	z := mustParse(t, cnameZone)
	checkLookups(t, z, []lookupCase{
		{"alias.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{"alias.example.com.", dns.TypeCNAME, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com."}},
		{"alias.example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com."}}, // NODATA at the target
		{"two.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com.", "two.example.com. 300 IN CNAME alias.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{"out.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"out.example.com. 300 IN CNAME www.example.net."}},
		{"dang.example.com.", dns.TypeA, dns.RcodeNameError, []string{"dang.example.com. 300 IN CNAME nothere.example.com."}},
		{"del.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"del.example.com. 300 IN CNAME x.sub.example.com."}},
		{"x.w.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"x.w.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		// Loops: SERVFAIL with the chain until it repeats.
		{"loop.example.com.", dns.TypeA, dns.RcodeServerFailure, []string{"loop.example.com. 300 IN CNAME loop.example.com."}},
		{"l1.example.com.", dns.TypeA, dns.RcodeServerFailure, []string{"l1.example.com. 300 IN CNAME l2.example.com.", "l2.example.com. 300 IN CNAME l1.example.com."}},
	})
}

// NSEC, KEY, SIG and RRSIG may stand beside a CNAME (RFC 4035 §2.5, RFC
// 3007), so BIND answers them from the name itself and does not follow
// its CNAME, written or a wildcard's: NODATA where the name has none.
// Other types, NXT among them, follow it.
func TestLookupDoesNotFollowCNAMEForTypesBesideIt(t *testing.T) {
	z := mustParse(t, cnameZone)
	var cases []lookupCase
	for _, qt := range []uint16{dns.TypeNSEC, dns.TypeKEY, dns.TypeSIG, dns.TypeRRSIG} {
		cases = append(cases,
			lookupCase{"alias.example.com.", qt, dns.RcodeSuccess, nil},
			lookupCase{"x.w.example.com.", qt, dns.RcodeSuccess, nil},
			lookupCase{"dang.example.com.", qt, dns.RcodeSuccess, nil})
	}
	cases = append(cases, lookupCase{"alias.example.com.", dns.TypeNXT, dns.RcodeSuccess, []string{"alias.example.com. 300 IN CNAME www.example.com."}})
	checkLookups(t, z, cases)
}

func TestWarnings(t *testing.T) {
	z := mustParse(t, cnameZone)
	wantWarnings(t, z,
		"dang.example.com.: CNAME nothere.example.com. names nothing in the zone",
		"l1.example.com.: CNAME loop (BIND answers SERVFAIL)",
		"l2.example.com.: CNAME loop (BIND answers SERVFAIL)",
		"loop.example.com.: CNAME loop (BIND answers SERVFAIL)",
	)
	if got := z.Warnings(1); len(got) != 2 || got[1] != "and 3 more zone warnings" {
		t.Errorf("Warnings(1) = %q", got)
	}

	// BIND follows 11 CNAMEs in its own zone and answers SERVFAIL at 12.
	chain := func(links int) *Zone {
		var b strings.Builder
		b.WriteString("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n")
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
	// As BIND 9.18.49 answers: SERVFAIL with the 12 CNAMEs it followed.
	if a := chain(12).Lookup("c0.example.com.", dns.TypeA); a.Rcode != dns.RcodeServerFailure || len(a.RRs) != 12 {
		t.Errorf("12 links: %v", a)
	}
	if a := chain(11).Lookup("c0.example.com.", dns.TypeA); a.Rcode != dns.RcodeSuccess || len(a.RRs) != 12 {
		t.Errorf("11 links: %v", a)
	}
}

// As BIND 9.18.49 answers the same zone (checked with dig): DNAME
// substitution with a synthesised CNAME, referrals at and below a cut
// with the NS set and glue, DS at the cut answered by the parent.
func TestLookupDNAMEAndReferrals(t *testing.T) {
	z := mustParse(t, apex+`www A 192.0.2.10
old 600 DNAME new
x.new A 192.0.2.5
alias CNAME www.old
sub NS ns.sub
sub NS ns.other.net.
sub DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sub A 192.0.2.77
deep.sub A 192.0.2.78
sib NS ns1
sib NS ns.sub
`)
	checkLookups(t, z, []lookupCase{
		{"x.old.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"x.new.example.com. 300 IN A 192.0.2.5", "old.example.com. 600 IN DNAME new.example.com.", "x.old.example.com. 600 IN CNAME x.new.example.com."}},
		{"alias.example.com.", dns.TypeA, dns.RcodeNameError, []string{"alias.example.com. 300 IN CNAME www.old.example.com.", "old.example.com. 600 IN DNAME new.example.com.", "www.old.example.com. 600 IN CNAME www.new.example.com."}},
		{"old.example.com.", dns.TypeDNAME, dns.RcodeSuccess, []string{"old.example.com. 600 IN DNAME new.example.com."}},
		{"old.example.com.", dns.TypeA, dns.RcodeSuccess, nil},
		{"sub.example.com.", dns.TypeDS, dns.RcodeSuccess, []string{"sub.example.com. 300 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}},
		// As named: a CNAME query stops at the synthesised CNAME, even
		// when its target does not exist.
		{"www.old.example.com.", dns.TypeCNAME, dns.RcodeSuccess, []string{"old.example.com. 600 IN DNAME new.example.com.", "www.old.example.com. 600 IN CNAME www.new.example.com."}},
		// A label of 63 escaped octets is 63 octets on the wire, not 252
		// characters: the synthesised name fits, and is no YXDOMAIN.
		{strings.Repeat(`\000`, 63) + ".old.example.com.", dns.TypeCNAME, dns.RcodeSuccess,
			[]string{"old.example.com. 600 IN DNAME new.example.com.", strings.Repeat(`\000`, 63) + ".old.example.com. 600 IN CNAME " + strings.Repeat(`\000`, 63) + ".new.example.com."}},
	})
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"sub", dns.TypeNS}, {"sub", dns.TypeA}, {"ns.sub", dns.TypeA}, {"deep.sub", dns.TypeA}, {"nope.sub", dns.TypeDS}} {
		got := z.Lookup(q.name+".example.com.", q.qtype)
		wantNS := []string{"sub.example.com. 300 IN NS ns.sub.example.com.", "sub.example.com. 300 IN NS ns.other.net."}
		if !got.Referral || got.Rcode != dns.RcodeSuccess || len(got.RRs) != 0 ||
			!slices.Equal(got.Authority.Strings(), wantNS) ||
			!slices.Equal(got.Additional.Strings(), []string{"ns.sub.example.com. 300 IN A 192.0.2.77"}) {
			t.Errorf("%s %s: want a referral, got %+v", q.name, dns.TypeToString[q.qtype], got)
		}
	}
	// Glue below another cut is added; the zone's own ns1 A is not, but
	// is optional (named adds it now and then).
	if got := z.Lookup("x.sib.example.com.", dns.TypeA); !got.Referral || !slices.Equal(got.Additional.Strings(), []string{"ns.sub.example.com. 300 IN A 192.0.2.77"}) ||
		!slices.Equal(got.Optional.Strings(), []string{"ns1.example.com. 300 IN A 192.0.2.1"}) {
		t.Errorf("sibling referral: %+v", got)
	}
	if got := z.Cuts(); !slices.Equal(got, []string{"sib.example.com.", "sub.example.com."}) {
		t.Errorf("Cuts() = %q", got)
	}
}

// A name server of a referral that only a wildcard of the zone answers:
// named adds the addresses it synthesises when its glue cache misses, as
// it adds the zone's own, so they are optional; not glue, and not the
// wildcard's other types.
func TestReferralOptionalFromWildcard(t *testing.T) {
	z := mustParse(t, apex+`*.w A 192.0.2.50
*.w AAAA 2001:db8::50
*.w TXT "x"
sub NS ns.w
`)
	got := z.Lookup("x.sub.example.com.", dns.TypeA)
	want := []string{"ns.w.example.com. 300 IN A 192.0.2.50", "ns.w.example.com. 300 IN AAAA 2001:db8::50"}
	if !got.Referral || len(got.Additional) != 0 || !slices.Equal(got.Optional.Strings(), want) {
		t.Errorf("referral to a name server under a wildcard: %+v, want optional %q", got, want)
	}
}

// A cut below a DNAME answers nothing itself, but named sends the
// addresses at and below it as glue for another cut's name server there
// (measured on 9.18.49): required, as any glue, and not a wildcard's.
func TestGlueBelowAnOccludedCut(t *testing.T) {
	z := mustParse(t, apex+`d DNAME target.example.net.
c.d NS ns.c.d
ns.c.d A 192.0.2.50
*.w.c.d A 192.0.2.60
sub NS ns.c.d
sub NS x.w.c.d
`)
	got := z.Lookup("sub.example.com.", dns.TypeNS)
	want := []string{"ns.c.d.example.com. 300 IN A 192.0.2.50"}
	if !got.Referral || !slices.Equal(got.Additional.Strings(), want) || len(got.Optional) != 0 {
		t.Errorf("referral to name servers below an occluded cut: %+v, want glue %q and nothing optional", got, want)
	}
}

// NSEC3 owners are hashes kept apart from the zone's names: BIND answers
// NXDOMAIN for them, so they are not names to ask.
func TestNSEC3OwnersAreNotNames(t *testing.T) {
	z := mustParse(t, apex+`@ NSEC3PARAM 1 0 0 -
2vptu5timamqttgl4luu9kg21e0aor3s NSEC3 1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3t NS SOA RRSIG DNSKEY NSEC3PARAM
`)
	for _, n := range z.Names() {
		if strings.HasPrefix(n, "2vptu5") {
			t.Errorf("Names() holds the NSEC3 owner %s", n)
		}
	}
	if a := z.Lookup("2vptu5timamqttgl4luu9kg21e0aor3s.example.com.", dns.TypeA); a.Rcode != dns.RcodeNameError {
		t.Errorf("NSEC3 owner: %v, want NXDOMAIN", a)
	}
}

// A DNAME occludes the names below it, zone cuts included: BIND answers
// a name below with the substitution, not a referral.
func TestDNAMEOccludesCut(t *testing.T) {
	z := mustParse(t, apex+`old DNAME example.net.
sub.old NS ns.example.net.
both DNAME example.net.
both NS ns.both
ns.both A 192.0.2.9
`)
	// A cut beside a DNAME occludes the DNAME: names below it are referred.
	if r := z.Lookup("ns.both.example.com.", dns.TypeA); !r.Referral || len(r.Additional) != 1 {
		t.Errorf("below a cut with a DNAME: %+v, want a referral with glue", r)
	}
	if z.Delegated("sub.old.example.com.") || !slices.Equal(z.Cuts(), []string{"both.example.com."}) {
		t.Errorf("an occluded cut is a delegation: cuts %q", z.Cuts())
	}
	got := z.Lookup("sub.old.example.com.", dns.TypeNS)
	want := []string{"old.example.com. 300 IN DNAME example.net.", "sub.old.example.com. 300 IN CNAME sub.example.net."}
	if got.Referral || !slices.Equal(got.RRs.Strings(), want) {
		t.Errorf("got %+v, want %q", got, want)
	}
}

// In a root zone the closest encloser of a top-level name is "." itself:
// a name under no delegation is NXDOMAIN, or synthesised from "*." when
// the zone has one. Lookup used to loop for ever on such a name.
func TestLookupInRootZone(t *testing.T) {
	const root = "$TTL 300\n. SOA a.root. hm. 1 3600 600 86400 300\n. NS a.root\nroot NS a.root\na.root A 192.0.2.1\n"
	for _, c := range []struct {
		text  string
		rcode int
		rrs   []string
	}{
		{root, dns.RcodeNameError, nil},
		{root + "* TXT \"any\"\n", dns.RcodeSuccess, []string{`nosuchtld. 300 IN TXT "any"`}},
	} {
		z, err := Parse(strings.NewReader(c.text), ".", "root.db")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan Answer, 1)
		go func() { done <- z.Lookup("nosuchtld.", dns.TypeTXT) }()
		select {
		case a := <-done:
			if got := a.RRs.Strings(); a.Rcode != c.rcode || !slices.Equal(got, c.rrs) {
				t.Errorf("nosuchtld. TXT: %s %q, want %s %q", dns.RcodeToString[a.Rcode], got, dns.RcodeToString[c.rcode], c.rrs)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Lookup of a top-level name in a root zone did not return")
		}
	}
}

// A name outside the zone written without its trailing dot, as in a
// conversion to BIND's syntax, becomes a name in the zone that nothing
// holds.
// Each such target is named, with the name that was likely meant where
// what is left ends in a public suffix (www.atlas is the zone's own
// name); targets that exist, below a cut, under a wildcard or a DNAME
// are not.
// A CNAME in a signed zone has its RRSIG and NSEC beside it, as DNSSEC
// requires: no "CNAME and other data" warning for those.
func TestNoCNAMEWarningForItsSignatures(t *testing.T) {
	needlab.Programs(t, signzone.Tools...)
	text, _, err := signzone.SignDS(t.TempDir(), "sub.example.com.", childText+"alias CNAME www\n", signzone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	z, err := Parse(strings.NewReader(text), "sub.example.com", "db.sub")
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Types("alias.sub.example.com.")) < 3 {
		t.Fatalf("alias has types %v: the zone is not signed, and the test shows nothing", z.Types("alias.sub.example.com."))
	}
	if got := z.Warnings(10); len(got) != 0 {
		t.Errorf("warnings %q, want none", got)
	}
}

// A KEY may stand beside a CNAME (RFC 3007), and named loads one: no
// "CNAME and other data" warning for it, and a query for KEY there is
// answered with it.
func TestNoCNAMEWarningForAKeyBesideIt(t *testing.T) {
	z := mustParse(t, cnameZone+"alias KEY 256 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n")
	for _, w := range z.Warnings(10) {
		if strings.HasPrefix(w, "alias.example.com.") {
			t.Errorf("warning %q", w)
		}
	}
	if a := z.Lookup("alias.example.com.", dns.TypeKEY); len(a.RRs) != 1 || a.RRs[0].Header().Rrtype != dns.TypeKEY {
		t.Errorf("KEY at alias: %q", a.RRs.Strings())
	}
}

func TestWarningsNameTargetsMissingFromTheZone(t *testing.T) {
	z := mustParse(t, apex+`@    MX   10 mail.example.com
@    MX   20 mx
mx   A    192.0.2.25
blog CNAME ghs.example.net
www  CNAME mx
app  CNAME www.atlas
_sip._tcp SRV 0 0 5060 sip
_ok._tcp  SRV 0 0 5060 x.w
*.w  A    192.0.2.9
sub  NS   ns.sub
ns.sub A  192.0.2.53
del  CNAME gone.sub
old  DNAME example.net.
o    CNAME a.old
svc  HTTPS 1 svc.example.net
site CNAME user.github.io
`)
	wantWarnings(t, z,
		"_sip._tcp.example.com.: SRV sip.example.com. names nothing in the zone",
		"app.example.com.: CNAME www.atlas.example.com. names nothing in the zone",
		"blog.example.com.: CNAME ghs.example.net.example.com. names nothing in the zone: if ghs.example.net. was meant, end it with a dot",
		"example.com.: MX mail.example.com.example.com. names nothing in the zone: if mail.example.com. was meant, end it with a dot",
		"site.example.com.: CNAME user.github.io.example.com. names nothing in the zone: if user.github.io. was meant, end it with a dot",
		"svc.example.com.: HTTPS svc.example.net.example.com. names nothing in the zone: if svc.example.net. was meant, end it with a dot",
	)
}

// The same slip in the other types whose targets are names: a delegation
// whose NS has no dot is lame (BIND refuses that only at the apex, and
// only warns for a cut, on a line dnsroll does not show), a DNAME's
// target, a NAPTR's replacement, a PTR's name. A NAPTR whose replacement
// is "." (it rewrites by regexp), targets below a cut, ones that exist
// (as an empty non-terminal too) and names ending in a dot are not named.
func TestWarningsNameMissingTargetsOfNSDNAMENAPTRAndPTR(t *testing.T) {
	z := mustParse(t, apex+`sub  NS    ns.example.net
ok   NS    ns1
glue NS    ns.glue
ns.glue A  192.0.2.53
old  DNAME example.net
new  DNAME target
www.target A 192.0.2.8
sip  NAPTR 100 10 "s" "SIP+D2U" "" _sip._udp.example.net
re   NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.net!" .
host PTR   host.example.net
dot  PTR   host.example.net.
`)
	wantWarnings(t, z,
		"host.example.com.: PTR host.example.net.example.com. names nothing in the zone: if host.example.net. was meant, end it with a dot",
		"old.example.com.: DNAME example.net.example.com. names nothing in the zone: if example.net. was meant, end it with a dot",
		"sip.example.com.: NAPTR _sip._udp.example.net.example.com. names nothing in the zone: if _sip._udp.example.net. was meant, end it with a dot",
		"sub.example.com.: NS ns.example.net.example.com. names nothing in the zone: if ns.example.net. was meant, end it with a dot",
	)
}

// In a reverse zone, a PTR without its dot ends in in-addr.arpa.
func TestWarningsNamePTRTargetsMissingFromAReverseZone(t *testing.T) {
	z, err := Parse(strings.NewReader(`$TTL 300
@ SOA ns1.example.com. hm.example.com. 1 3600 600 86400 300
  NS ns1.example.com.
1 PTR www.example.com
2 PTR mail.example.com.
`), "2.0.192.in-addr.arpa", "db.192.0.2")
	if err != nil {
		t.Fatal(err)
	}
	wantWarnings(t, z,
		"1.2.0.192.in-addr.arpa.: PTR www.example.com.2.0.192.in-addr.arpa. names nothing in the zone: if www.example.com. was meant, end it with a dot",
	)
}

// The same slip in an owner name: "mail.example.com" without its dot in
// example.com. is mail.example.com.example.com., which BIND loads and
// serves, so mail.example.com. is not answered. A target that names it
// exists and is not warned about, so the owner is. A name that holds the
// zone's name once more, not at its end, is not named.
func TestWarningsNameOwnersThatRepeatTheZonesName(t *testing.T) {
	z := mustParse(t, apex+`mail.example.com  A  192.0.2.25
@                 MX 10 mail.example.com
example.com.sub   A  192.0.2.26
`)
	wantWarnings(t, z,
		"mail.example.com.example.com.: the name ends in the zone's name twice: if mail.example.com. was meant, end it with a dot",
	)
}

// wantWarnings checks z's warnings, up to 10 of them.
func wantWarnings(t *testing.T, z *Zone, want ...string) {
	t.Helper()
	if got := z.Warnings(10); !slices.Equal(got, want) {
		t.Errorf("Warnings =\n%q\nwant\n%q", got, want)
	}
}
