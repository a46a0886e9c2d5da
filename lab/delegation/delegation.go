// Package delegation runs a real DNS delegation on loopback for the lab: a
// root server, a "registry" serving the parent zone with the domain's NS
// and glue records at short TTLs, and a recursive resolver with the lab's
// root hints. Clients of the resolver reach the domain's name servers (the
// load balancers) through the delegation, and the resolver caches NS and
// glue for their TTLs, as on the Internet.
//
// Glue records carry no port, so every server answers on port 53 of its own
// address in one 127.53.N.0/24 block that a lab holds (a lock file keeps
// two labs on one machine apart). The resolver refuses to send queries
// outside 127.0.0.0/8 and Options.Allow, so a glue record can never make
// the lab query anything on the Internet.
package delegation

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/registrar"
)

// Addresses within a lab's block.
const (
	rootHost     = 1
	parentHost   = 2
	resolverHost = 3
	// FirstHost is the first host number Host hands out.
	FirstHost = 10
)

// DefaultTTL is the parent's NS and glue TTL unless Options say otherwise:
// short, so that a test waits seconds for caches to expire, not days. It
// is no shorter than 10 s because BIND's resolver keeps a name server's
// addresses (its ADB) for at least 10 s whatever their TTL: with glue TTLs
// below that it still asks the old address until 10 s have passed.
const DefaultTTL = 10 * time.Second

// Options configure a delegation lab.
type Options struct {
	// Dir holds the servers' configs, zones and logs.
	Dir string
	// Domain is the delegated zone, e.g. "example.com"; its parent
	// ("com.") is the registry's zone. It needs at least two labels.
	Domain string
	// NS is the delegation the registry starts with.
	NS []registrar.NameServer
	// NSTTL and GlueTTL are the TTLs of the parent's NS and glue
	// records; zero means DefaultTTL.
	NSTTL, GlueTTL time.Duration
	// Allow are addresses, besides 127.0.0.0/8, that glue may point at
	// and the resolver may query (a machine lab's network).
	Allow []netip.Prefix
}

// Lab is a running delegation.
type Lab struct {
	opts            Options
	domain          string
	parent          string
	block           netip.Prefix
	lock            *os.File
	keyName, secret string

	root, registry, resolver *Server
	// hosts are the addresses AddHost put on lo.
	hosts []netip.Addr
}

// Start brings the root, the registry and the resolver up, the registry
// delegating opts.Domain to opts.NS.
func Start(opts Options) (*Lab, error) {
	domain := dns.CanonicalName(opts.Domain)
	labels := dns.SplitDomainName(domain)
	if len(labels) < 2 {
		return nil, fmt.Errorf("delegation: Domain %q needs a parent zone below the root, e.g. example.com", opts.Domain)
	}
	if opts.NSTTL <= 0 {
		opts.NSTTL = DefaultTTL
	}
	if opts.GlueTTL <= 0 {
		opts.GlueTTL = DefaultTTL
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	l := &Lab{opts: opts, domain: domain, parent: dns.Fqdn(strings.Join(labels[1:], "."))}
	if err := l.allowed(opts.NS); err != nil {
		return nil, err
	}
	if err := registrar.Validate(domain, opts.NS); err != nil {
		return nil, err
	}
	if err := l.takeBlock(); err != nil {
		return nil, err
	}
	if err := l.start(); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

// takeBlock picks a 127.53.N.0/24 that no other lab holds and whose
// server addresses are free on port 53.
func (l *Lab) takeBlock() error {
	for range 50 {
		n := 1 + rand.IntN(254)
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 53, byte(n), 0}), 24)
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("dnsroll-delegation-127.53.%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("delegation: %w", err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		l.block, l.lock = block, f
		if free53(l.Host(rootHost)) && free53(l.Host(parentHost)) && free53(l.Host(resolverHost)) {
			return nil
		}
		f.Close()
	}
	return errors.New("delegation: no 127.53.N.0/24 block free on port 53 (are other labs running? is 0.0.0.0:53 taken?)")
}

func (l *Lab) start() error {
	secret := make([]byte, 32)
	if _, err := crand.Read(secret); err != nil {
		return err
	}
	l.keyName, l.secret = "registry.", base64.StdEncoding.EncodeToString(secret)

	var err error
	rootDir := filepath.Join(l.opts.Dir, "root")
	if l.root, err = Serve(rootDir, l.Host(rootHost), ".", l.rootZone()); err != nil {
		return err
	}

	regDir := filepath.Join(l.opts.Dir, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return err
	}
	zoneFile := filepath.Join(regDir, "parent.db")
	_ = os.Remove(zoneFile + ".jnl") // a journal from an earlier lab in Dir
	if err := os.WriteFile(zoneFile, []byte(l.parentZone()), 0o644); err != nil {
		return err
	}
	zones := fmt.Sprintf(`key %q { algorithm hmac-sha256; secret %q; };
zone %q { type primary; file %q; allow-update { key %q; }; };
`, l.keyName, l.secret, l.parent, zoneFile, l.keyName)
	if l.registry, err = serveAuth(regDir, netip.AddrPortFrom(l.Host(parentHost), 53), zones, l.parent); err != nil {
		return err
	}

	resDir := filepath.Join(l.opts.Dir, "resolver")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		return err
	}
	hints := fmt.Sprintf(". 3600000 NS a.root-servers.lab.\na.root-servers.lab. 3600000 A %s\n", l.Host(rootHost))
	if err := os.WriteFile(filepath.Join(resDir, "root.hints"), []byte(hints), 0o644); err != nil {
		return err
	}
	l.resolver, err = serve(resDir, netip.AddrPortFrom(l.Host(resolverHost), 53), l.resolverConf(resDir), l.parent, true)
	return err
}

// resolverConf is a caching resolver that follows the lab's root hints and
// caches exactly for the TTLs it is given: no prefetch, no stale answers,
// no QNAME minimisation (its extra queries would blur which server was
// asked what), no DNSSEC (the lab's zones are unsigned).
func (l *Lab) resolverConf(dir string) string {
	var servers strings.Builder
	// Every address is bogus (never queried) but the lab's own.
	servers.WriteString("server 0.0.0.0/0 { bogus yes; };\nserver 127.0.0.0/8 { bogus no; };\n")
	for _, p := range l.opts.Allow {
		fmt.Fprintf(&servers, "server %s { bogus no; };\n", p.Masked())
	}
	return fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port 53 { %[2]s; };
	listen-on-v6 { none; };
	query-source address %[2]s;
	recursion yes;
	allow-recursion { 127.0.0.0/8; };
	allow-query-cache { 127.0.0.0/8; };
	dnssec-validation no;
	qname-minimization off;
	prefetch 0;
	stale-answer-enable no;
	stale-cache-enable no;
	servfail-ttl 0;
	lame-ttl 0;
	empty-zones-enable no;
	notify no;
};
%[3]scontrols { };
logging {
	channel local_log { file "%[1]s/named.log"; severity info; };
	category default { local_log; };
	category lame-servers { null; };
};
zone "." { type hint; file "root.hints"; };
`, dir, l.Host(resolverHost), servers.String())
}

func (l *Lab) rootZone() string {
	return fmt.Sprintf(`$TTL 300
. SOA a.root-servers.lab. hostmaster.lab. 1 300 60 86400 5
. NS a.root-servers.lab.
a.root-servers.lab. A %s
%s NS a.registry.%s
a.registry.%s A %s
`, l.Host(rootHost), l.parent, l.parent, l.parent, l.Host(parentHost))
}

func (l *Lab) parentZone() string {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 300\n%[1]s SOA a.registry.%[1]s hostmaster.registry.%[1]s 1 300 60 86400 5\n%[1]s NS a.registry.%[1]s\na.registry.%[1]s A %[2]s\n", l.parent, l.Host(parentHost))
	for _, rr := range l.delegationRRs(l.opts.NS) {
		b.WriteString(rr.String() + "\n")
	}
	return b.String()
}

// delegationRRs are the parent's records delegating the domain to ns.
func (l *Lab) delegationRRs(ns []registrar.NameServer) []dns.RR {
	nsTTL, glueTTL := uint32(l.opts.NSTTL/time.Second), uint32(l.opts.GlueTTL/time.Second)
	var rrs []dns.RR
	for _, n := range registrar.Canonical(ns) {
		rrs = append(rrs, &dns.NS{Hdr: dns.RR_Header{Name: l.domain, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: nsTTL}, Ns: n.Name})
		for _, a := range n.Addrs {
			if a.Is4() {
				rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: n.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: glueTTL}, A: a.AsSlice()})
			} else {
				rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: n.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: glueTTL}, AAAA: a.AsSlice()})
			}
		}
	}
	return rrs
}

// allowed refuses glue outside loopback (127.0.0.0/8, ::1) and
// Options.Allow. (The resolver runs IPv4-only, so ::1 glue is served but
// never queried.)
func (l *Lab) allowed(ns []registrar.NameServer) error {
	loop := netip.MustParsePrefix("127.0.0.0/8")
	for _, n := range ns {
		for _, a := range n.Addrs {
			ok := loop.Contains(a) || a == netip.IPv6Loopback()
			for _, p := range l.opts.Allow {
				ok = ok || p.Contains(a)
			}
			if !ok {
				return fmt.Errorf("delegation: glue %s of %s is outside the lab (127.0.0.0/8, ::1 and Options.Allow); the lab never routes DNS elsewhere", a, n.Name)
			}
		}
	}
	return nil
}

// SetGlue delegates domain to ns at the registry, by a TSIG-signed dynamic
// update replacing the NS records and the glue of old and new names, and
// returns once the registry's referral shows ns: from then on, resolvers
// that ask the parent get the new glue. It is what a registrar simulator
// calls when a registration's name servers change.
func (l *Lab) SetGlue(ctx context.Context, domain string, ns []registrar.NameServer) error {
	if dns.CanonicalName(domain) != l.domain {
		return fmt.Errorf("delegation: this lab delegates %s, not %s", l.domain, dns.CanonicalName(domain))
	}
	if err := registrar.Validate(domain, ns); err != nil {
		return err
	}
	if err := l.allowed(ns); err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(l.parent)
	m.RemoveRRset([]dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: l.domain, Rrtype: dns.TypeNS}}})
	names := map[string]bool{}
	if old, err := registrar.Ask(ctx, l.registry.AddrPort(), l.domain); err == nil {
		for _, n := range old.NS {
			names[n.Name] = true
		}
	}
	for _, n := range registrar.Canonical(ns) {
		names[n.Name] = true
	}
	for name := range names {
		if registrar.InDomain(name, l.domain) {
			m.RemoveRRset([]dns.RR{
				&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA}},
				&dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA}},
			})
		}
	}
	m.Insert(l.delegationRRs(ns))
	m.SetTsig(l.keyName, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{TsigSecret: map[string]string{l.keyName: l.secret}, Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, l.registry.AddrPort().String())
	if err != nil {
		return fmt.Errorf("delegation: update %s at the registry: %w", l.domain, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("delegation: the registry refused the update of %s: %s", l.domain, dns.RcodeToString[r.Rcode])
	}
	ref, err := registrar.Ask(ctx, l.registry.AddrPort(), l.domain)
	if err != nil {
		return err
	}
	if !registrar.Equal(ref.NS, ns) {
		return fmt.Errorf("delegation: after the update the registry still refers %s to %v", l.domain, ref.NS)
	}
	return nil
}

// Host is address n (FirstHost to 254) of the lab's block, for the
// domain's name servers (load balancers) that tests start with Serve.
func (l *Lab) Host(n int) netip.Addr {
	b := l.block.Addr().As4()
	b[3] = byte(n)
	return netip.AddrFrom4(b)
}

// AddHost puts Host(n) on lo until Stop, for a name server that the lab
// does not start (a real load balancer listening on it, port 53).
func (l *Lab) AddHost(n int) (netip.Addr, error) {
	a := l.Host(n)
	added, err := addLoopback(a)
	if added {
		l.hosts = append(l.hosts, a)
	}
	return a, err
}

// Domain is the delegated zone, Parent the registry's zone (FQDNs).
func (l *Lab) Domain() string { return l.domain }
func (l *Lab) Parent() string { return l.parent }

// ParentServers are the parent zone's servers, for registrar.Check.
func (l *Lab) ParentServers() []netip.AddrPort {
	return []netip.AddrPort{l.registry.AddrPort()}
}

// Resolver is where the lab's recursive resolver answers clients.
func (l *Lab) Resolver() netip.AddrPort { return l.resolver.AddrPort() }

// Root is the lab's root server.
func (l *Lab) Root() netip.AddrPort { return l.root.AddrPort() }

// Stop stops the servers the lab started and frees its block.
func (l *Lab) Stop() {
	for _, s := range []*Server{l.resolver, l.registry, l.root} {
		s.Stop()
	}
	for _, a := range l.hosts {
		removeLoopback(a)
	}
	if l.lock != nil {
		l.lock.Close()
	}
}
