package e2e

import (
	"context"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/dnsroll/dnsroll/workflows"
)

// Host keys on machines: a rollout records every machine's key (the new
// nameservers right after creation, the load balancers at first contact);
// a load balancer whose key then changes makes the next rollout fail at
// Plan, naming the machine and the fix, before any server exists, while
// blue keeps serving.
func TestMachineHostKeys(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.startWorker(t)
	tl.rolloutOK(t, "A")
	blue := tl.assertOnly(t, "ns1", "ns2")
	ctx := context.Background()

	recorded := knownHosts(t, tl.KnownHostsFile())
	lb1, _, _ := net.SplitHostPort(tl.fleet.LoadBalancers[0].Address)
	machines := []string{lb1, blue["ns1"].IPv4, blue["ns2"].IPv4}
	for _, lb := range tl.fleet.LoadBalancers[1:] {
		host, _, _ := net.SplitHostPort(lb.Address)
		machines = append(machines, host)
	}
	for _, addr := range machines {
		out, err := tl.SSH(ctx, addr, "cat /etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			t.Fatalf("ssh %s: %v: %s", addr, err, out)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out))
		if err != nil {
			t.Fatalf("%s's host key: %v", addr, err)
		}
		if !slices.Contains(recorded[addr], string(key.Marshal())) {
			t.Errorf("%s: its ed25519 host key is not in %s", addr, tl.KnownHostsFile())
		}
	}

	// lb1 is rebuilt, or impersonated: its host keys change.
	if out, err := tl.SSH(ctx, lb1, "rm -f /etc/ssh/ssh_host_*key* && ssh-keygen -A && systemctl restart ssh"); err != nil {
		t.Fatalf("regenerate lb1's host keys: %v: %s", err, out)
	}
	created := tl.Sim().Created()
	_, st, err := tl.rollout(t, "B")
	if err == nil {
		t.Fatal("rollout B succeeded through a load balancer whose host key changed")
	}
	// The changed key is refused at Plan, before any server exists: no
	// retry fixes it, and the rollout fails with blue untouched.
	if st.Phase != workflows.PhaseFailed || !strings.HasPrefix(st.Failure, "Plan ") {
		t.Errorf("phase = %s (%s), want failed at Plan", st.Phase, st.Failure)
	}
	if n := tl.Sim().Created(); n != created {
		t.Errorf("%d servers created by a rollout refused at Plan", n-created)
	}
	fix := "ssh-keygen -R " + lb1 + " -f " + tl.KnownHostsFile()
	for _, want := range []string{"lb1", "host key", fix} {
		if !strings.Contains(st.Failure, want) {
			t.Errorf("failure %q does not mention %q", st.Failure, want)
		}
	}
	for _, s := range st.Steps {
		if s.Name == "Plan" && (s.State != workflows.StepFailed || s.Attempts != 1) {
			t.Errorf("Plan: %s after %d attempt(s), want failed at the first: no retry fixes a changed key", s.State, s.Attempts)
		}
	}
	tl.assertKept(t, blue)
	tl.wantAnswers(t, "", "revision A,revision A")
	// lb1's old key stays pinned until the operator removes it.
	if got, want := hostsOf(knownHosts(t, tl.KnownHostsFile())), hostsOf(recorded); got != want {
		t.Errorf("known_hosts holds %s after the failed rollout, want %s as before it", got, want)
	}
}

// knownHosts reads a known_hosts file into its keys (wire format) by host.
func knownHosts(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for len(data) > 0 {
		_, hosts, key, _, rest, err := ssh.ParseKnownHosts(data)
		if err != nil {
			break
		}
		for _, h := range hosts {
			out[h] = append(out[h], string(key.Marshal()))
		}
		data = rest
	}
	return out
}

func hostsOf(m map[string][]string) string {
	var hs []string
	for h := range m {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return strings.Join(hs, " ")
}

// A load balancer user that does not accept the worker's key (one the
// machines lack, here) is refused at Plan, naming the user and the fix,
// before any server exists: the rollout once created and provisioned
// green, then failed at the stage.
func TestMachineLoadBalancerLoginRefusedAtPlan(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	tl.editFleet(t, "  ssh_user: root\n", "  ssh_user: root\n  loadbalancer_ssh_user: deploy\n")
	tl.startWorker(t)
	lb1 := tl.fleet.LoadBalancers[0].SSHTarget()
	refusedAtPlan(t, tl, "A", []string{"load balancer lb1", "deploy@" + lb1 + " does not accept the worker's SSH key", "loadbalancer_ssh_user"})
}
