// Package route53domains is the registrar driver for domains registered
// with Amazon Route 53 Domains: UpdateDomainNameservers with GlueIps to
// change the delegation, GetDomainDetail to read it, GetOperationDetail to
// wait for the change to be accepted, ListOperations to find a change still
// pending before making another.
package route53domains

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53d "github.com/aws/aws-sdk-go-v2/service/route53domains"
	"github.com/aws/aws-sdk-go-v2/service/route53domains/types"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/registrar"
)

// Name is the driver's name in a replacement's input (registrar).
const Name = "route53domains"

// Region is where the Route 53 Domains API lives: us-east-1 only,
// whatever region the rest of an AWS configuration names.
const Region = "us-east-1"

// API is the part of the Route 53 Domains client the driver uses; the
// SDK's *route53domains.Client is one.
type API interface {
	GetDomainDetail(context.Context, *r53d.GetDomainDetailInput, ...func(*r53d.Options)) (*r53d.GetDomainDetailOutput, error)
	UpdateDomainNameservers(context.Context, *r53d.UpdateDomainNameserversInput, ...func(*r53d.Options)) (*r53d.UpdateDomainNameserversOutput, error)
	GetOperationDetail(context.Context, *r53d.GetOperationDetailInput, ...func(*r53d.Options)) (*r53d.GetOperationDetailOutput, error)
	ListOperations(context.Context, *r53d.ListOperationsInput, ...func(*r53d.Options)) (*r53d.ListOperationsOutput, error)
}

// Registrar drives Route 53 Domains through API.
type Registrar struct {
	API API
	// Poll is how often SetGlue asks whether its operation finished
	// (default 2 s).
	Poll time.Duration
}

var _ registrar.Registrar = (*Registrar)(nil)

// New returns a driver for the SDK client made from cfg. endpoint, when
// not empty, replaces the AWS endpoint (the lab's simulator); Region is
// the region when cfg has none.
func New(cfg aws.Config, endpoint string) *Registrar {
	if cfg.Region == "" {
		cfg.Region = Region
	}
	client := r53d.NewFromConfig(cfg, func(o *r53d.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &Registrar{API: client}
}

// Glue returns the name servers and glue registered for domain.
func (r *Registrar) Glue(ctx context.Context, domain string) ([]registrar.NameServer, error) {
	out, err := r.API.GetDomainDetail(ctx, &r53d.GetDomainDetailInput{DomainName: aws.String(trim(domain))})
	if err != nil {
		return nil, apiErr(err, "read %s", domain)
	}
	ns := make([]registrar.NameServer, 0, len(out.Nameservers))
	for _, n := range out.Nameservers {
		s := registrar.NameServer{Name: aws.ToString(n.Name)}
		for _, ip := range n.GlueIps {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("route53domains: %s: glue %q of %s is not an address", domain, ip, s.Name)
			}
			s.Addrs = append(s.Addrs, a)
		}
		ns = append(ns, s)
	}
	return registrar.Canonical(ns), nil
}

// SetGlue submits the new name servers and waits until Route 53 Domains
// reports the operation successful, or ctx ends. It submits nothing when
// the registration already has ns, so retrying is harmless.
func (r *Registrar) SetGlue(ctx context.Context, domain string, ns []registrar.NameServer) error {
	if err := registrar.Validate(domain, ns); err != nil {
		return err
	}
	// A name server change still pending (one a cancelled SetGlue asked
	// for) would land after this one reads the glue: it is waited out
	// first, so that putting the old glue back after an abort is not
	// mistaken for nothing to do, then overturned by that change.
	if err := r.settle(ctx, domain); err != nil {
		return err
	}
	if cur, err := r.Glue(ctx, domain); err != nil {
		return err
	} else if registrar.Equal(cur, ns) {
		return nil
	}
	in := &r53d.UpdateDomainNameserversInput{DomainName: aws.String(trim(domain))}
	for _, n := range registrar.Canonical(ns) {
		t := types.Nameserver{Name: aws.String(trim(n.Name))}
		for _, a := range n.Addrs {
			t.GlueIps = append(t.GlueIps, a.String())
		}
		in.Nameservers = append(in.Nameservers, t)
	}
	out, err := r.API.UpdateDomainNameservers(ctx, in)
	if err != nil {
		return apiErr(err, "update name servers of %s", domain)
	}
	return r.wait(ctx, domain, aws.ToString(out.OperationId))
}

// settle waits until no name server change of domain is pending.
func (r *Registrar) settle(ctx context.Context, domain string) error {
	in := &r53d.ListOperationsInput{
		Status: []types.OperationStatus{types.OperationStatusSubmitted, types.OperationStatusInProgress},
		Type:   []types.OperationType{types.OperationTypeUpdateNameserver},
	}
	for {
		out, err := r.API.ListOperations(ctx, in)
		if err != nil {
			return apiErr(err, "list the pending operations on %s", domain)
		}
		for _, op := range out.Operations {
			if strings.EqualFold(aws.ToString(op.DomainName), trim(domain)) {
				// Its own success or failure is not this change's: only
				// that it is over.
				if err := r.wait(ctx, domain, aws.ToString(op.OperationId)); err != nil && ctx.Err() != nil {
					return err
				}
			}
		}
		if aws.ToString(out.NextPageMarker) == "" {
			return nil
		}
		in.Marker = out.NextPageMarker
	}
}

func (r *Registrar) wait(ctx context.Context, domain, op string) error {
	poll := r.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	for {
		d, err := r.API.GetOperationDetail(ctx, &r53d.GetOperationDetailInput{OperationId: aws.String(op)})
		if err != nil {
			return fmt.Errorf("route53domains: operation %s on %s: %w", op, domain, err)
		}
		switch d.Status {
		case types.OperationStatusSuccessful:
			return nil
		case types.OperationStatusError, types.OperationStatusFailed:
			return fmt.Errorf("route53domains: operation %s on %s: %s: %s", op, domain, d.Status, aws.ToString(d.Message))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("route53domains: operation %s on %s still %s: %w", op, domain, d.Status, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// trim drops the trailing dot: Route 53 Domains takes "example.com".
func trim(name string) string {
	if n := len(name); n > 1 && name[n-1] == '.' {
		return name[:n-1]
	}
	return name
}

// apiErr says what failed. A request that Route 53 Domains refuses is
// dnsroll.EINVALID as well, so that the step fails at once instead of
// being retried until its deadline.
func apiErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if IsInvalidInput(err) {
		return fmt.Errorf("%w: %w", dnsroll.Errorf(dnsroll.EINVALID, "route53domains: %s", what), err)
	}
	return fmt.Errorf("route53domains: %s: %w", what, err)
}

// IsInvalidInput reports whether err is Route 53 Domains refusing the
// request (unknown domain, glue it does not accept): retrying will not help.
func IsInvalidInput(err error) bool {
	var e *types.InvalidInput
	return errors.As(err, &e)
}
