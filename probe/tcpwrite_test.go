package probe

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A server that accepts TCP connections and stops reading them (its
// receive window full) fails the queries written to it within a timeout:
// a write to it must not block whoever writes (the caller, a UDP reader
// asking a truncated answer again, the janitor) for ever.
func TestEngineTCPPeerNotReading(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
			conns = append(conns, c) // never read
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	e := newEngine(200*time.Millisecond, 1, 1232)
	defer e.close()
	// Queries of about 250 bytes, enough of them to fill the server's
	// receive window and the engine's send buffers many times over.
	const n = 40000
	label := strings.Repeat("x", 60)
	var finished, failed atomic.Int32
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for i := range n {
			name := strconv.Itoa(i) + "." + label + "." + label + "." + label + ".example."
			e.ask(context.Background(), l.Addr().String(), "tcp", name, dns.TypeTXT, false, nil, func(_ reply, err error) {
				if err != nil {
					failed.Add(1)
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
}
