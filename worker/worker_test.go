package worker

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/lb/dnsdist"
	"github.com/dnsroll/dnsroll/lb/nginx"
)

// A stray LINODE_URL, set for another Linode tool, never redirects a
// worker: only --linode-url and DNSROLL_LINODE_URL do.
func TestLinodeURLComesOnlyFromDnsrollSettings(t *testing.T) {
	t.Setenv("LINODE_URL", "http://127.0.0.1:1/v4")
	t.Setenv("DNSROLL_LINODE_URL", "")
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "")
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", "")
	var c Config
	if err := c.FromEnv(); err != nil {
		t.Fatal(err)
	}
	if c.LinodeURL != "" {
		t.Errorf("LINODE_URL redirected the worker to %q", c.LinodeURL)
	}
	if !c.Target().RealLinode {
		t.Error("a worker without --linode-url must count as talking to the real Linode API")
	}
	t.Setenv("DNSROLL_LINODE_URL", "http://127.0.0.1:8711/v4")
	c = Config{}
	if err := c.FromEnv(); err != nil || c.LinodeURL != "http://127.0.0.1:8711/v4" {
		t.Errorf("DNSROLL_LINODE_URL: url %q, err %v", c.LinodeURL, err)
	}
}

// A Linode URL without its scheme stops the worker with the form it
// wants, rather than passing as a simulator's and refusing real fleets.
func TestMalformedLinodeURLStopsTheWorker(t *testing.T) {
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "")
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", "")
	for _, env := range []string{"api.linode.com", "api.linode.com/v4", "ftp://api.linode.com/v4"} {
		t.Setenv("DNSROLL_LINODE_URL", env)
		var c Config
		err := c.FromEnv()
		if err == nil || !strings.Contains(err.Error(), "https://api.linode.com/v4") || !strings.Contains(err.Error(), "DNSROLL_LINODE_URL") {
			t.Errorf("DNSROLL_LINODE_URL=%s: err %v, want one naming the variable and the form https://api.linode.com/v4", env, err)
		}
	}
}

// The keys for new VMs: blank lines are dropped, a line that is not a key
// stops the worker, and without any the key is derived from the private
// key Ansible uses.
func TestAuthorizedKeysFromEnv(t *testing.T) {
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", "")
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqYxgaMlqXm8mnGNYHRN6kcLI8EqCCCvw7FJ10SMoRd ops"
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "\n"+key+"\n\n")
	var c Config
	if err := c.FromEnv(); err != nil || len(c.AuthorizedKeys) != 1 || c.Target().SSHKeys != 1 {
		t.Errorf("keys %q, err %v; want the one key", c.AuthorizedKeys, err)
	}
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "ssh-ed25519 not-base64!")
	c = Config{}
	if err := c.FromEnv(); err == nil || !strings.Contains(err.Error(), "DNSROLL_SSH_AUTHORIZED_KEYS") {
		t.Errorf("a broken key: err %v, want one naming DNSROLL_SSH_AUTHORIZED_KEYS", err)
	}
	newKeyInEnv(t, "")
	c = Config{}
	if err := c.FromEnv(); err != nil || len(c.AuthorizedKeys) != 1 || !strings.HasPrefix(c.AuthorizedKeys[0], "ssh-ed25519 ") {
		t.Errorf("derived keys %q, err %v", c.AuthorizedKeys, err)
	}
}

// newKeyInEnv makes an ed25519 key with passphrase and points the
// worker's environment at it, with no authorized keys given.
func newKeyInEnv(t *testing.T, passphrase string) (priv string) {
	t.Helper()
	needlab.Programs(t, "ssh-keygen")
	priv = filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "")
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", priv)
	return priv
}

// A private key whose public half cannot be had (a passphrase, no key.pub
// beside it) stops the worker with the fix: give the public key itself.
func TestAuthorizedKeysOfAKeyWithPassphrase(t *testing.T) {
	priv := newKeyInEnv(t, "secret")
	var c Config
	if err := c.FromEnv(); err != nil || len(c.AuthorizedKeys) != 1 {
		t.Errorf("with id.pub beside the key: keys %q, err %v", c.AuthorizedKeys, err)
	}
	if err := os.Remove(priv + ".pub"); err != nil {
		t.Fatal(err)
	}
	c = Config{}
	want := `DNSROLL_SSH_AUTHORIZED_KEYS="$(cat ` + priv + `.pub)"`
	if err := c.FromEnv(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v, want one saying %s", err, want)
	}
}

// The host key policy comes from ANSIBLE_HOST_KEY_CHECKING (unset: trust
// on first use), and the known_hosts file defaults to the state directory.
func TestHostKeyPolicyFromEnv(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DNSROLL_STATE_DIR", state)
	t.Setenv("DNSROLL_KNOWN_HOSTS", "")
	t.Setenv("DNSROLL_SSH_AUTHORIZED_KEYS", "")
	t.Setenv("ANSIBLE_PRIVATE_KEY_FILE", "")
	for env, want := range map[string]hostkeys.Mode{"": hostkeys.TOFU, "True": hostkeys.Strict, "False": hostkeys.Off} {
		t.Setenv("ANSIBLE_HOST_KEY_CHECKING", env)
		c := Config{}
		if err := c.FromEnv(); err != nil || c.HostKeyChecking != want {
			t.Errorf("ANSIBLE_HOST_KEY_CHECKING=%q: mode %q, err %v; want %q", env, c.HostKeyChecking, err, want)
		}
	}
	t.Setenv("ANSIBLE_HOST_KEY_CHECKING", "sometimes")
	if err := (&Config{}).FromEnv(); err == nil || !strings.Contains(err.Error(), "ANSIBLE_HOST_KEY_CHECKING") {
		t.Errorf("a bad value: err %v, want one naming ANSIBLE_HOST_KEY_CHECKING", err)
	}
	k, err := Config{HostKeyChecking: hostkeys.TOFU}.hostKeys()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Store.Path(), filepath.Join(state, "known_hosts"); got != want {
		t.Errorf("known_hosts = %s, want %s", got, want)
	}
}

// The loader takes names by the config's rule: a name no fleet file can
// have ("lab-", a path) is invalid before any file is read.
func TestFleetLoaderNames(t *testing.T) {
	load := FleetLoader(t.TempDir())
	for _, name := range []string{"lab-", "../lab", "Lab", ""} {
		if _, err := load(name); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("load(%q) = %v, want invalid", name, err)
		}
	}
	if _, err := load("lab"); dnsroll.ErrorCode(err) != dnsroll.ENOTFOUND || !strings.Contains(err.Error(), "there are none") {
		t.Errorf("load(lab) in an empty directory = %v, want not found, saying there are none", err)
	}
	// An unknown name is answered with the fleets there are, and no path.
	dir := t.TempDir()
	testfiles.WriteAll(t, dir, map[string]string{"edge.yaml": "", "prod.yaml": ""})
	_, err := FleetLoader(dir)("lab")
	if want := `no fleet "lab": there is no lab.yaml among the fleet files (the fleets are edge, prod)`; err == nil || err.Error() != want || strings.Contains(err.Error(), dir) {
		t.Errorf("load(lab) = %v, want %q", err, want)
	}
}

// TestChannelPool checks that flips log in with the key the machine lab
// gives Ansible and check host keys against the worker's file, and that
// both drivers get the pool.
func TestChannelPool(t *testing.T) {
	t.Setenv("DNSROLL_STATE_DIR", "/var/lib/dnsroll-test")
	cfg := Config{AnsibleEnv: []string{"ANSIBLE_PRIVATE_KEY_FILE=/lab/id_ed25519"}, HostKeyChecking: hostkeys.TOFU}
	p, err := cfg.ChannelPool()
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyFile != "/lab/id_ed25519" || p.KnownHosts != "/var/lib/dnsroll-test/known_hosts" || p.IgnoreHostKeys {
		t.Errorf("pool %+v: want the lab's key and the default known_hosts, checked", p)
	}
	cfg = Config{KnownHostsFile: "/etc/dnsroll/known_hosts", HostKeyChecking: hostkeys.Off}
	if p, err = cfg.ChannelPool(); err != nil || p.KnownHosts != "/etc/dnsroll/known_hosts" || !p.IgnoreHostKeys {
		t.Errorf("checking off: pool %+v, %v; want host keys ignored, as Ansible would", p, err)
	}
	drivers := Drivers(nil, "", p)
	if d := drivers["nginx"].(*nginx.Driver); d.Channels != p {
		t.Error("the nginx driver does not flip through the pool")
	}
	if d := drivers["dnsdist"].(*dnsdist.Driver); d.Channels != p {
		t.Error("the dnsdist driver does not flip through the pool")
	}
}

// The bundle store's retention is bundle.DefaultRetention unless
// DNSROLL_BUNDLE_KEEP or DNSROLL_BUNDLE_MAX_AGE say otherwise; a bad value
// is refused, naming the variable.
func TestRetentionFromEnv(t *testing.T) {
	t.Setenv("DNSROLL_BUNDLE_KEEP", "")
	t.Setenv("DNSROLL_BUNDLE_MAX_AGE", "")
	if r, err := RetentionFromEnv(); err != nil || r != bundle.DefaultRetention {
		t.Errorf("unset: %+v %v, want the default", r, err)
	}
	t.Setenv("DNSROLL_BUNDLE_KEEP", "3")
	t.Setenv("DNSROLL_BUNDLE_MAX_AGE", "36h")
	if r, err := RetentionFromEnv(); err != nil || r != (bundle.Retention{Keep: 3, MaxAge: 36 * time.Hour}) {
		t.Errorf("set: %+v %v, want 3 and 36h", r, err)
	}
	// 0 is the documented way to keep every snapshot.
	t.Setenv("DNSROLL_BUNDLE_MAX_AGE", "0")
	if r, err := RetentionFromEnv(); err != nil || r.MaxAge != 0 {
		t.Errorf("DNSROLL_BUNDLE_MAX_AGE=0: %+v %v, want a max age of 0", r, err)
	}
	t.Setenv("DNSROLL_BUNDLE_MAX_AGE", "")
	// A negative age would keep every snapshot, as 0 does, unsaid.
	for _, c := range [][2]string{{"DNSROLL_BUNDLE_KEEP", "-1"}, {"DNSROLL_BUNDLE_MAX_AGE", "7d"}, {"DNSROLL_BUNDLE_MAX_AGE", "-1h"}} {
		env, bad := c[0], c[1]
		t.Setenv(env, bad)
		if _, err := RetentionFromEnv(); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: err %v, want one naming it", env, bad, err)
		}
		t.Setenv(env, "")
	}
}

// DNSROLL_STOP_GRACE sets how long a stopped worker lets its steps
// finish; one that is no duration is refused, naming it.
func TestStopGraceFromEnv(t *testing.T) {
	t.Setenv("DNSROLL_STOP_GRACE", "")
	if d, err := StopGraceFromEnv(); err != nil || d != DefaultStopGrace {
		t.Errorf("unset: %s %v, want %s", d, err, DefaultStopGrace)
	}
	t.Setenv("DNSROLL_STOP_GRACE", "5m")
	if d, err := StopGraceFromEnv(); err != nil || d != 5*time.Minute {
		t.Errorf("5m: %s %v", d, err)
	}
	for _, bad := range []string{"5", "-1s", "0s", "soon"} {
		t.Setenv("DNSROLL_STOP_GRACE", bad)
		if _, err := StopGraceFromEnv(); err == nil || !strings.Contains(err.Error(), "DNSROLL_STOP_GRACE") {
			t.Errorf("%s: err %v, want one naming DNSROLL_STOP_GRACE", bad, err)
		}
	}
}

// A worker prunes its bundle store as it starts, by its retention, and
// its activities' store keeps that retention for the prunes after each
// snapshot.
func TestNewActivitiesPrunesBundles(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DNSROLL_STATE_DIR", state)
	store := bundle.Store{Dir: filepath.Join(state, "bundles")}
	zone := filepath.Join(t.TempDir(), "a.zone")
	if err := os.WriteFile(zone, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := store.Snapshot(filepath.Dir(zone), []string{zone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	manifest := filepath.Join(store.Dir, strings.TrimPrefix(m.Hash, "sha256:")+".json")
	if err := os.Chtimes(manifest, old, old); err != nil {
		t.Fatal(err)
	}
	retention := bundle.Retention{Keep: 0, MaxAge: 24 * time.Hour}
	acts, err := NewActivities(Config{LinodeToken: "test", HostKeyChecking: hostkeys.Off, BundleRetention: retention})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(manifest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the month-old snapshot is still there after the worker started (%v)", err)
	}
	if acts.Bundles.Dir != store.Dir || acts.Bundles.Retention != retention {
		t.Errorf("activities' store %+v, want %s with %+v", acts.Bundles, store.Dir, retention)
	}
}

// A worker that could not run a playbook or reach a VM over SSH refuses to
// start, naming the program and its package, rather than failing its
// first rollout's Provision after creating paid VMs.
func TestCheckProgramsNamesTheMissingOne(t *testing.T) {
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	err := CheckPrograms()
	if err == nil {
		t.Fatal("started with an empty PATH")
	}
	for _, want := range []string{"ansible-playbook", "apt-get install ansible openssh-client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, p := range []string{"ansible-playbook", "ssh"} {
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckPrograms(); err != nil {
		t.Errorf("both programs on PATH: %v", err)
	}
	if err := os.Remove(filepath.Join(bin, "ssh")); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrograms(); err == nil || !strings.Contains(err.Error(), "ssh") || strings.Contains(err.Error(), "ansible-playbook") {
		t.Errorf("ssh missing: err %v, want one naming ssh alone", err)
	}
}
