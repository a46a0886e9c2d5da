package registrar

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Referral is what a parent zone's server answers, without recursion, when
// asked for a delegated domain's NS: the name servers with their glue, and
// how long resolvers may cache each. A replacement verifies the new glue
// with it and waits out its TTLs before draining the old load balancers.
type Referral struct {
	Domain string
	// Servers are the parent servers that gave this referral.
	Servers []netip.AddrPort
	NS      []NameServer
	// NSTTL is the longest TTL of the NS records, GlueTTL the longest of
	// the glue A/AAAA records (0 without glue).
	NSTTL, GlueTTL time.Duration
}

// MaxTTL is the longer of NSTTL and GlueTTL: how long a resolver may keep
// using the delegation it cached before the parent changed.
func (r Referral) MaxTTL() time.Duration { return max(r.NSTTL, r.GlueTTL) }

// askTimeout bounds one query to one parent server.
const askTimeout = 2 * time.Second

// Ask asks one parent server for domain's NS, without recursion, and
// returns its referral. An answer that is not a referral (the server is
// authoritative for domain itself, or knows nothing of it) is an error.
func Ask(ctx context.Context, server netip.AddrPort, domain string) (Referral, error) {
	domain = Fqdn(domain)
	m := new(dns.Msg)
	m.SetQuestion(domain, dns.TypeNS)
	m.RecursionDesired = false
	m.SetEdns0(4096, false)
	c := &dns.Client{Timeout: askTimeout}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server.String())
	}
	if err != nil {
		return Referral{}, fmt.Errorf("registrar: ask parent server %s for %s NS: %w", server, domain, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return Referral{}, fmt.Errorf("registrar: parent server %s answers %s for %s NS; is it a server of %s's parent zone?", server, dns.RcodeToString[r.Rcode], domain, domain)
	}
	if r.Authoritative || len(r.Answer) > 0 {
		return Referral{}, fmt.Errorf("registrar: %s answers %s NS authoritatively instead of referring: it serves the domain itself, not its parent zone", server, domain)
	}
	ref := Referral{Domain: domain, Servers: []netip.AddrPort{server}}
	var names []string
	for _, rr := range r.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok || !strings.EqualFold(ns.Hdr.Name, domain) {
			continue
		}
		ref.NSTTL = max(ref.NSTTL, ttl(rr))
		names = append(names, Fqdn(ns.Ns))
	}
	if len(names) == 0 {
		return Referral{}, fmt.Errorf("registrar: parent server %s has no delegation for %s (no NS in its referral)", server, domain)
	}
	for _, name := range names {
		ns := NameServer{Name: name}
		for _, rr := range r.Extra {
			if !strings.EqualFold(rr.Header().Name, name) {
				continue
			}
			a, ok := AddrOf(rr)
			if !ok {
				continue
			}
			ns.Addrs = append(ns.Addrs, a)
			ref.GlueTTL = max(ref.GlueTTL, ttl(rr))
		}
		ref.NS = append(ref.NS, ns)
	}
	ref.NS = Canonical(ref.NS)
	return ref, nil
}

func ttl(rr dns.RR) time.Duration { return time.Duration(rr.Header().Ttl) * time.Second }

// Check asks every one of the parent's servers and returns their referral
// when all give the same name servers and glue, with the longest TTLs any
// gave. Servers that disagree (a registry part way through publishing) are
// a *DisagreeError.
func Check(ctx context.Context, servers []netip.AddrPort, domain string) (Referral, error) {
	if len(servers) == 0 {
		return Referral{}, fmt.Errorf("registrar: no parent servers to check %s at", Fqdn(domain))
	}
	var out Referral
	var all []Referral
	for i, s := range servers {
		ref, err := Ask(ctx, s, domain)
		if err != nil {
			return Referral{}, err
		}
		all = append(all, ref)
		if i == 0 {
			out = ref
			continue
		}
		out.Servers = append(out.Servers, s)
		out.NSTTL = max(out.NSTTL, ref.NSTTL)
		out.GlueTTL = max(out.GlueTTL, ref.GlueTTL)
	}
	for _, ref := range all[1:] {
		if !Equal(ref.NS, all[0].NS) {
			return Referral{}, &DisagreeError{Domain: Fqdn(domain), Referrals: all}
		}
	}
	return out, nil
}

// DisagreeError says which parent server refers where.
type DisagreeError struct {
	Domain    string
	Referrals []Referral
}

func (e *DisagreeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registrar: the parent's servers disagree on %s's delegation (still publishing? check again shortly):", e.Domain)
	for _, r := range e.Referrals {
		ns := make([]string, len(r.NS))
		for i, n := range r.NS {
			ns[i] = n.String()
		}
		fmt.Fprintf(&b, " %s refers to %s;", r.Servers[0], strings.Join(ns, ", "))
	}
	return strings.TrimSuffix(b.String(), ";")
}

// AddrOf is the address an A or AAAA record holds; ok is false for other
// records.
func AddrOf(rr dns.RR) (a netip.Addr, ok bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok = netip.AddrFromSlice(rr.A.To4())
	case *dns.AAAA:
		a, ok = netip.AddrFromSlice(rr.AAAA)
	}
	return a, ok
}
