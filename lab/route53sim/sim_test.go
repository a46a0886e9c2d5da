package route53sim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53d "github.com/aws/aws-sdk-go-v2/service/route53domains"
	"github.com/aws/aws-sdk-go-v2/service/route53domains/types"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/lab/route53sim"
	"github.com/dnsroll/dnsroll/registrar"
	"github.com/dnsroll/dnsroll/registrar/route53domains"
)

// labConfig is an AWS config with made-up credentials: the client signs
// its requests, as against AWS.
func labConfig() aws.Config {
	return aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDLAB", SecretAccessKey: "lab-not-a-secret", Source: "lab"}, nil
		}),
	}
}

// start serves sim and returns the unmodified SDK client and the driver,
// both pointed at it.
func start(t *testing.T, sim *route53sim.Sim) (*r53d.Client, *route53domains.Registrar) {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client := r53d.NewFromConfig(labConfig(), func(o *r53d.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	drv := route53domains.New(labConfig(), srv.URL)
	drv.Poll = 20 * time.Millisecond
	return client, drv
}

var (
	a1 = netip.MustParseAddr("127.0.0.11")
	a2 = netip.MustParseAddr("127.0.0.12")
)

func TestUnknownDomainIsInvalidInput(t *testing.T) {
	sim := route53sim.New(route53sim.Options{})
	sim.AddDomain("example.com", []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}})
	_, drv := start(t, sim)
	_, err := drv.Glue(context.Background(), "example.org")
	if err == nil || !route53domains.IsInvalidInput(err) || !strings.Contains(err.Error(), "example.org") {
		t.Fatalf("Glue of a domain not in the account: %v, want InvalidInput naming example.org", err)
	}
	err = drv.SetGlue(context.Background(), "example.org", []registrar.NameServer{{Name: "ns1.example.org", Addrs: []netip.Addr{a1}}})
	if !route53domains.IsInvalidInput(err) {
		t.Fatalf("SetGlue of a domain not in the account: %v, want InvalidInput", err)
	}
	// No retry helps: the step fails at once instead of at its deadline.
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("SetGlue of a domain not in the account: code %q, want %q", dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
}

// TestGlueOnlyInBailiwick sends, with the SDK client directly (the driver
// would refuse first), what the real API refuses.
func TestGlueOnlyInBailiwick(t *testing.T) {
	sim := route53sim.New(route53sim.Options{})
	sim.AddDomain("example.com", []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}})
	client, _ := start(t, sim)
	for _, tc := range []struct {
		name string
		ns   []types.Nameserver
		want string
	}{
		{"glue outside the domain", []types.Nameserver{{Name: aws.String("ns.example.net"), GlueIps: []string{"127.0.0.11"}}}, "allowed only"},
		{"no glue inside the domain", []types.Nameserver{{Name: aws.String("ns1.example.com")}}, "requires glue"},
		{"two IPv4 glue addresses", []types.Nameserver{{Name: aws.String("ns1.example.com"), GlueIps: []string{"127.0.0.11", "127.0.0.12"}}}, "only one IPv4"},
		{"not an address", []types.Nameserver{{Name: aws.String("ns1.example.com"), GlueIps: []string{"lb1"}}}, "not an IP"},
	} {
		_, err := client.UpdateDomainNameservers(context.Background(), &r53d.UpdateDomainNameserversInput{DomainName: aws.String("example.com"), Nameservers: tc.ns})
		if err == nil || !route53domains.IsInvalidInput(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidInput saying %q", tc.name, err, tc.want)
		}
	}
	if len(sim.Operations()) != 0 {
		t.Errorf("refused requests started operations: %+v", sim.Operations())
	}
}

func TestUnsignedRequestRefused(t *testing.T) {
	srv := httptest.NewServer(route53sim.New(route53sim.Options{}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{"DomainName":"example.com"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Route53Domains_v20140515.GetDomainDetail")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned request: %d, want 403", resp.StatusCode)
	}
}

// TestSetGlueWaitsForOperation: SetGlue returns once the operation has
// succeeded, with an operation ID, and reads back what it set; asking
// again for the same starts no operation.
func TestSetGlueWaitsForOperation(t *testing.T) {
	applied := make(chan []registrar.NameServer, 1)
	sim := route53sim.New(route53sim.Options{
		Delay: 100 * time.Millisecond,
		OnUpdate: func(_ context.Context, _ string, ns []registrar.NameServer) error {
			applied <- ns
			return nil
		},
	})
	sim.AddDomain("example.com", []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}})
	_, drv := start(t, sim)
	ctx := context.Background()
	want := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{a2}}, {Name: "ns.example.net."}}
	if err := drv.SetGlue(ctx, "example.com", want); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-applied:
		if !registrar.Equal(got, want) {
			t.Fatalf("OnUpdate got %v, want %v", got, want)
		}
	default:
		t.Fatal("SetGlue returned before the operation ran")
	}
	ops := sim.Operations()
	if len(ops) != 1 || ops[0].Status != "SUCCESSFUL" || ops[0].ID == "" {
		t.Fatalf("operations %+v, want one SUCCESSFUL with an ID", ops)
	}
	got, err := drv.Glue(ctx, "example.com")
	if err != nil || !registrar.Equal(got, want) {
		t.Fatalf("Glue after SetGlue: %v %v, want %v", got, err, want)
	}
	if err := drv.SetGlue(ctx, "example.com", want); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.Operations()); n != 1 {
		t.Fatalf("setting the same glue again started an operation (%d in all)", n)
	}
}

// TestFailedOperationIsError: an operation that fails at the registry
// (OnUpdate's error) is SetGlue's error, and the account keeps the old
// name servers.
func TestFailedOperationIsError(t *testing.T) {
	sim := route53sim.New(route53sim.Options{OnUpdate: func(context.Context, string, []registrar.NameServer) error {
		return errFailed
	}})
	old := []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a1}}}
	sim.AddDomain("example.com", old)
	_, drv := start(t, sim)
	err := drv.SetGlue(context.Background(), "example.com", []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a2}}})
	if err == nil || !strings.Contains(err.Error(), "ERROR") || !strings.Contains(err.Error(), errFailed.Error()) {
		t.Fatalf("SetGlue whose operation failed: %v", err)
	}
	if ns, _ := sim.Domain("example.com"); !registrar.Equal(ns, old) {
		t.Fatalf("after a failed operation the account has %v, want %v", ns, old)
	}
}

var errFailed = registryError("registry rejected the change")

type registryError string

func (e registryError) Error() string { return string(e) }

// TestSetGlueWaitsOutAPendingChange: a SetGlue cancelled while its change
// is pending (an aborted replacement) leaves the change to land later. A
// SetGlue that puts the old glue back waits for it first, then sees the
// new glue and changes it back: read before, the old glue looked current,
// and the pending change would have won.
func TestSetGlueWaitsOutAPendingChange(t *testing.T) {
	sim := route53sim.New(route53sim.Options{Delay: 300 * time.Millisecond})
	old := []registrar.NameServer{{Name: "ns1.example.com.", Addrs: []netip.Addr{a1}}}
	sim.AddDomain("example.com", old)
	_, drv := start(t, sim)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := drv.SetGlue(ctx, "example.com", []registrar.NameServer{{Name: "ns1.example.com", Addrs: []netip.Addr{a2}}}); err == nil {
		t.Fatal("SetGlue returned before its change could run")
	}
	if err := drv.SetGlue(context.Background(), "example.com", old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pending := false
		for _, op := range sim.Operations() {
			pending = pending || op.Pending()
		}
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("operations still pending: %+v", sim.Operations())
		}
	}
	if ns, _ := sim.Domain("example.com"); !registrar.Equal(ns, old) {
		t.Errorf("after putting the old glue back the account has %v, want %v", ns, old)
	}
}
