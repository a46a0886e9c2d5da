package probe

// Tests of the DNSSEC check for the types probe.types may ask that BIND
// answers apart from the rest: KEY and NSEC at a CNAME's name, and SIG.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// besideCNAMEZone has CNAMEs written, to nothing, and from a wildcard,
// and a CNAME with a KEY beside it (RFC 4035 §2.5).
const besideCNAMEZone = exampleApex + `www    A     192.0.2.10
alias  CNAME www
gone   CNAME nothere
*.wc   CNAME www
*.wild TXT   "wild"
keyed  CNAME www
keyed  KEY   512 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==
`

// besideCNAMEScope asks those names for the types BIND answers at a
// CNAME's name (KEY, NSEC), SIG, and types it follows the CNAME for.
var besideCNAMEScope = Scope{Names: []string{"alias", "gone", "x.wc", "keyed", "www", "x.wild"}, Types: []string{"NSEC", "KEY", "SIG", "NXT", "A"}}

// probe.types may hold NSEC, KEY and SIG. At a CNAME's name BIND answers
// KEY and NSEC from the name itself (RFC 4035 §2.5), NODATA where it has
// none, proved by the name's own NSEC or NSEC3, which lists CNAME; SIG
// it answers as a query for signatures, NODATA with no NSEC at all in an
// NSEC zone. A green serving exactly blue's signed zone failed the DNSSEC
// check on each ("lists CNAME in its type bitmap", "no NSEC or NSEC3
// record proves"), as blue did: no rollout of such a zone could pass.
func TestDNSSECTypesBesideACNAMEPass(t *testing.T) {
	s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, Samples: 1000}
	for _, nsec3 := range []bool{false, true} {
		signed := wellSigned(t, besideCNAMEZone, nsec3)
		an := analyseScoped(t, signed, signed, besideCNAMEScope, s)
		if !an.OK {
			t.Errorf("nsec3 %v: green serving blue's zone: %s", nsec3, an.Reason)
		}
		if k := an.Reports[0].Kinds[KindDNSSEC]; k.Pass < 10 {
			t.Errorf("nsec3 %v: only %d DNSSEC passes", nsec3, k.Pass)
		}
	}
}

// The answers at a CNAME's name are still checked: a KEY removed after
// signing leaves the name's NSEC or NSEC3 listing it, which proves
// nothing of a no-data answer; a green whose record there no longer
// verifies fails, as does one that proves SIG absent with such a record.
func TestDNSSECTypesBesideACNAMEStillChecked(t *testing.T) {
	s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, Samples: 1000}
	for _, nsec3 := range []bool{false, true} {
		kind := map[bool]string{false: "NSEC", true: "NSEC3"}[nsec3]
		signed := wellSigned(t, besideCNAMEZone, nsec3)
		owner := func(name string) string {
			if nsec3 {
				return strings.ToLower(dns.HashName(name, dns.SHA1, 0, "")) + ".example.com."
			}
			return name
		}
		t.Run(kind+" KEY removed after signing", func(t *testing.T) {
			served := dropRecords(t, signed, func(rr dns.RR) bool {
				sig, _ := rr.(*dns.RRSIG)
				return rr.Header().Name == "keyed.example.com." && (rr.Header().Rrtype == dns.TypeKEY || sig != nil && sig.TypeCovered == dns.TypeKEY)
			})
			want := "keyed.example.com. KEY NODATA: the " + kind + " of keyed.example.com. lists KEY in its type bitmap"
			if f := dnssecResults(t, analyseScoped(t, served, served, besideCNAMEScope, s)); !containsPrefix(f, want) {
				t.Errorf("DNSSEC failures %q; want %q", f, want)
			}
		})
		for _, name := range []string{"alias.example.com.", "www.example.com."} {
			t.Run(kind+" of "+name+" does not verify", func(t *testing.T) {
				want := owner(name) + " " + kind + ": RRSIG by key tag"
				f := dnssecResults(t, analyseScoped(t, tamperDenial(t, signed, owner(name)), signed, besideCNAMEScope, s))
				if !containsPrefix(f, want) || !strings.Contains(strings.Join(f, "\n"), "does not verify") {
					t.Errorf("DNSSEC failures %q; want %q ... does not verify", f, want)
				}
			})
		}
	}
	// Only the SIG no-data answer carries www's NSEC3: its signature is
	// checked there.
	signed := wellSigned(t, besideCNAMEZone, true)
	owner := strings.ToLower(dns.HashName("www.example.com.", dns.SHA1, 0, "")) + ".example.com."
	f := dnssecResults(t, analyseScoped(t, tamperDenial(t, signed, owner), signed, Scope{Names: []string{"www"}, Types: []string{"SIG"}}, s))
	if !containsPrefix(f, owner+" NSEC3: RRSIG by key tag") {
		t.Errorf("www's NSEC3, in the SIG no-data answer alone, changed after signing: DNSSEC failures %q", f)
	}
}

// containsPrefix says whether one of failures starts with want, names
// compared in any case (NSEC3 owners are hashes in capitals or not).
func containsPrefix(failures []string, want string) bool {
	return slices.ContainsFunc(failures, func(f string) bool { return strings.HasPrefix(strings.ToLower(f), strings.ToLower(want)) })
}

// tamperDenial is signed, a signed zone of example.com, with TXT added to
// the type bitmap of the NSEC or NSEC3 owned by owner after signing: its
// RRSIG no longer verifies.
func tamperDenial(t *testing.T, signed, owner string) string {
	t.Helper()
	var b strings.Builder
	changed := 0
	zp := dns.NewZoneParser(strings.NewReader(signed), "example.com.", "signed")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if strings.EqualFold(rr.Header().Name, owner) {
			switch d := rr.(type) {
			case *dns.NSEC:
				d.TypeBitMap, changed = append(d.TypeBitMap, dns.TypeTXT), changed+1
			case *dns.NSEC3:
				d.TypeBitMap, changed = append(d.TypeBitMap, dns.TypeTXT), changed+1
			}
		}
		b.WriteString(rr.String() + "\n")
	}
	if err := zp.Err(); err != nil || changed != 1 {
		t.Fatalf("changed %d records at %s: %v", changed, owner, err)
	}
	return b.String()
}
