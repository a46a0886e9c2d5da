package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKeys refuses the hosts in refuse and records what it was asked.
type fakeKeys struct {
	refuse map[string]bool
	asked  []string
	env    []string
}

func (f *fakeKeys) Verify(_ context.Context, name, addr string) error {
	f.asked = append(f.asked, name+"@"+addr)
	if f.refuse[name] {
		return errors.New("host key of " + name + " changed")
	}
	return nil
}

func (f *fakeKeys) AnsibleEnv(extra string) []string { return append(f.env, "EXTRA="+extra) }

// lastValue is the value of key that exec would give the child: the last.
func lastValue(env []string, key string) (string, bool) {
	val, ok := "", false
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// An operator's ANSIBLE_HOST_KEY_CHECKING=True is no longer overridden:
// dnsroll used to force False for every ssh run.
func TestOperatorsHostKeyCheckingIsKept(t *testing.T) {
	t.Setenv("ANSIBLE_HOST_KEY_CHECKING", "True")
	if got, _ := lastValue((&Runner{}).environ("ssh", nil), "ANSIBLE_HOST_KEY_CHECKING"); got != "True" {
		t.Errorf("ANSIBLE_HOST_KEY_CHECKING = %q, want the operator's True", got)
	}
}

// With a policy, ssh runs get the policy's settings, local runs none.
func TestPolicySetsSSHEnvironment(t *testing.T) {
	t.Setenv("ANSIBLE_SSH_EXTRA_ARGS", "-o ProxyJump=bastion")
	r := &Runner{HostKeys: &fakeKeys{env: []string{"ANSIBLE_HOST_KEY_CHECKING=True"}}}
	env := r.environ("ssh", nil)
	if got, _ := lastValue(env, "ANSIBLE_HOST_KEY_CHECKING"); got != "True" {
		t.Errorf("ANSIBLE_HOST_KEY_CHECKING = %q", got)
	}
	if got, _ := lastValue(env, "EXTRA"); got != "-o ProxyJump=bastion" {
		t.Errorf("the policy got extra args %q, want the inherited ones", got)
	}
	if _, ok := lastValue(r.environ("local", nil), "EXTRA"); ok {
		t.Error("a local run got SSH settings")
	}
}

// A refused host key fails the run before ansible-playbook starts, so
// nothing on any host changes.
func TestRefusedHostKeyStopsTheRun(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	bin := filepath.Join(dir, "ansible-playbook")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	keys := &fakeKeys{refuse: map[string]bool{"lb1": true}}
	r := &Runner{Binary: bin, HostKeys: keys}
	_, err := r.Run(context.Background(), Request{
		Playbook: "testdata/ok.yml", Connection: "ssh",
		Hosts: []Host{{Name: "lb1", Address: "192.0.2.1"}},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "host key of lb1 changed") {
		t.Fatalf("err = %v, want the policy's refusal", err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("ansible-playbook ran after the host key was refused")
	}
	if got := strings.Join(keys.asked, ","); got != "lb1@192.0.2.1" {
		t.Errorf("checked %q, want lb1@192.0.2.1", got)
	}
}

// A local run has no host key to check: the policy is not asked, however
// it would answer.
func TestLocalRunChecksNoHostKey(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ansible-playbook")
	script := "#!/bin/sh\necho '{\"plays\": [], \"stats\": {\"h1\": {\"ok\": 1}}}'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	keys := &fakeKeys{refuse: map[string]bool{"h1": true}}
	res, err := (&Runner{Binary: bin, HostKeys: keys}).Run(context.Background(), Request{
		Playbook: "testdata/ok.yml", Connection: "local", Hosts: localHosts("h1"),
	}, nil)
	if err != nil || res.Hosts["h1"].OK != 1 {
		t.Fatalf("Run = %+v, %v; want h1 ok", res, err)
	}
	if len(keys.asked) > 0 {
		t.Errorf("a local run checked host keys: %q", keys.asked)
	}
}
