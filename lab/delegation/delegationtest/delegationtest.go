// Package delegationtest starts the delegation lab as the tests of glue
// changes use it: example.com delegated to ns1.example.com, and two name
// servers for it, "old" and "new", each answering www.example.com with
// its own address, so that a resolver's answer says which one it asked.
package delegationtest

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

// Domain is the delegated zone.
const Domain = "example.com"

// Start starts a delegation lab with opts' TTLs and allowed networks
// (Dir, Domain and NS are Start's), the old and new name servers at
// Host(FirstHost) and Host(FirstHost+1), and the glue at old. Everything
// stops when the test ends.
func Start(t testing.TB, opts delegation.Options) (l *delegation.Lab, oldAddr, newAddr netip.Addr) {
	t.Helper()
	dir := t.TempDir()
	// The name servers' addresses are in the lab's block, known only
	// once it has started: start with a placeholder, then set the glue.
	opts.Dir, opts.Domain, opts.NS = dir, Domain, Glue(netip.MustParseAddr("127.0.0.1"))
	l, err := delegation.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	oldAddr, newAddr = l.Host(delegation.FirstHost), l.Host(delegation.FirstHost+1)
	for i, a := range []netip.Addr{oldAddr, newAddr} {
		s, err := delegation.Serve(filepath.Join(dir, fmt.Sprintf("lb%d", i)), a, Domain, zone(a))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}
	if err := l.SetGlue(context.Background(), Domain, Glue(oldAddr)); err != nil {
		t.Fatal(err)
	}
	return l, oldAddr, newAddr
}

// zone is the domain as the name server at addr serves it: www is addr,
// with a 1 s TTL.
func zone(addr netip.Addr) string {
	return fmt.Sprintf(`$TTL 1
%[1]s SOA ns1.%[1]s hostmaster.%[1]s 1 60 60 600 1
%[1]s 5 NS ns1.%[1]s
ns1.%[1]s 5 A %[2]s
www.%[1]s A %[2]s
`, dns.Fqdn(Domain), addr)
}

// Glue is the delegation to ns1.example.com at a.
func Glue(a netip.Addr) []registrar.NameServer {
	return []registrar.NameServer{{Name: "ns1." + dns.Fqdn(Domain), Addrs: []netip.Addr{a}}}
}

// WWW asks resolver for www.example.com A, and returns the address it
// answers: the name server it asked.
func WWW(t testing.TB, resolver netip.AddrPort) netip.Addr {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www."+dns.Fqdn(Domain), dns.TypeA)
	// The timeout only bounds a hang: a loaded machine may keep a
	// recursion through the lab's servers waiting for seconds.
	r, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(m, resolver.String())
	if err != nil {
		t.Fatalf("resolver: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("resolver answers %s with %d records, want NOERROR and one A:\n%s", dns.RcodeToString[r.Rcode], len(r.Answer), r)
	}
	a, _ := netip.AddrFromSlice(r.Answer[0].(*dns.A).A.To4())
	return a
}
