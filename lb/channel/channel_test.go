package channel

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
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
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/lb"
)

const sshdBin = "/usr/sbin/sshd"

// server is a real sshd on loopback behind a proxy that counts and can
// cut the TCP connections the pool makes.
type server struct {
	addr    string // the proxy's 127.0.0.1:port, where the pool connects
	sshd    string // sshd's own address
	hostKey ssh.PublicKey
	keyFile string // the client's private key

	mu      sync.Mutex
	accepts int
	conns   []net.Conn
}

// startSSHD runs /usr/sbin/sshd -D on a loopback port with a fresh host
// key, accepting one fresh client key for root.
func startSSHD(t testing.TB) *server {
	t.Helper()
	if _, err := os.Stat(sshdBin); err != nil {
		t.Skipf("no %s: install openssh-server (make deps) to test the SSH channel against a real sshd", sshdBin)
	}
	if os.Getuid() != 0 {
		t.Skip("the sshd test logs in as root, as a root sshd requires; run it as root")
	}
	// Debian's unit creates sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPub := writeKey(t, filepath.Join(dir, "host_key"))
	clientPub := writeKey(t, filepath.Join(dir, "client_key"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s/host_key
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
LogLevel VERBOSE
`, port, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdBin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("sshd log:\n%s", b)
		}
	})
	sshdAddr := "127.0.0.1:" + strconv.Itoa(port)
	waitListening(t, sshdAddr)

	s := &server{hostKey: hostPub, keyFile: filepath.Join(dir, "client_key"), sshd: sshdAddr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); s.drop() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", sshdAddr)
			if err != nil {
				c.Close()
				continue
			}
			s.mu.Lock()
			s.accepts++
			s.conns = append(s.conns, c, up)
			s.mu.Unlock()
			// As the pool does on its own connection, so that the proxy
			// adds no delayed ACK that a direct connection would not have.
			go func() { _, _ = io.Copy(up, quickAck(c)); up.Close() }()
			go func() { _, _ = io.Copy(c, quickAck(up)); c.Close() }()
		}
	}()
	return s
}

// connections is how many TCP connections the pool has made.
func (s *server) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// drop cuts every connection, as a restarted sshd or a network failure
// would.
func (s *server) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// knownHosts writes a known_hosts file that holds key for the proxy.
func (s *server) knownHosts(t testing.TB, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	text := ""
	if key != nil {
		text = knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key) + "\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *server) pool(t testing.TB, knownHosts string) *Pool {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(port)
	p := &Pool{KnownHosts: knownHosts, KeyFile: s.keyFile, AgentSocket: "/nonexistent", Port: n}
	t.Cleanup(func() { p.Close() })
	return p
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd never listened on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var sshFleet = &config.Fleet{Name: "prod", Ansible: config.Ansible{Connection: "ssh", SSHUser: "root"}}

// balancer is a load balancer whose sshd is the test's: SSHHost is the
// loopback, as an ssh_host in the fleet would be.
var balancer = config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", SSHHost: "127.0.0.1"}

// TestRunDialReuseReconnect runs commands and dials through one kept
// connection to a real sshd, and replaces it after the server cuts it.
func TestRunDialReuseReconnect(t *testing.T) {
	s := startSSHD(t)
	p := s.pool(t, s.knownHosts(t, s.hostKey))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	ch, err := p.Open(ctx, sshFleet, balancer)
	if err != nil {
		t.Fatal(err)
	}
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
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	conn, err := ch.Dial(ctx, "tcp", echo.Addr().String())
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
	if got := s.connections(); got != 1 {
		t.Errorf("%d SSH connections for two Opens, five Runs and a Dial; want 1 kept open", got)
	}

	// The server cuts the connection: the next call connects again, once.
	s.drop()
	if out, err := ch.Run(ctx, "echo back"); err != nil || string(out) != "back\n" {
		t.Fatalf("Run after the connection was cut: %q, %v", out, err)
	}
	s.drop()
	conn, err = ch.Dial(ctx, "tcp", echo.Addr().String())
	if err != nil {
		t.Fatalf("Dial after the connection was cut: %v", err)
	}
	conn.Close()
	if got := s.connections(); got != 3 {
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
	s := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	other := writeKey(t, filepath.Join(t.TempDir(), "other"))
	_, err := s.pool(t, s.knownHosts(t, other)).Open(ctx, sshFleet, balancer)
	var he *hostkeys.Error
	if !errors.As(err, &he) || !he.Changed {
		t.Fatalf("changed host key: error %v, want a *hostkeys.Error for a changed key", err)
	}
	for _, want := range []string{"lb1", "ssh-keygen -R " + knownhosts.Normalize(s.addr), ssh.FingerprintSHA256(s.hostKey)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("changed host key: error %q lacks %q", err, want)
		}
	}
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("changed host key: code %q, want %q (no retry fixes it)", dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}

	_, err = s.pool(t, s.knownHosts(t, nil)).Open(ctx, sshFleet, balancer)
	if err == nil || !strings.Contains(err.Error(), "lb1") || !strings.Contains(err.Error(), "ssh-keyscan") || dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("unknown host key: error %v, want EINVALID naming lb1 and ssh-keyscan", err)
	}
	if got := s.connections(); got != 2 {
		t.Errorf("%d connections, want 2", got)
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
	if got := command("root", "a | b"); got != "a | b" {
		t.Errorf("root: %q, want the command as it is", got)
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
	s := startSSHD(b)
	ctx := context.Background()
	b.Run("run-kept-open", func(b *testing.B) {
		ch, err := s.pool(b, s.knownHosts(b, s.hostKey)).Open(ctx, sshFleet, balancer)
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
		known := s.knownHosts(b, s.hostKey)
		for b.Loop() {
			p := s.pool(b, known)
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
		ch, err := s.pool(b, s.knownHosts(b, s.hostKey)).Open(ctx, sshFleet, balancer)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("x"))
				c.Close()
			}
		}()
		buf := make([]byte, 1)
		for b.Loop() {
			c, err := ch.Dial(ctx, "tcp", ln.Addr().String())
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
