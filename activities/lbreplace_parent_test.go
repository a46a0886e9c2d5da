package activities

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lab/delegation"
	"github.com/dnsroll/dnsroll/registrar"
)

// startParent serves example.com's delegation to served from a parent
// zone on real named, and returns the parent's servers as host:port.
func startParent(t *testing.T, served []registrar.NameServer) []string {
	t.Helper()
	needlab.Programs(t, "named")
	l, err := delegation.Start(delegation.Options{Dir: t.TempDir(), Domain: "example.com", NS: served, NSTTL: 5 * time.Second, GlueTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	var parent []string
	for _, s := range l.ParentServers() {
		parent = append(parent, s.String())
	}
	return parent
}

// answer makes rr, in presentation form, the one record of m's answer.
func answer(m *dns.Msg, rr string) {
	r, _ := dns.NewRR(rr)
	m.Answer = []dns.RR{r}
}

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
	served := []registrar.NameServer{
		{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}},
		{Name: "ns2.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.22")}},
	}
	parent := startParent(t, served)
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
	_, err := env.ExecuteActivity(acts.CheckParent, in)
	var app *temporal.ApplicationError
	// Retried, as a change still pending at the registrar would be: the
	// step's deadline ends it, before anything is created.
	if err == nil || !strings.Contains(err.Error(), "the registrar fake delegates example.com. to") || !strings.Contains(err.Error(), "ns.attacker.example.net") ||
		!errors.As(err, &app) || app.NonRetryable() {
		t.Errorf("a registrar whose delegation the parent does not serve: %v; want an error naming both, which a retry may clear", err)
	}
}

// The zone's own address records of its name servers, asked of the
// zone's server: a replacement moves the glue, not these, and resolvers
// take them over the glue.
func TestZoneAddrsAsksTheZoneForItsNameServers(t *testing.T) {
	child := serveUDP(t, func(req, m *dns.Msg) {
		q := req.Question[0]
		switch {
		case q.Name == "ns1.example.com." && q.Qtype == dns.TypeA:
			answer(m, "ns1.example.com. 86400 IN A 198.51.100.1")
		case q.Name == "ns1.example.com." && q.Qtype == dns.TypeAAAA:
			answer(m, "ns1.example.com. 3600 IN AAAA 2600:3c00::1")
		case q.Name == "ns.example.net.":
			t.Errorf("asked for %s, a name outside the domain", q.Name)
		}
	})
	ns := []registrar.NameServer{{Name: "ns1.example.com."}, {Name: "ns2.example.com."}, {Name: "ns.example.net."}}
	got, ttl, err := zoneAddrs(context.Background(), child, "example.com", ns)
	if err != nil {
		t.Fatal(err)
	}
	want := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2600:3c00::1")}}}
	if !registrar.Equal(got, want) || ttl != 24*time.Hour {
		t.Errorf("zoneAddrs = %s, TTL %s; want %s, 24h", registrar.Text(got), ttl, registrar.Text(want))
	}
}

// The check before anything is created asks the old load balancers for
// the zone's own addresses, the first that answers: a dead one fails
// nothing.
func TestCheckParentAsksTheZoneAtTheFirstLoadBalancerThatAnswers(t *testing.T) {
	served := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}}}
	parent := startParent(t, served)
	alive := serveUDP(t, func(req, m *dns.Msg) {
		switch q := req.Question[0]; {
		case q.Name == "ns1.example.com." && q.Qtype == dns.TypeA:
			answer(m, "ns1.example.com. 3600 IN A 127.0.0.21")
		case q.Name == "example.com." && q.Qtype == dns.TypeNS:
			answer(m, "example.com. 300 IN NS ns1.example.com.")
		}
	})
	acts := &Activities{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	refusing := serveUDP(t, func(req, m *dns.Msg) { m.Rcode, m.Authoritative = dns.RcodeRefused, false })
	v, err := env.ExecuteActivity(acts.CheckParent, ParentInput{Domain: "example.com", Parent: parent, AddrsFrom: []string{"127.0.0.1:9", refusing, alive}})
	if err != nil {
		t.Fatalf("a dead first load balancer failed the check: %v", err)
	}
	var res ParentResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.ZoneAddrs) != 1 || res.ZoneAddrs[0].Addrs[0] != netip.MustParseAddr("127.0.0.21") || res.ZoneUnasked != "" {
		t.Errorf("zone addresses %s (unasked %q), want ns1's from the third load balancer, past one that refuses", registrar.Text(res.ZoneAddrs), res.ZoneUnasked)
	}
	// None answers: the check passes, and says the zone went unasked.
	v, err = env.ExecuteActivity(acts.CheckParent, ParentInput{Domain: "example.com", Parent: parent, AddrsFrom: []string{"127.0.0.1:9", refusing}})
	if err != nil {
		t.Fatalf("no load balancer answered: %v", err)
	}
	res = ParentResult{}
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.ZoneAddrs) != 0 || !strings.Contains(res.ZoneUnasked, "REFUSED") {
		t.Errorf("zone addresses %s, unasked %q; want none, and why", registrar.Text(res.ZoneAddrs), res.ZoneUnasked)
	}
}

// TestParseParentSaysWhatIsWrong: "is not address:port" alone left a
// parent written as a:53 with a host name, or without its port, looking
// right to whoever wrote it.
func TestParseParentSaysWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.gtld-servers.net:53", "an IP address, not a host name"},
		{"a.gtld-servers.net", "an IP address, not a host name"},
		{"192.0.2.53", "with its port: 192.0.2.53:53"},
		{"2001:db8::53", "in brackets, with the port after them: [2001:db8::53]:53"},
		{"192.0.2.53:0", "port must be a number from 1 to 65535"},
		{"192.0.2.53:70000", "port must be a number from 1 to 65535"},
		{"", "is empty"},
	} {
		_, err := ParseParent([]string{"192.0.2.1:53", tc.in})
		if err == nil || !strings.HasPrefix(err.Error(), "parent[1]: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseParent(%q) = %v, want parent[1]: ...%s...", tc.in, err, tc.want)
		}
	}
	if got, err := ParseParent([]string{"192.0.2.53:53", "[2001:db8::53]:53"}); err != nil || len(got) != 2 {
		t.Errorf("ParseParent of two good servers = %v, %v", got, err)
	}
}
