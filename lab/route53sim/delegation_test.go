package route53sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/lab/delegation/delegationtest"
	"github.com/dnsroll/dnsroll/lab/route53sim"
	"github.com/dnsroll/dnsroll/registrar"
)

// TestRoute53GlueChangeMovesResolverAfterTTL: the route53domains driver,
// through the unmodified SDK client and the simulator, changes the glue
// of a real lab delegation. The parent refers to the new load balancer as
// soon as SetGlue returns; the lab resolver keeps asking the old one
// until the delegation it cached has expired, then asks the new one.
func TestRoute53GlueChangeMovesResolverAfterTTL(t *testing.T) {
	ctx := context.Background()
	l, oldLB, newLB := delegationtest.Start(t, delegation.Options{})
	oldNS, newNS := delegationtest.Glue(oldLB), delegationtest.Glue(newLB)

	sim := route53sim.New(route53sim.Options{OnUpdate: l.SetGlue})
	sim.AddDomain("example.com", oldNS)
	_, drv := start(t, sim)

	// The resolver cached the delegation between asked and cached: the
	// earliest it may move is asked+TTL. (A late reply, on a loaded
	// machine, moves cached, not that bound.)
	asked := time.Now()
	if got := delegationtest.WWW(t, l.Resolver()); got != oldLB {
		t.Fatalf("through the delegation the resolver reaches %s, want the old load balancer %s", got, oldLB)
	}
	cached := time.Now()
	time.Sleep(3 * time.Second) // so that "TTL after caching" and "TTL after the change" differ

	if err := drv.SetGlue(ctx, "example.com", newNS); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	ref, err := registrar.Check(ctx, l.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !registrar.Equal(ref.NS, newNS) {
		t.Fatalf("right after SetGlue the parent refers to %v, want %v", ref.NS, newNS)
	}
	ttl := ref.MaxTTL()
	if ttl != delegation.DefaultTTL {
		t.Fatalf("the parent's referral TTL is %v, want the lab's %v", ttl, delegation.DefaultTTL)
	}

	var moved time.Time
	for moved.IsZero() && time.Since(cached) < ttl+4*time.Second {
		got := delegationtest.WWW(t, l.Resolver())
		if got == newLB {
			moved = time.Now()
			break
		}
		if got != oldLB {
			t.Fatalf("the resolver reached %s, neither load balancer", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if moved.IsZero() {
		t.Fatalf("the resolver still asks the old load balancer %v after caching a delegation with TTL %v", time.Since(cached), ttl)
	}
	if moved.Sub(asked) < ttl-500*time.Millisecond {
		t.Fatalf("the resolver moved %v after caching a delegation with TTL %v: it did not honour the cache", moved.Sub(asked), ttl)
	}
	t.Logf("parent changed at once; resolver moved %v after the change, %v after caching (TTL %v; cached within %v)",
		moved.Sub(set).Round(10*time.Millisecond), moved.Sub(cached).Round(10*time.Millisecond), ttl, cached.Sub(asked).Round(time.Millisecond))
}
