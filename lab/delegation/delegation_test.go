package delegation_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/lab/delegation/delegationtest"
	"github.com/dnsroll/dnsroll/registrar"
)

// startLab starts the test delegation with the parent's NS and glue TTLs.
func startLab(t *testing.T, nsTTL, glueTTL time.Duration) (l *delegation.Lab, oldAddr, newAddr netip.Addr) {
	t.Helper()
	return delegationtest.Start(t, delegation.Options{NSTTL: nsTTL, GlueTTL: glueTTL})
}

// TestGlueChangeReachesResolverAfterTTL: the resolver follows the
// delegation to the old name server, the registry refers to the new one
// as soon as SetGlue returns, and the resolver keeps the old one for the
// cached TTL, then moves.
func TestGlueChangeReachesResolverAfterTTL(t *testing.T) {
	const ttl = delegation.DefaultTTL
	l, oldAddr, newAddr := startLab(t, ttl, ttl)
	ctx := context.Background()

	// The resolver cached the delegation between asked and cached: the
	// earliest it may move is asked+TTL, the latest cached+TTL. (A late
	// reply, on a loaded machine, widens the span, never the check.)
	asked := time.Now()
	if got := delegationtest.WWW(t, l.Resolver()); got != oldAddr {
		t.Fatalf("resolver answers www from %s, want the old name server %s", got, oldAddr)
	}
	cached := time.Now()

	if err := l.SetGlue(ctx, "example.com", delegationtest.Glue(newAddr)); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	ref, err := registrar.Check(ctx, l.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !registrar.Equal(ref.NS, delegationtest.Glue(newAddr)) {
		t.Fatalf("right after SetGlue the parent refers to %v, want %v", ref.NS, delegationtest.Glue(newAddr))
	}

	var moved time.Time
	for time.Since(set) < ttl+4*time.Second && (moved.IsZero() || time.Since(moved) < time.Second) {
		sent := time.Now() // the answer is the resolver's between sent and now
		got := delegationtest.WWW(t, l.Resolver())
		now := time.Now()
		switch {
		case got == newAddr && moved.IsZero():
			moved = now
		case got == oldAddr && !moved.IsZero():
			t.Fatalf("the resolver went back to the old name server at %v after moving at %v", now.Sub(set), moved.Sub(set))
		case got == oldAddr && sent.Sub(cached) > ttl+3*time.Second:
			t.Fatalf("the resolver still uses the old glue %v after it was cached, with a TTL of %v", sent.Sub(cached), ttl)
		}
		if got == newAddr && now.Sub(asked) < ttl-500*time.Millisecond {
			t.Fatalf("the resolver moved %v after caching the delegation, before its TTL of %v", now.Sub(asked), ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if moved.IsZero() {
		t.Fatal("the resolver never moved to the new name server")
	}
	t.Logf("resolver moved %v after SetGlue, %v after caching (TTL %v; cached within %v)", moved.Sub(set).Round(10*time.Millisecond), moved.Sub(cached).Round(10*time.Millisecond), ttl, cached.Sub(asked).Round(time.Millisecond))
}

// TestGlueOutsideLabRefused: glue is the one thing that steers the lab's
// resolver, and it must never point it off this machine.
func TestGlueOutsideLabRefused(t *testing.T) {
	l, _, _ := startLab(t, 0, 0)
	err := l.SetGlue(context.Background(), "example.com", delegationtest.Glue(netip.MustParseAddr("192.0.2.1")))
	if err == nil {
		t.Fatal("SetGlue accepted glue 192.0.2.1, outside the lab")
	}
	ref, err := registrar.Check(context.Background(), l.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if ref.NS[0].Addrs[0] == netip.MustParseAddr("192.0.2.1") {
		t.Fatal("the registry serves glue outside the lab")
	}
}
