package probe

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/zone"
)

// zoneReply is what an authoritative server for z answers to req.
func zoneReply(z *zone.Zone, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	a := z.Lookup(q.Name, q.Qtype)
	m.Rcode, m.Authoritative = a.Rcode, !a.Referral
	m.Answer = a.RRs.Copy() // the prober packs z's records meanwhile
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	return m
}

// serveUDP answers UDP queries on a loopback port with h until the test ends.
func serveUDP(t testing.TB, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// Answers that are not the query's are dropped, not taken for it: another
// ID, the right ID with another question, the query itself echoed (as a
// broken middlebox does), a message of another opcode, and bytes that are
// no DNS message at all, each sent before the real answer.
func TestEngineIgnoresForeignAnswers(t *testing.T) {
	z := parseZone(t, testZone)
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		_, _ = w.Write([]byte{0xde, 0xad})
		_ = w.WriteMsg(req)
		notify := zoneReply(z, req)
		notify.Opcode, notify.Rcode = dns.OpcodeNotify, dns.RcodeServerFailure
		_ = w.WriteMsg(notify)
		foreign := zoneReply(z, req)
		foreign.Id = req.Id + 1
		foreign.Answer = nil
		_ = w.WriteMsg(foreign)
		other := zoneReply(z, req)
		other.Question[0].Name = "other.example.com."
		other.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(other)
		_ = w.WriteMsg(zoneReply(z, req))
	})
	checks := Expect(z, []string{"www", "txt", "nope"})
	rep := (&Prober{Timeout: time.Second, Attempts: 1}).Probe(context.Background(), addr, []string{"udp"}, checks)
	if !rep.OK {
		t.Fatalf("a foreign answer was taken for the query's: %v", rep.Err())
	}
}

// A server that only echoes each query never answers: the probe fails
// with a timeout, not with the query taken for an answer that is wrong.
func TestEngineEchoedQueryIsNoAnswer(t *testing.T) {
	z := parseZone(t, testZone)
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) { _ = w.WriteMsg(req) })
	p := &Prober{Timeout: 100 * time.Millisecond, Attempts: 1}
	rep := p.Probe(context.Background(), addr, []string{"udp"}, Expect(z, []string{"www"}))
	if rep.OK || len(rep.Results) == 0 {
		t.Fatalf("a server echoing queries: %+v", rep)
	}
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.Detail, "timeout") {
			t.Errorf("%s: %q, want a timeout", r.Check, r.Detail)
		}
	}
}

// A lost datagram is sent again within its attempt, with the same ID, so
// one attempt of a second is enough to get the answer. It counts as lost
// because a query sent after it (www AAAA) was answered.
func TestEngineResendsLostQuery(t *testing.T) {
	z := parseZone(t, testZone)
	var mu sync.Mutex
	seen := map[string]int{}
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		mu.Lock()
		seen[q.Name+" "+dns.Type(q.Qtype).String()]++
		first := seen[q.Name+" "+dns.Type(q.Qtype).String()] == 1
		mu.Unlock()
		if first && q.Name == "www.example.com." && q.Qtype == dns.TypeA {
			return // lost
		}
		_ = w.WriteMsg(zoneReply(z, req))
	})
	checks := Expect(z, []string{"www"})
	rep := (&Prober{Timeout: time.Second, Attempts: 1}).Probe(context.Background(), addr, []string{"udp"}, checks)
	if !rep.OK {
		t.Fatalf("a lost query was not asked again: %v", rep.Err())
	}
	mu.Lock()
	if n := seen["www.example.com. A"]; n < 2 {
		t.Errorf("www A asked %d times, want at least 2", n)
	}
	mu.Unlock()
}

// Under a short timeout the datagram goes again within it, after half of
// it, however slow the round trips were: not after the usual 250 ms, past
// a timeout of 200 ms. Asked of the wait itself: probed end to end, the
// resend's answer would have to come back in the 100 ms left, which a
// loaded machine does not promise (it failed 2 runs in 100 so).
func TestEngineResendsWithinAShortTimeout(t *testing.T) {
	e := newEngine(200*time.Millisecond, 1, 1232)
	defer e.close()
	for _, srtt := range []time.Duration{0, 80 * time.Millisecond} {
		e.srtt.Store(int64(srtt))
		if got := e.rto(); got != 100*time.Millisecond {
			t.Errorf("round trips of %s: resend after %s under a timeout of 200ms, want 100ms", srtt, got)
		}
	}
}

// Nothing listening on a UDP port is an error naming why, not a wait
// for every attempt's timeout.
func TestEngineRefusedUDP(t *testing.T) {
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	z := parseZone(t, testZone)
	rep := (&Prober{Timeout: 5 * time.Second, Attempts: 2}).Probe(context.Background(), addr, []string{"udp"}, Expect(z, nil)[:1])
	if rep.OK || rep.Errors != 1 || !strings.Contains(rep.Results[0].Detail, "refused") {
		t.Fatalf("report: %+v", rep)
	}
}

// TCP queries are pipelined (RFC 7766): several go out on one connection
// before any answer, and answers that come back in another order are
// matched to their queries by ID.
func TestEngineTCPPipelinedOutOfOrder(t *testing.T) {
	z := parseZone(t, testZone)
	var most atomic.Int32
	addr, conns := serveTCP(t, func(c net.Conn) {
		for {
			// Read what has arrived (at least one query), then answer
			// it last first.
			var reqs []*dns.Msg
			for len(reqs) == 0 || c.SetReadDeadline(time.Now().Add(50*time.Millisecond)) == nil {
				m, err := readTCPMsg(c)
				if err != nil {
					if len(reqs) == 0 {
						return
					}
					break
				}
				reqs = append(reqs, m)
			}
			_ = c.SetReadDeadline(time.Time{})
			if n := int32(len(reqs)); n > most.Load() {
				most.Store(n)
			}
			for i := len(reqs) - 1; i >= 0; i-- {
				writeTCPMsg(c, zoneReply(z, reqs[i]))
			}
		}
	})
	checks := Expect(z, []string{"www", "txt", "ns1", "ns2", "nope"})
	rep := (&Prober{Timeout: 2 * time.Second, Attempts: 1, Concurrency: 16}).Probe(context.Background(), addr, []string{"tcp"}, checks)
	if !rep.OK {
		t.Fatalf("out-of-order answers not matched: %v", rep.Err())
	}
	if c, m := conns.Load(), most.Load(); c > tcpConns || m < 2 {
		t.Errorf("%d connections, at most %d queries read at once; want at most %d connections and pipelined queries", c, m, tcpConns)
	}
}

// serveTCP accepts TCP connections on loopback until the test ends and
// hands each to handle on its own goroutine, closing it after; it returns
// the address and a count of the connections accepted.
func serveTCP(t *testing.T, handle func(c net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	conns := new(atomic.Int32)
	addr := testnet.ServeTCP(t, func(c net.Conn) {
		conns.Add(1)
		handle(c)
	})
	return addr, conns
}

// writeTCPMsg writes m with its two-byte length (RFC 1035 4.2.2).
func writeTCPMsg(w io.Writer, m *dns.Msg) {
	b, _ := m.Pack()
	_, _ = w.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
}

func readTCPMsg(r io.Reader) (*dns.Msg, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(b)
}

// A TCP connection the server closes after an answer (as servers close
// idle ones) costs the query outstanding on it no attempt: it goes again
// on a new connection. This server answers one query per connection and
// closes it on reading the next.
func TestEngineTCPReconnects(t *testing.T) {
	z := parseZone(t, testZone)
	addr, conns := serveTCP(t, func(c net.Conn) {
		m, err := readTCPMsg(c)
		if err != nil {
			return
		}
		writeTCPMsg(c, zoneReply(z, m))
		_, _ = readTCPMsg(c)
	})
	checks := Expect(z, []string{"www", "txt", "ns1", "ns2", "nope"})
	rep := (&Prober{Timeout: 2 * time.Second, Attempts: 1, Concurrency: 1}).Probe(context.Background(), addr, []string{"tcp"}, checks)
	if !rep.OK {
		t.Fatalf("closed connections cost attempts: %v", rep.Err())
	}
	if c := conns.Load(); c < int32(len(checks)) {
		t.Errorf("%d connections for %d queries answered one per connection", c, len(checks))
	}
}

// Every server's answer is checked, even when the first server's answer
// to the same question was checked already: one wrong server among right
// ones fails, however alike their answers are.
func TestEngineSameAnswerShortcutKeepsChecks(t *testing.T) {
	z := parseZone(t, testZone)
	good, bad := startServer(t, z), startServer(t, z)
	bad.setMode(modeWrongA)
	checks := Expect(z, []string{"www", "txt", "ns1"})
	job := Job{Role: "green", Targets: []Server{{Name: "a", Addr: good.addr}, {Name: "b", Addr: bad.addr}, {Name: "c", Addr: good.addr}}, Checks: checks}
	a := (&Prober{Timeout: time.Second, Attempts: 1}).Analyze(context.Background(), job, Settings{Thresholds: Thresholds{Rounds: 1}})
	if a.OK || !a.Reports[0].OK || a.Reports[1].OK || !a.Reports[2].OK {
		t.Fatalf("want only b to fail: %+v", a)
	}
	if got := a.Reports[1].Kinds[KindAnswer].Fail; got != 2*2 { // www A and ns1 A, over UDP and TCP
		t.Errorf("b failed %d answer checks, want 4: %+v", got, a.Reports[1])
	}
}

// A server that is slow but loses nothing gets each query once: without
// an answer to a later query, a late one is not presumed lost, so a
// stalled server is not sent the whole window again. Nor is it when the
// answers come in another order than the queries, as a server answering
// each on its own thread sends them: an answer a little behind a later
// query's is not lost. This server answers every query of the one batch
// past the 250 ms resend wait, last first, a few janitor ticks apart:
// 40 ms from the first answer to the last, well inside the reordering
// window (a quarter of the 1 s round trip), and far from the timeout: on
// a loaded machine the process (this server with it) stalls for a few
// hundred milliseconds at times, which delays answers past a narrower
// window, and reorders them as much as the stall lasted.
func TestEngineNoResendToSlowServer(t *testing.T) {
	z := parseZone(t, testZone)
	checks := Expect(z, []string{"www"})
	const (
		delay = time.Second           // past the 250 ms resend wait
		gap   = 10 * time.Millisecond // the janitor looks every 20 ms
	)
	var seen atomic.Int32
	var first sync.Once
	var start time.Time
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		seen.Add(1)
		first.Do(func() { start = time.Now() })
		q := req.Question[0]
		i := slices.IndexFunc(checks, func(c Check) bool {
			return dns.CanonicalName(c.Name) == dns.CanonicalName(q.Name) && c.Type == dns.TypeToString[q.Qtype]
		})
		time.Sleep(time.Until(start.Add(delay + time.Duration(len(checks)-1-i)*gap)))
		_ = w.WriteMsg(zoneReply(z, req))
	})
	rep := (&Prober{Timeout: 5 * time.Second, Attempts: 1}).Probe(context.Background(), addr, []string{"udp"}, checks)
	if !rep.OK {
		t.Fatal(rep.Err())
	}
	if n := seen.Load(); n != int32(len(checks)) {
		t.Errorf("%d queries for %d checks: a slow server got queries again", n, len(checks))
	}
}

// A server that never answers gets each query once per attempt, no more:
// a lost answer is not presumed lost again within its attempt when no
// later query was answered, and attempts are what the Prober says.
func TestEngineSilentServerGetsEachAttemptOnce(t *testing.T) {
	z := parseZone(t, testZone)
	var seen atomic.Int32
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) { seen.Add(1) })
	checks := Expect(z, []string{"www"})
	for _, attempts := range []int{1, 3} {
		seen.Store(0)
		rep := (&Prober{Timeout: 100 * time.Millisecond, Attempts: attempts}).Probe(context.Background(), addr, []string{"udp"}, checks)
		if rep.OK || rep.Errors != len(checks) {
			t.Fatalf("%d attempts: report %+v", attempts, rep)
		}
		if n := seen.Load(); n != int32(attempts*len(checks)) {
			t.Errorf("%d attempts: %d queries for %d checks, want %d", attempts, n, len(checks), attempts*len(checks))
		}
	}
	seen.Store(0)
	if _, err := SOASerial(context.Background(), addr, "example.com", 100*time.Millisecond); err == nil {
		t.Fatal("SOASerial of a silent server: no error")
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("SOASerial (one attempt) asked %d times", n)
	}
}

// An answer whose question differs from the query's only in the case of
// its name is the query's: a load balancer's cache may answer in the
// case it first saw.
func TestEngineAnswerInAnotherCase(t *testing.T) {
	z := parseZone(t, testZone)
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := zoneReply(z, req)
		m.Question[0].Name = strings.ToUpper(m.Question[0].Name)
		_ = w.WriteMsg(m)
	})
	rep := (&Prober{Timeout: 500 * time.Millisecond, Attempts: 1}).Probe(context.Background(), addr, []string{"udp"}, Expect(z, []string{"www"}))
	if !rep.OK {
		t.Fatalf("an answer in capitals was not taken: %v", rep.Err())
	}
}

// A kept TCP connection the server closed costs no attempt, but one that
// times out does, and so does a connection closed before it ever
// answered: neither says the server merely closed an idle connection.
// Each connection here answers its first query and ignores the rest, or
// closes on reading its first.
func TestEngineTCPFreeResendsOnlyForClosedIdleConnections(t *testing.T) {
	z := parseZone(t, testZone)
	checks := Expect(z, []string{"www"})
	p := &Prober{Timeout: 100 * time.Millisecond, Attempts: 1, Concurrency: 1}
	for _, c := range []struct {
		name  string
		close bool
	}{{"silent", false}, {"closed unanswered", true}} {
		var reads atomic.Int32
		addr, _ := serveTCP(t, func(conn net.Conn) {
			m, err := readTCPMsg(conn)
			if err != nil {
				return
			}
			reads.Add(1)
			if c.close {
				return
			}
			writeTCPMsg(conn, zoneReply(z, m))
			for {
				if _, err := readTCPMsg(conn); err != nil {
					return
				}
				reads.Add(1)
			}
		})
		rep := p.Probe(context.Background(), addr, []string{"tcp"}, checks)
		if rep.OK {
			t.Fatalf("%s: report OK", c.name)
		}
		if n := reads.Load(); n != int32(len(checks)) {
			t.Errorf("%s: server read %d queries for %d checks of one attempt", c.name, n, len(checks))
		}
	}
}

// The RD bit on the wire is the caller's: the recursion check asks with
// it set, and a server that recurses only when asked to is caught; the
// checks ask without it.
func TestEngineRecursionDesiredOnTheWire(t *testing.T) {
	z := parseZone(t, testZone)
	var rdChecks atomic.Int32
	srv := func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Question[0].Name != RecursionCheckName {
			if req.RecursionDesired {
				rdChecks.Add(1)
			}
			_ = w.WriteMsg(zoneReply(z, req))
			return
		}
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		if req.RecursionDesired {
			m.Rcode, m.RecursionAvailable = dns.RcodeNameError, true
		}
		_ = w.WriteMsg(m)
	}
	addr := serveUDP(t, srv)
	p := &Prober{Timeout: 500 * time.Millisecond, Attempts: 1}
	if res := p.checkRecursion(context.Background(), addr, "udp", false); res.Outcome != OutcomeFail {
		t.Errorf("a server recursing when asked to: %+v", res)
	}
	if rep := p.Probe(context.Background(), addr, []string{"udp"}, Expect(z, []string{"www"})); !rep.OK || rdChecks.Load() != 0 {
		t.Errorf("checks: %d asked with RD, report %v", rdChecks.Load(), rep.Err())
	}
}

// Servers that all truncate their UDP answers alike are each asked again
// over TCP and checked: a truncated answer, or the TCP answer in its
// place, is never the one the others' are compared with.
func TestEngineTruncatedAnswersFromManyServers(t *testing.T) {
	z := parseZone(t, testZone)
	a, b := startServer(t, z), startServer(t, z)
	a.setMode(modeTruncate)
	b.setMode(modeTruncate)
	checks := Expect(z, []string{"www", "txt"})
	job := Job{Role: "green", Targets: []Server{{Name: "a", Addr: a.addr}, {Name: "b", Addr: b.addr}}, Checks: checks}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	an := (&Prober{Timeout: time.Second, Attempts: 1}).Analyze(ctx, job, Settings{Thresholds: Thresholds{Rounds: 1}})
	if !an.OK || ctx.Err() != nil {
		t.Fatalf("truncated answers over UDP, full ones over TCP: %+v", an)
	}
	if n := a.tcpSeen.Load() + b.tcpSeen.Load(); n < 4*int32(len(checks)) {
		t.Errorf("%d TCP queries, want each check over TCP and again after truncation on each server", n)
	}
}

// Servers that all send the same undecodable answer each get an error,
// and the probe ends: the others' answers wait on the first one's
// outcome, which must come even though it could not be decoded.
func TestEngineSameBadAnswerFromManyServers(t *testing.T) {
	z := parseZone(t, testZone)
	bad := func(w dns.ResponseWriter, req *dns.Msg) {
		b, _ := zoneReply(z, req).Pack()
		_, _ = w.Write(b[:len(b)-3]) // the OPT record cut short
	}
	servers := []*asked{{addr: serveUDP(t, bad), protocols: []string{"udp"}}, {addr: serveUDP(t, bad), protocols: []string{"udp"}}}
	checks := Expect(z, []string{"www"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Prober{Timeout: time.Second, Attempts: 1}).askAll(context.Background(), make(chan struct{}, 8), checks, servers)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a probe of servers sending the same bad answer did not end")
	}
	for _, s := range servers {
		for _, o := range s.obs[0] {
			if o.answer.Outcome != OutcomeError || !strings.HasPrefix(o.answer.Detail, "bad answer") {
				t.Errorf("%s: %+v, want a bad answer error", s.addr, o.answer)
			}
		}
	}
}

// A closed engine adds no server: close walks the servers without the
// lock, and a reader that took a truncated answer as the engine closed
// added its TCP server to the map meanwhile, a concurrent map write that
// kills the worker.
func TestEngineClosedAddsNoServer(t *testing.T) {
	e := newEngine(time.Second, 1, 1232)
	e.close()
	if srv, err := e.server("tcp", "127.0.0.1:53"); err == nil || srv != nil || len(e.servers) != 0 {
		t.Errorf("server of a closed engine: %v, %v, %d servers; want none added, an error", srv, err, len(e.servers))
	}
}
