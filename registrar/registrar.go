// Package registrar is what a load balancer replacement needs from a
// domain's registrar: read the glue that the parent zone serves for the
// domain, and ask for new glue. Only those two operations, so that a driver
// for another registrar is a small file, and a registrar without an API
// (manual) fits as well as one with.
package registrar

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// NameServer is one name server of a delegation: its name and, when the
// name is inside the delegated domain (ns1.example.com for example.com),
// the glue addresses the parent serves for it. Glue carries no port: each
// load balancer needs its own address, answering on port 53.
type NameServer struct {
	Name  string
	Addrs []netip.Addr
}

// String is "ns1.example.com. (192.0.2.1, 2001:db8::1)" for messages.
func (ns NameServer) String() string {
	if len(ns.Addrs) == 0 {
		return Fqdn(ns.Name)
	}
	a := make([]string, len(ns.Addrs))
	for i, addr := range ns.Addrs {
		a[i] = addr.String()
	}
	return Fqdn(ns.Name) + " (" + strings.Join(a, ", ") + ")"
}

// Registrar changes and reads a domain's delegation at its parent.
//
// SetGlue may only request the change (registrars apply it
// asynchronously, and manual returns *ActionRequired): callers verify at
// the parent with Check, never trust SetGlue's return alone.
type Registrar interface {
	// Glue returns the name servers, with glue, that the parent
	// currently delegates domain to.
	Glue(ctx context.Context, domain string) ([]NameServer, error)
	// SetGlue asks that domain be delegated to ns, each in-domain name
	// with its glue addresses. Asking twice for the same is harmless.
	SetGlue(ctx context.Context, domain string, ns []NameServer) error
}

// ActionRequired is SetGlue's answer from a registrar that a person must
// operate (manual): the exact change to make at the registrar. The
// workflow shows Instructions and waits for the operator's glue-updated
// signal, then checks the parent itself.
type ActionRequired struct {
	Domain string
	// Old is what the parent delegates to now (empty when it could not
	// be read); New is what it must delegate to.
	Old, New []NameServer
}

func (e *ActionRequired) Error() string {
	return "registrar: operator action required: " + e.Instructions()
}

// Instructions says, in one paragraph per name server, which glue records
// to set at the registrar.
func (e *ActionRequired) Instructions() string {
	var b strings.Builder
	fmt.Fprintf(&b, "at the registrar of %s, set the name servers (glue records) to:", Fqdn(e.Domain))
	for _, ns := range e.New {
		fmt.Fprintf(&b, "\n  %s", ns.Name)
		if len(ns.Addrs) > 0 {
			fmt.Fprintf(&b, " -> %s", joinAddrs(ns.Addrs))
		}
		if old := find(e.Old, ns.Name); old == nil {
			b.WriteString(" (new name server)")
		} else if len(old.Addrs) > 0 {
			fmt.Fprintf(&b, " (was %s)", joinAddrs(old.Addrs))
		}
	}
	for _, old := range e.Old {
		if find(e.New, old.Name) == nil {
			fmt.Fprintf(&b, "\n  remove %s", old)
		}
	}
	b.WriteString("\nthen send the glue-updated signal; dnsroll checks the parent zone before going on")
	return b.String()
}

func find(nss []NameServer, name string) *NameServer {
	for i := range nss {
		if strings.EqualFold(Fqdn(nss[i].Name), Fqdn(name)) {
			return &nss[i]
		}
	}
	return nil
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Fqdn is name in lower case with one trailing dot: the form NameServer
// names are compared in.
func Fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// InDomain reports whether name is domain or below it, so that the parent
// needs glue for it.
func InDomain(name, domain string) bool {
	n, d := Fqdn(name), Fqdn(domain)
	return n == d || strings.HasSuffix(n, "."+d)
}

// Canonical returns ns sorted by name, names as Fqdn, addresses sorted:
// the form in which two delegations compare equal with Equal.
func Canonical(ns []NameServer) []NameServer {
	out := make([]NameServer, len(ns))
	for i, n := range ns {
		addrs := slices.Clone(n.Addrs)
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		out[i] = NameServer{Name: Fqdn(n.Name), Addrs: slices.Compact(addrs)}
	}
	slices.SortFunc(out, func(a, b NameServer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Delegation is ns as a registrar holds it for domain: glue for the names
// inside domain only. A parent may also give addresses for names outside
// it (sibling glue, from its own zone), which no registrar sets.
func Delegation(domain string, ns []NameServer) []NameServer {
	out := make([]NameServer, len(ns))
	for i, n := range ns {
		out[i] = n
		if !InDomain(n.Name, domain) {
			out[i].Addrs = nil
		}
	}
	return out
}

// Equal reports whether a and b delegate to the same names with the same
// glue, in any order.
func Equal(a, b []NameServer) bool {
	return slices.EqualFunc(Canonical(a), Canonical(b), func(x, y NameServer) bool {
		return x.Name == y.Name && slices.Equal(x.Addrs, y.Addrs)
	})
}

// Validate checks ns as every registrar would: at least one name server,
// no name twice, glue for every name inside domain and none for names
// outside it. The errors name the server and the fix.
func Validate(domain string, ns []NameServer) error {
	if len(ns) == 0 {
		return fmt.Errorf("registrar: no name servers for %s; give at least one", Fqdn(domain))
	}
	seen := map[string]bool{}
	for _, n := range ns {
		name := Fqdn(n.Name)
		if name == "." {
			return fmt.Errorf("registrar: a name server of %s has no name", Fqdn(domain))
		}
		if seen[name] {
			return fmt.Errorf("registrar: name server %s is listed twice for %s", name, Fqdn(domain))
		}
		seen[name] = true
		in := InDomain(name, domain)
		switch {
		case in && len(n.Addrs) == 0:
			return fmt.Errorf("registrar: name server %s is inside %s and needs glue addresses", name, Fqdn(domain))
		case !in && len(n.Addrs) > 0:
			return fmt.Errorf("registrar: name server %s is outside %s; the parent serves no glue for it, so give no addresses", name, Fqdn(domain))
		}
		for _, a := range n.Addrs {
			if !a.IsValid() {
				return fmt.Errorf("registrar: name server %s has an invalid glue address", name)
			}
		}
	}
	return nil
}

// Text is ns for a message: each name server with its glue, "; " between.
func Text(ns []NameServer) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, "; ")
}
