// Package manual is the default registrar: a person changes the glue at
// the registrar's web page. SetGlue only says exactly what to change; Glue
// reads what the parent zone serves now, so the workflow believes the
// parent, not the operator's glue-updated signal.
package manual

import (
	"context"
	"net/netip"

	"github.com/dnsroll/dnsroll/registrar"
)

// Registrar reads the delegation from Parent, the parent zone's servers
// (address and port, normally :53).
type Registrar struct {
	Parent []netip.AddrPort
}

var _ registrar.Registrar = (*Registrar)(nil)

// Glue returns the delegation that all of the parent's servers serve.
func (r *Registrar) Glue(ctx context.Context, domain string) ([]registrar.NameServer, error) {
	ref, err := registrar.Check(ctx, r.Parent, domain)
	if err != nil {
		return nil, err
	}
	return ref.NS, nil
}

// SetGlue changes nothing. Unless the parent already serves ns, it returns
// a *registrar.ActionRequired with the instructions for the operator, the
// current delegation (when readable) as Old.
func (r *Registrar) SetGlue(ctx context.Context, domain string, ns []registrar.NameServer) error {
	if err := registrar.Validate(domain, ns); err != nil {
		return err
	}
	// What the registrar holds: the parent's referral without the
	// addresses it gives for name servers outside the domain.
	old, err := r.Glue(ctx, domain)
	old = registrar.Delegation(domain, old)
	if err == nil && registrar.Equal(old, ns) {
		return nil
	}
	return &registrar.ActionRequired{Domain: registrar.Fqdn(domain), Old: old, New: registrar.Canonical(ns)}
}
