package probe

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/zone"
)

const expectZone = exampleApex + `@       MX  10 mail
www     A   192.0.2.10
        AAAA 2001:db8::10
a.deep  TXT "x"
*.wild  A   192.0.2.99
sub     NS  ns.sub
ns.sub  A   192.0.2.53
`

func TestExpect(t *testing.T) {
	z := parseZone(t, expectZone)
	apex := []string{
		"example.com. SOA NOERROR [example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 7 7200 900 1209600 300]",
		"example.com. NS NOERROR [example.com. 300 IN NS ns1.example.com.]",
		"example.com. DNSKEY NOERROR []",
	}
	www := []string{
		"www.example.com. A NOERROR [www.example.com. 300 IN A 192.0.2.10]",
		"www.example.com. AAAA NOERROR [www.example.com. 300 IN AAAA 2001:db8::10]",
	}
	cases := []struct {
		name  string
		names []string
		want  []string // after the apex checks
	}{
		{"apex only", nil, nil},
		{"relative", []string{"www"}, www},
		{"absolute", []string{"WWW.example.com."}, www},
		{"zone suffix without dot", []string{"www.example.com"}, www},
		{"duplicates", []string{"www", "www.example.com.", "www"}, www},
		{"apex names every apex type", []string{"@"}, []string{"example.com. MX NOERROR [example.com. 300 IN MX 10 mail.example.com.]"}},
		{"absent name", []string{"nope"}, []string{"nope.example.com. A NXDOMAIN []"}},
		{"empty non-terminal", []string{"deep"}, []string{"deep.example.com. A NOERROR []"}},
		{"wildcard", []string{"x.wild"}, []string{"x.wild.example.com. A NOERROR [x.wild.example.com. 300 IN A 192.0.2.99]"}},
		{"other zone skipped", []string{"www.example.net."}, nil},
		// At the cut NS and DS; below it A; the answers are referrals, DS the parent's.
		{"delegation", []string{"sub", "ns.sub", "x.sub"}, []string{
			"sub.example.com. NS NOERROR [] referral [sub.example.com. 300 IN NS ns.sub.example.com.] [ns.sub.example.com. 300 IN A 192.0.2.53]",
			"sub.example.com. DS NOERROR []",
			"ns.sub.example.com. A NOERROR [] referral [sub.example.com. 300 IN NS ns.sub.example.com.] [ns.sub.example.com. 300 IN A 192.0.2.53]",
			"x.sub.example.com. A NOERROR [] referral [sub.example.com. 300 IN NS ns.sub.example.com.] [ns.sub.example.com. 300 IN A 192.0.2.53]",
		}},
		{"escaped name", []string{`\119ww`}, www},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, ch := range Expect(z, c.names) {
				if ch.Zone != "example.com." {
					t.Errorf("check %s has zone %q", ch, ch.Zone)
				}
				w := ch.Want
				line := fmt.Sprintf("%s %s %s %v", ch.Name, ch.Type, rcode(w.Rcode), w.RRs.Strings())
				if w.Referral {
					line += fmt.Sprintf(" referral %v %v", w.Authority.Strings(), w.Additional.Strings())
				}
				got = append(got, line)
			}
			if want := append(slices.Clone(apex), c.want...); !slices.Equal(got, want) {
				t.Errorf("Expect(%q) =\n%q\nwant\n%q", c.names, got, want)
			}
		})
	}
}

func TestChecksScope(t *testing.T) {
	z := parseZone(t, expectZone+"alias   CNAME www\n")
	render := func(checks []Check) []string {
		var out []string
		for _, c := range checks {
			out = append(out, c.String())
		}
		return out
	}
	// Every name in Names() order: each type it holds, A at a CNAME (the chain is expected
	// in the answer), NS and DS at the delegation and A below it.
	all := Checks(z, Scope{All: true})
	want := []string{
		"example.com. SOA", "example.com. NS", "example.com. DNSKEY", "dnsroll-denial-check.example.com. A",
		"*.wild.example.com. A", "a.deep.example.com. TXT",
		"alias.example.com. A", "alias.example.com. CNAME",
		"example.com. MX", "ns.sub.example.com. A", "ns1.example.com. A",
		"sub.example.com. NS", "sub.example.com. DS", "www.example.com. A", "www.example.com. AAAA",
	}
	if got := render(all); !slices.Equal(got, want) {
		t.Errorf("All =\n%q\nwant\n%q", got, want)
	}
	for _, c := range all {
		if c.String() == "alias.example.com. A" && !slices.Equal(c.Want.RRs.Strings(), []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}) {
			t.Errorf("alias A wants %q", c.Want.RRs)
		}
	}
	// Configured types at listed names, NODATA where absent.
	got := Checks(z, Scope{Names: []string{"www", "nope"}, Types: []string{"a", "TXT"}})
	want = []string{"example.com. SOA", "example.com. NS", "example.com. DNSKEY", "www.example.com. A", "www.example.com. TXT", "nope.example.com. A", "nope.example.com. TXT"}
	if !slices.Equal(render(got), want) {
		t.Errorf("Types = %q\nwant %q", render(got), want)
	}
	if w := got[4].Want; w.Rcode != 0 || len(w.RRs) != 0 {
		t.Errorf("www TXT want %+v, want NODATA", w)
	}
	// A signed zone is asked for a name it lacks whatever the scope: its
	// NXDOMAIN must be denied, by signed NSEC or NSEC3 records.
	signed := parseZone(t, expectZone+"@ RRSIG SOA 13 2 3600 20300101000000 20200101000000 12345 example.com. "+
		"GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\n")
	got = Checks(signed, Scope{Names: []string{"www"}})
	want = []string{"example.com. SOA", "example.com. NS", "example.com. DNSKEY", "dnsroll-denial-check.example.com. A", "www.example.com. A", "www.example.com. AAAA"}
	if !slices.Equal(render(got), want) {
		t.Errorf("signed, Names = %q\nwant %q", render(got), want)
	}
}

// When a fleet serves a zone and a child zone it delegates to, named
// answers the child's names from the child, authoritatively: the
// parent's referral checks of them are dropped (every identical green
// failed them), the DS at the cut stays the parent's, and the child's
// own checks and the parent's other names are kept.
func TestAnsweredByItsZone(t *testing.T) {
	parent := parseZone(t, expectZone)
	child, err := zone.Parse(strings.NewReader(`$ORIGIN sub.example.com.
$TTL 300
@   SOA ns hostmaster 1 7200 900 1209600 300
    NS  ns
ns  A   192.0.2.53
www A   192.0.2.54
`), "sub.example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	// probe.types with DS: the child asks DS at its own apex too, which
	// named answers from the parent's data.
	all := append(Checks(parent, Scope{All: true}), Checks(child, Scope{All: true, Types: []string{"NS", "A", "DS"}})...)
	if !slices.ContainsFunc(all, func(c Check) bool { return c.Zone == "sub.example.com." && c.String() == "sub.example.com. DS" }) {
		t.Fatal("the child's checks lack its apex DS: nothing to drop")
	}
	if !slices.ContainsFunc(all, func(c Check) bool { return c.Zone == "example.com." && c.String() == "ns.sub.example.com. A" }) {
		t.Fatal("the parent's checks lack its glue, ns.sub.example.com. A: nothing to drop")
	}
	got := map[string]bool{}
	for _, c := range AnsweredByItsZone(all, []string{"example.com", "Sub.Example.COM."}) {
		got[c.Zone+" "+c.String()] = true
	}
	for _, want := range []string{
		"example.com. sub.example.com. DS", "example.com. www.example.com. A", "example.com. example.com. NS",
		"sub.example.com. sub.example.com. NS", "sub.example.com. ns.sub.example.com. A", "sub.example.com. www.sub.example.com. A",
	} {
		if !got[want] {
			t.Errorf("check %q was dropped", want)
		}
	}
	for _, gone := range []string{"example.com. sub.example.com. NS", "example.com. ns.sub.example.com. A", "sub.example.com. sub.example.com. DS"} {
		if got[gone] {
			t.Errorf("the parent still checks %q, which named answers from the child zone", gone)
		}
	}
	if kept := AnsweredByItsZone(all, []string{"example.com"}); len(kept) != len(all) {
		t.Errorf("with one zone served, %d of %d checks kept", len(kept), len(all))
	}
}

// With the root zone served too, a TLD's apex DS is the root's to answer:
// the TLD's own check of it is dropped, the root's kept.
func TestAnsweredByItsZoneUnderTheRoot(t *testing.T) {
	checks := []Check{
		{Zone: ".", Name: "example.", Type: "DS"},
		{Zone: "example.", Name: "example.", Type: "DS"},
		{Zone: "example.", Name: "example.", Type: "SOA"},
	}
	var got []string
	for _, c := range AnsweredByItsZone(checks, []string{".", "example."}) {
		got = append(got, c.Zone+" "+c.String())
	}
	if want := []string{". example. DS", "example. example. SOA"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
}

// Names from probe.names are read as operators write them: the bare apex
// and a name ending in the zone's name, in any case, are absolute.
func TestAbsoluteNames(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":     "example.com.",
		"WWW.Example.COM": "www.example.com.",
		"www":             "www.example.com.",
		"@":               "example.com.",
		"other.org.":      "other.org.",
		"notexample.com":  "notexample.com.example.com.",
	} {
		if got := absolute(in, "example.com."); got != want {
			t.Errorf("absolute(%q) = %q, want %q", in, got, want)
		}
	}
}
