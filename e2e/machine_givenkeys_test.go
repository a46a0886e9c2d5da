package e2e

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/worker"
	"github.com/dnsroll/dnsroll/workflows"
)

// New nameservers get their SSH host keys from dnsroll, through cloud-init
// user data: a worker that trusts nothing at first contact
// (ANSIBLE_HOST_KEY_CHECKING=True), with only the load balancers' keys
// seeded as an operator would, still creates and provisions them. A machine
// whose image ignores the user data is refused at first contact, whatever
// the checking, and the rollout ends with blue serving; with
// ansible.host_keys: first-use the same image goes through.
func TestMachineGivenHostKeys(t *testing.T) {
	tl := startMachineLab(t, "nginx")
	ctx := context.Background()
	seedLoadBalancerKeys(t, tl)

	strict := tl.workerConfig()
	strict.HostKeyChecking = hostkeys.Strict
	acts, err := worker.NewActivities(strict)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(tl.client, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	tl.rolloutOK(t, "A")
	w.Stop()
	blue := tl.assertOnly(t, "ns1", "ns2")
	noGivenKeysLeft(t, tl, "after first contact")
	recorded := knownHosts(t, tl.KnownHostsFile())
	privateKeys := map[string]string{}
	for _, label := range []string{"ns1", "ns2"} {
		addr := blue[label].IPv4
		out, err := tl.SSH(ctx, addr, "ls /etc/ssh | grep ^ssh_host_; cat /etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			t.Fatalf("ssh %s: %v: %s", label, err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if files := strings.Join(lines[:len(lines)-1], " "); files != "ssh_host_ed25519_key ssh_host_ed25519_key.pub" {
			t.Errorf("%s has host keys %s, want only the ed25519 pair it was given", label, files)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(lines[len(lines)-1]))
		if err != nil {
			t.Fatalf("%s's host key: %v", label, err)
		}
		if got := recorded[addr]; len(got) != 1 || got[0] != string(key.Marshal()) {
			t.Errorf("%s (%s): %d keys recorded, want its one given key", label, addr, len(got))
		}
		// The private key went from the worker to the machine in the
		// create request alone: not into history, nor the worker's file.
		priv, err := tl.SSH(ctx, addr, "cat /etc/ssh/ssh_host_ed25519_key")
		if err != nil {
			t.Fatalf("ssh %s: %v", label, err)
		}
		body := strings.Split(strings.TrimSpace(priv), "\n")
		if len(body) < 3 {
			t.Fatalf("%s's private host key: %q", label, priv)
		}
		privateKeys[label+"'s private host key"] = body[len(body)/2]
	}
	scan := func(where, text string) {
		t.Helper()
		for name, v := range privateKeys {
			if strings.Contains(text, v) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}
	if n := scanHistories(t, tl, scan, `"fleet":"machines"`); n == 0 {
		t.Fatal("read no rollout's inputs in the histories")
	}
	file, err := os.ReadFile(tl.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	scan(tl.KnownHostsFile(), string(file))

	// An image whose cloud-init does not install the keys: the machine
	// offers its own, and a trust-on-first-use worker refuses it too.
	tl.startWorker(t)
	tl.SetIgnoreUserData(true)
	created := tl.Sim().Created()
	_, st, err := tl.rollout(t, "B")
	if err == nil {
		t.Fatal("rollout B succeeded with nameservers that do not offer the keys they were given")
	}
	if st.Phase != workflows.PhaseFailed {
		t.Errorf("phase = %s, want failed", st.Phase)
	}
	for _, want := range []string{"not the one dnsroll gave it", "host_keys: first-use"} {
		if !strings.Contains(st.Failure, want) {
			t.Errorf("failure %q does not say %q", st.Failure, want)
		}
	}
	if n := tl.Sim().Created() - created; n == 0 {
		t.Error("rollout B created no server: it failed before the check under test")
	}
	tl.assertKept(t, blue)
	tl.wantAnswers(t, "after the refused rollout", "revision A,revision A")
	noGivenKeysLeft(t, tl, "once the refused servers are deleted")

	tl.editFleet(t, "  host_keys: given\n", "  host_keys: first-use\n")
	tl.rolloutOK(t, "B")
	tl.assertOnly(t, "ns1", "ns2")
	tl.wantAnswers(t, "after the first-use rollout", "revision B,revision B")
}

// seedLoadBalancerKeys adds each load balancer's ed25519 host key to the
// worker's known_hosts file, as docs/production.md tells an operator to
// before turning first-use trust off.
func seedLoadBalancerKeys(t *testing.T, tl *testLab) {
	t.Helper()
	var lines []string
	for _, lb := range tl.fleet.LoadBalancers {
		host, _, _ := net.SplitHostPort(lb.Address)
		out, err := tl.SSH(context.Background(), host, "cat /etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			t.Fatalf("ssh %s: %v: %s", lb.Name, err, out)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out))
		if err != nil {
			t.Fatalf("%s's host key: %v", lb.Name, err)
		}
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, "22"))}, key))
	}
	if err := os.WriteFile(tl.KnownHostsFile(), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// noGivenKeysLeft fails t if a key given to a new server is still on record
// in the worker's file.
func noGivenKeysLeft(t *testing.T, tl *testLab, when string) {
	t.Helper()
	for host := range knownHosts(t, tl.KnownHostsFile()) {
		if strings.HasSuffix(host, ".invalid") {
			t.Errorf("%s: a given key is still on record %s", host, when)
		}
	}
}
