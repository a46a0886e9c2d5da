package probe

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/signzone"
	"github.com/dnsroll/dnsroll/zone"
	"github.com/miekg/dns"
)

// wellSigned is text signed for example.com as a zone kept well is
// (signzone's default validity).
func wellSigned(t *testing.T, text string, nsec3 bool) string {
	t.Helper()
	return signZone(t, "example.com", text, "", "", nsec3)
}

// signZone signs text for origin with BIND's tools, with signatures
// valid from start to end (dnssec-signzone's -s and -e), with NSEC3 when
// nsec3 is set.
func signZone(t *testing.T, origin, text, start, end string, nsec3 bool) string {
	t.Helper()
	return signWith(t, origin, text, signzone.Options{Start: start, End: end, NSEC3: nsec3})
}

// signWith signs text for origin with BIND's tools as o says.
func signWith(t *testing.T, origin, text string, o signzone.Options) string {
	t.Helper()
	needlab.Programs(t, signzone.Tools...)
	signed, err := signzone.Sign(t.TempDir(), origin, text, o)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

const unsignedZone = exampleApex + `www     A     192.0.2.10
        AAAA  2001:db8::10
alias   CNAME www
*.wild  TXT   "wild"
sub     NS    ns.sub
ns.sub  A     192.0.2.77
`

// analyseSigned serves signed on two real named, green and blue, and
// analyses green as Verify does, with signatures that must stay valid
// for validFor.
func analyseSigned(t *testing.T, signed string, validFor time.Duration) Analysis {
	t.Helper()
	return analyseSignedOver(t, signed, signed, Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: validFor})
}

// analyseSignedOver is analyseSigned with blue serving blueText, and s.
func analyseSignedOver(t *testing.T, signed, blueText string, s Settings) Analysis {
	t.Helper()
	return analyseScoped(t, signed, blueText, Scope{All: true, Names: []string{"nope", "x.wild", "deep.sub"}}, s)
}

// analyseScoped is analyseSignedOver with the checks of scope.
func analyseScoped(t *testing.T, signed, blueText string, scope Scope, s Settings) Analysis {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(signed), "example.com", "signed")
	if err != nil {
		t.Fatal(err)
	}
	green := startNamed(t, "example.com", signed)
	blue := startNamed(t, "example.com", blueText)
	job := Job{Role: "green", Targets: []Server{{Name: "ns1-next", Addr: green}}, Baseline: []Server{{Name: "ns1", Addr: blue}}, BaselineRole: "blue",
		Checks: Checks(z, scope), Serials: map[string]uint32{"example.com": z.Serial()},
		Keys: map[string]zone.Records{"example.com.": z.Apex().DNSKEYs}} // as Verify gives them
	p := &Prober{Timeout: time.Second, Attempts: 2}
	return p.Analyze(context.Background(), job, s)
}

// The parent's DS names the key-signing key that signs blue's DNSKEY set.
// A green whose DNSKEY set none of blue's signing keys signs, its
// signatures all good, leaves the zone bogus to validating resolvers the
// moment it serves, unless the parent already names green's key (a
// double-DS rollover), which the operator says with probe.allow_new_ksk.
func TestDNSSECNewKeySigningKey(t *testing.T) {
	blue := wellSigned(t, unsignedZone, false)
	green := wellSigned(t, unsignedZone, false)
	s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, ExpectChanges: true}
	an := analyseSignedOver(t, green, blue, s)
	if an.OK || !strings.Contains(an.Reason, "example.com. DNSKEY: green's set is signed by key") || !strings.Contains(an.Reason, "--allow-new-ksk") {
		t.Errorf("a green signed by a new key-signing key alone: ok %v, reason %q", an.OK, an.Reason)
	}
	s.AllowNewKSK = true
	if an := analyseSignedOver(t, green, blue, s); !an.OK {
		t.Errorf("with allow_new_ksk: %s", an.Reason)
	}
	// The same keys on both: nothing to say.
	if an := analyseSignedOver(t, blue, blue, s); !an.OK || strings.Contains(strings.Join(an.Notes, " "), "key-signing") {
		t.Errorf("blue's own keys: ok %v, reason %q, notes %q", an.OK, an.Reason, an.Notes)
	}
}

// A green that serves blue's signed zone unsigned leaves it bogus to
// validating resolvers while the parent still holds its DS: they expect
// signatures and find none. The green zone file has no keys, so nothing
// else asks green for them; before, such a green passed.
func TestDNSSECGreenUnsignsTheZone(t *testing.T) {
	blue := wellSigned(t, unsignedZone, false)
	for _, expect := range []bool{true, false} {
		s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, ExpectChanges: expect}
		an := analyseSignedOver(t, unsignedZone, blue, s)
		if an.OK || !strings.Contains(an.Reason, "example.com. DNSKEY: green serves the zone unsigned") || !strings.Contains(an.Reason, "--allow-new-ksk") {
			t.Errorf("expect_changes %v: a green that drops blue's signatures: ok %v, reason %q", expect, an.OK, an.Reason)
		}
	}
	// Its keys kept but nothing signed: as bogus.
	withKey := unsignedZone + "@ DNSKEY 257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\n"
	an := analyseSignedOver(t, withKey, blue, Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, ExpectChanges: true})
	if an.OK || !strings.Contains(an.Reason, "example.com. DNSKEY: green serves the zone's keys unsigned") {
		t.Errorf("a green that keeps the keys and drops every signature: ok %v, reason %q", an.OK, an.Reason)
	}
	// The operator took the DS away at the parent first.
	s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, ExpectChanges: true, AllowNewKSK: true}
	if an := analyseSignedOver(t, unsignedZone, blue, s); !an.OK || !strings.Contains(strings.Join(an.Notes, " "), "unsigned") {
		t.Errorf("with allow_new_ksk: ok %v, reason %q, notes %q", an.OK, an.Reason, an.Notes)
	}
	// Unsigned on both sides: nothing to say.
	if an := analyseSignedOver(t, unsignedZone, unsignedZone, s); !an.OK || len(an.Notes) != 0 {
		t.Errorf("unsigned blue and green: ok %v, reason %q, notes %q", an.OK, an.Reason, an.Notes)
	}
}

// Signed zones (NSEC and NSEC3) on real named pass with good signatures,
// and fail, naming the RRset and the time, when they expired, expire
// within the bake and margin, or do not verify.
func TestDNSSECOnRealBIND(t *testing.T) {
	// passes fails t unless text, well signed, passes with at least least
	// RRsets' signatures checked.
	passes := func(t *testing.T, text string, nsec3 bool, least int) {
		t.Helper()
		an := analyseSigned(t, wellSigned(t, text, nsec3), 24*time.Hour)
		if !an.OK {
			t.Fatalf("a well signed zone fails: %s", an.Reason)
		}
		if k := an.Reports[0].Kinds[KindDNSSEC]; k.Pass < least {
			t.Errorf("only %d RRsets' signatures checked", k.Pass)
		}
	}
	for _, nsec3 := range []bool{false, true} {
		name := map[bool]string{false: "NSEC", true: "NSEC3"}[nsec3]
		t.Run(name+" valid", func(t *testing.T) { passes(t, unsignedZone, nsec3, 8) })
	}
	// Types miekg/dns reads only in RFC 3597 form (zone/generic.go): their
	// RRSIGs verify over the RDATA BIND signed, and NSEC bitmaps name
	// them by number.
	t.Run("rare types", func(t *testing.T) {
		rare := unsignedZone + `a6 A6 64 ::1:2:3:4 a6pfx
sink SINK 1 0 0 Zm9v
doa DOA 0 1 2 "" aGVsbG8=
wallet WALLET "BTC" "has space"
nid NID 10 0014:4fff:ff20:ee64
atma ATMA +358.400.1234567
`
		passes(t, rare, false, 14)
	})
	t.Run("expired", func(t *testing.T) {
		an := analyseSigned(t, signZone(t, "example.com", unsignedZone, "20261001000000", "20261101000000", false), time.Hour)
		if an.OK || !strings.Contains(an.Reason, "DNSSEC: ") || !strings.Contains(an.Reason, "example.com. SOA: RRSIG expired 2026-11-01T00:00:00Z") {
			t.Errorf("expired signatures: ok %v, reason %q", an.OK, an.Reason)
		}
	})
	t.Run("expires within the bake and margin", func(t *testing.T) {
		an := analyseSigned(t, signZone(t, "example.com", unsignedZone, "now-3600", "+7200", false), 24*time.Hour)
		if an.OK || !strings.Contains(an.Reason, "RRSIG expires ") || !strings.Contains(an.Reason, "within the 24h0m0s") {
			t.Errorf("ok %v, reason %q", an.OK, an.Reason)
		}
	})
	// A DNSKEY set signed by the zone-signing key alone: resolvers need
	// the key-signing key's signature, which the parent's DS names, and
	// find the whole zone bogus without it.
	t.Run("DNSKEY set without the key-signing key's signature", func(t *testing.T) {
		signed := dropRRSIGs(t, wellSigned(t, unsignedZone, false), func(sig *dns.RRSIG, ksk uint16) bool {
			return sig.TypeCovered == dns.TypeDNSKEY && sig.KeyTag == ksk
		})
		an := analyseSigned(t, signed, time.Hour)
		if an.OK || !strings.Contains(an.Reason, "example.com. DNSKEY: no RRSIG by a key-signing key") {
			t.Errorf("ok %v, reason %q", an.OK, an.Reason)
		}
	})
	// A name's NSEC without its signature: a validator cannot deny a type
	// at www (NODATA) or a name after it. Before, NSEC records were never
	// asked, and only the one that denied the denial check's name was
	// checked.
	t.Run("an NSEC without its signature", func(t *testing.T) {
		signed := dropRRSIGs(t, wellSigned(t, unsignedZone, false), func(sig *dns.RRSIG, _ uint16) bool {
			return sig.TypeCovered == dns.TypeNSEC && sig.Hdr.Name == "www.example.com."
		})
		an := analyseSigned(t, signed, time.Hour)
		if an.OK || !strings.Contains(an.Reason, "www.example.com. NSEC: no RRSIG") {
			t.Errorf("ok %v, reason %q", an.OK, an.Reason)
		}
	})
	// The NSEC3 at the unsigned delegation sub proves it has no DS: a
	// validator needs its signature, or sub is bogus. It comes only in
	// the authority section of a no-data answer (DS at sub) and of the
	// referral, which were never checked; nor were NSEC3 records of
	// wildcard answers.
	t.Run("an NSEC3 of a no-data answer without its signature", func(t *testing.T) {
		owner := strings.ToLower(dns.HashName("sub.example.com.", dns.SHA1, 0, "")) + ".example.com."
		signed := dropRRSIGs(t, wellSigned(t, unsignedZone, true), func(sig *dns.RRSIG, _ uint16) bool {
			return sig.TypeCovered == dns.TypeNSEC3 && strings.EqualFold(sig.Hdr.Name, owner)
		})
		an := analyseSigned(t, signed, time.Hour)
		if an.OK || !strings.Contains(strings.ToLower(an.Reason), owner+" nsec3: no rrsig") {
			t.Errorf("ok %v, reason %q", an.OK, an.Reason)
		}
	})
	t.Run("does not verify", func(t *testing.T) {
		signed := wellSigned(t, unsignedZone, false)
		// A record changed after signing: its RRSIG no longer matches.
		tampered := strings.Replace(signed, "192.0.2.10", "192.0.2.66", 1)
		if tampered == signed {
			t.Fatal("no www A in the signed zone")
		}
		an := analyseSigned(t, tampered, time.Hour)
		if an.OK || !strings.Contains(an.Reason, "www.example.com. A: RRSIG by key tag") || !strings.Contains(an.Reason, "does not verify") {
			t.Errorf("ok %v, reason %q", an.OK, an.Reason)
		}
	})
}

// Ed448, which BIND signs and serves and Go cannot verify, passes on its
// signatures' times and key tags, and says so: before, every RRset
// failed with "bad algorithm", and no rollout of such a zone could pass.
func TestDNSSECAlgorithmGoCannotVerify(t *testing.T) {
	needlab.Programs(t, signzone.Tools...)
	signed, err := signzone.Sign(t.TempDir(), "example.com", unsignedZone, signzone.Options{Algorithm: "ED448"})
	if err != nil {
		t.Skipf("this BIND cannot sign with Ed448: %v", err)
	}
	an := analyseSigned(t, signed, time.Hour)
	if !an.OK {
		t.Fatalf("an Ed448 zone fails: %s", an.Reason)
	}
	if k := an.Reports[0].Kinds[KindDNSSEC]; k.Pass < 8 {
		t.Errorf("only %d RRsets' signatures checked", k.Pass)
	}
}

// dropRRSIGs is signed, a signed zone file, without the RRSIGs drop
// picks; ksk is the tag of its key-signing key. The file is written out
// a record a line.
func dropRRSIGs(t *testing.T, signed string, drop func(sig *dns.RRSIG, ksk uint16) bool) string {
	t.Helper()
	var rrs []dns.RR
	var ksk uint16
	zp := dns.NewZoneParser(strings.NewReader(signed), "example.com.", "signed")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, isKey := rr.(*dns.DNSKEY); isKey && k.Flags&dns.SEP != 0 {
			ksk = k.KeyTag()
		}
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	dropped := 0
	for _, rr := range rrs {
		if sig, isSig := rr.(*dns.RRSIG); isSig && drop(sig, ksk) {
			dropped++
			continue
		}
		b.WriteString(rr.String() + "\n")
	}
	if dropped == 0 {
		t.Fatal("no RRSIG dropped")
	}
	return b.String()
}

// dropName removes every record owned by name from a signed zone: the
// name deleted after signing, its neighbour's NSEC still naming it.
func dropName(t *testing.T, signed, name string) string {
	t.Helper()
	return dropRecords(t, signed, func(rr dns.RR) bool { return strings.EqualFold(rr.Header().Name, name) })
}

// dropRecords removes the records drop picks from a signed zone, as an
// edit after signing does, leaving every other signature as it was.
func dropRecords(t *testing.T, signed string, drop func(dns.RR) bool) string {
	t.Helper()
	var b strings.Builder
	dropped := 0
	zp := dns.NewZoneParser(strings.NewReader(signed), "example.com.", "signed")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if drop(rr) {
			dropped++
			continue
		}
		b.WriteString(rr.String() + "\n")
	}
	if err := zp.Err(); err != nil || dropped == 0 {
		t.Fatalf("dropped %d records: %v", dropped, err)
	}
	return b.String()
}

// analyseAlone serves text on a real named and analyses it, with no
// baseline, with the checks of scope.
func analyseAlone(t *testing.T, text string, scope Scope) Analysis {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "example.com", "served")
	if err != nil {
		t.Fatal(err)
	}
	job := Job{Role: "green", Targets: []Server{{Name: "ns1-next", Addr: startNamed(t, "example.com", text)}},
		Checks: Checks(z, scope), Serials: map[string]uint32{"example.com": z.Serial()},
		Keys: map[string]zone.Records{"example.com.": z.Apex().DNSKEYs}} // as Verify gives them
	p := &Prober{Timeout: time.Second, Attempts: 2}
	return p.Analyze(context.Background(), job, Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour, Samples: 1000})
}

// covering is the owner of the NSEC or NSEC3 of signed, a signed zone
// of example.com, that covers name.
func covering(t *testing.T, signed, name string) string {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(signed), "example.com.", "signed")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch d := rr.(type) {
		case *dns.NSEC:
			if nsecCovers(d, name, "example.com.") {
				return d.Hdr.Name
			}
		case *dns.NSEC3:
			if nsec3Covers(d, name) {
				return d.Hdr.Name
			}
		}
	}
	t.Fatalf("nothing covers %s", name)
	return ""
}

// denialAt picks the NSEC or NSEC3 owned by owner, and its RRSIGs.
func denialAt(owner string) func(dns.RR) bool {
	return func(rr dns.RR) bool {
		typ := rr.Header().Rrtype
		if sig, ok := rr.(*dns.RRSIG); ok {
			typ = sig.TypeCovered
		}
		return strings.EqualFold(rr.Header().Name, owner) && (typ == dns.TypeNSEC || typ == dns.TypeNSEC3)
	}
}

// A no-data answer (NOERROR, no records, the SOA) and an answer a
// wildcard made must each carry what proves them to validating resolvers
// (RFC 4035 §5.4, §5.3.4; RFC 5155 §8.5-8.8): an NSEC or NSEC3 that
// matches the name and lists neither the type asked nor CNAME, or for an
// answer from a wildcard, one that proves the name asked does not exist.
// A zone edited after signing (a type or a denial record removed, the
// other signatures still good) serves answers whose every signature
// verifies but that prove nothing. Before, only an NXDOMAIN's proof was
// checked, and these passed.
func TestDNSSECNoDataAndWildcardProofs(t *testing.T) {
	// w.wild sorts between *.wild and x.wild: its NSEC, not the
	// wildcard's, covers x.wild.
	const extra = "x.y.ent A 192.0.2.9\nw.wild TXT w\n"
	all := Scope{All: true, Names: []string{"nope", "x.wild", "*.wild", "y.ent", "ent", "deep.sub"}, Types: []string{"A", "AAAA", "TXT"}}
	for _, nsec3 := range []bool{false, true} {
		kind := map[bool]string{false: "NSEC", true: "NSEC3"}[nsec3]
		signed := signZone(t, "example.com", unsignedZone+extra, "now-3600", "+2592000", nsec3)
		// owner is the owner of name's denial record: name, or its hash.
		owner := func(name string) string {
			if nsec3 {
				return dns.HashName(name, dns.SHA1, 0, "") + ".example.com."
			}
			return name
		}
		t.Run(kind+" valid", func(t *testing.T) {
			if an := analyseAlone(t, signed, all); !an.OK {
				t.Fatalf("a well signed zone fails: %s", an.Reason)
			}
		})
		t.Run(kind+" type in the bitmap", func(t *testing.T) {
			// www's AAAA removed after signing: its NSEC or NSEC3 still lists it.
			served := dropRecords(t, signed, func(rr dns.RR) bool {
				sig, _ := rr.(*dns.RRSIG)
				return rr.Header().Name == "www.example.com." && (rr.Header().Rrtype == dns.TypeAAAA || sig != nil && sig.TypeCovered == dns.TypeAAAA)
			})
			want := "www.example.com. AAAA NODATA: the " + kind + " of www.example.com. lists AAAA in its type bitmap"
			// Asked at www, and through alias, a CNAME to www: that
			// answer holds the CNAME, and is read by unpackAnswer's short
			// form, which must keep the SOA that marks it no-data.
			for _, scope := range []Scope{all, {Names: []string{"alias"}, Types: []string{"AAAA"}}} {
				an := analyseAlone(t, served, scope)
				if an.OK || !strings.Contains(an.Reason, want) || !strings.Contains(an.Reason, "validating resolvers find the no-data answer bogus") {
					t.Errorf("names %q: ok %v, reason %q; want %q", scope.Names, an.OK, an.Reason, want)
				}
			}
		})
		t.Run(kind+" no record of the name", func(t *testing.T) {
			if !nsec3 {
				t.Skip("named answers SERVFAIL for a name whose NSEC is gone, which the answer check fails")
			}
			served := dropRecords(t, signed, denialAt(owner("www.example.com.")))
			an := analyseAlone(t, served, Scope{Names: []string{"www"}, Types: []string{"TXT"}})
			want := "www.example.com. TXT NODATA: no " + kind + " matches www.example.com. to prove it has no TXT"
			if an.OK || !strings.Contains(an.Reason, want) {
				t.Errorf("ok %v, reason %q; want %q", an.OK, an.Reason, want)
			}
		})
		t.Run(kind+" wildcard answer without its proof", func(t *testing.T) {
			// Without what proves that x.wild itself does not exist.
			served := dropRecords(t, signed, denialAt(covering(t, signed, "x.wild.example.com.")))
			an := analyseAlone(t, served, Scope{Names: []string{"x.wild"}, Types: []string{"TXT"}})
			want := "x.wild.example.com. TXT wildcard: no " + kind + " covers "
			if an.OK || !strings.Contains(an.Reason, want) || !strings.Contains(an.Reason, "validating resolvers find the wildcard answer bogus") {
				t.Errorf("ok %v, reason %q; want %q", an.OK, an.Reason, want)
			}
		})
	}
}

// NSEC3 with Opt-Out (RFC 5155 §6): an unsigned delegation has no NSEC3
// of its own, and neither has an empty non-terminal above one only. The
// no-data answers for the DS at sub and at the empty non-terminal are
// proved by the closest encloser and an opt-out NSEC3 covering the next
// closer name, which validating resolvers take as an insecure answer:
// they must pass.
func TestDNSSECOptOutPasses(t *testing.T) {
	signed := signWith(t, "example.com", unsignedZone+"deleg.ent2 NS ns.sub\n", signzone.Options{NSEC3: true, OptOut: true})
	// The insecure delegation sub has no NSEC3: its DS is denied by opt-out.
	sub := strings.ToUpper(dns.HashName("sub.example.com.", dns.SHA1, 0, ""))
	if !strings.Contains(signed, "NSEC3 1 1 0 -") || strings.Contains(strings.ToUpper(signed), sub+".EXAMPLE.COM.") {
		t.Fatalf("no opt-out NSEC3, or an NSEC3 of sub, in the signed zone:\n%s", signed)
	}
	scope := Scope{All: true, Names: []string{"nope", "x.wild", "ent2", "deep.sub"}, Types: []string{"A", "AAAA", "TXT"}}
	if an := analyseAlone(t, signed, scope); !an.OK {
		t.Fatalf("an opt-out zone fails: %s", an.Reason)
	}
}

// An NXDOMAIN's denial must deny the name asked: an NSEC that covers
// it, and one that covers the wildcard at its closest encloser. A zone
// edited after signing (a name removed with its NSEC) gives an NSEC whose
// signature is good but whose span does not hold the name, which
// validators find bogus. Before, only the signatures were checked.
func TestDNSSECDenialCoversTheName(t *testing.T) {
	const text = exampleApex + "a A 192.0.2.1\nc A 192.0.2.3\ne A 192.0.2.5\n"
	for _, nsec3 := range []bool{false, true} {
		name := map[bool]string{false: "NSEC", true: "NSEC3"}[nsec3]
		t.Run(name, func(t *testing.T) {
			signed := wellSigned(t, text, nsec3)
			z, err := zone.Parse(strings.NewReader(signed), "example.com", "signed")
			if err != nil {
				t.Fatal(err)
			}
			job := func(served string) Job {
				green := startNamed(t, "example.com", served)
				return Job{Role: "green", Targets: []Server{{Name: "ns1-next", Addr: green}},
					Checks: Checks(z, Scope{Names: []string{"d", "b"}}), Serials: map[string]uint32{"example.com": z.Serial()},
					Keys: map[string]zone.Records{"example.com.": z.Apex().DNSKEYs}} // as Verify gives them
			}
			p := &Prober{Timeout: time.Second, Attempts: 2}
			s := Settings{Thresholds: Thresholds{Rounds: 1}, SignaturesValidFor: time.Hour}
			if an := p.Analyze(context.Background(), job(signed), s); !an.OK {
				t.Fatalf("a well signed zone fails: %s", an.Reason)
			}
			if nsec3 {
				return // an NSEC3 chain cannot be cut by removing a name's records
			}
			an := p.Analyze(context.Background(), job(dropName(t, signed, "c.example.com.")), s)
			if an.OK || !strings.Contains(an.Reason, "d.example.com. NXDOMAIN: no NSEC covers d.example.com.") {
				t.Errorf("an NSEC that does not cover the name: ok %v, reason %q", an.OK, an.Reason)
			}
		})
	}
}

// A key-signing key added to a zone signed by one key without the SEP
// flag: green's DNSKEY set is signed by both, so the parent's DS, which
// names the old key, still validates it. Only blue's signers are read by
// their SEP flag; green's count whichever key signed.
func TestNewKSKsCountsEveryKeyThatSignsGreen(t *testing.T) {
	key := func(flags uint16, pub string) *dns.DNSKEY {
		return &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
			Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256, PublicKey: pub}
	}
	sig := func(k *dns.DNSKEY) *dns.RRSIG {
		return &dns.RRSIG{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
			TypeCovered: dns.TypeDNSKEY, Algorithm: k.Algorithm, KeyTag: k.KeyTag(), SignerName: "example.com."}
	}
	z := key(256, "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==")
	k := key(257, "eRm2B0jEzbB1zT3p5V5z6E6PTqXmM8hzH0qVxRc5TVdOZsmD5XsIl1qB9oT2dB2Zj1LkLl0Jt0HhNQ1nRrbR0A==")
	checks := []Check{{Zone: "example.com.", Name: "example.com.", Type: "DNSKEY"}}
	answer := func(rrs ...dns.RR) *answers {
		return &answers{sets: []zone.RRset{{Name: "example.com.", Type: "DNSKEY", RRs: rrs}}, replied: []bool{true}}
	}
	blue := answer(z, sig(z))
	if got := newKSKs(checks, answer(z, k, sig(z), sig(k)), blue, "green", "blue ns1"); len(got) != 0 {
		t.Errorf("a KSK added beside the key the DS names: %+v; want nothing", got)
	}
	if got := newKSKs(checks, answer(z, k, sig(k)), blue, "green", "blue ns1"); len(got) != 1 {
		t.Errorf("the DS's key no longer signs green's set: %+v; want a failure", got)
	}
}

// A zone whose parent the fleet serves too, with no DS for it on either
// side: there is no chain of trust to break, whatever green does with its
// keys. With a DS on blue's side, resolvers still hold it: the check
// stands.
func TestNewKSKsWithTheParentsDSInTheFleet(t *testing.T) {
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "sub.example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256, PublicKey: "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=="}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: "sub.example.com.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
		TypeCovered: dns.TypeDNSKEY, Algorithm: key.Algorithm, KeyTag: key.KeyTag(), SignerName: "sub.example.com."}
	ds := key.ToDS(dns.SHA256)
	checks := []Check{{Zone: "sub.example.com.", Name: "sub.example.com.", Type: "DNSKEY"}, {Zone: "example.com.", Name: "sub.example.com.", Type: "DS"}}
	answer := func(keys []dns.RR, dsSet []dns.RR) *answers {
		return &answers{sets: []zone.RRset{{Name: "sub.example.com.", Type: "DNSKEY", RRs: keys}, {Name: "sub.example.com.", Type: "DS", RRs: dsSet}}, replied: []bool{true, true}}
	}
	blue := answer([]dns.RR{key, sig}, nil)
	if got := newKSKs(checks, answer(nil, nil), blue, "green", "blue ns1"); len(got) != 0 {
		t.Errorf("no DS at the parent on either side, green unsigned: %+v; want nothing", got)
	}
	blue = answer([]dns.RR{key, sig}, []dns.RR{ds})
	if got := newKSKs(checks, answer(nil, nil), blue, "green", "blue ns1"); len(got) != 1 {
		t.Errorf("blue's parent holds a DS, which resolvers cache, green unsigned: %+v; want a failure", got)
	}
}

// Canonical order compares octets, lower-casing A to Z alone: octets
// that are no ASCII letters keep their values, however an encoding would
// read them.
func TestCanonicalCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"a.example.", "B.example.", -1},
		{"example.", "a.example.", -1},
		{"z.example.", "a.b.example.", 1},
		{"\\200.example.", "\\220.example.", -1},
		{"\\195\\144.example.", "\\195\\160.example.", -1},
		{"*.example.", "a.example.", -1},
		{"yljkjljk.a.example.", "Z.a.example.", -1},
		{"A.EXAMPLE.", "a.example.", 0},
	} {
		if got := canonicalCompare(tt.a, tt.b); (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
			t.Errorf("canonicalCompare(%q, %q) = %d, want the sign of %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// nsec3Chain is the NSEC3 chain of a zone apex holding names: each
// name's hash, in hash order, pointing at the next and the last at the
// first, with no salt and no extra iterations.
func nsec3Chain(apex string, names ...string) []dns.RR {
	var hashes []string
	for _, n := range names {
		hashes = append(hashes, dns.HashName(n, dns.SHA1, 0, ""))
	}
	slices.Sort(hashes)
	var out []dns.RR
	for i, h := range hashes {
		owner := strings.ToLower(h) + "." + strings.TrimPrefix(apex, ".")
		out = append(out, &dns.NSEC3{Hdr: dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, HashLength: 20, NextDomain: hashes[(i+1)%len(hashes)], SaltLength: 0, Salt: ""})
	}
	return out
}

// An NXDOMAIN in the root zone, denied with NSEC3: the closest encloser
// is the root itself, whose NSEC3 owner has a single label, and the
// wildcard is "*.". Before, every such denial was called bogus.
func TestUncoveredNSEC3AtTheRoot(t *testing.T) {
	chain := nsec3Chain(".", ".", "com.", "net.", "org.")
	if why := uncovered("nosuch.", ".", chain); why != "" {
		t.Errorf("a full chain of the root: %s", why)
	}
	// Without the NSEC3 that covers nosuch.'s hash, the denial fails.
	h := dns.HashName("nosuch.", dns.SHA1, 0, "")
	var cut []dns.RR
	for _, rr := range chain {
		if !nsec3Covers(rr.(*dns.NSEC3), "nosuch.") {
			cut = append(cut, rr)
		}
	}
	if len(cut) == len(chain) {
		t.Fatalf("no NSEC3 of the chain covers %s: the test shows nothing", h)
	}
	if why := uncovered("nosuch.", ".", cut); !strings.Contains(why, "no NSEC3 covers nosuch.") {
		t.Errorf("a chain without the NSEC3 that covers the name: %q", why)
	}
	// The same below a zone apex.
	if why := uncovered("nosuch.example.com.", "example.com.", nsec3Chain("example.com.", "example.com.", "www.example.com.", "mail.example.com.")); why != "" {
		t.Errorf("a full chain of example.com: %s", why)
	}
}

// A zone whose names are written in capitals is signed as written: the
// NSEC before such a name holds it, in capitals, as its next name, and
// its signature covers it so (RFC 6840 §5.1: no lower-casing). Before,
// the check lower-cased it and called a good signature bad.
func TestDNSSECNextNameInCapitals(t *testing.T) {
	an := analyseSigned(t, wellSigned(t, unsignedZone+"Mail A 192.0.2.25\nq.X.Y TXT x\n", false), time.Hour)
	if !an.OK {
		t.Errorf("a signed zone with names in capitals: %s", an.Reason)
	}
}
