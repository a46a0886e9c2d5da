package probe

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// listenNotReading listens for TCP on addr with a small receive buffer,
// accepting connections and never reading them, until the test ends.
func listenNotReading(t *testing.T, addr string) (net.Listener, error) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	return l, nil
}

// A server that accepts TCP connections and stops reading them (its
// receive window full) fails the queries written to it within a timeout:
// a write to it must not block whoever writes (the caller, a UDP reader
// asking a truncated answer again, the janitor) for ever.
func TestEngineTCPPeerNotReading(t *testing.T) {
	l, err := listenNotReading(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(200*time.Millisecond, 1, 1232)
	defer e.close()
	// Queries of about 250 bytes, enough of them to fill the server's
	// receive window and the engine's send buffers many times over.
	const n = 40000
	label := strings.Repeat("x", 60)
	var finished, failed atomic.Int32
	var other atomic.Value // an error that is no timeout
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for i := range n {
			name := strconv.Itoa(i) + "." + label + "." + label + "." + label + ".example."
			e.ask(context.Background(), l.Addr().String(), "tcp", name, dns.TypeTXT, false, nil, func(_ reply, err error) {
				if err != nil {
					failed.Add(1)
				}
				if err != nil && !isTimeout(err) {
					other.Store(err)
				}
				finished.Add(1)
			})
		}
	}()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatalf("writing to a server not reading blocked: %d of %d queries finished", finished.Load(), n)
	}
	for deadline := time.Now().Add(10 * time.Second); finished.Load() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d queries finished", finished.Load(), n)
		}
	}
	if failed.Load() != n {
		t.Errorf("%d of %d queries to a server not reading failed", failed.Load(), n)
	}
	// Killed for a write that timed out, not for the read that the kill
	// itself ended: the timeout costs an attempt, and says what happened.
	if err := other.Load(); err != nil {
		t.Errorf("a query to a server not reading failed with %v, want a timeout", err)
	}
}

// fillTCP waits for e's TCP connections to addr, a server not reading
// them, and fills them: a further write to them waits.
func fillTCP(t *testing.T, e *engine, addr string) {
	t.Helper()
	var conns []net.Conn
	for deadline := time.Now().Add(5 * time.Second); len(conns) < tcpConns; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d TCP connections to %s, want %d", len(conns), addr, tcpConns)
		}
		e.mu.Lock()
		srv := e.servers["tcp/"+addr]
		e.mu.Unlock()
		if srv != nil {
			srv.mu.Lock()
			conns = conns[:0]
			for _, s := range srv.socks {
				conns = append(conns, s.conn)
			}
			srv.mu.Unlock()
		}
	}
	for _, conn := range conns {
		for {
			_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := conn.Write(make([]byte, 64<<10)); errors.Is(err, os.ErrDeadlineExceeded) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		// Whatever room the kernel makes later is taken too.
		stop := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Millisecond))
				if _, err := conn.Write(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					return
				}
			}
		}()
		t.Cleanup(func() { close(stop); <-stopped })
	}
}

// A truncated UDP answer is asked again over TCP on no UDP reader: where
// the server's TCP connection is full (it stopped reading), that write
// waits, and the other UDP answers of the socket would wait unread with it
// until their queries timed out. Here the connections are filled, answers
// to other queries come 50 ms late, and a truncated answer comes meanwhile.
func TestEngineTruncatedAnswerHoldsUpNoUDPAnswer(t *testing.T) {
	z := parseZone(t, testZone)
	var addr string
	for i := 0; addr == ""; i++ {
		a := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
			m := zoneReply(z, req)
			if strings.HasPrefix(req.Question[0].Name, "big") {
				m.Truncated, m.Answer = true, nil
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			_ = w.WriteMsg(m)
		})
		if _, err := listenNotReading(t, a); err == nil {
			addr = a
		} else if i == 20 {
			t.Fatalf("no free TCP port beside a UDP one: %v", err)
		}
	}
	// Any timeout fails them held up (the reader is held for one); a long
	// one leaves a loaded machine room to read the answers 50 ms late.
	const timeout = time.Second
	e := newEngine(timeout, 1, 1232)
	defer e.close()
	errs := make(chan error, 100)
	done := func(_ reply, err error) { errs <- err }
	// The first truncated answer opens the TCP connections.
	e.ask(context.Background(), addr, "udp", "big1.example.com.", dns.TypeA, false, nil, done)
	fillTCP(t, e, addr)
	<-errs
	const oks = 20
	for range oks {
		e.ask(context.Background(), addr, "udp", "www.example.com.", dns.TypeA, false, nil, done)
	}
	time.Sleep(30 * time.Millisecond)
	e.ask(context.Background(), addr, "udp", "big2.example.com.", dns.TypeA, false, nil, done)
	failed := 0
	for range oks + 1 {
		if err := <-errs; err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d of %d queries failed; want only the one asked again over a full TCP connection", failed, oks+1)
	}
}

// The janitor asks a late TCP query again on no goroutine of its own:
// where the server's connections are full, that write waits, and with it
// every other server's timeouts and resends. Here a UDP query to a silent
// server ends (its context does) while a late TCP query is being written
// again to a full connection: it must end before that write gives up, on
// the ordering of the two, not on a wall-clock bound a loaded machine
// could overrun.
func TestEngineLateTCPQueryHoldsUpNoTimeout(t *testing.T) {
	l, err := listenNotReading(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	silent := serveUDP(t, func(dns.ResponseWriter, *dns.Msg) {})
	// How long the write to a full connection waits: the janitor has all
	// of it to end the UDP query.
	const timeout = 2 * time.Second
	for try := 1; ; try++ {
		e := newEngine(timeout, 2, 1232)
		defer e.close()
		tcpDone := make(chan error, 1)
		asked := time.Now()
		e.ask(context.Background(), addr, "tcp", "www.example.com.", dns.TypeA, false, nil, func(_ reply, err error) { tcpDone <- err })
		fillTCP(t, e, addr)
		if time.Since(asked) >= timeout {
			// The query may have been asked again before the connections
			// were full: try again on a machine less loaded.
			if try == 3 {
				t.Fatalf("filling the TCP connections took over %s %d times", timeout, try)
			}
			e.close()
			continue
		}
		for !tcpWriting(e, addr) {
			select {
			case err := <-tcpDone:
				t.Fatalf("the late TCP query ended (%v) without being written again to a full connection", err)
			case <-time.After(time.Millisecond):
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer context.AfterFunc(ctx, e.kick)()
		udpDone := make(chan error, 1)
		e.ask(ctx, silent, "udp", "www.example.com.", dns.TypeA, false, nil, func(_ reply, err error) { udpDone <- err })
		cancel()
		select {
		case err := <-udpDone:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("the UDP query failed with %v, want its context's end", err)
			}
		case err := <-tcpDone:
			t.Errorf("the late TCP query failed (%v) before a UDP query whose context ended: its write to a full connection held up the janitor", err)
		}
		return
	}
}

// tcpWriting reports whether e is writing to one of its TCP connections to
// addr: fillTCP writes to them without their lock.
func tcpWriting(e *engine, addr string) bool {
	e.mu.Lock()
	srv := e.servers["tcp/"+addr]
	e.mu.Unlock()
	srv.mu.Lock()
	socks := append([]*sock(nil), srv.socks...)
	srv.mu.Unlock()
	for _, s := range socks {
		if !s.wmu.TryLock() {
			return true
		}
		s.wmu.Unlock()
	}
	return false
}
