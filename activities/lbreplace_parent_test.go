package activities

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
)

// gluedRegistrar is a registrar whose delegation of every domain is glue.
type gluedRegistrar struct{ glue []registrar.NameServer }

func (r gluedRegistrar) Glue(context.Context, string) ([]registrar.NameServer, error) {
	return r.glue, nil
}

func (gluedRegistrar) SetGlue(context.Context, string, []registrar.NameServer) error { return nil }

// A replacement starts only where the registrar's delegation is what the
// parent servers it was given serve: another domain, a wrong parent
// server, or a change still pending at the registrar would have it move
// glue it never read, or wait for one the parent will not serve. Sibling
// glue the parent adds for a name server outside the domain is no
// difference.
func TestCheckParentWantsTheRegistrarsDelegation(t *testing.T) {
	needlab.Programs(t, "named")
	served := []registrar.NameServer{
		{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}},
		{Name: "ns2.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.22")}},
	}
	l, err := delegation.Start(delegation.Options{Dir: t.TempDir(), Domain: "example.com", NS: served, NSTTL: 5 * time.Second, GlueTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	var parent []string
	for _, s := range l.ParentServers() {
		parent = append(parent, s.String())
	}
	var glue []registrar.NameServer
	acts := &Activities{Registrars: map[string]RegistrarMaker{
		"fake": func(context.Context) (registrar.Registrar, error) { return gluedRegistrar{glue}, nil },
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := ParentInput{Domain: "example.com", Parent: parent, Registrar: "fake"}

	glue = served
	if _, err := env.ExecuteActivity(acts.CheckParent, in); err != nil {
		t.Fatalf("the registrar's delegation is the parent's: %v", err)
	}
	glue = []registrar.NameServer{served[0], {Name: "ns.attacker.example.net"}}
	_, err = env.ExecuteActivity(acts.CheckParent, in)
	var app *temporal.ApplicationError
	// Retried, as a change still pending at the registrar would be: the
	// step's deadline ends it, before anything is created.
	if err == nil || !strings.Contains(err.Error(), "the registrar fake delegates example.com. to") || !strings.Contains(err.Error(), "ns.attacker.example.net") ||
		!errors.As(err, &app) || app.NonRetryable() {
		t.Errorf("a registrar whose delegation the parent does not serve: %v; want an error naming both, which a retry may clear", err)
	}
}
