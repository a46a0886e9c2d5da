package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/dnstest"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/linode"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/provision"
)

const testFleetYAML = `
fleet: t
nameservers:
  - {label: ns1, region: us-east, type: g6-nanode-1, image: linode/debian12}
load_balancers:
  - {name: lb1, address: "127.0.0.1:5301", fronts: ns1}
zones:
  - {name: example.com, file: zones/example.com.zone}
`

// testPlaybooks are where writeFleetDir puts the playbooks: beside the
// fleet file, not in ../ansible as the defaults have them.
const testPlaybooks = "nameserver_playbook: ansible/nameserver.yml, loadbalancer_playbook: ansible/loadbalancer.yml"

// sshBanner listens on a loopback port that greets like sshd, for the
// wait for a new server's SSH, and returns the port.
func sshBanner(t *testing.T) int {
	t.Helper()
	addr := testnet.ServeTCP(t, func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-dnsroll-test\r\n")) })
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// cloudEnv is an activity environment whose Cloud is the real linode adapter
// talking to the Linode API simulator over HTTP.
type cloudEnv struct {
	env   *testsuite.TestActivityEnvironment
	sim   *linodesim.Sim
	cloud *linode.Cloud
	fleet *config.Fleet
	acts  *Activities
	// lb is the fleet's load balancer address (refusingLB).
	lb string
}

// cloudTestDeadline bounds each test's steps on the simulator, which
// take milliseconds each.
const cloudTestDeadline = 20 * time.Second

func newCloudEnv(t *testing.T) *cloudEnv {
	t.Helper()
	return newCloudEnvWith(t, linodesim.Options{})
}

// newCloudEnvWith is newCloudEnv with simulator options, such as a delete
// that takes a while.
func newCloudEnvWith(t *testing.T, opts linodesim.Options) *cloudEnv {
	t.Helper()
	pollInterval = 10 * time.Millisecond
	opts.Token, opts.BootDelay = "t0k", cmp.Or(opts.BootDelay, 20*time.Millisecond)
	sim, err := linodesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cloud, err := linode.New(linode.Options{Token: "t0k", BaseURL: srv.URL + "/v4", RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := config.Parse([]byte(testFleetYAML + "ansible: {" + testPlaybooks + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lb := refusingLB(t)
	fleet.LoadBalancers[0].Address = lb
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	// A step that waits on the simulator for what never comes (a delete
	// it refused) fails the test at its deadline, not the SDK's 10 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), cloudTestDeadline)
	t.Cleanup(cancel)
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})
	// The simulator's servers are at 127.0.0.1; their "sshd" is a banner.
	acts := &Activities{Cloud: cloud, SSHPort: sshBanner(t)}
	env.RegisterActivity(acts)
	return &cloudEnv{env: env, sim: sim, cloud: cloud, fleet: fleet, acts: acts, lb: lb}
}

// refusingLB is the test fleet's load balancer: a loopback port of the
// test's own that refuses DNS queries over UDP and closes TCP connections,
// so that Plan's check for a green left serving finds it serving from no
// server. A fixed port such as the lab's 5301 is another test's load
// balancer while packages run in parallel, and answered Plan from that
// test's servers.
func refusingLB(t *testing.T) string {
	t.Helper()
	for range 10 {
		addr := dnstest.ServeUDP(t, func(_, reply *dns.Msg) { reply.Rcode = dns.RcodeRefused })
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // the TCP port of that number is taken: another
		}
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				_ = conn.Close()
			}
		}()
		return addr
	}
	t.Fatal("no loopback port free over both UDP and TCP")
	return ""
}

// labFleet makes the test fleet a lab fleet, provisioned with Ansible's
// local connection: no SSH to wait for.
func (c *cloudEnv) labFleet(t *testing.T) {
	t.Helper()
	c.useFleet(t, testFleetYAML+"ansible: {connection: local, "+testPlaybooks+"}\nlab: {}\n")
}

// useFleet makes the test fleet the one yaml writes, behind the test's
// own load balancer.
func (c *cloudEnv) useFleet(t *testing.T, yaml string) {
	t.Helper()
	fleet, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	fleet.LoadBalancers[0].Address = c.lb
	c.fleet = fleet
}

// labFleetServedAt makes the test fleet, with the YAML more, a lab fleet
// whose server s answers DNS at addr: the worker places a lab fleet's VM
// n on its port base + n%1000.
func (c *cloudEnv) labFleetServedAt(t *testing.T, s dnsroll.Server, addr, more string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c.useFleet(t, fmt.Sprintf("%sansible: {%s}\n%slab: {dns_port_base: %d}\n", testFleetYAML, testPlaybooks, more, p-s.ID%1000))
}

// reboot reboots the simulator's instance id, as Linode's maintenance
// does: it is rebooting for the simulator's boot delay.
func (c *cloudEnv) reboot(t *testing.T, id int) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/v4/linode/instances/%d/reboot", id), nil)
	req.Header.Set("Authorization", "Bearer t0k")
	w := httptest.NewRecorder()
	c.sim.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("reboot Linode %d: %d %s", id, w.Code, w.Body)
	}
}

func (c *cloudEnv) ensure(t *testing.T, label string) (ServerResult, error) {
	t.Helper()
	spec := dnsroll.ServerSpec{Label: label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}
	v, err := c.env.ExecuteActivity(c.acts.EnsureServer, EnsureServerInput{StepFleet: StepFleet{Fleet: c.fleet}, Spec: spec})
	var res ServerResult
	if err == nil {
		err = v.Get(&res)
	}
	return res, err
}

// mustEnsure is ensure that fails t on an error.
func (c *cloudEnv) mustEnsure(t *testing.T, label string) ServerResult {
	t.Helper()
	res, err := c.ensure(t, label)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (c *cloudEnv) count(label string) int {
	n := 0
	for _, i := range c.sim.Instances() {
		if i.Label == label {
			n++
		}
	}
	return n
}

func TestEnsureServerIsIdempotent(t *testing.T) {
	c := newCloudEnv(t)
	first := c.mustEnsure(t, "ns1-next")
	if !first.Created || first.Server.Status != "running" || first.Server.DNSPort != 53 {
		t.Errorf("first ensure = %+v, want a created, running server on port 53", first)
	}
	second := c.mustEnsure(t, "ns1-next")
	if second.Created || second.Server.ID != first.Server.ID {
		t.Errorf("second ensure created %v id %d, want reuse of %d", second.Created, second.Server.ID, first.Server.ID)
	}
	if n := c.count("ns1-next"); n != 1 {
		t.Errorf("%d instances labelled ns1-next, want 1", n)
	}
}

// A create whose response is lost (the server created the VM, the client saw
// an error) must not leave a duplicate or fail the step.
func TestEnsureServerAfterLostCreateResponse(t *testing.T) {
	c := newCloudEnv(t)
	c.sim.InjectFault(linodesim.Fault{Method: "POST", PathPrefix: "/v4/linode/instances", LoseResponse: true})
	res, err := c.ensure(t, "ns1-next")
	if err != nil {
		// The activity may fail this attempt; Temporal's retry then finds the VM.
		if res, err = c.ensure(t, "ns1-next"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.count("ns1-next"); n != 1 || res.Server.Label != "ns1-next" {
		t.Errorf("%d instances after a lost create response, want 1 (%+v)", n, res)
	}
}

// A 503 is retried by linodego itself, within the call: when Linode made
// the change before answering 503, the same request goes again. The
// create's second try is refused as a duplicate label, the rename's and
// the delete's find the change made; each step still leaves one server.
func TestAppliedChangesAnswered503AreRetriedSafely(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 100 * time.Millisecond})
	lost503 := func(method string) {
		c.sim.InjectFault(linodesim.Fault{Method: method, PathPrefix: "/v4/linode/instances", LoseResponse: true, Status: http.StatusServiceUnavailable})
	}
	lost503("POST")
	res, err := c.ensure(t, "ns1-next")
	if err != nil || c.count("ns1-next") != 1 || c.sim.Created() != 1 {
		t.Fatalf("create answered 503: %v; instances %+v, want one ns1-next", err, c.sim.Instances())
	}
	lost503("PUT")
	if _, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: res.Server, To: "ns1"}); err != nil || c.count("ns1") != 1 {
		t.Fatalf("rename answered 503: %v; instances %+v, want ns1", err, c.sim.Instances())
	}
	lost503("DELETE")
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: res.Server}); err != nil || len(c.sim.Instances()) != 0 {
		t.Fatalf("delete answered 503: %v; instances %+v, want none", err, c.sim.Instances())
	}
	if f := c.sim.Faults(); len(f) != 0 {
		t.Errorf("faults not met: %+v", f)
	}
}

func TestEnsureServerRefusesUntaggedLabel(t *testing.T) {
	c := newCloudEnv(t)
	if _, err := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(app.Error(), "is taken by Linode 1001 (no tags), not this fleet's (tag dnsroll-fleet-t)") {
		t.Fatalf("err = %v, want a non-retryable conflict naming the holder and the missing tag", err)
	}
}

func TestDeleteServer(t *testing.T) {
	c := newCloudEnv(t)
	res := c.mustEnsure(t, "ns1")
	in := DeleteServerInput{Tag: c.fleet.Tag(), Server: res.Server}
	for i, wantNote := range []string{"", "already deleted"} {
		v, err := c.env.ExecuteActivity(c.acts.DeleteServer, in)
		if err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
		var out StepResult
		_ = v.Get(&out)
		if out.Note != wantNote {
			t.Errorf("delete #%d note = %q, want %q", i+1, out.Note, wantNote)
		}
	}
	untagged, _ := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "other", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: untagged}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("delete of an untagged instance: err = %v", err)
	}
	if c.count("other") != 1 {
		t.Error("untagged instance was deleted")
	}
}

// DeleteGreen deletes only tagged -next servers, and returns once they are
// gone, not merely "deleting" with their labels still taken.
func TestDeleteGreenOnlyTouchesTaggedNext(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 300 * time.Millisecond})
	for _, l := range []string{"ns1", "ns1-next"} {
		c.mustEnsure(t, l)
	}
	stranger, _ := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns2-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	_ = stranger
	// ns1 (blue) named by mistake: the activity itself refuses it, a
	// second guard behind the workflow's own filter (cleanupOnly).
	if _, err := c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next", "ns2-next", "ns1"}}); err != nil {
		t.Fatal(err)
	}
	if c.count("ns1-next") != 0 || c.count("ns1") != 1 || c.count("ns2-next") != 1 {
		t.Errorf("after DeleteGreen: %+v", c.sim.Instances())
	}
}

// DeleteGreen deletes a server it is given the ID of though its label is
// not one it was given, as long as it is the fleet's and still a -next
// server: a blue, or one promoted by hand, is never deleted by ID.
func TestDeleteGreenByID(t *testing.T) {
	c := newCloudEnv(t)
	moved := c.mustEnsure(t, "ns2-next").Server
	if err := c.cloud.Rename(t.Context(), moved.ID, "ns9-next"); err != nil {
		t.Fatal(err)
	}
	blue := c.mustEnsure(t, "ns1").Server
	stranger, _ := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns3-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	in := DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next"}, IDs: []int{moved.ID, blue.ID, stranger.ID}}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteGreen, in); err != nil {
		t.Fatal(err)
	}
	if c.count("ns9-next") != 0 || c.count("ns1") != 1 || c.count("ns3-next") != 1 {
		t.Errorf("after DeleteGreen: %+v", c.sim.Instances())
	}
	// The tag is checked on each server, not left to the cloud's list.
	c.acts.Cloud = listingAlso{Cloud: c.cloud, extra: stranger}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns3-next"}, IDs: []int{stranger.ID}}); err != nil {
		t.Fatal(err)
	}
	if c.count("ns3-next") != 1 {
		t.Errorf("an untagged server a list returned was deleted: %+v", c.sim.Instances())
	}
}

// listingAlso is a Cloud whose lists return extra too, whatever its tags.
type listingAlso struct {
	Cloud
	extra dnsroll.Server
}

func (c listingAlso) List(ctx context.Context, tag string) ([]dnsroll.Server, error) {
	all, err := c.Cloud.List(ctx, tag)
	return append(all, c.extra), err
}

func TestRenameServer(t *testing.T) {
	c := newCloudEnv(t)
	res := c.mustEnsure(t, "ns1-next")
	in := RenameInput{Tag: c.fleet.Tag(), Server: res.Server, To: "ns1"}
	for i := 0; i < 2; i++ { // the second run finds it renamed already
		if _, err := c.env.ExecuteActivity(c.acts.RenameServer, in); err != nil {
			t.Fatalf("rename #%d: %v", i+1, err)
		}
	}
	if c.count("ns1") != 1 || c.count("ns1-next") != 0 {
		t.Errorf("after rename: %+v", c.sim.Instances())
	}
	// Only an exact "-next" suffix is stripped: a character-set strip would
	// turn "ns1-text" into "ns1-t" or worse.
	odd := c.mustEnsure(t, "ns1-text")
	if _, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: odd.Server, To: "ns1-t"}); err == nil {
		t.Error("renamed a label without the -next suffix")
	}
	// A green is renamed to its own final label only: ns2-next to ns3
	// would take another nameserver's label.
	other := c.mustEnsure(t, "ns2-next")
	if _, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: other.Server, To: "ns3"}); err == nil || !strings.Contains(err.Error(), "refusing to rename ns2-next to ns3") {
		t.Errorf("rename of ns2-next to ns3: err = %v, want a refusal", err)
	}
	if c.count("ns2-next") != 1 || c.count("ns3") != 0 {
		t.Errorf("ns2-next was renamed to another's label: %+v", c.sim.Instances())
	}
	// A server without the fleet's tag is never renamed, -next or not.
	stranger, _ := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns5-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	if _, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: stranger, To: "ns5"}); err == nil || !strings.Contains(err.Error(), "lacks tag") {
		t.Errorf("rename of an untagged instance: err = %v", err)
	}
	if c.count("ns5-next") != 1 || c.count("ns5") != 0 {
		t.Errorf("an untagged instance was renamed: %+v", c.sim.Instances())
	}
}

// Cloud errors are classed by whether a retry can fix them: a 5xx, a 429
// or a 408 is retried until the step's deadline; any other 4xx (a bad
// token, a forbidden call, a bad request) fails the step at once.
func TestCloudErrorsAreClassedForRetry(t *testing.T) {
	for _, tt := range []struct {
		status    int
		retryable bool
	}{
		{500, true}, {502, true}, {504, true}, {429, true}, {408, true},
		{400, false}, {401, false}, {403, false}, {422, false},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel() // linodego itself waits between its retries of 408 and 429
			c := newCloudEnv(t)
			c.sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", Status: tt.status, Count: -1})
			_, err := c.ensure(t, "ns1-next")
			var app *temporal.ApplicationError
			if !errors.As(err, &app) {
				t.Fatalf("%d: err = %v, want an application error", tt.status, err)
			}
			if got := !app.NonRetryable(); got != tt.retryable {
				t.Errorf("%d: retryable = %v, want %v (%v)", tt.status, got, tt.retryable, err)
			}
		})
	}
}

// On Linode a deleted instance shows status "deleting", and keeps its
// label, for a while. Renaming green to blue's label right after blue's
// delete must wait that out rather than fail after blue is gone.
func TestRenameWhileOldInstanceIsDeleting(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 500 * time.Millisecond})
	blue := c.mustEnsure(t, "ns1")
	green := c.mustEnsure(t, "ns1-next")
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: blue.Server}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: green.Server, To: "ns1"}); err != nil {
		t.Fatalf("rename right after the delete: %v", err)
	}
	got := c.sim.Instances()
	if len(got) != 1 || got[0].Label != "ns1" || got[0].ID != green.Server.ID {
		t.Errorf("after delete and rename: %+v", got)
	}
}

// blueBeingDeleted is a cloud in which blue, ns1, is being deleted, for an
// hour, and green, ns1-next, which it returns, waits for its label.
func blueBeingDeleted(t *testing.T) (*cloudEnv, ServerResult) {
	t.Helper()
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: time.Hour})
	blue := c.mustEnsure(t, "ns1")
	green := c.mustEnsure(t, "ns1-next")
	if err := c.cloud.Delete(t.Context(), blue.Server.ID); err != nil {
		t.Fatal(err)
	}
	return c, green
}

// A rename that meets blue's label still taken by a deleting instance is
// retried, whichever way the cloud orders a delete and a rename.
func TestRenameConflictWithDeletingInstanceIsRetryable(t *testing.T) {
	c, green := blueBeingDeleted(t)
	_, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: green.Server, To: "ns1"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), "deleting") {
		t.Errorf("rename onto a deleting instance's label: %v; want a retryable error that says it waits for the delete", err)
	}
}

// A rename refused as taken while no list shows the holder (Linode may
// free a deleted instance's label a moment after its GET answers 404) is
// retried: it comes after blue's deletion, past the point of no return,
// where a final failure leaves the fleet for a person to finish. A holder
// outside the fleet is still a refusal that names it.
func TestRenameConflictWithAnUnlistedHolderIsRetryable(t *testing.T) {
	c, green := blueBeingDeleted(t)
	c.acts.Cloud = lagCloud{Cloud: c.cloud, hide: "ns1"}
	_, err := c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: green.Server, To: "ns1"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() {
		t.Errorf("rename onto a label whose holder no list shows: %v; want an error a retry may clear", err)
	}

	c.acts.Cloud = c.cloud
	other, err := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns2", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	green2 := c.mustEnsure(t, "ns2-next")
	_, err = c.env.ExecuteActivity(c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: green2.Server, To: "ns2"})
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), fmt.Sprintf("label ns2 is taken by Linode %d (no tags), not this fleet's", other.ID)) {
		t.Errorf("rename onto a label an untagged Linode holds: %v; want a refusal naming it", err)
	}
}

// A green that shows a status Linode never leaves by itself (offline,
// after a failed boot or a shutdown) fails EnsureServer with that status
// once it has lasted stuckAfter: before, every attempt waited out the
// create step's whole deadline and said only "context deadline exceeded".
func TestEnsureServerGivesUpOnAnOfflineServer(t *testing.T) {
	c := newCloudEnv(t)
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = 200 * time.Millisecond
	green := c.mustEnsure(t, "ns1-next")
	req := httptest.NewRequest("POST", fmt.Sprintf("/v4/linode/instances/%d/shutdown", green.Server.ID), nil)
	req.Header.Set("Authorization", "Bearer t0k")
	rec := httptest.NewRecorder()
	c.sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("shutdown: %d %s", rec.Code, rec.Body)
	}

	start := time.Now()
	_, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("ensure on an offline green: %v; want an error no retry of this step clears", err)
	}
	for _, want := range []string{"ns1-next", fmt.Sprint(green.Server.ID), "offline", "does not start it by itself"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// Plan does not take an instance that is being deleted for blue.
func TestPlanSkipsDeletingInstances(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: time.Hour})
	blue := c.mustEnsure(t, "ns1")
	if err := c.cloud.Delete(t.Context(), blue.Server.ID); err != nil {
		t.Fatal(err)
	}
	plan, _ := c.plan(t)
	if len(plan.Blue) != 0 {
		t.Errorf("blue = %v, want none: ns1 is being deleted", plan.Blue)
	}
}

// A fleet whose load balancer playbook is missing on the worker is refused
// at Plan, before any server exists: it would fail only at the switch.
func TestPlanRefusesAMissingPlaybook(t *testing.T) {
	c := newCloudEnv(t)
	dir := t.TempDir()
	writeFleetDir(t, dir)
	if err := os.Remove(filepath.Join(dir, "ansible", "loadbalancer.yml")); err != nil {
		t.Fatal(err)
	}
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t"})
	if err == nil || !strings.Contains(err.Error(), "ansible.loadbalancer_playbook: "+filepath.Join(dir, "ansible", "loadbalancer.yml")+" does not exist") {
		t.Errorf("Plan without the load balancer playbook: %v", err)
	}
}

// plan runs Plan for the test fleet, whose files it writes to a new
// directory, which it returns.
func (c *cloudEnv) plan(t *testing.T) (Plan, string) {
	t.Helper()
	return c.planWith(t, PlanInput{Fleet: "t"})
}

// planWith is plan with in as Plan's input.
func (c *cloudEnv) planWith(t *testing.T, in PlanInput) (Plan, string) {
	t.Helper()
	dir := t.TempDir()
	writeFleetDir(t, dir)
	return c.planIn(t, dir, in), dir
}

// planIn runs Plan for the test fleet with its files in dir.
func (c *cloudEnv) planIn(t *testing.T, dir string, in PlanInput) Plan {
	t.Helper()
	c.readFrom(dir)
	v, err := c.env.ExecuteActivity(c.acts.Plan, in)
	return temporaltest.Value[Plan](t, v, err)
}

// readFrom has Plan read the test fleet, with its files in dir, on a
// worker with an SSH key.
func (c *cloudEnv) readFrom(dir string) {
	c.fleet.Dir = dir
	c.acts.Fleets = func(string) (*config.Fleet, error) { return c.fleet, nil }
	c.acts.Target = preflight.Target{Known: true, SSHKeys: 1}
}

// planRefusal runs Plan for the test fleet, as it is now, with its files
// in a new directory, and returns the refusal: Plan passing, or failing
// in a way a retry may change, fails the test.
func (c *cloudEnv) planRefusal(t *testing.T) error {
	t.Helper()
	dir := t.TempDir()
	writeFleetDir(t, dir)
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("Plan: %v; want a refusal no retry changes", err)
	}
	return err
}

// An earlier rollout's green that is still deleting holds its label: the
// next EnsureServer waits for it to go, then creates a fresh one.
func TestEnsureServerWaitsOutADeletingNamesake(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 300 * time.Millisecond})
	old := c.mustEnsure(t, "ns1-next")
	if err := c.cloud.Delete(t.Context(), old.Server.ID); err != nil {
		t.Fatal(err)
	}
	res, err := c.ensure(t, "ns1-next")
	if err != nil {
		t.Fatalf("ensure while the namesake is deleting: %v", err)
	}
	if res.Server.ID == old.Server.ID || !res.Created || res.Server.Status != "running" {
		t.Errorf("got %+v, want a new running server", res)
	}
}

// Activities.PollInterval replaces Linode's 2 s between checks of a server
// that is booting or being deleted: the lab's simulator boots and deletes
// in a fraction of that, and a lab create used to wait the whole 2 s.
func TestStepsPollAtTheGivenInterval(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 300 * time.Millisecond})
	pollInterval = 10 * time.Second
	t.Cleanup(func() { pollInterval = 10 * time.Millisecond })
	c.acts.PollInterval = 10 * time.Millisecond
	start := time.Now()
	res := c.mustEnsure(t, "ns1-next")
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: res.Server}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a create and a delete took %v; want the polls 10ms apart, not %v", took, pollInterval)
	}
}

// A fleet that provisions over SSH, on a worker that would create VMs with
// no SSH key, is refused at Plan: before any VM exists, naming the fix.
func TestPlanRefusesSSHFleetWithoutKeys(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.Fleets = func(string) (*config.Fleet, error) { return c.fleet, nil }
	c.acts.Target = preflight.Target{Known: true}
	if c.fleet.Ansible.Connection != "ssh" {
		t.Fatalf("the test fleet connects over %q, want ssh (the default)", c.fleet.Ansible.Connection)
	}
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("plan without keys: %v; want a non-retryable error", err)
	}
	c.wantRefusedBeforeAnyVM(t, err, "DNSROLL_SSH_AUTHORIZED_KEYS")
}

// A fleet naming a region, plan, image or firewall that the account
// cannot create a Linode with is refused at Plan, each field with where to
// find the IDs there are, before any VM exists: without the check, the
// first nameserver's green was created before the second's create failed.
// So is a region closed to the account, and a plan sold out in a region.
func TestPlanRefusesWhatLinodeDoesNotOffer(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{SoldOut: map[string][]string{"eu-west": {"g6-dedicated-2"}}, ClosedRegions: []string{"br-gru"}})
	ok := c.fleet.Nameservers[0]
	badRegion, badImage, badFirewall, closed, soldOut, inStock := ok, ok, ok, ok, ok, ok
	badRegion.Label, badRegion.Region = "ns2", "mars-1"
	badImage.Label, badImage.Image = "ns3", "debian12"
	badFirewall.Label, badFirewall.FirewallID = "ns4", 77
	closed.Label, closed.Region = "ns5", "br-gru"
	soldOut.Label, soldOut.Region, soldOut.Type = "ns6", "eu-west", "g6-dedicated-2"
	inStock.Label, inStock.Type = "ns7", "g6-dedicated-2"
	c.fleet.Nameservers = append(c.fleet.Nameservers, badRegion, badImage, badFirewall, closed, soldOut, inStock)
	err := c.planRefusal(t)
	for _, want := range []string{
		`nameservers[1].region: Linode has no region "mars-1"; ` + "`linode-cli regions list`",
		`nameservers[2].image: this account cannot deploy image "debian12"`,
		`nameservers[3].firewall_id: this account has no Cloud Firewall 77`,
		`nameservers[4].region: this account may not create Linodes in region br-gru`,
		`nameservers[5].type: Linode has no g6-dedicated-2 left in region eu-west for now`,
	} {
		c.wantRefusedBeforeAnyVM(t, err, want)
	}
	if strings.Contains(err.Error(), "nameservers[0]") || strings.Contains(err.Error(), "nameservers[6]") {
		t.Errorf("refusal %q names ns1 or ns7, which Linode offers", err)
	}
}

// wantRefusedBeforeAnyVM fails t unless the refusal err says want and no
// instance exists.
func (c *cloudEnv) wantRefusedBeforeAnyVM(t *testing.T, err error, want string) {
	t.Helper()
	if !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q", err, want)
	}
	if n := len(c.sim.Instances()); n != 0 {
		t.Errorf("%d instances exist after the refusal", n)
	}
}

// A new server behind a Cloud Firewall that drops SSH or DNS could not be
// provisioned or reached, so Plan refuses the fleet before any VM exists,
// naming the firewall once for every field that puts a server behind it:
// the account's default firewall, where firewall_id is unset, counts.
func TestPlanRefusesAFirewallThatDropsSSHOrDNS(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{Firewalls: []int{88}, DefaultFirewall: 77, FirewallRules: map[int]linodesim.Firewall{
		77: {InboundPolicy: "DROP", Inbound: []linodesim.FirewallRule{{Action: "ACCEPT", Protocol: "TCP", Ports: "22"}}},
	}})
	ns2 := c.fleet.Nameservers[0]
	ns2.Label = "ns2"
	c.fleet.Nameservers = append(c.fleet.Nameservers, ns2)
	want := "nameservers[0].firewall_id, nameservers[1].firewall_id: Cloud Firewall 77 (the account's default for new Linodes, which Linode puts a server behind when firewall_id is unset) " +
		"drops inbound 53/udp, 53/tcp from everywhere, so DNS queries could not reach them"
	c.wantRefusedBeforeAnyVM(t, c.planRefusal(t), want)
	for i := range c.fleet.Nameservers {
		c.fleet.Nameservers[i].FirewallID = 88
	}
	if _, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"}); err != nil {
		t.Errorf("Plan with a firewall that accepts everything: %v", err)
	}
}

// A load balancer replacement makes each <lb>-next in the region, plan and
// image of the first nameserver it fronts. One the account cannot create
// is refused before any VM exists, naming both the load balancer and the
// nameserver's field: before, lb1-next was created before lb2-next's
// create failed. A nameserver no load balancer fronts is not asked about.
func TestNewLoadBalancersOffersAreCheckedFirst(t *testing.T) {
	c := newCloudEnv(t)
	ns2, ns3 := c.fleet.Nameservers[0], c.fleet.Nameservers[0]
	ns2.Label, ns2.Region = "ns2", "mars-1"
	ns3.Label, ns3.Type = "ns3", "g6-huge-99"
	c.fleet.Nameservers = append(c.fleet.Nameservers, ns2, ns3)
	c.fleet.LoadBalancers = append(c.fleet.LoadBalancers, config.LoadBalancer{Name: "lb2", Address: "127.0.0.1:5302", Fronts: config.Labels{"ns2", "ns1"}})

	_, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("check: %v; want a refusal no retry changes", err)
	}
	c.wantRefusedBeforeAnyVM(t, err, `load_balancers[1] (lb2-next is made as nameserver ns2, the first it fronts): nameservers[1].region: Linode has no region "mars-1"`)
	if strings.Contains(err.Error(), "load_balancers[0]") || strings.Contains(err.Error(), "ns3") {
		t.Errorf("refusal %q names lb1 or ns3, which need nothing Linode lacks", err)
	}

	c.fleet.Nameservers[1].Region = "us-east"
	if _, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet}); err != nil {
		t.Errorf("a fleet whose load balancers Linode can make: %v", err)
	}
}

// A replacement load balancer is made from a nameserver's image: from one
// of Linode's, it has only root, so a non-root load balancer user (fine
// for the hand-built ones) is refused before any VM exists.
func TestNewLoadBalancersNeedAUserTheirImageHas(t *testing.T) {
	c := newCloudEnv(t)
	for _, tt := range []struct {
		ansible config.Ansible
		field   string
	}{
		{config.Ansible{Connection: "ssh", LoadBalancerSSHUser: "deploy", SSHUser: "root"}, "ansible.loadbalancer_ssh_user"},
		{config.Ansible{Connection: "ssh", SSHUser: "deploy", NameserverSSHUser: "root"}, "ansible.ssh_user"},
	} {
		c.fleet.Ansible = tt.ansible
		_, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
		want := `load_balancers[0] (lb1-next is made as nameserver ns1, the first it fronts): ` + tt.field + `: "deploy" logs into new load balancers, but nameservers[0].image linode/debian12 is one of Linode's images, whose new VMs have only root: set loadbalancer_ssh_user: root`
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), want) {
			t.Errorf("check with %+v: %v; want a refusal containing %q", tt.ansible, err, want)
		}
	}
	c.fleet.Ansible = config.Ansible{Connection: "ssh", SSHUser: "root"}
	if _, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet}); err != nil {
		t.Errorf("root: %v", err)
	}
}

// A replacement load balancer is created behind the load balancer's own
// Cloud Firewall (it takes DNS from anywhere, unlike a nameserver), one
// the account lacks being refused before any VM exists.
func TestNewLoadBalancersAreCreatedBehindTheirFirewall(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{Firewalls: []int{88}})
	c.mustEnsure(t, "ns1")
	c.fleet.LoadBalancers[0].FirewallID = 77
	_, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	want := "load_balancers[0] (lb1-next is made as nameserver ns1, the first it fronts): load_balancers[0].firewall_id: this account has no Cloud Firewall 77"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("check: %v; want a refusal containing %q", err, want)
	}
	c.fleet.LoadBalancers[0].FirewallID = 88
	if _, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet}); err != nil {
		t.Fatalf("check with the account's firewall: %v", err)
	}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": &pointRecorder{}}
	v, err := c.env.ExecuteActivity(c.acts.CreateLoadBalancer, LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]})
	got := temporaltest.Value[NewLoadBalancer](t, v, err)
	firewall := -1
	for _, inst := range c.sim.Instances() {
		if inst.ID == got.Server.ID {
			firewall = inst.FirewallID
		}
	}
	if firewall != 88 {
		t.Errorf("lb1-next (instance %d) was created behind firewall %d, want 88 (-1: no such instance)", got.Server.ID, firewall)
	}
}

// fakeRunner fails every playbook with res.
type fakeRunner struct{ res provision.Result }

func (f fakeRunner) Run(context.Context, provision.Request, func(string)) (provision.Result, error) {
	return f.res, errors.New("ansible-playbook failed")
}

// A zone file that BIND refuses fails provisioning at once: no retry
// changes the file. A host that cannot be reached is retried.
func TestProvisionRejectedZoneIsNotRetried(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failure   provision.Failure
		retryable bool
	}{
		{"zone refused by named-checkzone", provision.Failure{Host: "ns1-next", Task: "nameserver : Install zone files", Message: "failed to validate"}, false},
		{"zone set refused by named-checkconf -z", provision.Failure{Host: "ns1-next", Task: "nameserver : Validate and install the zone set", Message: "non-zero return code: failed to validate 1 of 51 zones (named-checkconf -z); the running zones are unchanged:\ndns_rdata_fromtext: zone37.example.zone:6: near '192.0.2': bad dotted quad"}, false},
		{"host unreachable", provision.Failure{Host: "ns1-next", Task: "Gathering Facts", Message: "Failed to connect to the host via ssh"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCloudEnv(t)
			c.labFleet(t) // no SSH to wait for
			c.acts.Ansible = fakeRunner{res: provision.Result{Failures: []provision.Failure{tt.failure}}}
			_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: StepFleet{Fleet: c.fleet}, Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}})
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.NonRetryable() == tt.retryable {
				t.Errorf("err = %v, want retryable %v", err, tt.retryable)
			}
		})
	}
}

// A fleet whose load balancer answers from a -next server is one an
// earlier rollout left on green (cleanup-failed, terminated, or failed
// after the point of no return). A new rollout would take the blue servers left for blue
// and stage them live, taking down a load balancer whose blue is gone:
// Plan refuses it, saying how to finish, before anything changes.
func TestPlanRefusesAFleetLeftOnGreen(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	green := c.mustEnsure(t, "ns1-next")
	served := serveIdentity(t, ServerID(green.Server), 7)
	c.fleet.LoadBalancers[0].Address = served.DNSAddr()
	c.fleet.Probe.Timeout = config.Duration(time.Second)

	dir := t.TempDir()
	writeFleetDir(t, dir)
	c.readFrom(dir)
	_, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t"})
	if err == nil {
		t.Fatal("Plan took a fleet whose load balancer serves from ns1-next")
	}
	for _, want := range []string{"lb1", "ns1-next", ServerID(green.Server), "dnsroll rollout cleanup", "terminated before its point of no return", "point of no return"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// The same leftover green, with the load balancer on blue (an abort
	// whose green delete failed), is reused as before.
	blue := serveIdentity(t, "linode-1", 7)
	c.fleet.LoadBalancers[0].Address = blue.DNSAddr()
	plan := c.planIn(t, dir, PlanInput{Fleet: "t"})
	if _, ok := plan.Blue["ns1"]; !ok {
		t.Errorf("blue = %v, want ns1", plan.Blue)
	}
}

// A revision for a fleet whose zone file paths do not name it changes
// nothing that green serves: the plan says so, rather than let the
// operator believe that revision is what rolls out.
func TestPlanWarnsOfARevisionThatOnlyLabels(t *testing.T) {
	c := newCloudEnv(t)
	plan, _ := c.planWith(t, PlanInput{Fleet: "t", Revision: "9f2c1e7"})
	want := "revision 9f2c1e7 only labels this rollout: no zone file path of fleet t has {revision}"
	if !slices.ContainsFunc(plan.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
		t.Errorf("warnings %q, want one that starts %q", plan.Warnings, want)
	}
	if plan, _ = c.plan(t); slices.ContainsFunc(plan.Warnings, func(w string) bool { return strings.Contains(w, "only labels") }) {
		t.Errorf("with no revision, warnings %q", plan.Warnings)
	}
}

// A token of a restricted Linode user that may only read a blue server
// could create, provision and switch to green, then fail at teardown with
// both sets running. Plan refuses it before any VM exists, naming the
// nameserver and the grant, and refuses a user that may not create
// Linodes at all; with the grants, the same fleet plans.
func TestPlanRefusesATokenThatMayNotFinish(t *testing.T) {
	c := newCloudEnv(t)
	blue := c.mustEnsure(t, "ns1")
	c.sim.Restrict(linodesim.Grants{ReadOnly: []string{"ns1"}})
	err := c.planRefusal(t)
	for _, want := range []string{
		"the Linode token acts as dnsroll, a restricted user that may not create Linodes: give dnsroll the add_linodes grant",
		fmt.Sprintf("nameservers[0]: ns1 (Linode %d) is read-only to dnsroll, the user the Linode token acts as, and this run deletes or renames it", blue.Server.ID),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	if n := c.sim.Created(); n != 1 {
		t.Errorf("%d instances created; want only blue's", n)
	}

	// Every server a run creates carries the fleet's tag, which Linode
	// lets a restricted user add only with read-write account access.
	c.sim.Restrict(linodesim.Grants{AddLinodes: true})
	err = c.planRefusal(t)
	if want := "the Linode token acts as dnsroll, a restricted user that may not tag Linodes, and every server a run creates is tagged dnsroll-fleet-t: give dnsroll read-write account access"; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q", err, want)
	}
	c.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if _, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"}); err != nil {
		t.Errorf("Plan with the grants a rollout needs: %v", err)
	}

	// A green an earlier rollout left is provisioned again, then renamed:
	// read-only, it is refused. The run reuses it and creates nothing, so
	// a user that may not create Linodes may run it.
	left := c.mustEnsure(t, "ns1-next")
	c.sim.Restrict(linodesim.Grants{ReadOnly: []string{"ns1-next"}})
	err = c.planRefusal(t)
	if want := fmt.Sprintf("nameservers[0]'s green, left by an earlier rollout: ns1-next (Linode %d) is read-only to dnsroll", left.Server.ID); !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q", err, want)
	}
	if strings.Contains(err.Error(), "may not create Linodes") || strings.Contains(err.Error(), "may not tag") {
		t.Errorf("refusal %q: the run creates nothing, so it needs no add_linodes nor tagging", err)
	}
	c.sim.Restrict(linodesim.Grants{})
	if _, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"}); err != nil {
		t.Errorf("Plan of a run that reuses every green, by a user that may not create Linodes: %v", err)
	}
	// A green of another image than the fleet's is replaced: created anew.
	c.fleet.Nameservers[0].Image = "linode/debian13"
	err = c.planRefusal(t)
	if want := "may not create Linodes"; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q: the green left is replaced, which creates one", err, want)
	}
}

// A load balancer replacement deletes the old load balancer's server
// once the glue names the new one: a token that may only read it is
// refused before the new one is made.
func TestNewLoadBalancersNeedATokenThatMayDeleteTheOld(t *testing.T) {
	c := newCloudEnv(t)
	old := c.mustEnsure(t, "lb1")
	c.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write", ReadOnly: []string{"lb1"}})
	_, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	want := fmt.Sprintf("load_balancers[0]: lb1 (Linode %d) is read-only to dnsroll", old.Server.ID)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("check: %v; want a refusal containing %q", err, want)
	}
	c.sim.Restrict(linodesim.Grants{AddLinodes: true, AccountAccess: "read_write"})
	if _, err := c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet}); err != nil {
		t.Errorf("a token that may delete the old load balancer: %v", err)
	}
	// A replacement an earlier run left is reused, then renamed.
	next := c.mustEnsure(t, "lb1-next")
	c.sim.Restrict(linodesim.Grants{ReadOnly: []string{"lb1-next"}})
	_, err = c.env.ExecuteActivity(c.acts.CheckNewLoadBalancerOffers, CheckOffersInput{Fleet: c.fleet})
	want = fmt.Sprintf("load_balancers[0]'s replacement, left by an earlier replacement: lb1-next (Linode %d) is read-only to dnsroll", next.Server.ID)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "may not create Linodes") {
		t.Errorf("check: %v; want a refusal containing %q, and none for creating: the run creates nothing", err, want)
	}
}

// Linode labels are unique in the whole account. A nameserver's label, or
// its -next, held by an instance without the fleet's tag (made by hand, or
// another fleet's) would stop green at its rename, after the point of no
// return on a fleet's first rollout: Plan refuses it before any VM exists,
// naming the field, the holder and the fix.
func TestPlanRefusesALabelAnInstanceOutsideTheFleetHolds(t *testing.T) {
	for _, tc := range []struct {
		name, label string
		tags        []string
		want        string
	}{
		{"made by hand", "ns1", nil, "nameservers[0].label: ns1 is the label of Linode %d (no tags), not this fleet's"},
		{"another fleet's green", "NS1-next", []string{"dnsroll-fleet-other"}, "nameservers[0].label: NS1-next is the label of Linode %d (tags dnsroll-fleet-other), not this fleet's"},
		{"the fleet's own, in capitals", "NS1", []string{"dnsroll-fleet-t"}, "nameservers[0].label: Linode %d of this fleet is labelled NS1, which Linode takes for ns1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloudEnv(t)
			holder, err := c.cloud.Create(context.Background(), dnsroll.ServerSpec{Label: tc.label, Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: tc.tags}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.planRefusal(t)
			if want := fmt.Sprintf(tc.want, holder.ID); !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q lacks %q and why", err, want)
			}
			if n := c.sim.Created(); n != 1 {
				t.Errorf("%d instances created, want only the holder", n)
			}
		})
	}

	// The fleet's own servers hold its labels: blue ns1, and a green an
	// earlier rollout left.
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	c.mustEnsure(t, "ns1-next")
	c.planWith(t, PlanInput{Fleet: "t", Revision: "A"})
}

// A green an earlier rollout left is reused only as the fleet now asks for
// it: one in another region, of another plan or from another image is
// deleted and created anew, or the rollout would put a server the fleet
// file no longer describes into service.
func TestEnsureServerReplacesALeftGreenOfAnotherSpec(t *testing.T) {
	c := newCloudEnv(t)
	ctx := context.Background()
	stale, err := c.cloud.Create(ctx, dnsroll.ServerSpec{Label: "ns1-next", Region: "eu-central", Type: "g6-nanode-1", Image: "linode/debian11", Tags: []string{c.fleet.Tag()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := c.planWith(t, PlanInput{Fleet: "t", Revision: "A"})
	if want := "replacing ns1-next (id 1001, 127.0.0.1:53) left by an earlier rollout: it has region eu-central, not us-east; image linode/debian11, not linode/debian12"; !slices.Contains(plan.Warnings, want) {
		t.Errorf("plan warnings %q lack %q", plan.Warnings, want)
	}
	keys := &recordingKeys{}
	c.acts.HostKeys = keys
	res := c.mustEnsure(t, "ns1-next") // us-east, linode/debian12
	if res.Server.ID == stale.ID || !res.Created {
		t.Fatalf("EnsureServer reused Linode %d in eu-central from debian11: %+v", stale.ID, res)
	}
	// The stale server's keys go with it, a key given to its label
	// included: only the new server's given key is to be accepted.
	if want := "t/ns1-next=" + ServerID(stale) + "@" + stale.IPv4; strings.Join(keys.forgotten, " ") != want || len(keys.given) != 1 {
		t.Errorf("forgotten %q, keys given for %q; want %q forgotten before one key given", keys.forgotten, keys.given, want)
	}
	got, err := c.cloud.Get(ctx, res.Server.ID)
	if err != nil || got.Region != "us-east" {
		t.Errorf("the new server: %+v, %v; want one in us-east", got, err)
	}
	if n := c.count("ns1-next"); n != 1 {
		t.Errorf("%d instances labelled ns1-next, want 1 (the stale one deleted)", n)
	}
	// One as asked is reused, on a retry too.
	again := c.mustEnsure(t, "ns1-next")
	if again.Server.ID != res.Server.ID || again.Created {
		t.Errorf("a retry replaced a green of the fleet's spec: %+v", again)
	}

	// A replacement load balancer an earlier run left may be what the
	// parent's glue points at: it is reused whatever its spec.
	lb, err := c.cloud.Create(ctx, dnsroll.ServerSpec{Label: "lb1-next", Region: "eu-central", Type: "g6-nanode-1", Image: "linode/debian11", Tags: []string{c.fleet.Tag()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := dnsroll.ServerSpec{Label: "lb1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}
	v, err := c.env.ExecuteActivity(c.acts.EnsureServer, EnsureServerInput{StepFleet: StepFleet{Fleet: c.fleet}, Spec: spec, KeepUnlike: true})
	if kept := temporaltest.Value[ServerResult](t, v, err); kept.Server.ID != lb.ID || kept.Created {
		t.Errorf("a left replacement load balancer was replaced: %+v", kept)
	}
}

// lagCloud is a Cloud whose lists miss the instances labelled hide, as
// Linode's can for a moment after a create.
type lagCloud struct {
	Cloud
	hide string
}

func (c lagCloud) List(ctx context.Context, tag string) ([]dnsroll.Server, error) {
	all, err := c.Cloud.List(ctx, tag)
	return slices.DeleteFunc(all, func(s dnsroll.Server) bool { return s.Label == c.hide }), err
}

func (c lagCloud) Holding(ctx context.Context, labels []string) ([]dnsroll.Server, error) {
	all, err := c.Cloud.Holding(ctx, labels)
	return slices.DeleteFunc(all, func(s dnsroll.Server) bool { return s.Label == c.hide }), err
}

// A create refused as a duplicate label whose holder no list shows yet is
// retried: Linode's lists lag its creates for a moment, and the retry finds
// the server. (A holder outside the fleet is a refusal that names it:
// TestEnsureServerRefusesUntaggedLabel.)
func TestEnsureServerLabelTakenByAnUnlistedHolder(t *testing.T) {
	c := newCloudEnv(t)
	ctx := context.Background()
	if _, err := c.cloud.Create(ctx, dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}, nil); err != nil {
		t.Fatal(err)
	}
	c.acts.Cloud = lagCloud{Cloud: c.cloud, hide: "ns1-next"}
	_, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() {
		t.Errorf("EnsureServer with the holder unlisted: %v; want an error a retry may clear", err)
	}
	c.acts.Cloud = c.cloud
	if res := c.mustEnsure(t, "ns1-next"); res.Created {
		t.Errorf("the retry created a second ns1-next: %+v", res)
	}

	// A holder of the fleet's whose label differs in letter case only
	// keeps the label taken for good (Linode's labels ignore case).
	odd, err := c.cloud.Create(ctx, dnsroll.ServerSpec{Label: "NS2-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ensure(t, "ns2-next")
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), fmt.Sprintf("label ns2-next is taken by Linode %d, labelled NS2-next", odd.ID)) {
		t.Errorf("EnsureServer with a holder labelled NS2-next: %v; want a refusal naming it", err)
	}

}

// stuckCreateCloud is a Cloud whose creates hang until their context ends,
// as one does that linodego keeps retrying after 429s, and records when.
type stuckCreateCloud struct {
	Cloud
	ended chan time.Duration
}

func (c stuckCreateCloud) Create(ctx context.Context, _ dnsroll.ServerSpec, _ []byte) (dnsroll.Server, error) {
	start := time.Now()
	<-ctx.Done()
	c.ended <- time.Since(start)
	return dnsroll.Server{}, ctx.Err()
}

// shortHeartbeat makes the test fleet's steps heartbeat within 1s.
func (c *cloudEnv) shortHeartbeat(t *testing.T) {
	t.Helper()
	c.useFleet(t, testFleetYAML+"ansible: {"+testPlaybooks+"}\nsteps: {heartbeat_timeout: 1s, create_timeout: 1m}\n")
}

// A create is given no longer than the step's heartbeat timeout: a worker
// cut off from Temporal, whose attempt another worker has taken over, must
// not go on creating a server after that attempt, or the rollout's
// cleanup, is done, and leave it behind.
func TestEnsureServerBoundsACreateByTheHeartbeatTimeout(t *testing.T) {
	c := newCloudEnv(t)
	c.shortHeartbeat(t)
	defer func(was time.Duration) { minCreateBound = was }(minCreateBound)
	minCreateBound = 0
	stuck := stuckCreateCloud{Cloud: c.cloud, ended: make(chan time.Duration, 1)}
	c.acts.Cloud = stuck
	_, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), "heartbeat timeout (1s)") {
		t.Errorf("EnsureServer: %v; want an error a retry may clear, naming the heartbeat timeout", err)
	}
	select {
	case d := <-stuck.ended:
		if d > 5*time.Second {
			t.Errorf("the create was given %s, want about the heartbeat timeout", d)
		}
	default:
		t.Error("the create's context never ended")
	}
}

// deleteCounter is a Cloud that counts the deletes asked of it.
type deleteCounter struct {
	Cloud
	deletes *atomic.Int32
}

func (c deleteCounter) Delete(ctx context.Context, id int) error {
	c.deletes.Add(1)
	return c.Cloud.Delete(ctx, id)
}

// A delete retried while its instance is still deleting (the worker died
// while it waited) waits it out without asking Linode to delete it again,
// for DeleteServer and DeleteGreen alike.
func TestDeleteRetriedWhileDeletingAsksNoSecondDelete(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 300 * time.Millisecond})
	var deletes atomic.Int32
	c.acts.Cloud = deleteCounter{Cloud: c.cloud, deletes: &deletes}
	blue, green := c.mustEnsure(t, "ns1"), c.mustEnsure(t, "ns1-next")
	if err := c.cloud.Delete(t.Context(), blue.Server.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: blue.Server}); err != nil {
		t.Fatalf("DeleteServer of a deleting instance: %v", err)
	}
	if err := c.cloud.Delete(t.Context(), green.Server.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next"}}); err != nil {
		t.Fatalf("DeleteGreen of a deleting instance: %v", err)
	}
	if n := deletes.Load(); n != 0 || len(c.sim.Instances()) != 0 {
		t.Errorf("%d deletes asked again, instances left %+v; want none and none", n, c.sim.Instances())
	}
}

// concurrently runs the activity fn with in as two attempts at once, as
// Temporal does when an attempt outlives its heartbeat timeout (a worker
// cut off for a moment) and the retry starts beside it; each attempt has
// an activity environment of its own.
func (c *cloudEnv) concurrently(t *testing.T, fn, in any) [2]error {
	t.Helper()
	var errs [2]error
	done := make(chan int)
	for i := range errs {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(c.acts)
		go func() {
			_, errs[i] = env.ExecuteActivity(fn, in)
			done <- i
		}()
	}
	<-done
	<-done
	return errs
}

// Two attempts of each cloud step running at once, each past its lookup
// before either changes anything, leave what one would: one green, one
// rename, one delete, and neither attempt fails.
func TestCloudStepsRunTwiceAtOnce(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 100 * time.Millisecond})
	// Each request that changes something waits until both attempts have
	// looked the server up.
	stall := func(method string) {
		c.sim.InjectFault(linodesim.Fault{Method: method, PathPrefix: "/v4/linode/instances", Delay: 300 * time.Millisecond, Count: 2})
	}
	spec := dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12", Tags: []string{c.fleet.Tag()}}
	stall("POST")
	if errs := c.concurrently(t, c.acts.EnsureServer, EnsureServerInput{StepFleet: StepFleet{Fleet: c.fleet}, Spec: spec}); errs != [2]error{} {
		t.Fatalf("two EnsureServer at once: %v", errs)
	}
	if n, made := c.count("ns1-next"), c.sim.Created(); n != 1 || made != 1 {
		t.Fatalf("two EnsureServer at once: %d ns1-next, %d created; want 1 (%+v)", n, made, c.sim.Instances())
	}
	green := c.mustEnsure(t, "ns1-next").Server

	stall("PUT")
	if errs := c.concurrently(t, c.acts.RenameServer, RenameInput{Tag: c.fleet.Tag(), Server: green, To: "ns1"}); errs != [2]error{} {
		t.Fatalf("two RenameServer at once: %v", errs)
	}
	if got := c.sim.Instances(); len(got) != 1 || got[0].Label != "ns1" || got[0].ID != green.ID {
		t.Fatalf("after two renames at once: %+v, want %d as ns1", got, green.ID)
	}

	stall("DELETE")
	if errs := c.concurrently(t, c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: green}); errs != [2]error{} {
		t.Fatalf("two DeleteServer at once: %v", errs)
	}
	if got := c.sim.Instances(); len(got) != 0 {
		t.Fatalf("after two deletes at once: %+v, want none", got)
	}

	c.mustEnsure(t, "ns1-next")
	stall("DELETE")
	if errs := c.concurrently(t, c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next"}}); errs != [2]error{} {
		t.Fatalf("two DeleteGreen at once: %v", errs)
	}
	if got := c.sim.Instances(); len(got) != 0 {
		t.Errorf("after two DeleteGreen at once: %+v, want none", got)
	}
	if f := c.sim.Faults(); len(f) != 0 {
		t.Errorf("faults not met (an attempt did not make its request): %+v", f)
	}
}

// listMissesOnce is a Cloud whose first list misses the instances
// labelled hide, as Linode's can for a moment, and whose later lists do
// not.
type listMissesOnce struct {
	Cloud
	hide   string
	missed *atomic.Bool
}

func (c listMissesOnce) List(ctx context.Context, tag string) ([]dnsroll.Server, error) {
	all, err := c.Cloud.List(ctx, tag)
	if c.missed.CompareAndSwap(false, true) {
		all = slices.DeleteFunc(all, func(s dnsroll.Server) bool { return s.Label == c.hide })
	}
	return all, err
}

// A create refused as a duplicate label whose holder, listed only after
// the refusal, is the fleet's own on its way out is an error the step
// retries: it must not wait on that holder as if it were the server it
// asked for, which fails the step for good ("not found") once the holder
// is gone. The retry then creates the server afresh.
func TestEnsureServerRetriesALabelHeldByADeletingNamesakeListedLate(t *testing.T) {
	c := newCloudEnvWith(t, linodesim.Options{DeleteDelay: 300 * time.Millisecond})
	old := c.mustEnsure(t, "ns1-next").Server
	if err := c.cloud.Delete(t.Context(), old.ID); err != nil {
		t.Fatal(err)
	}
	c.acts.Cloud = listMissesOnce{Cloud: c.cloud, hide: "ns1-next", missed: new(atomic.Bool)}
	_, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), fmt.Sprintf("held by Linode %d, a server of this fleet on its way out", old.ID)) {
		t.Fatalf("EnsureServer while a late-listed namesake deletes: %v; want an error the step retries, naming Linode %d", err, old.ID)
	}
	c.acts.Cloud = c.cloud
	res := c.mustEnsure(t, "ns1-next")
	if !res.Created || res.Server.ID == old.ID || c.count("ns1-next") != 1 {
		t.Errorf("the retry: %+v, instances %+v; want one new ns1-next", res, c.sim.Instances())
	}
}

// A create is given at least minCreateBound, however short the step's
// heartbeat timeout: Linode's create takes seconds, and a bound of the
// heartbeat timeout alone would abandon every create slower than it, and
// fail the step on each retry.
func TestEnsureServerGivesACreateMoreThanAShortHeartbeatTimeout(t *testing.T) {
	c := newCloudEnv(t)
	c.shortHeartbeat(t)
	c.sim.InjectFault(linodesim.Fault{Method: "POST", PathPrefix: "/v4/linode/instances", Delay: 1500 * time.Millisecond})
	res, err := c.ensure(t, "ns1-next")
	if err != nil || !res.Created || c.count("ns1-next") != 1 {
		t.Errorf("a create slower than the heartbeat timeout: %+v, %v; instances %+v; want one created ns1-next", res, err, c.sim.Instances())
	}
}

// EnsureServer never takes an instance without the fleet's tag for the
// server it asks for, though a list returns one under the label: the tag
// is checked on each server, not left to the cloud's list.
func TestEnsureServerTakesNoUntaggedServerAListReturns(t *testing.T) {
	c := newCloudEnv(t)
	stranger, err := c.cloud.Create(t.Context(), dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: "linode/debian12"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.acts.Cloud = listingAlso{Cloud: c.cloud, extra: stranger}
	res, err := c.ensure(t, "ns1-next")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), fmt.Sprintf("label ns1-next is taken by Linode %d (no tags), not this fleet's", stranger.ID)) {
		t.Errorf("EnsureServer with an untagged ns1-next listed: %+v, %v; want a refusal naming Linode %d", res, err, stranger.ID)
	}
}

// flappingCloud is a Cloud whose Get shows an instance offline for
// stretch, then booting once, then offline for stretch again, and then as
// it is: a server that Linode's watchdog reboots after a failed boot.
type flappingCloud struct {
	Cloud
	stretch time.Duration
	phase   *atomic.Int32
	since   *atomic.Int64
}

func (c flappingCloud) Get(ctx context.Context, id int) (dnsroll.Server, error) {
	s, err := c.Cloud.Get(ctx, id)
	if err != nil {
		return s, err
	}
	now := time.Now().UnixNano()
	c.since.CompareAndSwap(0, now)
	switch c.phase.Load() {
	case 0, 2:
		if time.Duration(now-c.since.Load()) < c.stretch {
			s.Status = "offline"
			return s, nil
		}
		if c.phase.CompareAndSwap(0, 1) {
			s.Status = "booting"
			return s, nil
		}
		c.phase.Store(3)
	case 1:
		c.phase.Store(2)
		c.since.Store(now)
		s.Status = "offline"
	}
	return s, nil
}

// A server is given up on only when it has shown a stuck status for
// stuckAfter without a break: one that boots again between two shorter
// spells offline is waited for.
func TestEnsureServerWaitsForAServerThatBootsAgain(t *testing.T) {
	c := newCloudEnv(t)
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = time.Second
	c.acts.Cloud = flappingCloud{Cloud: c.cloud, stretch: 600 * time.Millisecond, phase: new(atomic.Int32), since: new(atomic.Int64)}
	res, err := c.ensure(t, "ns1-next")
	if err != nil || res.Server.Status != "running" {
		t.Errorf("EnsureServer of a server offline twice for less than %s, booting between: %+v, %v; want it running", stuckAfter, res, err)
	}
}

// deletedAtBirthCloud is a Cloud whose creates are deleted by someone
// else at once, before the new server has booted.
type deletedAtBirthCloud struct{ Cloud }

func (c deletedAtBirthCloud) Create(ctx context.Context, spec dnsroll.ServerSpec, userData []byte) (dnsroll.Server, error) {
	s, err := c.Cloud.Create(ctx, spec, userData)
	if err == nil {
		err = c.Cloud.Delete(ctx, s.ID)
	}
	return s, err
}

// A new server deleted by someone else while EnsureServer waits for it to
// boot fails the step at once, naming it, rather than being polled until
// the step's deadline.
func TestEnsureServerFailsWhenItsServerIsDeletedWhileBooting(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.Cloud = deletedAtBirthCloud{Cloud: c.cloud}
	done := make(chan error, 1)
	go func() {
		_, err := c.ensure(t, "ns1-next")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "linode: get 1001: [404]") {
			t.Errorf("EnsureServer of a server deleted while booting: %v; want an error naming Linode 1001 not found", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("EnsureServer still waits for a server deleted while it booted")
	}
}
