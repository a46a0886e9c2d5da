package hostkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/needlab"
)

// sshd is an SSH server on loopback that presents host keys and lets
// nobody in, which is all a host key check sees of a machine.
type sshd struct {
	port int
	mu   sync.Mutex
	keys []ssh.Signer
	// onConnect, when set, runs as a connection arrives, before the
	// handshake.
	onConnect func()
}

func startSSHD(t testing.TB, keys ...ssh.Signer) *sshd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &sshd{port: ln.Addr().(*net.TCPAddr).Port, keys: keys}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cfg := &ssh.ServerConfig{PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
				return nil, errors.New("no")
			}}
			s.mu.Lock()
			if s.onConnect != nil {
				s.onConnect()
			}
			for _, k := range s.keys {
				cfg.AddHostKey(k)
			}
			s.mu.Unlock()
			go func() {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _, _, _ = ssh.NewServerConn(c, cfg)
				c.Close()
			}()
		}
	}()
	return s
}

// rekey gives the server new host keys, as a rebuilt machine has.
func (s *sshd) rekey(keys ...ssh.Signer) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *sshd) host() string { return "[127.0.0.1]:" + strconv.Itoa(s.port) }

func ed25519Key(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return signer(t, priv, err)
}

func ecdsaKey(t testing.TB) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return signer(t, priv, err)
}

// signer is the SSH signer of a private key just generated (or err).
func signer(t testing.TB, priv any, err error) ssh.Signer {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeeper(t testing.TB, mode Mode, s *sshd) *Keeper {
	t.Helper()
	k, err := New(mode, filepath.Join(t.TempDir(), "state", "known_hosts"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	k.Port = s.port
	return k
}

func entries(t *testing.T, k *Keeper, s *sshd) []Entry {
	t.Helper()
	es, err := k.Store.Entries(s.host())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// appendFile adds line to the file at path, as a hand edit would.
func appendFile(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// First contact records every key type the machine offers; later contacts
// pin them and write nothing.
func TestRecordAtFirstContactThenPin(t *testing.T) {
	ed, ec := ed25519Key(t), ecdsaKey(t)
	s := startSSHD(t, ed, ec)
	k := newKeeper(t, TOFU, s)
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
		t.Fatalf("first contact: %v", err)
	}
	es := entries(t, k, s)
	if len(es) != 2 {
		t.Fatalf("recorded %d keys, want 2 (ed25519 and ecdsa):\n%s", len(es), readFile(t, k.Store.Path()))
	}
	for _, want := range []ssh.PublicKey{ed.PublicKey(), ec.PublicKey()} {
		if !hasKey(es, want) {
			t.Errorf("no entry for the %s key", want.Type())
		}
	}
	if fi, err := os.Stat(k.Store.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	before := readFile(t, k.Store.Path())
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	if after := readFile(t, k.Store.Path()); after != before {
		t.Errorf("a pinned contact rewrote the file:\n%s\nwas\n%s", after, before)
	}
}

// A changed key is refused with an error that names the machine, the file
// and the command that removes the old key; the file is left alone, and
// that command is the whole fix.
func TestChangedKeyIsRefused(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, k.Store.Path())
	s.rekey(ed25519Key(t))
	err := k.Verify(ctx(t), "lb1", "127.0.0.1")
	if !isChanged(err) {
		t.Fatalf("err = %v, want a changed-key *Error", err)
	}
	fix := "ssh-keygen -R " + s.host() + " -f " + k.Store.Path()
	for _, want := range []string{"lb1", "changed", fix} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := dnsroll.ErrorCode(err); got != dnsroll.EINVALID {
		t.Errorf("code = %s, want %s (no retry fixes it)", got, dnsroll.EINVALID)
	}
	if after := readFile(t, k.Store.Path()); after != before {
		t.Errorf("a refused key changed the file")
	}
	needlab.Programs(t, "ssh-keygen") // to apply the fix
	if out, err := exec.Command("sh", "-c", fix).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", fix, err, out)
	}
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
		t.Fatalf("after %s: %v", fix, err)
	}
}

// Strict mode (ANSIBLE_HOST_KEY_CHECKING=True) records nothing: an unknown
// machine is refused until its key is in the file.
func TestStrictNeedsKnownKeys(t *testing.T) {
	ed := ed25519Key(t)
	s := startSSHD(t, ed)
	k := newKeeper(t, Strict, s)
	for _, try := range []func() error{
		func() error { return k.Verify(ctx(t), "lb1", "127.0.0.1") },
		func() error { return k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-7") },
	} {
		err := try()
		var he *Error
		if !errors.As(err, &he) || he.Changed || !strings.Contains(err.Error(), "ANSIBLE_HOST_KEY_CHECKING=True") {
			t.Fatalf("err = %v, want an unknown-key *Error naming ANSIBLE_HOST_KEY_CHECKING", err)
		}
	}
	if got := readFile(t, k.Store.Path()); got != "" {
		t.Fatalf("strict mode wrote:\n%s", got)
	}
	if _, err := k.Store.Add(s.host(), []ssh.PublicKey{ed.PublicKey()}, ""); err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
		t.Fatalf("pre-seeded key: %v", err)
	}
}

// A new instance at an address an earlier instance had gets its own key
// recorded, replacing the old one; for the same instance the key is pinned.
func TestTrustNewReplacesAReusedAddress(t *testing.T) {
	s, k := trustedNew(t)
	second := ed25519Key(t)
	s.rekey(second)
	// As a load balancer this would be refused...
	if err := k.Verify(ctx(t), "ns1", "127.0.0.1"); err == nil {
		t.Fatal("Verify accepted a changed key")
	}
	// ...but the rollout created instance 2 itself.
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-2"); err != nil {
		t.Fatalf("new instance at a reused address: %v", err)
	}
	es := entries(t, k, s)
	if len(es) != 1 || !hasKey(es, second.PublicKey()) || es[0].Comment != "dnsroll:linode-2" {
		t.Fatalf("entries = %+v, want only instance 2's key", es)
	}
	// A retry for the same instance checks instead of trusting again.
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-2"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	s.rekey(ed25519Key(t))
	err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-2")
	if !isChanged(err) || !strings.Contains(err.Error(), "linode-2") {
		t.Fatalf("err = %v, want a changed key for instance linode-2", err)
	}
}

// A host whose file holds only a key type that the client would not pick
// first is asked for that type, as ssh does, and matches. Which type the
// client picks first depends on x/crypto's version, so both are tried.
func TestPinsAnyRecordedType(t *testing.T) {
	ed, ec := ed25519Key(t), ecdsaKey(t)
	s := startSSHD(t, ed, ec)
	for _, recorded := range []ssh.Signer{ed, ec} {
		k := newKeeper(t, Strict, s)
		if _, err := k.Store.Add(s.host(), []ssh.PublicKey{recorded.PublicKey()}, ""); err != nil {
			t.Fatal(err)
		}
		if err := k.Verify(ctx(t), "lb1", "127.0.0.1"); err != nil {
			t.Errorf("only the %s key recorded, both offered: %v", recorded.PublicKey().Type(), err)
		}
	}
}

// A key that changed is reported as changed in strict mode too: the
// unknown-key error's advice (ssh-keyscan >> the file) would add the new
// key beside the old one and trust it.
func TestStrictRefusesAChangedKeyAsChanged(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, Strict, s)
	if _, err := k.Store.Add(s.host(), []ssh.PublicKey{ed25519Key(t).PublicKey()}, ""); err != nil {
		t.Fatal(err)
	}
	err := k.Verify(ctx(t), "lb1", "127.0.0.1")
	if !isChanged(err) || strings.Contains(err.Error(), "ssh-keyscan") {
		t.Fatalf("err = %v, want a changed-key *Error", err)
	}
}

// Two workers sharing the file meet a new machine at once, and the other
// one records a different key (someone answered it in between) while this
// one scans: this worker refuses the key it saw rather than adding it
// beside the other or accepting it.
func TestFirstContactRacingAnotherWorker(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	other, err := OpenStore(k.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	theirs := ed25519Key(t).PublicKey()
	s.mu.Lock()
	s.onConnect = func() {
		// The first handshake is this worker's check; the other worker
		// records its key right after.
		s.onConnect = nil
		if _, err := other.Add(s.host(), []ssh.PublicKey{theirs}, ""); err != nil {
			t.Error(err)
		}
	}
	s.mu.Unlock()
	err = k.Verify(ctx(t), "lb1", "127.0.0.1")
	if !isChanged(err) {
		t.Fatalf("err = %v, want a changed-key *Error", err)
	}
	if es := entries(t, k, s); len(es) != 1 || !hasKey(es, theirs) {
		t.Errorf("entries = %+v, want only the other worker's key", es)
	}
}

// A key listed as @revoked is refused as the policy refuses keys (code
// EINVALID, no retry), and recording a new instance at the address or
// forgetting one there keeps the revocation.
func TestRevokedKeyIsRefused(t *testing.T) {
	bad := ed25519Key(t)
	s := startSSHD(t, bad)
	k := newKeeper(t, TOFU, s)
	revoked := "@revoked " + s.host() + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(bad.PublicKey()))) + "\n"
	if err := os.WriteFile(k.Store.Path(), []byte(revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	err := k.Verify(ctx(t), "lb1", "127.0.0.1")
	var he *Error
	if !errors.As(err, &he) || !he.Revoked || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Fatalf("err = %v (code %s), want a *Error for a revoked key with code %s", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	// ssh-keygen -R would delete the revocation too, and the next first
	// contact would then trust the revoked key.
	if msg := err.Error(); !strings.Contains(msg, "revoked") || strings.Contains(msg, "ssh-keygen -R") {
		t.Errorf("err = %q, want it to say the key is revoked, without the advice to remove the host's entries", msg)
	}
	// A new machine offering a revoked key is refused, not recorded.
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-3"); !errors.As(err, &he) || !he.Revoked {
		t.Fatalf("TrustNew of a machine offering a revoked key: err = %v, want a *Error for a revoked key", err)
	}
	if err := k.Forget("127.0.0.1", "linode-3", "prod", ""); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, k.Store.Path()); got != revoked {
		t.Errorf("file = %q, want the revocation alone, as it was", got)
	}
}

// A line added by hand beside the instance's own entries (ssh-keyscan >>
// during a rollout) does not turn a retry for the instance back into a
// first contact: a changed key is still refused.
func TestTrustNewRetryWithAHandAddedLine(t *testing.T) {
	s, k := trustedNew(t)
	hand := knownhosts.Line([]string{s.host()}, ed25519Key(t).PublicKey()) + "\n"
	appendFile(t, k.Store.Path(), hand)
	s.rekey(ed25519Key(t))
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-1"); !isChanged(err) {
		t.Fatalf("retry after the key changed, with a hand-added line: err = %v, want a changed-key *Error", err)
	}
}

// A new machine at a fresh address is recorded for its instance, so that a
// retry for it checks the key rather than trusting again.
func TestTrustNewPinsAFirstInstance(t *testing.T) {
	s, k := trustedNew(t)
	if es := entries(t, k, s); len(es) == 0 || !allTagged(es, "dnsroll:linode-1") {
		t.Fatalf("entries = %+v, want them tagged with the instance", es)
	}
	s.rekey(ed25519Key(t))
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-1"); !isChanged(err) {
		t.Fatalf("retry after the key changed: err = %v, want a changed-key *Error", err)
	}
}

// Forget removes a deleted machine's entries, hashed and untagged ones
// included, and keeps every other line and a later instance's entries.
func TestForgetRemovesOnlyThatAddress(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	other := ed25519Key(t).PublicKey()
	hashed := knownhosts.HashHostname(s.host()) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))
	seed := "# operator's note\n10.0.0.9 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))) + "\n" + hashed + "\n"
	if err := os.WriteFile(k.Store.Path(), []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.TrustNew(ctx(t), "prod", "ns2-next", "127.0.0.1", "linode-5"); err != nil {
		t.Fatal(err)
	}
	// Instance 4 was deleted long ago: instance 5 keeps its entry.
	if err := k.Forget("127.0.0.1", "linode-4", "prod", ""); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, k, s); len(es) != 1 || es[0].Comment != "dnsroll:linode-5" {
		t.Fatalf("after forgetting another instance: %+v", es)
	}
	if err := k.Forget("127.0.0.1", "linode-5", "prod", ""); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, k.Store.Path())
	want := "# operator's note\n10.0.0.9 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))) + "\n"
	if got != want {
		t.Errorf("file after Forget:\n%s\nwant\n%s", got, want)
	}
}

// Forget of a deleted machine also removes the keys recorded for its address
// without a tag (at first contact, or by ssh-keyscan as production.md
// says, at sshd's default port), and keeps other hosts' hashed entries and
// revocations.
func TestForgetRemovesUntaggedKeys(t *testing.T) {
	k, err := New(TOFU, filepath.Join(t.TempDir(), "known_hosts"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	line := func(host string) string {
		return host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed25519Key(t).PublicKey()))) + "\n"
	}
	keep := knownhosts.HashHostname("203.0.113.12") + line("") + "@revoked " + line("203.0.113.11")
	if err := os.WriteFile(k.Store.Path(), []byte(line("203.0.113.11")+keep), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Forget("203.0.113.11", "linode-1", "prod", ""); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, k.Store.Path()); got != keep {
		t.Errorf("file after Forget:\n%s\nwant\n%s", got, keep)
	}
}

func TestAnsibleEnv(t *testing.T) {
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	env := strings.Join(k.AnsibleEnv("-o ProxyJump=bastion"), "\n")
	for _, want := range []string{"ANSIBLE_HOST_KEY_CHECKING=True", "StrictHostKeyChecking=yes", "UserKnownHostsFile=" + k.Store.Path(), "-o ProxyJump=bastion"} {
		if !strings.Contains(env, want) {
			t.Errorf("env %q lacks %q", env, want)
		}
	}
	off := strings.Join((&Keeper{Mode: Off}).AnsibleEnv(""), "\n")
	if !strings.Contains(off, "ANSIBLE_HOST_KEY_CHECKING=False") {
		t.Errorf("off: %q", off)
	}
	if (*Keeper)(nil).AnsibleEnv("") != nil {
		t.Error("a nil keeper changes Ansible's settings")
	}
}

// The options that AnsibleEnv gives ssh take effect as ssh reads them: the
// worker's file alone, checked strictly and never updated, whatever the
// operator's ANSIBLE_SSH_EXTRA_ARGS say about the same options.
func TestAnsibleEnvWinsInSSH(t *testing.T) {
	needlab.Programs(t, "ssh")
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	theirs := "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/tmp/theirs -o GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts -o UpdateHostKeys=yes"
	var args string
	for _, kv := range k.AnsibleEnv(theirs) {
		if v, ok := strings.CutPrefix(kv, "ANSIBLE_SSH_EXTRA_ARGS="); ok {
			args = v
		}
	}
	out, err := exec.Command("ssh", append(append([]string{"-G", "-F", "/dev/null"}, strings.Fields(args)...), "lb1")...).Output()
	if err != nil {
		t.Fatalf("ssh -G %s: %v", args, err)
	}
	for _, want := range []string{"stricthostkeychecking true", "userknownhostsfile " + k.Store.Path(), "globalknownhostsfile /dev/null", "updatehostkeys false"} {
		if !strings.Contains(string(out), "\n"+want+"\n") {
			t.Errorf("ssh %s: effective settings lack %q", args, want)
		}
	}
}

func TestModeFromEnv(t *testing.T) {
	for in, want := range map[string]Mode{"": TOFU, "True": Strict, "yes": Strict, "1": Strict, "False": Off, "no": Off, "0": Off} {
		if got, err := ModeFromEnv(in); err != nil || got != want {
			t.Errorf("ModeFromEnv(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ModeFromEnv("maybe"); err == nil || !strings.Contains(err.Error(), "ANSIBLE_HOST_KEY_CHECKING") {
		t.Errorf("ModeFromEnv(maybe) = %v", err)
	}
}

func TestOpenStoreRefusesPathsSSHWouldSplit(t *testing.T) {
	for _, name := range []string{"my hosts", "my\thosts", `my"hosts`, "my'hosts", `my\hosts`} {
		if _, err := OpenStore(filepath.Join(t.TempDir(), name)); err == nil {
			t.Errorf("path %q was accepted", name)
		}
	}
}

// trustedNew is a TOFU keeper that trusted a new machine, s, as instance
// linode-1 of ns1-next.
func trustedNew(t *testing.T) (*sshd, *Keeper) {
	t.Helper()
	s := startSSHD(t, ed25519Key(t))
	k := newKeeper(t, TOFU, s)
	if err := k.TrustNew(ctx(t), "prod", "ns1-next", "127.0.0.1", "linode-1"); err != nil {
		t.Fatal(err)
	}
	return s, k
}

// isChanged says err refuses a key as changed from the one recorded.
func isChanged(err error) bool {
	var he *Error
	return errors.As(err, &he) && he.Changed
}

func hasKey(es []Entry, k ssh.PublicKey) bool {
	for _, e := range es {
		if string(e.Key.Marshal()) == string(k.Marshal()) {
			return true
		}
	}
	return false
}

// What a check costs before each playbook: a pinned host is one handshake,
// first contact one per key type plus the check.
func BenchmarkVerifyPinned(b *testing.B) {
	s := startSSHD(b, ed25519Key(b), ecdsaKey(b))
	k := newKeeper(b, TOFU, s)
	if err := k.Verify(context.Background(), "lb1", "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := k.Verify(context.Background(), "lb1", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyFirstContact(b *testing.B) {
	s := startSSHD(b, ed25519Key(b), ecdsaKey(b))
	k := newKeeper(b, TOFU, s)
	for b.Loop() {
		if err := k.Forget("127.0.0.1", "", "prod", ""); err != nil {
			b.Fatal(err)
		}
		if err := k.Verify(context.Background(), "lb1", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

func allTagged(es []Entry, tag string) bool {
	for _, e := range es {
		if e.Comment != tag {
			return false
		}
	}
	return true
}
