package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/lab/route53sim"
	"github.com/dnsroll/dnsroll/registrar"
)

// AWS credentials the test gives the worker's environment; none may
// appear in an activity's input, output, error or log.
const (
	testAccessKey = "AKIDWORKERTEST42"
	testSecretKey = "worker-secret-must-not-leak"
)

// parentOf serves, as the parent zone, the delegation that sim holds for
// domain now: what a registry publishes once the registrar applied it.
func parentOf(t *testing.T, sim *route53sim.Sim, domain string) string {
	t.Helper()
	return dnstest.ServeUDP(t, func(_, m *dns.Msg) {
		ns, _ := sim.Domain(domain)
		for _, n := range ns {
			m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: registrar.Fqdn(domain), Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 30}, Ns: n.Name})
			for _, a := range n.Addrs {
				m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: n.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
			}
		}
	})
}

// route53World is a Route 53 Domains account (the simulator, over HTTP)
// that holds example.com delegated to ns, a parent zone server that serves
// what the account holds, and a worker configured as in production but
// for the endpoint: credentials in the standard AWS environment variables,
// the simulator's URL in DNSROLL_ROUTE53DOMAINS_ENDPOINT.
func route53World(t *testing.T, ns []registrar.NameServer) (*route53sim.Sim, []string, Config) {
	t.Helper()
	return route53WorldWith(t, route53sim.Options{}, ns)
}

// route53WorldWith is route53World with the simulator's options, such as
// operations that stay IN_PROGRESS a while.
func route53WorldWith(t *testing.T, opts route53sim.Options, ns []registrar.NameServer) (*route53sim.Sim, []string, Config) {
	t.Helper()
	sim := route53sim.New(opts)
	sim.AddDomain("example.com", ns)
	httpSrv := httptest.NewServer(sim)
	t.Cleanup(httpSrv.Close)
	awsDir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": testAccessKey, "AWS_SECRET_ACCESS_KEY": testSecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(awsDir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(awsDir, "credentials"),
		"DNSROLL_ROUTE53DOMAINS_ENDPOINT": httpSrv.URL, "DNSROLL_SSH_AUTHORIZED_KEYS": "", "ANSIBLE_PRIVATE_KEY_FILE": "",
	} {
		t.Setenv(k, v)
	}
	var cfg Config
	if err := cfg.FromEnv(); err != nil {
		t.Fatal(err)
	}
	return sim, []string{parentOf(t, sim, "example.com")}, cfg
}

// loggedSuite is a test suite whose workflow and activity logs go to w.
func loggedSuite(w *bytes.Buffer) *testsuite.WorkflowTestSuite {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	return &s
}

// noSecrets fails t if a test credential is in the JSON of v or in logs.
func noSecrets(t *testing.T, v any, logs string) {
	t.Helper()
	all, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testAccessKey, testSecretKey} {
		if strings.Contains(string(all), secret) || strings.Contains(logs, secret) {
			t.Errorf("credential %q reached history, status or logs", secret)
		}
	}
}

// TestRoute53DomainsGlueThroughWorker runs the replacement's registrar
// steps with registrar "route53domains" through the worker's wiring: the
// unmodified AWS client, its credentials from the standard environment,
// talks over HTTP to the simulator named by DNSROLL_ROUTE53DOMAINS_ENDPOINT.
// The first check accepts it and refuses an unknown name; SetGlue moves
// the glue at the simulator (and so at the parent); the abort's SetGlue of
// the old delegation puts it back. No credential reaches the activities'
// inputs, outputs or logs.
func TestRoute53DomainsGlueThroughWorker(t *testing.T) {
	oldNS := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}}
	newNS := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.101")}}}
	sim, parent, cfg := route53World(t, oldNS)
	var logs bytes.Buffer
	s := loggedSuite(&logs)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{Registrars: cfg.Registrars()})

	var seen []any // every input and output, for the secret check
	run := func(fn, in, out any) error {
		t.Helper()
		seen = append(seen, in)
		v, err := env.ExecuteActivity(fn, in)
		if err != nil {
			seen = append(seen, err.Error())
			return err
		}
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, out)
		return nil
	}
	var a *activities.Activities
	check := activities.ParentInput{Domain: "example.com", Parent: parent, Registrar: "route53domains"}
	var ref activities.ParentResult
	if err := run(a.CheckParent, check, &ref); err != nil {
		t.Fatalf("first check with route53domains: %v", err)
	}
	if !registrar.Equal(ref.NS, oldNS) {
		t.Fatalf("the parent refers to %v, want %v", ref.NS, oldNS)
	}

	// Refused at the first check, as invalid input: a name this worker
	// lacks, and a domain outside the AWS account.
	check.Registrar = "godaddy"
	wantInvalid(t, run(a.CheckParent, check, &ref), `registrar: "godaddy"`, "manual, route53domains")
	outside := httptest.NewServer(route53sim.New(route53sim.Options{}))
	t.Cleanup(outside.Close)
	other := s.NewTestActivityEnvironment()
	other.RegisterActivity(&activities.Activities{Registrars: Config{Route53DomainsEndpoint: outside.URL}.Registrars()})
	_, err := other.ExecuteActivity(a.CheckParent, activities.ParentInput{Domain: "example.com", Parent: parent, Registrar: "route53domains"})
	wantInvalid(t, err, "route53domains: read example.com")

	for i, step := range []struct {
		name string
		ns   []registrar.NameServer
	}{{"move", newNS}, {"restore on abort", oldNS}} {
		var res activities.SetGlueResult
		if err := run(a.SetGlue, activities.SetGlueInput{Registrar: "route53domains", Domain: "example.com", Parent: parent, NS: step.ns}, &res); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if res.Instructions != "" {
			t.Errorf("%s: instructions %q from a registrar with an API", step.name, res.Instructions)
		}
		if got, _ := sim.Domain("example.com"); !registrar.Equal(got, step.ns) {
			t.Fatalf("%s: the simulator holds %v, want %v", step.name, got, step.ns)
		}
		if ops := sim.Operations(); len(ops) != i+1 || ops[i].Status != "SUCCESSFUL" {
			t.Fatalf("%s: operations %+v, want %d, the last successful", step.name, ops, i+1)
		}
		check.Registrar = ""
		if err := run(a.CheckParent, check, &ref); err != nil || !registrar.Equal(ref.NS, step.ns) {
			t.Fatalf("%s: the parent refers to %v (%v), want %v", step.name, ref.NS, err, step.ns)
		}
	}

	noSecrets(t, seen, logs.String())
}

// wantInvalid fails t unless err is the activities' non-retryable
// invalid input error and says each of want.
func wantInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrInvalid {
		t.Fatalf("err = %v, want %s", err, activities.ErrInvalid)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to say %q", err, w)
		}
	}
}
