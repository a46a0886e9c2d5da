package activities

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
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

// serveExampleZone answers as example.com's own server: its NS, ns1, for
// nsTTL seconds, and ns1's address, 127.0.0.21, for an hour.
func serveExampleZone(t *testing.T, nsTTL int) string {
	t.Helper()
	return serveUDP(t, func(req, m *dns.Msg) {
		switch q := req.Question[0]; {
		case q.Name == "ns1.example.com." && q.Qtype == dns.TypeA:
			answer(m, "ns1.example.com. 3600 IN A 127.0.0.21")
		case q.Name == "example.com." && q.Qtype == dns.TypeNS:
			answer(m, fmt.Sprintf("example.com. %d IN NS ns1.example.com.", nsTTL))
		}
	})
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

// fakeRegistrarEnv is an activity environment whose worker has the
// registrar "fake", whose delegation of every domain is *glue.
func fakeRegistrarEnv(glue *[]registrar.NameServer) (*Activities, *testsuite.TestActivityEnvironment) {
	acts := &Activities{Registrars: map[string]RegistrarMaker{
		"fake": func(context.Context) (registrar.Registrar, error) { return gluedRegistrar{*glue}, nil },
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return acts, env
}

// A replacement starts only where the registrar's delegation is what the
// parent servers it was given serve: another domain, a wrong parent
// server, or a change still pending at the registrar would have it move
// glue it never read, or wait for one the parent will not serve.
func TestCheckParentWantsTheRegistrarsDelegation(t *testing.T) {
	served := []registrar.NameServer{
		{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}},
		{Name: "ns2.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.22")}},
	}
	parent := startParent(t, served)
	var glue []registrar.NameServer
	acts, env := fakeRegistrarEnv(&glue)
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

// Sibling glue, an address the parent gives for a name server outside
// the domain (from its own zone), is no difference from the registrar's
// delegation; nor is an address the registrar keeps for such a name,
// which the parent never serves as this domain's glue. Glue of a name
// inside the domain still is.
func TestCheckParentIgnoresSiblingGlue(t *testing.T) {
	inside := netip.MustParseAddr("127.0.0.21")
	parent := serveUDP(t, func(req, m *dns.Msg) {
		// A referral: not authoritative, the delegation in the authority
		// section, addresses in the additional one.
		m.Authoritative = false
		for _, rr := range []string{"example.com. 300 IN NS ns1.example.com.", "example.com. 300 IN NS ns.example.net."} {
			r, _ := dns.NewRR(rr)
			m.Ns = append(m.Ns, r)
		}
		for _, rr := range []string{"ns1.example.com. 300 IN A " + inside.String(), "ns.example.net. 300 IN A 192.0.2.53"} {
			r, _ := dns.NewRR(rr)
			m.Extra = append(m.Extra, r)
		}
	})
	var glue []registrar.NameServer
	acts, env := fakeRegistrarEnv(&glue)
	in := ParentInput{Domain: "example.com", Parent: []string{parent}, Registrar: "fake"}

	glue = []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{inside}}, {Name: "ns.example.net."}}
	v, err := env.ExecuteActivity(acts.CheckParent, in)
	res := temporaltest.Value[ParentResult](t, v, err)
	if !strings.Contains(registrar.Text(res.NS), "192.0.2.53") {
		t.Errorf("the parent serves %s; want its sibling glue in it, for this test to mean anything", registrar.Text(res.NS))
	}
	glue[1].Addrs = []netip.Addr{netip.MustParseAddr("192.0.2.99")}
	if _, err := env.ExecuteActivity(acts.CheckParent, in); err != nil {
		t.Errorf("the registrar keeps an address of ns.example.net: %v", err)
	}
	glue[0].Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.31")}
	if _, err := env.ExecuteActivity(acts.CheckParent, in); err == nil || !strings.Contains(err.Error(), "the registrar fake delegates example.com. to") {
		t.Errorf("the registrar's glue of ns1.example.com differs from the parent's: %v; want an error", err)
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
	alive := serveExampleZone(t, 300)
	acts, env := parentEnv(t)
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
	if _, err := ParseParent(nil); err == nil || !strings.HasPrefix(err.Error(), "parent: no parent zone servers given") {
		t.Errorf("ParseParent of none = %v, want parent: no parent zone servers given", err)
	}
	if got, err := ParseParent([]string{"192.0.2.53:53", "[2001:db8::53]:53"}); err != nil || len(got) != 2 {
		t.Errorf("ParseParent of two good servers = %v, %v", got, err)
	}
}

// The check of the new load balancers (Child) asks that one server for
// the zone's own NS TTL, which the drain waits out beside the parent's:
// a child that does not answer as the zone's server fails the check,
// rather than leave the zone's TTL out of the drain.
func TestCheckParentAsksTheChild(t *testing.T) {
	served := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}}}
	parent := startParent(t, served)
	child := serveExampleZone(t, 86400)
	acts, env := parentEnv(t)
	v, err := env.ExecuteActivity(acts.CheckParent, ParentInput{Domain: "example.com", Parent: parent, Child: child})
	if err != nil {
		t.Fatalf("check through the child: %v", err)
	}
	res := temporaltest.Value[ParentResult](t, v, nil)
	if res.ZoneNSTTL != 24*time.Hour || len(res.ZoneAddrs) != 1 || res.ZoneAddrTTL != time.Hour {
		t.Errorf("zone NS TTL %s, addresses %s (TTL %s); want the child's 24h, ns1's address, 1h", res.ZoneNSTTL, registrar.Text(res.ZoneAddrs), res.ZoneAddrTTL)
	}
	refusing := serveUDP(t, func(req, m *dns.Msg) { m.Rcode = dns.RcodeRefused })
	if _, err := env.ExecuteActivity(acts.CheckParent, ParentInput{Domain: "example.com", Parent: parent, Child: refusing}); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("a child that refuses: %v; want the check failed, saying so", err)
	}
}

// An old load balancer that gives the zone's NS TTL but not its
// addresses as the zone's server leaves nothing of its answer in the
// result: the zone counts as unasked, saying why.
func TestCheckParentKeepsNothingOfAHalfAnswer(t *testing.T) {
	served := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}}}
	parent := startParent(t, served)
	half := serveUDP(t, func(req, m *dns.Msg) {
		switch q := req.Question[0]; {
		case q.Name == "example.com." && q.Qtype == dns.TypeNS:
			answer(m, "example.com. 300 IN NS ns1.example.com.")
		default:
			m.Authoritative = false
			answer(m, "ns1.example.com. 3600 IN A 127.0.0.21")
		}
	})
	acts, env := parentEnv(t)
	v, err := env.ExecuteActivity(acts.CheckParent, ParentInput{Domain: "example.com", Parent: parent, AddrsFrom: []string{half}})
	if err != nil {
		t.Fatal(err)
	}
	res := temporaltest.Value[ParentResult](t, v, nil)
	if res.ZoneNSTTL != 0 || len(res.ZoneAddrs) != 0 || !strings.Contains(res.ZoneUnasked, "without AA") {
		t.Errorf("zone NS TTL %s, addresses %s, unasked %q; want none, and why", res.ZoneNSTTL, registrar.Text(res.ZoneAddrs), res.ZoneUnasked)
	}
}

// The zone's answers are believed only as the zone's server gives them:
// an NS answer without NS records (a NODATA) is no TTL, an answer without
// AA (a resolver's) is refused, and records of another name (the target
// of a CNAME) are not the name server's address.
func TestZoneAnswersMustBeTheZones(t *testing.T) {
	server := serveUDP(t, func(req, m *dns.Msg) {
		q := req.Question[0]
		switch {
		case q.Name == "ns1.example.com." && q.Qtype == dns.TypeA:
			r1, _ := dns.NewRR("ns1.example.com. 300 IN CNAME lb.example.net.")
			r2, _ := dns.NewRR("lb.example.net. 300 IN A 192.0.2.9")
			m.Answer = []dns.RR{r1, r2}
		case q.Name == "ns2.example.com.":
			m.Authoritative = false
			answer(m, "ns2.example.com. 300 IN A 192.0.2.2")
		}
	})
	ctx := context.Background()
	if ttl, err := zoneNSTTL(ctx, server, "example.com"); err == nil || !strings.Contains(err.Error(), "gives no NS records") {
		t.Errorf("zoneNSTTL of a NODATA answer = %s, %v; want an error", ttl, err)
	}
	got, _, err := zoneAddrs(ctx, server, "example.com", []registrar.NameServer{{Name: "ns1.example.com."}})
	if err != nil || len(got) != 0 {
		t.Errorf("zoneAddrs through a CNAME = %s, %v; want no address of ns1", registrar.Text(got), err)
	}
	if got, _, err := zoneAddrs(ctx, server, "example.com", []registrar.NameServer{{Name: "ns2.example.com."}}); err == nil || !strings.Contains(err.Error(), "without AA") {
		t.Errorf("zoneAddrs of an answer without AA = %s, %v; want it refused", registrar.Text(got), err)
	}
}

// Without a registrar named, SetGlue is the manual registrar's: the
// operator is told what to change at the registrar, and the step
// succeeds with those instructions rather than failing.
func TestSetGlueWithoutARegistrarGivesInstructions(t *testing.T) {
	served := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.21")}}}
	parent := startParent(t, served)
	acts, env := parentEnv(t)
	next := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.31")}}}
	v, err := env.ExecuteActivity(acts.SetGlue, SetGlueInput{Domain: "example.com", Parent: parent, NS: next})
	if err != nil {
		t.Fatalf("SetGlue without a registrar: %v", err)
	}
	res := temporaltest.Value[SetGlueResult](t, v, nil)
	if !strings.Contains(res.Instructions, "127.0.0.31") {
		t.Errorf("instructions %q, want the new glue", res.Instructions)
	}
}

// parentEnv is an activity environment for Activities without a cloud.
func parentEnv(t *testing.T) (*Activities, *testsuite.TestActivityEnvironment) {
	t.Helper()
	acts := &Activities{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return acts, env
}
