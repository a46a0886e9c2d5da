package probe

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// unpackAnswer reads every answer as miekg/dns's full decode does, in all
// the checks read: header, question, answer section, OPT record (and the
// extended RCODE in it). Only an authoritative NOERROR answer with records
// leaves its authority and additional records undecoded.
func TestUnpackAnswerReadsWhatTheChecksRead(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
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
			if short && (len(got.Ns) != 0 || slices.ContainsFunc(got.Extra, func(r dns.RR) bool { return r.Header().Rrtype != dns.TypeOPT })) {
				t.Errorf("the short form decoded the authority or additional records: %v %v", got.Ns, got.Extra)
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
