package channel

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dnsroll/dnsroll/internal/leaktest"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/lb/channel/sshdtest"
)

// The worker keeps one pool for weeks: runs and dials, cancelled or not,
// and connections the server cuts or that go silent, must leave nothing
// behind but the one kept connection.
func TestRunsAndDialsLeaveNoGoroutinesOrDescriptors(t *testing.T) {
	s, _, ch, ctx := openChannel(t)
	echo := testnet.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	round := func(i int) {
		if _, err := ch.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
		conn, err := ch.Dial(ctx, "tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		conn.Close()
		// A command cancelled while it runs.
		cctx, cancel := context.WithTimeout(ctx, time.Duration(5+i%10)*time.Millisecond)
		_, _ = ch.Run(cctx, "sleep 5")
		cancel()
		if i%10 == 9 {
			s.Drop()
		}
	}
	round(0)
	// Let the pool connect again after a cut, so the baseline has one
	// kept connection.
	if _, err := ch.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	base := leaktest.Take(t)
	for i := range 40 {
		round(i)
	}
	if _, err := ch.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	leaktest.Check(t, base, 2, 5*time.Second)
}

// A connection that goes silent (a firewall forgot it) while a command
// runs, or while it sits idle, is given up; what waited on it must not
// stay behind, and Close must leave nothing of the pool.
func TestSilentConnectionsAndCloseLeaveNothing(t *testing.T) {
	s := sshdtest.Start(t)
	known := sshdtest.KnownHosts(t, s.Addr, s.HostKey)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := leaktest.Take(t)
	p := newPool(t, s, known)
	ch, err := p.Open(ctx, sshFleet, balancer)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ch.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
		// Silent mid-command: the run is cancelled.
		cctx, cancelRun := context.WithTimeout(ctx, 400*time.Millisecond)
		time.AfterFunc(150*time.Millisecond, s.Freeze)
		_, _ = ch.Run(cctx, "sleep 1; echo late")
		cancelRun()
		// Still silent, and idle: the next call finds out and connects
		// again.
		for _, e := range p.entries {
			e.used = time.Now().Add(-time.Minute)
		}
		if _, err := ch.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s.Drop()
	leaktest.Check(t, base, 2, 5*time.Second)
}

// A worker that stops while a step connects to a load balancer closes its
// pool under that dial: Close must not wait for it, and the connection the
// dial makes once Close has run must be closed, not handed out or kept,
// so that nothing of the pool outlives Close.
func TestCloseDuringADialLeavesNoConnection(t *testing.T) {
	s := sshdtest.Start(t)
	known := sshdtest.KnownHosts(t, s.Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := leaktest.Take(t)
	p := newPool(t, s, known)
	// The host key is unknown, so the dial stops in Keys.Verify until the
	// test lets it record the key and log in.
	keys := &heldRecorder{file: known, addr: s.Addr, key: s.HostKey, verifying: make(chan struct{}), release: make(chan struct{})}
	p.Keys = keys
	opened := make(chan error, 1)
	go func() {
		_, err := p.Open(ctx, sshFleet, balancer)
		opened <- err
	}()
	<-keys.verifying
	closed := make(chan struct{})
	go func() { _ = p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Error("Close waited for a dial in flight")
	}
	close(keys.release)
	if err := <-opened; err == nil {
		t.Error("Open succeeded on a pool closed while it connected")
	}
	leaktest.Check(t, base, 2, 5*time.Second)
}

// heldRecorder is a KeyRecorder that records key for addr in file once
// release is closed, having closed verifying.
type heldRecorder struct {
	file, addr         string
	key                ssh.PublicKey
	verifying, release chan struct{}
}

func (r *heldRecorder) Verify(ctx context.Context, _, _ string) error {
	close(r.verifying)
	select {
	case <-r.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(r.addr)}, r.key) + "\n"
	return os.WriteFile(r.file, []byte(line), 0o600)
}
