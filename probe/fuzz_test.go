package probe

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzUnpackAnswer sends what a broken or hostile server might answer
// through unpackAnswer, which every probe query's answer goes through on
// the worker. It must not panic, must refuse what miekg/dns's full decode
// refuses, and must read what miekg/dns reads in all the checks read
// (view): its short form may skip records, never misread them.
func FuzzUnpackAnswer(f *testing.F) {
	rr := func(s string) dns.RR { return mustRR(f, s) }
	for _, edit := range []func(m *dns.Msg){
		func(m *dns.Msg) {},
		func(m *dns.Msg) { m.Compress = false },
		func(m *dns.Msg) { m.Rcode = dns.RcodeBadVers },
		func(m *dns.Msg) { m.Rcode, m.Answer = dns.RcodeNameError, nil },
		func(m *dns.Msg) { m.Authoritative, m.Answer = false, nil },
		func(m *dns.Msg) { m.Truncated = true },
		func(m *dns.Msg) {
			m.Ns = append(m.Ns,
				rr("example.com. 300 IN RRSIG NS 13 2 300 20270101000000 20261201000000 1 example.com. AAAA"),
				rr("gufvra2sfio8rsfp7uo41e8ad1kr41fh.example.com. 300 IN NSEC3 1 0 0 - KG19N32806C832KIJDNGLQ8P9M2R5MDJ A RRSIG"),
				rr("gufvra2sfio8rsfp7uo41e8ad1kr41fh.example.com. 300 IN RRSIG NSEC3 13 3 300 20270101000000 20261201000000 1 example.com. AAAA"),
				rr("example.com. 300 IN SOA ns1.example.com. host.example.com. 1 2 3 4 5"))
		},
		func(m *dns.Msg) {
			m.Answer = append(m.Answer, rr("web.example.com. 300 IN TXT \"a\" \"b\""), rr("web.example.com. 300 IN MX 10 mail.example.com."))
		},
	} {
		m := new(dns.Msg)
		m.SetQuestion("WwW.example.com.", dns.TypeA)
		m.Response, m.Authoritative, m.Id = true, true, 4242
		m.Answer = []dns.RR{rr("www.example.com. 300 IN CNAME web.example.com."), rr("web.example.com. 300 IN A 192.0.2.10")}
		m.Ns = []dns.RR{rr("example.com. 300 IN NS ns1.example.com.")}
		m.Extra = []dns.RR{rr("ns1.example.com. 300 IN A 192.0.2.1")}
		m.SetEdns0(1232, true)
		m.Compress = true
		edit(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := unpackAnswer(raw)
		want := new(dns.Msg)
		wantErr := want.Unpack(raw)
		if err != nil && wantErr == nil {
			t.Fatalf("unpackAnswer error %v, where miekg/dns decodes the message", err)
		}
		if err != nil {
			return
		}
		if wantErr != nil {
			// The short form walks the authority and additional records
			// without decoding them (but for the proof and the OPT), by
			// design: what it reads must still be what miekg/dns reads.
			if _, short := unpackAnswerSection(raw); !short {
				t.Fatalf("unpackAnswer took a message miekg/dns refuses (%v) without its short form", wantErr)
			}
			checkAnswerSection(t, raw, got)
			return
		}
		if g, w := view(got), view(want); g != w {
			t.Fatalf("decoded\n%s\nmiekg/dns decodes\n%s", g, w)
		}
		for _, r := range got.Ns {
			found := false
			for _, w := range want.Ns {
				if r.String() == w.String() {
					found = true
				}
			}
			if !found {
				t.Fatalf("authority record %v is not one miekg/dns decodes: %v", r, want.Ns)
			}
		}
	})
}

// checkAnswerSection checks got's question and answer records against
// miekg/dns's decoding of them, record by record, in raw.
func checkAnswerSection(t *testing.T, raw []byte, got *dns.Msg) {
	t.Helper()
	name, off, err := dns.UnpackDomainName(raw, 12)
	if err != nil || len(got.Question) != 1 || got.Question[0].Name != name {
		t.Fatalf("question %v, miekg/dns reads %q (%v)", got.Question, name, err)
	}
	off += 4
	for i, rr := range got.Answer {
		var want dns.RR
		if want, off, err = dns.UnpackRR(raw, off); err != nil || want == nil || want.String() != rr.String() {
			t.Fatalf("answer record %d is %v, miekg/dns reads %v (%v)", i, rr, want, err)
		}
	}
}
