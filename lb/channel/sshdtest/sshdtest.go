// Package sshdtest runs a real OpenSSH sshd on loopback for tests of
// what logs into load balancers over SSH (lb/channel, and the drivers'
// flips over it).
package sshdtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const sshdBin = "/usr/sbin/sshd"

// Server is a real sshd on loopback behind a proxy that counts and can
// cut the TCP connections made through it.
type Server struct {
	// Addr is the proxy's 127.0.0.1:port; SSHD is sshd's own, for
	// measurements that no proxy should slow down.
	Addr, SSHD string
	// HostKey is sshd's host key; KeyFile, a private key that logs in
	// as root.
	HostKey ssh.PublicKey
	KeyFile string
	// ECDSAHostKey is sshd's second host key, when it has one
	// (StartTwoHostKeys).
	ECDSAHostKey ssh.PublicKey

	mu      sync.Mutex
	accepts int
	conns   []net.Conn
	frozen  []*atomic.Bool
}

// Start runs /usr/sbin/sshd -D on a loopback port with a fresh host key,
// accepting one fresh client key for root, until the test ends. It skips
// the test when sshd is not installed or the test does not run as root.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartForwarding(t, true)
}

// StartForwarding is Start with sshd's TCP and unix socket forwarding
// allowed or, as a hardened server may have it, forbidden.
func StartForwarding(t testing.TB, allow bool) *Server {
	t.Helper()
	return start(t, allow, false)
}

// StartTwoHostKeys is Start with an ECDSA host key beside the ed25519
// one, as a real server has several: it offers the one the client asks
// for first.
func StartTwoHostKeys(t testing.TB) *Server {
	t.Helper()
	return start(t, true, true)
}

func start(t testing.TB, allow, twoHostKeys bool) *Server {
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
	hostPub := WriteKey(t, filepath.Join(dir, "host_key"))
	clientPub := WriteKey(t, filepath.Join(dir, "client_key"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	var ecdsaPub ssh.PublicKey
	extra := ""
	if twoHostKeys {
		ecdsaPub = writeECDSAKey(t, filepath.Join(dir, "host_key_ecdsa"))
		extra = "HostKey " + filepath.Join(dir, "host_key_ecdsa") + "\n"
	}
	port := freePort(t)
	// SHLVL=1 makes bash skip ~/.bashrc, which it otherwise reads for a
	// command over SSH: measurements are of the channel, not of this
	// machine's rc files (a pyenv init there costs 250 ms).
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1:%[1]d
HostKey %[2]s/host_key
%[4]sAuthorizedKeysFile %[2]s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AllowTcpForwarding %[3]s
AllowStreamLocalForwarding %[3]s
LogLevel VERBOSE
SetEnv SHLVL=1
`, port, dir, map[bool]string{true: "yes", false: "no"}[allow], extra)
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

	s := &Server{HostKey: hostPub, ECDSAHostKey: ecdsaPub, KeyFile: filepath.Join(dir, "client_key"), SSHD: sshdAddr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); s.Drop() })
	s.Addr = ln.Addr().String()
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
			frozen := new(atomic.Bool)
			s.mu.Lock()
			s.accepts++
			s.conns = append(s.conns, c, up)
			s.frozen = append(s.frozen, frozen)
			s.mu.Unlock()
			go func() { pipe(up, c, frozen); up.Close() }()
			go func() { pipe(c, up, frozen); c.Close() }()
		}
	}()
	return s
}

// pipe copies src to dst until either ends, and drops what it reads
// once frozen is set.
func pipe(dst io.Writer, src io.Reader, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze makes every connection through the proxy so far drop what it
// carries without closing, as a firewall or NAT that forgot the
// connection does; later connections pass.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.frozen {
		f.Store(true)
	}
}

// Connections is how many TCP connections were made through the proxy.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// Drop cuts every connection through the proxy, as a restarted sshd or a
// network failure would.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// KnownHosts writes a known_hosts file that holds key (none when nil) for
// addr, s.Addr or s.SSHD.
func KnownHosts(t testing.TB, addr string, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	text := ""
	if key != nil {
		text = knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKey writes a new ed25519 private key to path and returns its
// public key.
func WriteKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return writePrivateKey(t, path, priv)
}

// writePrivateKey writes priv to path in OpenSSH's format and returns its
// public key.
func writePrivateKey(t testing.TB, path string, priv crypto.Signer) ssh.PublicKey {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(priv.Public())
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

// Port is addr's port number.
func Port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// writeECDSAKey writes a new ECDSA P-256 private key to path and returns
// its public key.
func writeECDSAKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writePrivateKey(t, path, priv)
}
