package route53sim_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/lab/route53sim"
	"github.com/dnsroll/dnsroll/registrar"
)

// lbZone is example.com as served behind a load balancer at addr: www is
// addr itself, with a 1 s TTL, so the resolver's answer says which load
// balancer it asked.
func lbZone(addr netip.Addr) string {
	return fmt.Sprintf(`$TTL 1
example.com. SOA ns1.example.com. hostmaster.example.com. 1 60 60 600 1
example.com. 10 NS ns1.example.com.
ns1.example.com. 10 A %[1]s
www.example.com. A %[1]s
`, addr)
}

func askWWW(t *testing.T, resolver netip.AddrPort) netip.Addr {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, resolver.String())
	if err != nil {
		t.Fatalf("resolver: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("resolver answers %s with %d records, want NOERROR and one A", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, _ := netip.AddrFromSlice(r.Answer[0].(*dns.A).A.To4())
	return a
}

// TestRoute53GlueChangeMovesResolverAfterTTL: the route53domains driver,
// through the unmodified SDK client and the simulator, changes the glue
// of a real lab delegation. The parent refers to the new load balancer as
// soon as SetGlue returns; the lab resolver keeps asking the old one
// until the delegation it cached has expired, then asks the new one.
func TestRoute53GlueChangeMovesResolverAfterTTL(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	placeholder := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}
	l, err := delegation.Start(delegation.Options{Dir: filepath.Join(dir, "dns"), Domain: "example.com", NS: placeholder})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	oldLB, newLB := l.Host(delegation.FirstHost), l.Host(delegation.FirstHost+1)
	for i, a := range []netip.Addr{oldLB, newLB} {
		s, err := delegation.Serve(filepath.Join(dir, fmt.Sprintf("lb%d", i)), a, "example.com", lbZone(a))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}
	oldNS := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{oldLB}}}
	newNS := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{newLB}}}
	if err := l.SetGlue(ctx, "example.com", oldNS); err != nil {
		t.Fatal(err)
	}

	sim := route53sim.New(route53sim.Options{OnUpdate: l.SetGlue})
	sim.AddDomain("example.com", oldNS)
	_, drv := start(t, sim)

	if got := askWWW(t, l.Resolver()); got != oldLB {
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
		got := askWWW(t, l.Resolver())
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
	if moved.Sub(cached) < ttl-500*time.Millisecond {
		t.Fatalf("the resolver moved %v after caching a delegation with TTL %v: it did not honour the cache", moved.Sub(cached), ttl)
	}
	t.Logf("parent changed at once; resolver moved %v after the change, %v after caching (TTL %v)",
		moved.Sub(set).Round(10*time.Millisecond), moved.Sub(cached).Round(10*time.Millisecond), ttl)
}
