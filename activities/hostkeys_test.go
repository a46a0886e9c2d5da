package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
)

// recordingKeys records the instances whose keys were forgotten, and
// the machines whose keys were checked; it refuses those of refuse.
type recordingKeys struct {
	mu        sync.Mutex
	forgotten []string
	verified  []string
	refuse    map[string]error // by machine name
}

func (r *recordingKeys) TrustNew(context.Context, string, string, string) error { return nil }

func (r *recordingKeys) Verify(_ context.Context, name, addr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified = append(r.verified, name+"@"+addr)
	return r.refuse[name]
}

func (r *recordingKeys) Forget(addr, instance string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgotten = append(r.forgotten, instance+"@"+addr)
	return nil
}

// A deleted server's host keys are forgotten, whether blue (DeleteServer)
// or green (DeleteGreen), and only once it is gone.
func TestDeletedServersKeysAreForgotten(t *testing.T) {
	c := newCloudEnv(t)
	keys := &recordingKeys{}
	c.acts.HostKeys = keys
	var want []string
	servers := map[string]dnsroll.Server{}
	for _, l := range []string{"ns1", "ns1-next"} {
		res := c.mustEnsure(t, l)
		servers[l] = res.Server
		want = append(want, ServerID(res.Server)+"@"+res.Server.IPv4)
	}
	if _, err := c.env.ExecuteActivity(c.acts.DeleteServer, DeleteServerInput{Tag: c.fleet.Tag(), Server: servers["ns1"]}); err != nil {
		t.Fatal(err)
	}
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
