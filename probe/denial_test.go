package probe

// Tests of the proofs of denial that signed answers carry: NSEC and
// NSEC3 records proving an NXDOMAIN, a no-data answer or a wildcard
// answer, in zones signed as operators sign them.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/signzone"
	"github.com/dnsroll/dnsroll/zone"
	"github.com/miekg/dns"
)

// dnssecFailures serves text on real named, analyses the checks of scope
// and returns every DNSSEC failure ("check: detail").
func dnssecFailures(t *testing.T, text string, scope Scope) []string {
	t.Helper()
	an := analyseAlone(t, text, scope)
	if k := an.Reports[0].Kinds[KindDNSSEC]; k.Pass < 5 {
		t.Errorf("only %d DNSSEC passes", k.Pass)
	}
	return dnssecResults(t, an)
}

// dnssecResults is every DNSSEC failure of an's first report ("check:
// detail"); it logs the others.
func dnssecResults(t *testing.T, an Analysis) []string {
	t.Helper()
	var out []string
	for _, r := range an.Reports[0].Results {
		if r.Kind == KindDNSSEC {
			out = append(out, r.Check+": "+r.Detail)
		} else {
			t.Logf("non-DNSSEC result: %s %s: %s", r.Check, r.Kind, r.Detail)
		}
	}
	return out
}

// Zones holding every shape of NXDOMAIN, no-data and wildcard answer,
// signed correctly with NSEC, NSEC3, NSEC3 with a salt and iterations,
// and NSEC3 with opt-out: no DNSSEC check may fail.
func TestDNSSECProofsOfWellSignedZonesPass(t *testing.T) {
	zones := []struct {
		name, text string
		scope      Scope
	}{
		{"names", exampleApex + `www     A     192.0.2.10
        AAAA  2001:db8::10
alias   CNAME www
*.wild  TXT   "wild"
*.wc    CNAME www
*.Up    TXT   "up"
Mail    A     192.0.2.25
x.y.ent A     192.0.2.9
sub     NS    ns.sub
ns.sub  A     192.0.2.77
old     DNAME new
x.new   A     192.0.2.5
zzz     TXT   "last"
`, Scope{All: true, Types: []string{"A", "AAAA", "TXT", "CNAME", "MX"},
			Names: []string{"nope", "x.wild", "a.b.wild", "*.wild", "x.wc", "a.b.wc", "*.wc", "x.up", "a.b.up", "MAIL", "y.ent", "ent",
				"x.old", "a.x.old", "zzzz", "zzz", "a.zzz", "deep.sub"}}},
		// Names in capitals (an empty non-terminal, a wildcard), a
		// wildcard at the apex, a wildcard CNAME to a wildcard, a secure
		// delegation, an insecure one under an empty non-terminal.
		{"more names", exampleApex + `www     A     192.0.2.10
*       TXT   "apex wildcard"
x.Y.Ent A     192.0.2.9
*.Deep.Up TXT "deep"
*.wc    CNAME q.wild2
*.wild2 MX    10 www
sec     NS    ns1
sec     DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
d.ent3  NS    ns.other.net.
`, Scope{All: true, Types: []string{"A", "TXT", "MX", "DS"},
			Names: []string{"nope", "a.b.c", "*", "y.ent", "Y.ENT", "x.deep.up", "a.B.Deep.Up", "deep.up", "up", "x.wc", "q.wild2", "ent3", "sec"}}},
	}
	signings := []struct {
		name string
		o    signzone.Options
	}{
		{"NSEC", signzone.Options{}},
		{"NSEC3", signzone.Options{NSEC3: true}},
		{"NSEC3 salt iterations", signzone.Options{NSEC3: true, Salt: "AABBCCDD", Iterations: 7}},
		{"NSEC3 opt-out salt", signzone.Options{NSEC3: true, Salt: "0102", Iterations: 3, OptOut: true}},
	}
	for _, z := range zones {
		for _, sg := range signings {
			t.Run(z.name+" "+sg.name, func(t *testing.T) {
				for _, f := range dnssecFailures(t, signWith(t, "example.com", z.text, sg.o), z.scope) {
					t.Errorf("false failure: %s", f)
				}
			})
		}
	}
}

// An NXDOMAIN's answer section, a CNAME chain to a name that does not
// exist, is signed as any answer is: the CNAME served without its RRSIG
// is bogus to validating resolvers. Before, an NXDOMAIN's answer was
// never checked, and only the same CNAME to a name that exists failed.
func TestDNSSECNXDOMAINAnswerIsSignatureChecked(t *testing.T) {
	scope := Scope{Names: []string{"alias"}, Types: []string{"A"}}
	for _, target := range []string{"gone", "www"} {
		signed := wellSigned(t, exampleApex+"alias CNAME "+target+"\nwww A 192.0.2.10\n", false)
		served := dropRRSIGs(t, signed, func(sig *dns.RRSIG, _ uint16) bool { return sig.TypeCovered == dns.TypeCNAME })
		f := dnssecFailures(t, served, scope)
		if !slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, "alias.example.com. CNAME: no RRSIG") }) {
			t.Errorf("alias CNAME %s served without the CNAME's RRSIG: DNSSEC failures %q; want alias.example.com. CNAME: no RRSIG", target, f)
		}
	}
}

// A wildcard CNAME whose target does not exist answers NXDOMAIN, the
// CNAME the wildcard made in the answer section. Validating resolvers
// need the proof that the name asked does not exist (RFC 4035 §5.3.4,
// RFC 5155 §8.8), as for any wildcard answer; here it is removed after
// signing. Before, an NXDOMAIN's proof was checked only for the end of
// its chain, and this passed. (NSEC only: one NSEC3 covers several names
// there, so cutting one spoils other proofs too.)
func TestDNSSECWildcardCNAMEToNXDOMAINNeedsItsProof(t *testing.T) {
	signed := wellSigned(t, exampleApex+"*.wc CNAME gone\nw.wc TXT w\nwww A 192.0.2.10\n", false)
	scope := Scope{Names: []string{"x.wc"}, Types: []string{"A"}}
	if f := dnssecFailures(t, signed, scope); len(f) != 0 {
		t.Fatalf("well signed: %q", f)
	}
	served := dropRecords(t, signed, denialAt(covering(t, signed, "x.wc.example.com.")))
	// What named serves: the CNAME from the wildcard, NXDOMAIN, and no
	// record that proves x.wc absent.
	m := new(dns.Msg)
	m.SetQuestion("x.wc.example.com.", dns.TypeA)
	m.SetEdns0(4096, true)
	r, err := dns.Exchange(m, startNamed(t, "example.com", served))
	if err != nil {
		t.Fatal(err)
	}
	proof := slices.ContainsFunc(r.Ns, func(rr dns.RR) bool {
		n, ok := rr.(*dns.NSEC)
		return ok && nsecCovers(n, "x.wc.example.com.", "example.com.")
	})
	if r.Rcode != dns.RcodeNameError || len(r.Answer) == 0 || proof {
		t.Fatalf("setup: named answers %s with %d records, proof of x.wc present %v:\n%s", dns.RcodeToString[r.Rcode], len(r.Answer), proof, r)
	}
	const want = "x.wc.example.com. CNAME wildcard: no NSEC covers x.wc.example.com."
	f := dnssecFailures(t, served, scope)
	if !slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, want) }) {
		t.Errorf("a wildcard CNAME answer (NXDOMAIN at its target) without the proof that x.wc does not exist: DNSSEC failures %q; want %s", f, want)
	}
}

// A wildcard answer's NSEC must show the wildcard's parent as the
// closest encloser (RFC 4035 §5.3.4; Unbound's
// val_nsec_proves_positive_wildcard): an NSEC b.wild → c.wild covers
// a.b.wild but proves that b.wild exists, so *.wild cannot have answered
// a.b.wild. Before, any NSEC that covered the name proved it.
func TestDNSSECWildcardNSECShowsTheWildcardsParent(t *testing.T) {
	nsec := func(owner, next string) []dns.RR {
		return []dns.RR{&dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300}, NextDomain: next}}
	}
	closer := nsec("b.wild.example.com.", "c.wild.example.com.")
	if !nsecCovers(closer[0].(*dns.NSEC), "a.b.wild.example.com.", "example.com.") {
		t.Fatal("setup: the NSEC does not cover a.b.wild")
	}
	why := unprovedWildcard("a.b.wild.example.com.", "*.wild.example.com.", "TXT", "example.com.", closer)
	if !strings.Contains(why, "shows b.wild.example.com. as its closest encloser") {
		t.Errorf("an NSEC that proves b.wild exists proves that *.wild answers a.b.wild: %q", why)
	}
	if why := unprovedWildcard("a.b.wild.example.com.", "*.wild.example.com.", "TXT", "example.com.", nsec("a.wild.example.com.", "c.wild.example.com.")); why != "" {
		t.Errorf("an NSEC a.wild → c.wild, which shows wild as the closest encloser: %s", why)
	}
}

// Only the zone's own NSEC and NSEC3 records prove anything of it: an
// NSEC3 proves only at <hash>.<zone apex> (RFC 5155 §8.3), and a record
// of another zone is neither signed by it nor signature-checked (rrsets
// leaves it out). Before, an unsigned NSEC3 owned under example.net
// proved that www.example.com has no AAAA, and foreign records proved
// wildcard answers.
func TestDNSSECProofsTakeOnlyTheZonesRecords(t *testing.T) {
	h := dns.HashName("www.example.com.", dns.SHA1, 0, "")
	foreign := &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(h) + ".example.net.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
		Hash: dns.SHA1, HashLength: 20, NextDomain: "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV", TypeBitMap: []uint16{dns.TypeA, dns.TypeRRSIG}}
	if why := unprovedNoData("www.example.com.", dns.TypeAAAA, "example.com.", []dns.RR{foreign}); why == "" {
		t.Errorf("an NSEC3 owned under example.net proves a no-data answer of example.com")
	}
	// The whole check, as checkDNSSEC runs it.
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256, PublicKey: "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=="}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300}, Ns: "ns1.example.com.", Mbox: "h.example.com.", Serial: 7}
	zones := signers(map[string]zone.Records{"example.com.": {key}}, time.Hour, time.Now())
	c := Check{Zone: "example.com.", Name: "www.example.com.", Type: "AAAA"}
	o := observed{replied: true, got: zone.Answer{Rcode: dns.RcodeSuccess}, denial: []dns.RR{soa, foreign}}
	var rep Report
	checkDNSSEC(&rep, []Check{c}, []observed{o}, zones, 10)
	if rep.Failed == 0 {
		t.Errorf("a no-data answer whose only proof is an unsigned NSEC3 of example.net: no DNSSEC failure (results %+v)", rep.Results)
	}
	// An NSEC3 of example.net whose span holds the next closer name's
	// hash, and one two labels below example.com's apex, stand in for
	// example.com's.
	for _, owner := range []string{"00000000000000000000000000000000.example.net.", "00000000000000000000000000000000.sub.example.com."} {
		span := &dns.NSEC3{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, HashLength: 20, NextDomain: "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"}
		if why := unprovedWildcard("x.wild.example.com.", "*.wild.example.com.", "TXT", "example.com.", []dns.RR{span}); why == "" {
			t.Errorf("an NSEC3 owned at %s proves a wildcard answer of example.com", owner)
		}
	}
	// NSEC likewise: example.net's last NSEC wraps round to its apex, and
	// its span then holds every name after it, example.org's among them.
	last := &dns.NSEC{Hdr: dns.RR_Header{Name: "www.example.net.", Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300}, NextDomain: "example.net."}
	if why := unprovedWildcard("x.wild.example.org.", "*.wild.example.org.", "TXT", "example.org.", []dns.RR{last}); why == "" {
		t.Errorf("example.net's last NSEC proves a wildcard answer of example.org")
	}
}

// A no-data answer at a name a wildcard answers, denied with NSEC3,
// needs three records: one matching the closest encloser, one covering
// the next closer name and one matching the wildcard. The failure says
// which is missing; before, each said "no NSEC3 matches" the name.
func TestUnprovedNoDataSaysWhichNSEC3IsMissing(t *testing.T) {
	chain := nsec3Chain("example.com.", "example.com.", "www.example.com.", "mail.example.com.", "*.example.com.")
	_, records := splitDenial(chain, "example.com.")
	apex, wild := nsec3Matching(records, "example.com."), nsec3Matching(records, "*.example.com.")
	// A name whose hash neither the apex's nor the wildcard's NSEC3 covers.
	var qname string
	for _, l := range strings.Split("abcdefghijklmnopqrstuvwxyz", "") {
		if c := nsec3Covering(records, l+".example.com."); c != apex && c != wild {
			qname = l + ".example.com."
			break
		}
	}
	cover := nsec3Covering(records, qname)
	if qname == "" || cover == nil {
		t.Fatal("setup: no name covered by another NSEC3")
	}
	without := func(n *dns.NSEC3) []dns.RR {
		return slices.DeleteFunc(slices.Clone(chain), func(rr dns.RR) bool { return rr == n })
	}
	for _, tc := range []struct {
		name   string
		denial []dns.RR
		want   string
	}{
		{"the whole chain", chain, ""},
		{"no closest encloser", without(apex), "no NSEC3 matches " + qname + " to prove it has no AAAA, nor any name above it"},
		{"no next closer name", without(cover), "no NSEC3 matches " + qname + " to prove it has no AAAA, and none covers " + qname + ", the next closer name"},
		{"no wildcard", without(wild), "no NSEC3 matches " + qname + " to prove it has no AAAA, nor *.example.com., the wildcard"},
	} {
		why := unprovedNoData(qname, dns.TypeAAAA, "example.com.", tc.denial)
		if tc.want == "" && why != "" || !strings.HasPrefix(why, tc.want) {
			t.Errorf("%s: %q; want %q", tc.name, why, tc.want)
		}
	}
}
