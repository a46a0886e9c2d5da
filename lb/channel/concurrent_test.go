package channel

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/lb/channel/sshdtest"
)

// Steps of one rollout that reach one load balancer at once (a flip of
// each of its listeners) share one connection: the first connects while
// the others wait for it, rather than each logging in and all but one
// connection being left open, unused, until the worker stops.
func TestFirstUsesAtOnceShareOneConnection(t *testing.T) {
	s := sshdtest.Start(t)
	p := newPool(t, s, sshdtest.KnownHosts(t, s.Addr, s.HostKey))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := p.Open(ctx, sshFleet, balancer)
			if err == nil {
				_, err = ch.Run(ctx, "true")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("%d SSH connections for %d first uses at once; want 1", got, n)
	}
}

// A kept connection that answered its idle probe counts as used again:
// the flips that follow are not each held up by a probe of their own.
func TestProbedConnectionCountsAsUsed(t *testing.T) {
	s, p, ch, ctx := openChannel(t)
	for _, e := range p.entries {
		e.used = time.Now().Add(-time.Minute)
	}
	if _, err := ch.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	for key, e := range p.entries {
		if idle := time.Since(e.used); idle > idleProbe {
			t.Errorf("%s: idle for %v after a call, so the next call probes it again", key, idle)
		}
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("%d connections, want the one that answered its probe", got)
	}
}

// A target the load balancer refuses (nothing listens there) is refused
// again on a new connection: Dial fails without giving up the kept one,
// which the flips of other targets share.
func TestRefusedDialKeepsTheConnection(t *testing.T) {
	s, _, ch, ctx := openChannel(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := ch.Dial(ctx, "tcp", closed); err == nil {
		t.Fatalf("Dial %s, where nothing listens, succeeded", closed)
	}
	if _, err := ch.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("%d connections after a refused Dial, want the one kept", got)
	}
}
