package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/provision"
)

// recordingKeys records the instances whose keys were forgotten, and
// the machines whose keys were checked; it refuses those of refuse.
type recordingKeys struct {
	mu        sync.Mutex
	forgotten []string
	verified  []string
	refuse    map[string]error // by machine name
	// given are the fleet/name Give made a key for; trusted, "new
	// fleet/name" or "given fleet/name" for each first contact.
	given, trusted []string
	giveErr        error // what Give fails with
}

func (r *recordingKeys) TrustNew(_ context.Context, fleet, name, _, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trusted = append(r.trusted, "new "+fleet+"/"+name)
	return nil
}

func (r *recordingKeys) Give(fleet, name string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.giveErr != nil {
		return nil, r.giveErr
	}
	r.given = append(r.given, fleet+"/"+name)
	return []byte("#cloud-config\nssh_keys: {}\n"), nil
}

func (r *recordingKeys) TrustGiven(_ context.Context, fleet, name, _, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trusted = append(r.trusted, "given "+fleet+"/"+name)
	return nil
}

func (r *recordingKeys) Verify(_ context.Context, name, addr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified = append(r.verified, name+"@"+addr)
	return r.refuse[name]
}

func (r *recordingKeys) Forget(addr, instance, fleet, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgotten = append(r.forgotten, fleet+"/"+name+"="+instance+"@"+addr)
	return nil
}

// A deleted server's host keys are forgotten, whether blue (DeleteServer,
// also when a retry finds it already deleted) or green (DeleteGreen), and
// only once it is gone.
func TestDeletedServersKeysAreForgotten(t *testing.T) {
	c := newCloudEnv(t)
	keys := &recordingKeys{}
	c.acts.HostKeys = keys
	var want []string
	servers := map[string]dnsroll.Server{}
	for _, l := range []string{"ns1", "ns1-next"} {
		res := c.mustEnsure(t, l)
		servers[l] = res.Server
		// The fleet and label too: the keys given to it go with it.
		want = append(want, c.fleet.Name+"/"+l+"="+ServerID(res.Server)+"@"+res.Server.IPv4)
	}
	// Deleted again (a retry whose first attempt deleted it): the keys go
	// again, those given to the fleet's label included.
	for range 2 {
		if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: servers["ns1"]}); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, want[0])
	if _, err := c.env.ExecuteActivity(c.acts.DeleteGreen, DeleteGreenInput{Tag: c.fleet.Tag(), Labels: []string{"ns1-next"}}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(keys.forgotten)
	if got := strings.Join(keys.forgotten, " "); got != strings.Join(want, " ") {
		t.Errorf("forgotten %q, want %q", got, strings.Join(want, " "))
	}
}

// refusingDriver refuses every load balancer's host key, as Point does
// when the key changed.
type refusingDriver struct{}

func (refusingDriver) Point(_ context.Context, _ *config.Fleet, lb config.LoadBalancer, _ []dnsroll.Server) error {
	return fmt.Errorf("nginx: point %s: %w", lb.Name, &hostkeys.Error{Name: lb.Name, Addr: "192.0.2.2", File: "/state/known_hosts", Host: "192.0.2.2", Changed: true, Offered: "SHA256:x"})
}

// A refused host key fails the switch to green at once (no retry fixes it)
// with the fix in the message. The switch back succeeds without logging in
// when the load balancer still answers from blue: nothing was changed.
func TestRefusedHostKeyAtTheSwitch(t *testing.T) {
	fleet := udpFleet(t)
	blue, green := serveIdentity(t, "linode-1", 7), serveIdentity(t, "linode-2", 8)
	// The "load balancer" forwards to blue: its answers are blue's.
	lb := config.LoadBalancer{Name: "lb1", Address: blue.DNSAddr(), Driver: "nginx"}
	env, acts := nginxEnv(refusingDriver{})

	_, err := env.ExecuteActivity(acts.SwitchLoadBalancer, SwitchInput{StepFleet: StepFleet{Fleet: fleet}, LB: lb, Backends: []dnsroll.Server{green}})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), "ssh-keygen -R 192.0.2.2 -f /state/known_hosts") {
		t.Fatalf("switch to green: err = %v, want a non-retryable error naming the fix", err)
	}

	v, err := env.ExecuteActivity(acts.SwitchLoadBalancer, SwitchInput{StepFleet: StepFleet{Fleet: fleet}, LB: lb, Backends: []dnsroll.Server{blue}})
	if err != nil {
		t.Fatalf("switch back to blue, which it still serves: %v", err)
	}
	var res StepResult
	_ = v.Get(&res)
	if !strings.Contains(res.Note, "host key refused") {
		t.Errorf("note = %q, want it to say the key was refused", res.Note)
	}
	// A switch to no backend (a first rollout's cleanup: there is no
	// blue) changes the load balancer, which nothing confirms: refused.
	if _, err := env.ExecuteActivity(acts.SwitchLoadBalancer, SwitchInput{StepFleet: StepFleet{Fleet: fleet}, LB: lb}); err == nil {
		t.Errorf("switch to no backend with the host key refused: no error, want the refusal")
	}
}

// Plan checks each load balancer's SSH host key, then logs in, before
// any server exists, as the switch will: a changed key or a refused login
// is refused, naming the load balancer and the fix, where the rollout once
// created and provisioned green, failed at the stage and deleted it. An
// sshd that does not answer is an error Plan retries. A lab fleet run
// with connection local has nothing to check.
func TestPlanChecksLoadBalancerAccessFirst(t *testing.T) {
	c := newCloudEnv(t)
	changed := &hostkeys.Error{Name: "lb1", Addr: "127.0.0.1", File: "/var/lib/dnsroll/known_hosts", Host: "127.0.0.1", Changed: true, Offered: "SHA256:x"}
	keys := &recordingKeys{refuse: map[string]error{"lb1": changed}}
	c.acts.HostKeys = keys
	err := c.planRefusal(t)
	if want := "load balancer lb1: SSH at 127.0.0.1: SSH host key of lb1 (127.0.0.1) changed"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ssh-keygen -R 127.0.0.1") {
		t.Errorf("refusal %q lacks %q and the fix", err, want)
	}
	if n := c.sim.Created(); n != 0 {
		t.Errorf("%d servers created before the refusal", n)
	}
	if got := strings.Join(keys.verified, " "); got != "lb1@127.0.0.1" {
		t.Errorf("checked %q, want lb1's key at its address", got)
	}

	keys.refuse["lb1"] = errors.New("dial tcp 127.0.0.1:22: connect: connection refused")
	_, err = c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), "load balancer lb1: SSH at 127.0.0.1: dial tcp") {
		t.Errorf("Plan with lb1's sshd down: %v; want an error Plan retries, naming lb1", err)
	}

	// Then it logs in as the switch will: a user that does not accept the
	// worker's key is refused, after the host key was checked.
	delete(keys.refuse, "lb1")
	keys.verified = nil
	login := &loginDriver{err: dnsroll.Errorf(dnsroll.EINVALID, "root@127.0.0.1 does not accept the worker's SSH key")}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": login}
	err = c.planRefusal(t)
	if want := "load balancer lb1: logging in as the switch will: root@127.0.0.1 does not accept the worker's SSH key"; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q lacks %q", err, want)
	}
	if len(keys.verified) != 1 || login.logins != 1 {
		t.Errorf("host keys checked %v, logins %d; want lb1's key checked, then one login", keys.verified, login.logins)
	}

	// The SSH channel names the load balancer in its own errors: the
	// refusal names it once, and still says what was being done.
	login.err = dnsroll.Errorf(dnsroll.EINVALID, "load balancer lb1: ssh root@127.0.0.1: unable to authenticate: root@127.0.0.1 does not accept the worker's SSH key")
	err = c.planRefusal(t)
	if want := "load balancer lb1: logging in as the switch will: ssh root@127.0.0.1: unable to authenticate"; !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "lb1") != 1 {
		t.Errorf("refusal %q: want %q, naming lb1 once", err, want)
	}
	if n := c.sim.Created(); n != 0 {
		t.Errorf("%d servers created before the refusal", n)
	}

	// A dry run changes nothing, host keys included, and waits for no
	// sshd: it leaves the load balancers to the rollout's Plan.
	keys.verified, login.logins = nil, 0
	if _, err := c.env.ExecuteActivity(c.acts.Plan, PlanInput{Fleet: "t", Revision: "A", DryRun: true}); err != nil || len(keys.verified) != 0 || login.logins != 0 {
		t.Errorf("dry run: %v, host keys checked %v, logins %d; want it to pass without reaching the load balancers", err, keys.verified, login.logins)
	}

	c.labFleet(t)
	c.planWith(t, PlanInput{Fleet: "t"})
	if len(keys.verified) != 0 || login.logins != 0 {
		t.Errorf("a lab fleet's load balancers were checked: keys %v, logins %d", keys.verified, login.logins)
	}
}

// loginDriver is a load balancer driver whose logins fail with err.
type loginDriver struct {
	err    error
	logins int
}

func (d *loginDriver) Point(context.Context, *config.Fleet, config.LoadBalancer, []dnsroll.Server) error {
	return nil
}

func (d *loginDriver) CheckLogin(context.Context, *config.Fleet, config.LoadBalancer) error {
	d.logins++
	return d.err
}

// A server the rollout creates is given its host key in its create
// request's user data, once; its first contact then expects that key. A
// fleet that asks for first use gives none.
func TestNewServerIsGivenItsHostKey(t *testing.T) {
	var mu sync.Mutex
	booted := map[string][]byte{} // label → the user data its VM got
	c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(inst linodesim.Instance, boot linodesim.Boot) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		booted[inst.Label] = boot.UserData
		return "127.0.0.1", nil
	}})
	keys := &recordingKeys{}
	c.acts.HostKeys = keys
	res := c.mustEnsure(t, "ns1-next")
	if !res.Server.UserData || string(booted["ns1-next"]) != "#cloud-config\nssh_keys: {}\n" {
		t.Fatalf("server UserData %v, VM got %q: want the user data Give made", res.Server.UserData, booted["ns1-next"])
	}
	if err := c.acts.meetNewServer(t.Context(), c.fleet.Name, res.Server, func(string) {}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys.trusted, ","); got != "given t/ns1-next" {
		t.Fatalf("first contacts %q, want ns1-next met expecting its given key", got)
	}
	// Found again (a retry): no new key.
	if again := c.mustEnsure(t, "ns1-next"); !again.Server.UserData || len(keys.given) != 1 {
		t.Fatalf("second ensure: UserData %v, keys given for %q; want the first server and one key", again.Server.UserData, keys.given)
	}
	c.fleet.Ansible.HostKeys = config.HostKeysFirstUse
	if res := c.mustEnsure(t, "ns2-next"); res.Server.UserData || booted["ns2-next"] != nil || len(keys.given) != 1 {
		t.Fatalf("first-use fleet: UserData %v, VM got %q, keys given for %q; want none given", res.Server.UserData, booted["ns2-next"], keys.given)
	}
	// A fleet provisioned without SSH (the process lab) never meets its
	// servers: a key given to one would wait in the file for nothing.
	c.labFleet(t)
	if res := c.mustEnsure(t, "ns3-next"); res.Server.UserData || len(keys.given) != 1 {
		t.Fatalf("local-connection fleet: UserData %v, keys given for %q; want none given", res.Server.UserData, keys.given)
	}
}

// Where Linode cannot take user data, the server is created without it and
// met as at first use; Plan says so beforehand, naming the server and why.
func TestServerWithoutMetadataIsTrustedOnFirstUse(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts linodesim.Options
		why  string
	}{
		{"region", linodesim.Options{NoMetadata: []string{"us-east"}}, "region us-east has no Metadata service"},
		{"image", linodesim.Options{Images: []string{"private/77"}, NoCloudInit: []string{"private/77"}}, "image private/77 does not run cloud-init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloudEnvWith(t, tc.opts)
			keys := &recordingKeys{}
			c.acts.HostKeys = keys
			if tc.name == "image" {
				c.fleet.Nameservers[0].Image = "private/77"
			}
			plan, _ := c.plan(t)
			want := "ns1-next cannot be given its SSH host key (" + tc.why + ")"
			if !slices.ContainsFunc(plan.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
				t.Fatalf("plan warnings %q, want one starting %q", plan.Warnings, want)
			}
			spec := dnsroll.ServerSpec{Label: "ns1-next", Region: "us-east", Type: "g6-nanode-1", Image: c.fleet.Nameservers[0].Image, Tags: []string{c.fleet.Tag()}}
			v, err := c.env.ExecuteActivity(c.acts.EnsureServer, EnsureServerInput{StepFleet: StepFleet{Fleet: c.fleet}, Spec: spec})
			res := temporaltest.Value[ServerResult](t, v, err)
			if res.Server.UserData {
				t.Fatal("created with user data where Linode takes none")
			}
			if err := c.acts.meetNewServer(t.Context(), c.fleet.Name, res.Server, func(string) {}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(keys.trusted, ","); got != "new t/ns1-next" {
				t.Fatalf("first contacts %q, want ns1-next met as a new server without a given key", got)
			}
		})
	}
}

// Provisioning meets each server it was handed as its fleet's: a server
// given its key is checked against the key given to that fleet's label.
// Met under another fleet's name, it would find no given key and be
// trusted on first use, whatever key it offered.
func TestProvisionMeetsAGivenServerAsItsFleets(t *testing.T) {
	c := newCloudEnv(t)
	keys := &recordingKeys{}
	c.acts.HostKeys = keys
	plan, _ := c.plan(t)
	var reqs []provision.Request
	c.acts.Ansible = recordingRunner{&reqs}
	servers := []dnsroll.Server{{ID: 1, Label: "ns1-next", IPv4: "127.0.0.1", UserData: true}, {ID: 2, Label: "ns2-next", IPv4: "127.0.0.1"}}
	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: servers, Bundle: plan.Bundle, Revision: plan.Revision})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(reqs))
	}
	if got := strings.Join(keys.trusted, ","); got != "given t/ns1-next,new t/ns2-next" {
		t.Fatalf("first contacts %q, want ns1-next met expecting fleet t's given key, ns2-next as new", got)
	}
}

// A key that cannot be given (the worker's file cannot be written) stops
// the create: a server created without it would be trusted on first use.
func TestNoServerWithoutItsGivenKey(t *testing.T) {
	c := newCloudEnv(t)
	c.acts.HostKeys = &recordingKeys{giveErr: errors.New("known_hosts: disk full")}
	if _, err := c.ensure(t, "ns1-next"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want Give's error", err)
	}
	if n := c.count("ns1-next"); n != 0 {
		t.Fatalf("%d servers created without their key", n)
	}
}

// One worker serves two fleets in two Linode accounts that both name a
// green ns1-next (labels are unique only within an account). The key
// given to one fleet's ns1-next is that server's alone: deleting the
// other fleet's ns1-next leaves it on record for its first contact.
func TestGivenKeysOfTwoFleetsWithOneLabel(t *testing.T) {
	keeper, err := hostkeys.New(hostkeys.TOFU, filepath.Join(t.TempDir(), "known_hosts"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	givenKey := map[string]string{} // fleet → the public key its VM got
	var mu sync.Mutex
	fleetEnv := func(name string) *cloudEnv {
		c := newCloudEnvWith(t, linodesim.Options{OnCreate: func(_ linodesim.Instance, boot linodesim.Boot) (string, error) {
			var doc struct {
				Keys map[string]string `yaml:"ssh_keys"`
			}
			err := yaml.Unmarshal(boot.UserData, &doc)
			mu.Lock()
			defer mu.Unlock()
			givenKey[name] = doc.Keys["ed25519_public"]
			return "127.0.0.1", err
		}})
		c.fleet.Name = name
		c.acts.HostKeys = keeper
		return c
	}
	prod, staging := fleetEnv("prod"), fleetEnv("staging")
	prod.mustEnsure(t, "ns1-next")
	staging.mustEnsure(t, "ns1-next")
	if _, err := prod.env.ExecuteActivity(prod.acts.DeleteGreen, DeleteGreenInput{Tag: prod.fleet.Tag(), Labels: []string{"ns1-next"}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(keeper.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasSuffix(line, " dnsroll-given") {
			left = append(left, line)
		}
	}
	want := strings.TrimPrefix(givenKey["staging"], "ssh-ed25519 ")
	if len(left) != 1 || want == "" || !strings.Contains(left[0], want) {
		t.Fatalf("keys given after prod's ns1-next was deleted:\n%s\nwant only staging's (%s)", strings.Join(left, "\n"), want)
	}
}
