package probe

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// blackholeTCP listens on the TCP port of addr, a loopback UDP address,
// with an accept queue it fills and never accepts from: the kernel drops
// a further connection's SYN, so dialling it blocks, as where a firewall
// silently drops TCP/53.
func blackholeTCP(t *testing.T, addr string) error {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return nil // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("connections to a listener never accepting kept being made")
	return nil
}

// A server whose UDP answers are truncated and whose TCP port drops
// connections (a firewall letting only UDP/53 through) fails within its
// attempts' timeouts, over UDP with a reason naming TCP, and holds up no
// other server probed with it: nothing waits for a connection in turn,
// neither the caller nor the engine's readers and janitor.
func TestEngineBlackholedTCPHoldsUpNoOne(t *testing.T) {
	z := parseZone(t, testZone)
	good := startServer(t, z)
	var bad string
	for i := 0; bad == ""; i++ {
		addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
			m := zoneReply(z, req)
			m.Truncated, m.Answer = true, nil
			_ = w.WriteMsg(m)
		})
		if err := blackholeTCP(t, addr); err == nil {
			bad = addr
		} else if i == 20 {
			t.Fatalf("no free TCP port beside a UDP one: %v", err)
		}
	}
	// A window with room for every query, so that none waits for another.
	p := &Prober{Timeout: 250 * time.Millisecond, Attempts: 2, Concurrency: 64}
	checks := Expect(z, []string{"www", "txt", "ns1", "ns2", "nope"})
	servers := []*asked{{addr: good.addr}, {addr: bad}}
	// The bad server's queries wait for the same dial, each attempt about
	// one timeout; in turn they would take checks × attempts × timeouts.
	bound := 3 * time.Duration(p.Attempts) * p.Timeout
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	p.askAll(ctx, make(chan struct{}, p.concurrency()), checks, servers)
	if ctx.Err() != nil {
		t.Errorf("probing a server whose TCP port drops connections took over %s (%d checks, %d attempts of %s)", bound, len(checks), p.Attempts, p.Timeout)
	}
	var rep Report
	p.record(&rep, servers[0].obs, MaxResults)
	rep.finish()
	if !rep.OK {
		t.Errorf("the good server, probed beside the bad: %v", rep.Err())
	}
	for pi, proto := range servers[1].protocols {
		for _, o := range servers[1].obs[pi] {
			d := o.answer.Detail
			if o.answer.Outcome != OutcomeError || !strings.Contains(d, "TCP") || proto == "udp" && !strings.Contains(d, "truncated") {
				t.Errorf("bad server over %s: %+v, want an error naming TCP", proto, o.answer)
			}
		}
	}
}
