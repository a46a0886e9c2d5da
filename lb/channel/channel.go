// Package channel keeps the worker's SSH connections to load balancers open
// between calls, so that a flip costs one round trip over an established
// connection instead of an ansible-playbook start (docs/production.md).
//
// It logs in with the keys Ansible uses (ANSIBLE_PRIVATE_KEY_FILE, else
// the ssh-agent) and checks host keys against the worker's known_hosts
// file, which the staging playbook run (package hostkeys) has usually
// filled. A key the file lacks, on a worker that did not stage, is left
// to the pool's Keys, which record it as the worker's policy allows.
package channel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/lb"
)

// dialTimeout bounds a TCP connect and SSH handshake when ctx has no
// earlier deadline.
const dialTimeout = 10 * time.Second

// Pool implements lb.Opener: one SSH client per load balancer host, user
// and port, opened at first use and kept until it breaks or Close.
// The zero value is not usable: set KnownHosts or IgnoreHostKeys.
type Pool struct {
	// KnownHosts is the worker's known_hosts file (--known-hosts). Every
	// host key must already be in it.
	KnownHosts string
	// IgnoreHostKeys checks no host key, as ANSIBLE_HOST_KEY_CHECKING=False
	// tells Ansible; the worker has already warned about it.
	IgnoreHostKeys bool
	// KeyFile is the private key to log in with; empty means
	// $ANSIBLE_PRIVATE_KEY_FILE. The ssh-agent at AgentSocket (empty:
	// $SSH_AUTH_SOCK) is offered too.
	KeyFile     string
	AgentSocket string
	// Port is sshd's port; zero means 22.
	Port int
	// Keys records the host key of a load balancer that KnownHosts lacks,
	// as the worker's policy allows (first use, or never), and refuses a
	// changed one; nil refuses every unknown key. A worker of a cluster
	// may flip a load balancer that another worker staged.
	Keys KeyRecorder

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry
}

// KeyRecorder checks the SSH host key the machine name offers at host
// (port 22 unless it knows better), recording it if it is new and the
// policy allows; *hostkeys.Keeper is one.
type KeyRecorder interface {
	Verify(ctx context.Context, name, host string) error
}

// entry is the connection to one user@host:port.
type entry struct {
	// connecting is held while a call checks, replaces or makes the
	// connection, so that one call connects and the others use its
	// connection. Close does not take it: it does not wait for a dial.
	connecting sync.Mutex
	mu         sync.Mutex // guards client and used, briefly
	client     *ssh.Client
	used       time.Time // when client was last handed out
}

// A kept connection idle for longer than idleProbe is asked, before it is
// handed out again, whether the other end still answers, and replaced if
// it does not within probeTimeout: one a firewall or NAT forgot while a
// rollout provisioned green would otherwise hold its first flip until the
// step's deadline. A connection in use (flips in a row) is not asked.
const (
	idleProbe    = 15 * time.Second
	probeTimeout = 3 * time.Second
)

// Open returns the channel to balancer: lb.Local for a fleet whose
// Ansible connection is local, else an SSH connection kept open, connected
// now so that a refused host key or login fails here.
func (p *Pool) Open(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) (lb.Channel, error) {
	switch fleet.Ansible.Connection {
	case "local":
		return lb.Local{}, nil
	case "ssh", "":
	default:
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: ansible.connection %q: a flip channel needs ssh or local", balancer.Name, fleet.Ansible.Connection)
	}
	host := balancer.SSHTarget()
	user := fleet.Ansible.LoadBalancerUser()
	if user == "" {
		user = "root"
	}
	port := p.Port
	if port == 0 {
		port = 22
	}
	c := &sshChannel{pool: p, name: balancer.Name, user: user, addr: net.JoinHostPort(host, strconv.Itoa(port))}
	if _, err := c.client(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes every connection; later Opens fail. It does not wait for
// a dial in flight: the dial closes its connection and fails.
func (p *Pool) Close() error {
	p.mu.Lock()
	entries := p.entries
	p.entries, p.closed = nil, true
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		e.mu.Lock()
		if e.client != nil {
			if err := e.client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
			e.client = nil
		}
		e.mu.Unlock()
	}
	return errors.Join(errs...)
}

// sshChannel is lb.Channel over the pool's connection to one host.
type sshChannel struct {
	pool       *Pool
	name, user string
	addr       string // host:port of sshd
}

func (c *sshChannel) key() string { return c.user + "@" + c.addr }

// client returns the kept connection, connecting when there is none.
func (c *sshChannel) client(ctx context.Context) (*ssh.Client, error) {
	p := c.pool
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, c.closedErr()
	}
	if p.entries == nil {
		p.entries = map[string]*entry{}
	}
	e := p.entries[c.key()]
	if e == nil {
		e = &entry{}
		p.entries[c.key()] = e
	}
	p.mu.Unlock()

	e.connecting.Lock()
	defer e.connecting.Unlock()
	if cl := c.kept(ctx, e); cl != nil {
		return cl, nil
	}
	if p.isClosed() {
		return nil, c.closedErr()
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	// Close may have run during the dial, and found no connection to
	// close: this one is then closed here. Close sets closed before it
	// takes e.mu, so one of the two closes it.
	e.mu.Lock()
	if p.isClosed() {
		e.mu.Unlock()
		_ = cl.Close()
		return nil, c.closedErr()
	}
	e.client, e.used = cl, time.Now()
	e.mu.Unlock()
	// A connection the server or the network ends is forgotten, so the
	// next call connects again.
	go func() {
		_ = cl.Wait()
		e.forget(cl)
	}()
	return cl, nil
}

// kept returns e's connection, marked used, unless there is none or it
// has been idle and no longer answers, when it is closed.
func (c *sshChannel) kept(ctx context.Context, e *entry) *ssh.Client {
	e.mu.Lock()
	cl, used := e.client, e.used
	e.mu.Unlock()
	if cl == nil {
		return nil
	}
	if time.Since(used) > idleProbe && !answers(ctx, cl) {
		e.forget(cl)
		_ = cl.Close()
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != cl {
		return nil // closed, by Close or after a failure, while asked
	}
	e.used = time.Now()
	return cl
}

// forget drops cl from e unless e already holds another connection.
func (e *entry) forget(cl *ssh.Client) {
	e.mu.Lock()
	if e.client == cl {
		e.client = nil
	}
	e.mu.Unlock()
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (c *sshChannel) closedErr() error {
	return fmt.Errorf("load balancer %s: the channel pool is closed", c.name)
}

// answers tells whether the server at the other end of cl replies to a
// keepalive request within probeTimeout.
func answers(ctx context.Context, cl *ssh.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := cl.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-ctx.Done():
		return false
	}
}

// drop forgets cl after a failure that says the connection is broken.
func (c *sshChannel) drop(cl *ssh.Client) {
	c.pool.mu.Lock()
	e := c.pool.entries[c.key()]
	c.pool.mu.Unlock()
	if e != nil {
		e.forget(cl)
	}
	_ = cl.Close()
}

// dial connects and logs in. A host key that the known_hosts file lacks
// is handed to the pool's Keys, and the login tried again once it is
// recorded.
func (c *sshChannel) dial(ctx context.Context) (*ssh.Client, error) {
	cl, unknown, err := c.dialOnce(ctx)
	if !unknown || c.pool.Keys == nil {
		return cl, err
	}
	if err := c.pool.Keys.Verify(ctx, c.name, host(c.addr)); err != nil {
		return nil, err
	}
	cl, _, err = c.dialOnce(ctx)
	return cl, err
}

// dialOnce connects and logs in; unknown says the host key was refused
// for want of any recorded key of the host.
func (c *sshChannel) dialOnce(ctx context.Context) (_ *ssh.Client, unknown bool, _ error) {
	auth, closeAuth, err := c.pool.auth()
	if err != nil {
		return nil, false, fmt.Errorf("load balancer %s: %w", c.name, err)
	}
	defer closeAuth()
	var hostKeyErr error
	cfg := &ssh.ClientConfig{User: c.user, Auth: auth, Timeout: dialTimeout}
	if c.pool.IgnoreHostKeys {
		cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // the operator turned checking off
	} else {
		check, algs, err := c.pool.hostKeyCheck(c.addr)
		if err != nil {
			return nil, false, fmt.Errorf("load balancer %s: %w", c.name, err)
		}
		cfg.HostKeyAlgorithms = algs
		cfg.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(hostname, remote, key); err != nil {
				var ke *knownhosts.KeyError
				unknown = errors.As(err, &ke) && len(ke.Want) == 0
				hostKeyErr = c.refused(err, key)
				return hostKeyErr
			}
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, fmt.Errorf("load balancer %s: ssh %s: %w", c.name, c.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	conn = quickAck(conn)
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.addr, cfg)
	if err != nil {
		conn.Close()
		if hostKeyErr != nil {
			return nil, unknown, hostKeyErr
		}
		return nil, false, fmt.Errorf("load balancer %s: ssh %s@%s: %w", c.name, c.user, c.addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), false, nil
}

// refused turns a known_hosts verdict into an error naming the host and
// the fix.
func (c *sshChannel) refused(verdict error, key ssh.PublicKey) error {
	file := c.pool.KnownHosts
	var ke *knownhosts.KeyError
	if errors.As(verdict, &ke) && len(ke.Want) == 0 {
		return dnsroll.Errorf(dnsroll.EINVALID, "SSH host key of load balancer %s (%s, %s) is not in %s, and the flip channel trusts only recorded keys: "+
			"stage first (its playbook run records the key at first contact), or check the fingerprint and add it with `ssh-keyscan -p %s %s >> %s`",
			c.name, c.addr, ssh.FingerprintSHA256(key), file, port(c.addr), host(c.addr), file)
	}
	var revoked *knownhosts.RevokedError
	isRevoked := errors.As(verdict, &revoked)
	return &hostkeys.Error{Name: c.name, Addr: c.addr, File: file, Host: knownhosts.Normalize(c.addr),
		Changed: !isRevoked, Revoked: isRevoked, Offered: ssh.FingerprintSHA256(key)}
}

func host(hp string) string { h, _, _ := net.SplitHostPort(hp); return h }
func port(hp string) string { _, p, _ := net.SplitHostPort(hp); return p }

// hostKeyCheck reads the known_hosts file and returns its check, with the
// key algorithms of the keys it holds for addr first, so that sshd offers
// a recorded key rather than another type that would look changed.
func (p *Pool) hostKeyCheck(addr string) (ssh.HostKeyCallback, []string, error) {
	if p.KnownHosts == "" {
		return nil, nil, dnsroll.Errorf(dnsroll.EINVALID, "the worker has no known_hosts file to check the host key against; set --known-hosts or DNSROLL_KNOWN_HOSTS")
	}
	cb, err := knownhosts.New(p.KnownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	// A throwaway key that no entry holds makes the check list the keys
	// it has for the host.
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	var algs []string
	var ke *knownhosts.KeyError
	if errors.As(cb(addr, &net.TCPAddr{IP: net.ParseIP(host(addr))}, probe), &ke) {
		for _, w := range ke.Want {
			algs = append(algs, algorithmsFor(w.Key.Type())...)
		}
	}
	return cb, algs, nil
}

// algorithmsFor lists the signature algorithms that prove a key type.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// auth returns the ways to log in: the key file and the agent's keys.
func (p *Pool) auth() ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	keyFile := p.KeyFile
	if keyFile == "" {
		keyFile = os.Getenv("ANSIBLE_PRIVATE_KEY_FILE")
	}
	if keyFile != "" {
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("SSH key: %w", err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			// Ansible would ask ssh, which asks the agent: do the same.
		case err != nil:
			return nil, nil, fmt.Errorf("SSH key %s (ANSIBLE_PRIVATE_KEY_FILE): %w", keyFile, err)
		default:
			signers = append(signers, s)
		}
	}
	closeAuth := func() {}
	sock := p.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			closeAuth = func() { conn.Close() }
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	if len(signers) == 0 {
		closeAuth()
		return nil, nil, dnsroll.Errorf(dnsroll.EINVALID, "no SSH key to log into load balancers: set ANSIBLE_PRIVATE_KEY_FILE (a key without passphrase) or load the key into the ssh-agent at SSH_AUTH_SOCK, as for Ansible")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeAuth, nil
}

// Run runs cmd with /bin/sh in a session, under sudo -n for a user other
// than root. A connection found broken when the session opens is replaced
// once; a command that started is never run twice.
func (c *sshChannel) Run(ctx context.Context, cmd string) ([]byte, error) {
	line := command(c.user, cmd)
	for attempt := 0; ; attempt++ {
		cl, err := c.client(ctx)
		if err != nil {
			return nil, err
		}
		sess, err := newSession(ctx, cl)
		if err != nil {
			c.drop(cl)
			if attempt == 0 && ctx.Err() == nil {
				continue
			}
			return nil, fmt.Errorf("load balancer %s: ssh session: %w", c.name, err)
		}
		return c.run(ctx, sess, line)
	}
}

func (c *sshChannel) run(ctx context.Context, sess *ssh.Session, line string) ([]byte, error) {
	defer sess.Close()
	var stdout, stderr strings.Builder
	sess.Stdout, sess.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	select {
	case err := <-done:
		out := []byte(stdout.String())
		if err == nil {
			return out, nil
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out, fmt.Errorf("load balancer %s: %w: %s", c.name, err, msg)
		}
		return out, fmt.Errorf("load balancer %s: %w", c.name, err)
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
		return nil, fmt.Errorf("load balancer %s: %w", c.name, ctx.Err())
	}
}

// newSession opens a session, giving up when ctx ends: a connection that
// died silently would otherwise block until TCP gives up.
func newSession(ctx context.Context, cl *ssh.Client) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() { s, err := cl.NewSession(); ch <- result{s, err} }()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		cl.Close()
		return nil, ctx.Err()
	}
}

// command is the line sshd runs for user: cmd under /bin/sh, as lb.Local
// runs it, whatever the user's login shell (which sshd runs the line
// with), and under sudo -n for a user other than root, which fails rather
// than asks for a password.
func command(user, cmd string) string {
	line := "/bin/sh -c " + lb.Quote(cmd)
	if user == "root" {
		return "exec " + line
	}
	return "exec sudo -n " + line
}

// Dial opens a direct-tcpip (or, for "unix", a streamlocal) channel to
// addr from the load balancer. A connection found broken is replaced once.
// The returned connection has deadlines (see deadlineConn).
func (c *sshChannel) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, fmt.Errorf("load balancer %s: dial %s %s: an SSH channel carries tcp and unix streams only", c.name, network, addr)
	}
	for attempt := 0; ; attempt++ {
		cl, err := c.client(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := cl.DialContext(ctx, network, addr)
		if err == nil {
			return &deadlineConn{Conn: conn}, nil
		}
		// A target that the server refused would be refused again; any
		// other failure is the connection's (reset, EOF, a stray packet).
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) || ctx.Err() != nil || attempt > 0 {
			return nil, fmt.Errorf("load balancer %s: dial %s %s: %w", c.name, network, addr, err)
		}
		c.drop(cl)
	}
}

// deadlineConn gives a forwarded connection the deadlines that x/crypto's
// lacks (its SetDeadline fails), so a console that accepts and never
// answers cannot hang a flip: when the deadline passes, the connection is
// closed and a blocked Read or Write fails with os.ErrDeadlineExceeded.
// Read and write deadlines are one deadline, and one that has passed
// cannot be extended.
type deadlineConn struct {
	net.Conn
	mu      sync.Mutex
	timer   *time.Timer
	expired bool
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.expired = true
			c.mu.Unlock()
			c.Conn.Close()
		})
	}
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	return n, c.timeout(err)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	return n, c.timeout(err)
}

func (c *deadlineConn) Close() error {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// timeout reports a failure caused by a passed deadline as one.
func (c *deadlineConn) timeout(err error) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return os.ErrDeadlineExceeded
	}
	return err
}
