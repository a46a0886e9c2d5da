package delegation_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
)

// childZone is the domain as a load balancer at addr serves it: www is
// the address of the server that answered, with a 1 s TTL, so a client
// of the resolver sees which name server the resolver asked.
func childZone(domain string, addr netip.Addr) string {
	return fmt.Sprintf(`$TTL 1
%[1]s SOA ns1.%[1]s hostmaster.%[1]s 1 60 60 600 1
%[1]s 5 NS ns1.%[1]s
ns1.%[1]s 5 A %[2]s
www.%[1]s A %[2]s
`, dns.Fqdn(domain), addr)
}

// startLab starts a delegation of example.com to ns1.example.com at
// lab.Host(FirstHost) ("old"), with a second server at FirstHost+1
// ("new") serving the same zone but answering www with its own address.
func startLab(t *testing.T, nsTTL, glueTTL time.Duration) (l *delegation.Lab, oldAddr, newAddr netip.Addr) {
	t.Helper()
	dir := t.TempDir()
	// The name servers' addresses are in the lab's block, known only
	// once it has started: start with a placeholder, then set the glue.
	l, err := delegation.Start(delegation.Options{
		Dir: dir, Domain: "example.com", NSTTL: nsTTL, GlueTTL: glueTTL,
		NS: []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	oldAddr, newAddr = l.Host(delegation.FirstHost), l.Host(delegation.FirstHost+1)
	for i, a := range []netip.Addr{oldAddr, newAddr} {
		s, err := delegation.Serve(filepath.Join(dir, fmt.Sprintf("lb%d", i)), a, "example.com", childZone("example.com", a))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}
	if err := l.SetGlue(context.Background(), "example.com", glue(oldAddr)); err != nil {
		t.Fatal(err)
	}
	return l, oldAddr, newAddr
}

func glue(a netip.Addr) []registrar.NameServer {
	return []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{a}}}
}

// resolve asks the lab's resolver for www.example.com A.
func resolve(t *testing.T, l *delegation.Lab) netip.Addr {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, l.Resolver().String())
	if err != nil {
		t.Fatalf("resolver: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("resolver answers %s with %d records, want NOERROR and one A:\n%s", dns.RcodeToString[r.Rcode], len(r.Answer), r)
	}
	a, _ := netip.AddrFromSlice(r.Answer[0].(*dns.A).A.To4())
	return a
}

// TestGlueChangeReachesResolverAfterTTL: the resolver follows the
// delegation to the old name server, the registry refers to the new one
// as soon as SetGlue returns, and the resolver keeps the old one for the
// cached TTL, then moves.
func TestGlueChangeReachesResolverAfterTTL(t *testing.T) {
	const ttl = delegation.DefaultTTL
	l, oldAddr, newAddr := startLab(t, ttl, ttl)
	ctx := context.Background()

	if got := resolve(t, l); got != oldAddr {
		t.Fatalf("resolver answers www from %s, want the old name server %s", got, oldAddr)
	}
	cached := time.Now() // the delegation is in the resolver's cache since at most now

	if err := l.SetGlue(ctx, "example.com", glue(newAddr)); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	ref, err := registrar.Check(ctx, l.ParentServers(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !registrar.Equal(ref.NS, glue(newAddr)) {
		t.Fatalf("right after SetGlue the parent refers to %v, want %v", ref.NS, glue(newAddr))
	}

	var moved time.Time
	for time.Since(set) < ttl+4*time.Second && (moved.IsZero() || time.Since(moved) < time.Second) {
		got := resolve(t, l)
		now := time.Now()
		switch {
		case got == newAddr && moved.IsZero():
			moved = now
		case got == oldAddr && !moved.IsZero():
			t.Fatalf("the resolver went back to the old name server at %v after moving at %v", now.Sub(set), moved.Sub(set))
		case got == oldAddr && now.Sub(cached) > ttl+3*time.Second:
			t.Fatalf("the resolver still uses the old glue %v after it was cached, with a TTL of %v", now.Sub(cached), ttl)
		}
		if got == newAddr && now.Sub(cached) < ttl-500*time.Millisecond {
			t.Fatalf("the resolver moved %v after caching the delegation, before its TTL of %v", now.Sub(cached), ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if moved.IsZero() {
		t.Fatal("the resolver never moved to the new name server")
	}
	t.Logf("resolver moved %v after SetGlue, %v after caching (TTL %v)", moved.Sub(set).Round(10*time.Millisecond), moved.Sub(cached).Round(10*time.Millisecond), ttl)
}

// TestGlueOutsideLabRefused: glue is the one thing that steers the lab's
// resolver, and it must never point it off this machine.
func TestGlueOutsideLabRefused(t *testing.T) {
	l, _, _ := startLab(t, 0, 0)
	err := l.SetGlue(context.Background(), "example.com", glue(netip.MustParseAddr("192.0.2.1")))
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
