package probe

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// Ways the test server can misbehave.
const (
	modeOK       = ""
	modeServfail = "servfail"
	modeNoAA     = "noaa"
	modeWrongA   = "wronga"
	modeTruncate = "truncate" // TC bit and no records over UDP, full answers over TCP
	modeSilent   = "silent"   // never answers
	modeNoEDNS   = "noedns"   // answers without an OPT record
	// modeTruncateNoEDNS is modeTruncate with answers without an OPT record.
	modeTruncateNoEDNS = "truncate-noedns"
	modeOversize       = "oversize" // pads UDP answers past the query's buffer size
	modeRecurse        = "recurse"  // acts as an open resolver: RA set, NXDOMAIN outside the zone
)

const testZone = `$ORIGIN example.com.
$TTL 3600
@     SOA ns1 hostmaster 2024010101 7200 900 1209600 300
      NS  ns1
      NS  ns2
ns1   A   192.0.2.1
ns2   A   192.0.2.2
www   A   192.0.2.10
www   A   192.0.2.11
www   AAAA 2001:db8::10
txt   TXT "v=spf1 -all"
`

// exampleApex starts the example.com test zones: serial 7, one
// nameserver with its address.
const exampleApex = `$ORIGIN example.com.
$TTL 300
@       SOA ns1 hostmaster 7 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.1
`

// testServer is an in-process authoritative server for one zone, on one
// loopback port for both UDP and TCP.
type testServer struct {
	addr string
	zone *zone.Zone
	// lookup, when set, answers instead of zone (many zones at once).
	lookup  func(name string, qtype uint16) zone.Answer
	mode    atomic.Value // string
	tcpSeen atomic.Int32
	// tcpConns counts accepted TCP connections.
	tcpConns atomic.Int32
	// soaAsked counts the SOA queries received.
	soaAsked atomic.Int32
	// delay holds each answer back this long (a time.Duration).
	delay atomic.Int64
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func parseZone(t testing.TB, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func startServer(t *testing.T, z *zone.Zone) *testServer {
	t.Helper()
	return start(t, &testServer{zone: z})
}

// startLookup serves the answers of lookup.
func startLookup(t *testing.T, lookup func(name string, qtype uint16) zone.Answer) *testServer {
	t.Helper()
	return start(t, &testServer{lookup: lookup})
}

func start(t *testing.T, s *testServer) *testServer {
	t.Helper()
	return startOn(t, "127.0.0.1", s)
}

// startOn is start on host's loopback address, such as "::1".
func startOn(t *testing.T, host string, s *testServer) *testServer {
	t.Helper()
	s.mode.Store(modeOK)
	var pc net.PacketConn
	var l net.Listener
	for i := 0; l == nil; i++ {
		var err error
		if pc, err = net.ListenPacket("udp", net.JoinHostPort(host, "0")); err != nil {
			t.Fatal(err)
		}
		s.addr = pc.LocalAddr().String()
		if l, err = net.Listen("tcp", s.addr); err != nil {
			pc.Close()
			if i == 20 {
				t.Fatalf("no free port for UDP and TCP: %v", err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: countingListener{l, &s.tcpConns}}} {
		started := make(chan struct{})
		srv.Handler = dns.HandlerFunc(s.serve)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("server did not start")
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

func (s *testServer) setMode(m string) { s.mode.Store(m) }

func (s *testServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	mode := s.mode.Load().(string)
	udp := w.LocalAddr().Network() == "udp"
	if !udp {
		s.tcpSeen.Add(1)
	}
	if mode == modeSilent || len(req.Question) != 1 {
		return
	}
	time.Sleep(time.Duration(s.delay.Load()))
	q := req.Question[0]
	if q.Qtype == dns.TypeSOA {
		s.soaAsked.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	lookup := s.lookup
	if lookup == nil {
		lookup = s.zone.Lookup
	}
	a := lookup(q.Name, q.Qtype)
	m.Rcode = a.Rcode
	m.Authoritative = !a.Referral
	// Copies, made as zone.Records.Copy makes them: the prober packs
	// the zone's records meanwhile.
	m.Ns = append(m.Ns, a.Authority.Copy()...)
	m.Extra = append(m.Extra, a.Additional.Copy()...)
	for _, rr := range a.RRs.Copy() {
		// Answer with the case of the question, as servers do.
		if dns.CanonicalName(rr.Header().Name) == dns.CanonicalName(q.Name) {
			rr.Header().Name = q.Name
		}
		m.Answer = append(m.Answer, rr)
	}
	switch mode {
	case modeServfail:
		m.Rcode, m.Answer = dns.RcodeServerFailure, nil
	case modeNoAA:
		m.Authoritative = false
	case modeWrongA:
		if q.Qtype == dns.TypeA && len(m.Answer) > 0 {
			rr, _ := dns.NewRR(q.Name + " 3600 IN A 198.51.100.66")
			m.Answer = []dns.RR{rr}
		}
	case modeTruncate, modeTruncateNoEDNS:
		if udp {
			m.Truncated, m.Answer = true, nil
		}
	case modeRecurse:
		m.RecursionAvailable = true
		if m.Rcode == dns.RcodeRefused {
			m.Rcode, m.Authoritative = dns.RcodeNameError, false
		}
	case modeOversize:
		pad, _ := dns.NewRR(q.Name + ` 60 IN TXT "` + strings.Repeat("x", 250) + `"`)
		m.Extra = append(m.Extra, pad, pad, pad, pad, pad, pad)
	}
	if opt := req.IsEdns0(); opt != nil && mode != modeNoEDNS && mode != modeTruncateNoEDNS {
		m.SetEdns0(opt.UDPSize(), false)
	}
	_ = w.WriteMsg(m)
}
