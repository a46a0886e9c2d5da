package probe

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"
)

var both = []string{"udp", "tcp"}

func fastProber() *Prober { return &Prober{Timeout: 200 * time.Millisecond, Attempts: 2} }

func TestProbeHealthy(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	checks := Expect(z, []string{"www", "txt", "nope", "ns1"})
	rep := fastProber().Probe(context.Background(), s.addr, both, checks)
	if !rep.OK || rep.Err() != nil {
		t.Fatalf("report not OK: %v\n%+v", rep.Err(), rep)
	}
	// Every query is an answer check; every UDP answer an EDNS check too.
	want := map[string]Tally{KindAnswer: {Pass: 2 * len(checks)}, KindEDNS: {Pass: len(checks)}}
	if rep.Passed != 3*len(checks) || rep.Failed != 0 || rep.Errors != 0 || len(rep.Results) != 0 || !maps.Equal(rep.Kinds, want) {
		t.Errorf("counts: %+v, want %v and no results", rep, want)
	}
	if got := rep.Serials["example.com."]; got != 2024010101 {
		t.Errorf("Serials = %v", rep.Serials)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Passed != rep.Passed || back.Serials["example.com."] != 2024010101 {
		t.Errorf("JSON round trip: %s, %v", b, err)
	}
}

func TestProbeMisbehaving(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	checks := Expect(z, []string{"www"}) // SOA, NS, DNSKEY, www A, www AAAA
	cases := []struct {
		mode            string
		failed, errored int
		detail          string // in every result
		errText         string // in Err()
	}{
		{modeServfail, 10, 0, "rcode SERVFAIL, want NOERROR", "example.com. SOA udp: rcode SERVFAIL, want NOERROR"},
		{modeNoAA, 10, 0, "missing AA flag", "missing AA flag"},
		{modeWrongA, 2, 0, `got ["www.example.com. 3600 IN A 198.51.100.66"] want ["www.example.com. 3600 IN A 192.0.2.10" "www.example.com. 3600 IN A 192.0.2.11"]`, "www.example.com. A udp: got"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			s.setMode(c.mode)
			rep := fastProber().Probe(context.Background(), s.addr, both, checks)
			if a := rep.Kinds[KindAnswer]; rep.OK || a.Fail != c.failed || a.Error != c.errored || a.Pass != 10-c.failed-c.errored || rep.Kinds[KindEDNS].Pass != 5 {
				t.Fatalf("report: %+v", rep)
			}
			for _, r := range rep.Results {
				if r.Outcome != OutcomeFail || !strings.Contains(r.Detail, c.detail) {
					t.Errorf("result %+v, want fail with %q", r, c.detail)
				}
			}
			err := rep.Err()
			if err == nil || !strings.Contains(err.Error(), s.addr) || !strings.Contains(err.Error(), c.errText) {
				t.Errorf("Err() = %v, want it to name %s and %q", err, s.addr, c.errText)
			}
		})
	}
	s.setMode(modeServfail)
	err := fastProber().Probe(context.Background(), s.addr, both, checks).Err()
	want := "DNS probe of " + s.addr + ": 10 of 15 checks failed: example.com. SOA udp: rcode SERVFAIL, want NOERROR; example.com. NS udp: rcode SERVFAIL, want NOERROR; example.com. DNSKEY udp: rcode SERVFAIL, want NOERROR; and 7 more"
	if err == nil || err.Error() != want {
		t.Errorf("Err() =\n%v\nwant\n%s", err, want)
	}
}

func TestProbeTruncatedRetriesOverTCP(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	s.setMode(modeTruncate)
	rep := fastProber().Probe(context.Background(), s.addr, []string{"udp"}, Expect(z, []string{"www"}))
	if !rep.OK || rep.Kinds[KindAnswer].Pass != 5 || rep.Kinds[KindEDNS].Pass != 5 {
		t.Fatalf("truncated UDP answers should pass over TCP: %v %+v", rep.Err(), rep)
	}
	if n := s.tcpSeen.Load(); n != 5 {
		t.Errorf("server saw %d TCP queries, want 5", n)
	}
	// The EDNS check is of the UDP answer, truncated or not.
	s.setMode(modeTruncateNoEDNS)
	rep = fastProber().Probe(context.Background(), s.addr, []string{"udp"}, Expect(z, []string{"www"}))
	if rep.Kinds[KindAnswer].Pass != 5 || rep.Kinds[KindEDNS].Fail != 5 {
		t.Errorf("truncated UDP answers without OPT: %+v", rep)
	}
}

func TestProbeTimeout(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	s.setMode(modeSilent)
	checks := Expect(z, nil)[:1]
	start := time.Now()
	rep := fastProber().Probe(context.Background(), s.addr, both, checks)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	if rep.OK || rep.Errors != 2 || rep.Failed != 0 || len(rep.Results) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Outcome != OutcomeError || !strings.HasPrefix(r.Detail, "timeout") || !strings.Contains(r.Detail, "2 attempt") {
			t.Errorf("result %+v, want a timeout error", r)
		}
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "example.com. SOA udp: timeout") || !strings.Contains(err.Error(), "2 without an answer") {
		t.Errorf("Err() = %v", err)
	}
}

func TestProbeCancel(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	s.setMode(modeSilent)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	rep := (&Prober{Timeout: 10 * time.Second, Attempts: 3}).Probe(ctx, s.addr, both, Expect(z, []string{"www"}))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Probe ignored cancellation: took %s", took)
	}
	if rep.OK || rep.Errors != 10 || !strings.HasPrefix(rep.Results[0].Detail, "canceled") {
		t.Errorf("report: %+v", rep)
	}
}

func TestProbeBadInput(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	p := fastProber()
	if rep := p.Probe(context.Background(), s.addr, both, nil); rep.OK || rep.Errors != 1 || rep.Err() == nil {
		t.Errorf("no checks: %+v", rep)
	}
	checks := []Check{{Zone: "example.com.", Name: "www.example.com.", Type: "BOGUS"}}
	rep := p.Probe(context.Background(), s.addr, []string{"udp", "sctp"}, checks)
	if rep.OK || rep.Errors != 2 || !strings.Contains(rep.Err().Error(), `unknown query type "BOGUS"`) {
		t.Errorf("bad type and protocol: %+v", rep)
	}
}

func TestProbeKeepsFewResults(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	s.setMode(modeServfail)
	var names []string
	for i := range 30 {
		names = append(names, "n"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	rep := fastProber().Probe(context.Background(), s.addr, both, Expect(z, names))
	if rep.Failed != 66 || len(rep.Results) != MaxResults {
		t.Errorf("failed %d, kept %d results", rep.Failed, len(rep.Results))
	}
	if !strings.HasSuffix(rep.Err().Error(), "; and 63 more") {
		t.Errorf("Err() = %v", rep.Err())
	}
}

func TestSOASerialAndCheckSerials(t *testing.T) {
	z := parseZone(t, testZone)
	s1 := startServer(t, z)
	s2 := startServer(t, parseZone(t, strings.Replace(testZone, "2024010101", "2024010102", 1)))
	ctx := context.Background()
	for _, c := range []struct {
		s    *testServer
		want uint32
	}{{s1, 2024010101}, {s2, 2024010102}} {
		got, err := SOASerial(ctx, c.s.addr, "example.com", time.Second)
		if err != nil || got != c.want {
			t.Errorf("SOASerial(%s) = %d, %v, want %d", c.s.addr, got, err, c.want)
		}
	}
	s1.setMode(modeServfail)
	if _, err := SOASerial(ctx, s1.addr, "example.com", time.Second); err == nil ||
		err.Error() != "SOA serial of example.com. from "+s1.addr+": rcode SERVFAIL, want NOERROR" {
		t.Errorf("SERVFAIL: %v", err)
	}
	s1.setMode(modeNoAA)
	if _, err := SOASerial(ctx, s1.addr, "example.com", time.Second); err == nil || !strings.Contains(err.Error(), "missing AA flag") {
		t.Errorf("no AA: %v", err)
	}
	s1.setMode(modeSilent)
	if _, err := SOASerial(ctx, s1.addr, "example.com", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent: %v", err)
	}
	s1.setMode(modeOK)

	p := fastProber()
	r1 := p.Probe(ctx, s1.addr, both, Expect(z, nil))
	r2 := p.Probe(ctx, s2.addr, both, Expect(z, nil)) // its SOA check fails: new serial
	if !r1.OK || r2.OK || r2.Serials["example.com."] != 2024010102 {
		t.Fatalf("r1 %+v\nr2 %+v", r1, r2)
	}
	if err := CheckSerials([]Report{r1, r1}, map[string]uint32{"example.com": 2024010101}); err != nil {
		t.Errorf("agreeing serials: %v", err)
	}
	err := CheckSerials([]Report{r1, r2}, map[string]uint32{"example.com": 2024010102})
	for _, want := range []string{
		s1.addr + " serves example.com. serial 2024010101, want 2024010102 (behind the expected serial)",
		"servers disagree on example.com. serial: " + s1.addr + " has 2024010101, " + s2.addr + " has 2024010102",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSerials = %v\nwant it to contain %q", err, want)
		}
	}
	if err := CheckSerials([]Report{r1, r2}, nil); err == nil || !strings.Contains(err.Error(), "servers disagree") {
		t.Errorf("disagreement without want: %v", err)
	}
	if err := CheckSerials([]Report{r1, {Addr: "192.0.2.9:53"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "192.0.2.9:53: no SOA serial seen for example.com.") {
		t.Errorf("missing serial: %v", err)
	}
}

// TCP connections are reused across queries: one per query in flight, not
// one per query.
func TestProbeReusesTCPConnections(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	checks := Expect(z, []string{"www", "txt", "ns1", "ns2", "nope"})
	p := &Prober{Timeout: time.Second, Concurrency: 2}
	for range 3 {
		if rep := p.Probe(context.Background(), s.addr, []string{"tcp"}, checks); !rep.OK {
			t.Fatal(rep.Err())
		}
	}
	if q, c := s.tcpSeen.Load(), s.tcpConns.Load(); q != int32(3*len(checks)) || c > 6 {
		t.Errorf("%d TCP queries over %d connections, want at most 2 per Probe", q, c)
	}
}

// A check marked OneProtocol is asked over the first protocol only: the
// SOA check of each zone outside a large fleet's full set, whose
// transports the full checks cover on the same server.
func TestProbeOneProtocolCheck(t *testing.T) {
	z := parseZone(t, testZone)
	s := startServer(t, z)
	var cov Coverage
	soa := cov.SOACheck(z.Apex())
	full := Expect(z, []string{"www"})
	checks := append([]Check{soa}, full...)
	rep := fastProber().Probe(context.Background(), s.addr, both, checks)
	if !rep.OK {
		t.Fatal(rep.Err())
	}
	if got, want := s.tcpSeen.Load(), int32(len(full)); got != want {
		t.Errorf("%d TCP queries, want %d: the SOA-only check is asked over UDP alone", got, want)
	}
	if a, want := rep.Kinds[KindAnswer].Pass, 2*len(full)+1; a != want {
		t.Errorf("%d answers passed, want %d (every result counted once)", a, want)
	}
	// Over TCP alone, the first protocol is TCP.
	s.tcpSeen.Store(0)
	if rep := fastProber().Probe(context.Background(), s.addr, []string{"tcp"}, []Check{soa}); !rep.OK || s.tcpSeen.Load() != 1 {
		t.Errorf("over tcp alone: %d TCP queries, report %+v", s.tcpSeen.Load(), rep)
	}
}

// TestProbeIPv6 probes a server at an IPv6 address, as a load balancer
// whose address is IPv6 is checked, over UDP (batched) and TCP.
func TestProbeIPv6(t *testing.T) {
	z := parseZone(t, testZone)
	s := startOn(t, "::1", &testServer{zone: z})
	if !strings.HasPrefix(s.addr, "[::1]:") {
		t.Fatalf("server address %s, want [::1]:port", s.addr)
	}
	checks := Expect(z, []string{"www", "txt", "nope", "ns1"})
	rep := fastProber().Probe(context.Background(), s.addr, both, checks)
	if !rep.OK || rep.Err() != nil || rep.Passed != 3*len(checks) {
		t.Fatalf("report not OK: %v\n%+v", rep.Err(), rep)
	}
}

// Zones are compared by canonical name, whoever spelled them, and the
// message says which way a serial is off.
func TestCheckSerialsCanonicalNamesAndOrder(t *testing.T) {
	reports := []Report{
		{Addr: "192.0.2.1:53", Serials: map[string]uint32{"Example.COM": 5}},
		{Addr: "192.0.2.2:53", Serials: map[string]uint32{"example.com.": 5}},
	}
	if err := CheckSerials(reports, map[string]uint32{"example.com": 5}); err != nil {
		t.Errorf("same zone, other spelling: %v", err)
	}
	want := "SOA serial check failed: 192.0.2.1:53 serves example.com. serial 5, want 4 (ahead of the expected serial); 192.0.2.2:53 serves example.com. serial 5, want 4 (ahead of the expected serial)"
	if err := CheckSerials(reports, map[string]uint32{"EXAMPLE.com.": 4}); err == nil || err.Error() != want {
		t.Errorf("CheckSerials = %v\nwant %s", err, want)
	}
}
