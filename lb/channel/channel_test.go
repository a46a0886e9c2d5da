package channel

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/channel/sshdtest"
)

// newPool is a pool that logs into s with its key, through the proxy.
func newPool(t testing.TB, s *sshdtest.Server, knownHosts string) *Pool {
	t.Helper()
	p := &Pool{KnownHosts: knownHosts, KeyFile: s.KeyFile, AgentSocket: "/nonexistent", Port: sshdtest.Port(s.Addr)}
	t.Cleanup(func() { p.Close() })
	return p
}

// directPool logs into s's sshd itself, for measurements.
func directPool(t testing.TB, s *sshdtest.Server) *Pool {
	t.Helper()
	p := &Pool{KnownHosts: sshdtest.KnownHosts(t, s.SSHD, s.HostKey), KeyFile: s.KeyFile, AgentSocket: "/nonexistent", Port: sshdtest.Port(s.SSHD)}
	t.Cleanup(func() { p.Close() })
	return p
}

// testContext is t's context, ended after 15 s: an sshd that hangs fails
// the test rather than the package's run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var sshFleet = &config.Fleet{Name: "prod", Ansible: config.Ansible{Connection: "ssh", SSHUser: "root"}}

// balancer is a load balancer whose sshd is the test's: SSHHost is the
// loopback, as an ssh_host in the fleet would be.
var balancer = config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", SSHHost: "127.0.0.1"}

// openChannel starts a real sshd and opens a channel to it through a
// pool that trusts its key; ctx bounds the test's calls.
func openChannel(t *testing.T) (*sshdtest.Server, *Pool, lb.Channel, context.Context) {
	t.Helper()
	s := sshdtest.Start(t)
	p := newPool(t, s, sshdtest.KnownHosts(t, s.Addr, s.HostKey))
	ctx := testContext(t)
	ch, err := p.Open(ctx, sshFleet, balancer)
	if err != nil {
		t.Fatal(err)
	}
	return s, p, ch, ctx
}

// TestRunDialReuseReconnect runs commands and dials through one kept
// connection to a real sshd, and replaces it after the server cuts it.
func TestRunDialReuseReconnect(t *testing.T) {
	s, p, ch, ctx := openChannel(t)
	out, err := ch.Run(ctx, "echo out; echo err >&2; echo \"$USER\"")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "out\nroot\n"; got != want {
		t.Errorf("Run output = %q, want %q", got, want)
	}
	_, err = ch.Run(ctx, "echo why >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "3") || !strings.Contains(err.Error(), "why") {
		t.Errorf("failing command: error %v, want its exit status and stderr", err)
	}

	// Dial reaches a listener on the load balancer's loopback.
	echo := testnet.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	conn, err := ch.Dial(ctx, "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("through Dial: read %q, %v; want the echo of ping", line, err)
	}
	conn.Close()

	// A target that accepts and never answers cannot block a reader past
	// its deadline, which x/crypto's forwarded connections lack.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	conn, err = ch.Dial(ctx, "tcp", silent.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := conn.SetReadDeadline(start.Add(200 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	_, err = conn.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("read from a silent target: %v after %v, want a deadline error after 200 ms", err, time.Since(start))
	}
	conn.Close()

	// Another Open of the same load balancer and further calls share it.
	again, err := p.Open(ctx, sshFleet, balancer)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := again.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("%d SSH connections for two Opens, five Runs and two Dials; want 1 kept open", got)
	}

	// The server cuts the connection: the next call connects again, once.
	s.Drop()
	if out, err := ch.Run(ctx, "echo back"); err != nil || string(out) != "back\n" {
		t.Fatalf("Run after the connection was cut: %q, %v", out, err)
	}
	s.Drop()
	conn, err = ch.Dial(ctx, "tcp", echo)
	if err != nil {
		t.Fatalf("Dial after the connection was cut: %v", err)
	}
	conn.Close()
	if got := s.Connections(); got != 3 {
		t.Errorf("%d SSH connections after two cuts; want 3 (one reconnect each)", got)
	}

	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := ch.Run(ctx, "true"); err == nil {
		t.Error("Run after Close succeeded; the pool must not reconnect once closed")
	}
}

// TestRefusedHostKey checks that a changed or unknown host key stops the
// login with an error naming the load balancer and the fix.
func TestRefusedHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	ctx := testContext(t)

	other := sshdtest.WriteKey(t, filepath.Join(t.TempDir(), "other"))
	_, err := newPool(t, s, sshdtest.KnownHosts(t, s.Addr, other)).Open(ctx, sshFleet, balancer)
	var he *hostkeys.Error
	if !errors.As(err, &he) || !he.Changed {
		t.Fatalf("changed host key: error %v, want a *hostkeys.Error for a changed key", err)
	}
	for _, want := range []string{"lb1", "ssh-keygen -R " + knownhosts.Normalize(s.Addr), ssh.FingerprintSHA256(s.HostKey)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("changed host key: error %q lacks %q", err, want)
		}
	}
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("changed host key: code %q, want %q (no retry fixes it)", dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}

	// A revoked key is refused as revoked: ssh-keygen -R would remove the
	// revocation too.
	revoked := filepath.Join(t.TempDir(), "known_hosts")
	line := "@revoked " + knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey) + "\n"
	if err := os.WriteFile(revoked, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = newPool(t, s, revoked).Open(ctx, sshFleet, balancer)
	if !errors.As(err, &he) || !he.Revoked || strings.Contains(err.Error(), "ssh-keygen -R") || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("revoked host key: error %v, want EINVALID for a revoked key, without ssh-keygen -R", err)
	}

	_, err = newPool(t, s, sshdtest.KnownHosts(t, s.Addr, nil)).Open(ctx, sshFleet, balancer)
	if err == nil || !strings.Contains(err.Error(), "lb1") || !strings.Contains(err.Error(), "ssh-keyscan") || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("unknown host key: error %v, want EINVALID naming lb1 and ssh-keyscan", err)
	}
	if got := s.Connections(); got != 3 {
		t.Errorf("%d connections, want 3", got)
	}
}

// A worker that never staged a load balancer (another worker of the
// cluster did, and each keeps its own known_hosts file) records its host
// key at first contact, as the worker's policy allows: before, its first
// flip failed for good, and so did the flip back. Strict checking still
// refuses an unknown key, and a changed one is refused whatever the policy.
func TestUnknownHostKeyRecordedAtFirstContact(t *testing.T) {
	s := sshdtest.Start(t)
	ctx := testContext(t)
	keeper := func(mode hostkeys.Mode, file string) *hostkeys.Keeper {
		st, err := hostkeys.OpenStore(file)
		if err != nil {
			t.Fatal(err)
		}
		return &hostkeys.Keeper{Mode: mode, Store: st, Port: sshdtest.Port(s.Addr), Log: slog.New(slog.DiscardHandler)}
	}

	file := sshdtest.KnownHosts(t, s.Addr, nil)
	p := newPool(t, s, file)
	p.Keys = keeper(hostkeys.TOFU, file)
	ch, err := p.Open(ctx, sshFleet, balancer)
	if err != nil {
		t.Fatalf("unknown host key, trusted on first use: %v", err)
	}
	if out, err := ch.Run(ctx, "echo hello"); err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Errorf("run after recording the key: %q, %v", out, err)
	}
	check, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(knownhosts.Normalize(s.Addr), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, s.HostKey); err != nil {
		t.Errorf("the host key was not recorded in %s: %v", file, err)
	}

	strict := sshdtest.KnownHosts(t, s.Addr, nil)
	p = newPool(t, s, strict)
	p.Keys = keeper(hostkeys.Strict, strict)
	var he *hostkeys.Error
	if _, err := p.Open(ctx, sshFleet, balancer); !errors.As(err, &he) || he.Changed || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("unknown host key under strict checking: %v; want a refusal of the unknown key", err)
	}

	other := sshdtest.WriteKey(t, filepath.Join(t.TempDir(), "other"))
	changed := sshdtest.KnownHosts(t, s.Addr, other)
	p = newPool(t, s, changed)
	p.Keys = keeper(hostkeys.TOFU, changed)
	if _, err := p.Open(ctx, sshFleet, balancer); !errors.As(err, &he) || !he.Changed {
		t.Errorf("changed host key with a keeper: %v; want it refused as changed", err)
	}

	// Only a key the file lacks goes to the recorder: a changed one is
	// refused by the channel itself, whatever the recorder would do.
	rec := &recordAll{}
	p = newPool(t, s, changed)
	p.Keys = rec
	if _, err := p.Open(ctx, sshFleet, balancer); !errors.As(err, &he) || !he.Changed {
		t.Errorf("changed host key with a recorder that accepts anything: %v; want it refused as changed", err)
	}
	if rec.calls != 0 {
		t.Errorf("a changed host key was handed to the recorder %d time(s)", rec.calls)
	}
}

// recordAll is a KeyRecorder that accepts every key.
type recordAll struct{ calls int }

func (r *recordAll) Verify(context.Context, string, string) error { r.calls++; return nil }

// CheckAccess logs in as a switch would, before a rollout creates
// anything, and opens the forwards the switch dials through: a key the
// load balancer's user does not accept, and an sshd that forbids
// forwarding, are refused with the fix, and no retry is asked for. A unix
// socket not there yet (no rollout made it) is not asked for.
func TestCheckAccess(t *testing.T) {
	s := sshdtest.Start(t)
	ctx := testContext(t)
	sock := testnet.ServeUnix(t, filepath.Join(t.TempDir(), "control.sock"), func(net.Conn) {})
	forwards := []lb.Forward{{Network: "tcp", Addr: "127.0.0.1:9"}, {Network: "unix", Addr: sock}, {Network: "unix", Addr: sock + ".absent"}}
	known := sshdtest.KnownHosts(t, s.Addr, s.HostKey)
	if err := (lb.Reach{Channels: newPool(t, s, known)}).CheckAccess(ctx, sshFleet, balancer, forwards...); err != nil {
		t.Fatalf("a key root accepts, forwarding allowed: %v", err)
	}
	stranger := newPool(t, s, known)
	stranger.KeyFile = filepath.Join(t.TempDir(), "stranger")
	sshdtest.WriteKey(t, stranger.KeyFile)
	err := (lb.Reach{Channels: stranger}).CheckAccess(ctx, sshFleet, balancer)
	if want := "root@127.0.0.1 does not accept the worker's SSH key"; err == nil || !strings.Contains(err.Error(), want) || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("a key root does not accept: %v; want EINVALID containing %q", err, want)
	}

	hardened := sshdtest.StartForwarding(t, false)
	pool := newPool(t, hardened, sshdtest.KnownHosts(t, hardened.Addr, hardened.HostKey))
	if err := (lb.Reach{Channels: pool}).CheckAccess(ctx, sshFleet, balancer, forwards[2]); err != nil {
		t.Errorf("a login, and a socket not there yet, on an sshd that forbids forwarding: %v", err)
	}
	for _, f := range forwards[:2] {
		err := (lb.Reach{Channels: pool}).CheckAccess(ctx, sshFleet, balancer, f)
		if want := "its sshd refused the forward"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "AllowTcpForwarding") || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("%s forwarding forbidden: %v; want EINVALID containing %q and the fix", f.Network, err, want)
		}
	}
}

func TestOpenLocal(t *testing.T) {
	p := &Pool{}
	ch, err := p.Open(context.Background(), &config.Fleet{Ansible: config.Ansible{Connection: "local"}}, balancer)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.(lb.Local); !ok {
		t.Errorf("local connection: channel %T, want lb.Local", ch)
	}
}

// TestCommandQuoting runs the line a non-root user would get through a
// shell, with a fake sudo, to check that the whole command runs under it.
func TestCommandQuoting(t *testing.T) {
	if got, want := command("root", "a | b"), "exec /bin/sh -c 'a | b'"; got != want {
		t.Errorf("root: %q, want %q", got, want)
	}
	// Another user's command runs as root, as the playbook's become does.
	if got, want := command("deploy", "a | b"), "exec sudo -n /bin/sh -c 'a | b'"; got != want {
		t.Errorf("deploy: %q, want %q", got, want)
	}
	dir := t.TempDir()
	sudo := "#!/bin/sh\n[ \"$1\" = -n ] || exit 9\nshift\nexec \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(sudo), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := `printf '%s\n' "it's" | tr a-z A-Z; echo 'two'`
	c := exec.Command("/bin/sh", "-c", command("deploy", cmd))
	c.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "IT'S\ntwo\n"; got != want {
		t.Errorf("under sudo: %q, want %q", got, want)
	}
}

// BenchmarkChannel measures, against a real sshd on loopback, a command
// over the kept-open connection (the channel's share of an nginx flip),
// the same over a new connection each time, and a Dial over the kept-open
// one (a console exchange's channel open). A command's time includes the
// login shell's start: bash reads ~/.bashrc for SSH commands.
func BenchmarkChannel(b *testing.B) {
	s := sshdtest.Start(b)
	ctx := context.Background()
	b.Run("run-kept-open", func(b *testing.B) {
		ch, err := directPool(b, s).Open(ctx, sshFleet, balancer)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := ch.Run(ctx, "true"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("run-new-connection", func(b *testing.B) {
		for b.Loop() {
			p := directPool(b, s)
			ch, err := p.Open(ctx, sshFleet, balancer)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ch.Run(ctx, "true"); err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
	b.Run("dial-kept-open", func(b *testing.B) {
		ch, err := directPool(b, s).Open(ctx, sshFleet, balancer)
		if err != nil {
			b.Fatal(err)
		}
		addr := testnet.ServeTCP(b, func(c net.Conn) { _, _ = c.Write([]byte("x")) })
		buf := make([]byte, 1)
		for b.Loop() {
			c, err := ch.Dial(ctx, "tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// A kept connection that a firewall or NAT forgot while it sat idle (a
// rollout provisioning green after Plan logged in) answers nothing: it is
// found out and replaced before a command is sent over it, instead of
// holding that command until its deadline.
func TestIdleConnectionThatNoLongerAnswersIsReplaced(t *testing.T) {
	s, p, ch, ctx := openChannel(t)
	s.Freeze()
	for _, e := range p.entries {
		e.used = time.Now().Add(-time.Minute)
	}
	runCtx, cancelRun := context.WithTimeout(ctx, 8*time.Second)
	defer cancelRun()
	if out, err := ch.Run(runCtx, "echo alive"); err != nil || strings.TrimSpace(string(out)) != "alive" {
		t.Fatalf("run over a forgotten idle connection: %q, %v; want it replaced and the command run", out, err)
	}
	if got := s.Connections(); got != 2 {
		t.Errorf("%d connections, want 2: the forgotten one and its replacement", got)
	}
}

// A load balancer's sshd has a key of each type, and the known_hosts file
// may hold only one (what the staging run recorded): the channel asks sshd
// for that one, which a key of another type offered first would look
// changed and be refused.
func TestRecordedHostKeyTypeIsAskedFor(t *testing.T) {
	s := sshdtest.StartTwoHostKeys(t)
	ctx := testContext(t)
	for _, key := range []ssh.PublicKey{s.HostKey, s.ECDSAHostKey} {
		p := newPool(t, s, sshdtest.KnownHosts(t, s.Addr, key))
		if _, err := p.Open(ctx, sshFleet, balancer); err != nil {
			t.Errorf("known_hosts with the %s key only: %v", key.Type(), err)
		}
	}
}
