package probe

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// mustRR is the record s, in zone file form.
func mustRR(tb testing.TB, s string) dns.RR {
	tb.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// unpackAnswer reads every answer as miekg/dns's full decode does, in all
// the checks read: header, question, answer section, OPT record (and the
// extended RCODE in it). Only an authoritative NOERROR answer with records
// leaves its authority and additional records undecoded.
func TestUnpackAnswerReadsWhatTheChecksRead(t *testing.T) {
	rr := func(s string) dns.RR { return mustRR(t, s) }
	msg := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("WwW.example.com.", dns.TypeA)
		m.Response, m.Authoritative, m.Id = true, true, 4242
		m.Answer = []dns.RR{rr("www.example.com. 300 IN CNAME web.example.com."), rr("web.example.com. 300 IN A 192.0.2.10")}
		m.Ns = []dns.RR{rr("example.com. 300 IN NS ns1.example.com."), rr("example.com. 300 IN NS ns2.example.com.")}
		m.Extra = []dns.RR{rr("ns1.example.com. 300 IN A 192.0.2.1"), rr("ns2.example.com. 300 IN AAAA 2001:db8::2")}
		m.SetEdns0(1232, true)
		m.Compress = true
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		raw   []byte
		short bool // decoded in the short form
	}{
		{"positive, compressed", msg(nil), true},
		{"positive, uncompressed", msg(func(m *dns.Msg) { m.Compress = false }), true},
		{"positive without EDNS", msg(func(m *dns.Msg) { m.Extra = m.Extra[:2] }), true},
		{"positive, OPT first", msg(func(m *dns.Msg) { m.Extra = append([]dns.RR{m.Extra[2]}, m.Extra[:2]...) }), true},
		{"extended RCODE in the OPT", msg(func(m *dns.Msg) { m.Rcode = dns.RcodeBadVers }), true},
		{"NXDOMAIN", msg(func(m *dns.Msg) { m.Rcode, m.Answer = dns.RcodeNameError, nil }), false},
		{"NODATA", msg(func(m *dns.Msg) { m.Answer = nil }), false},
		{"referral", msg(func(m *dns.Msg) { m.Authoritative, m.Answer = false, nil }), false},
		{"truncated", msg(func(m *dns.Msg) { m.Truncated = true }), false},
		{"SERVFAIL", msg(func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }), false},
		// A signed wildcard answer: its NSEC3 proof and the proof's
		// signature are read, for the DNSSEC checks; the NS set's is not.
		{"signed wildcard", msg(func(m *dns.Msg) {
			m.Ns = append(m.Ns,
				rr("example.com. 300 IN RRSIG NS 13 2 300 20270101000000 20261201000000 1 example.com. AAAA"),
				rr("gufvra2sfio8rsfp7uo41e8ad1kr41fh.example.com. 300 IN NSEC3 1 0 0 - KG19N32806C832KIJDNGLQ8P9M2R5MDJ A RRSIG"),
				rr("gufvra2sfio8rsfp7uo41e8ad1kr41fh.example.com. 300 IN RRSIG NSEC3 13 3 300 20270101000000 20261201000000 1 example.com. AAAA"))
		}), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := new(dns.Msg)
			if err := want.Unpack(c.raw); err != nil {
				t.Fatal(err)
			}
			_, short := unpackAnswerSection(c.raw)
			if short != c.short {
				t.Errorf("short form %v, want %v", short, c.short)
			}
			got, err := unpackAnswer(c.raw)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := view(got), view(want); g != w {
				t.Errorf("decoded\n%s\nwant\n%s", g, w)
			}
			proof := func(r dns.RR) bool {
				sig, isSig := r.(*dns.RRSIG)
				return r.Header().Rrtype == dns.TypeNSEC3 || isSig && sig.TypeCovered == dns.TypeNSEC3
			}
			if short && (slices.ContainsFunc(got.Ns, func(r dns.RR) bool { return !proof(r) }) || slices.ContainsFunc(got.Extra, func(r dns.RR) bool { return r.Header().Rrtype != dns.TypeOPT })) {
				t.Errorf("the short form decoded the authority or additional records: %v %v", got.Ns, got.Extra)
			}
			if wantProof := slices.DeleteFunc(slices.Clone(want.Ns), func(r dns.RR) bool { return !proof(r) }); short && len(got.Ns) != len(wantProof) {
				t.Errorf("the short form read %d records of the authority's NSEC3 proof, want %d: %v", len(got.Ns), len(wantProof), got.Ns)
			}
		})
	}

	// What does not walk is left to miekg/dns, and fails as it fails.
	good := msg(nil)
	for _, bad := range [][]byte{good[:len(good)-3], append(slices.Clone(good), 0), good[:40]} {
		_, short := unpackAnswerSection(bad)
		_, err := unpackAnswer(bad)
		if wantErr := new(dns.Msg).Unpack(bad); short || (err == nil) != (wantErr == nil) {
			t.Errorf("%d bytes: short form %v, error %v; miekg/dns says %v", len(bad), short, err, wantErr)
		}
	}
}

// view is what the checks read of m.
func view(m *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n%v\n", m.MsgHdr, m.Question)
	for _, rr := range m.Answer {
		fmt.Fprintln(&b, rr)
	}
	if opt := m.IsEdns0(); opt != nil {
		fmt.Fprintln(&b, "OPT", opt.UDPSize(), opt.Do(), opt.Version(), opt.ExtendedRcode(), opt.Option)
	}
	return b.String()
}
