package dnsdist

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// faultyChannel is a channel to a load balancer whose console connection
// fails as a test sets it: refused (nothing sent), or losing the reply to
// the first message sent after the handshake (sent, outcome unknown).
type faultyChannel struct {
	lb.Channel
	mu      sync.Mutex
	refuse  int // dials to refuse, from the next
	deaf    int // connections to lose the reply on, from the next
	deafAt  int // the message whose reply they lose: 1 (0), or a later one
	refused int // dials refused so far
}

func (c *faultyChannel) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse > 0 {
		c.refuse--
		c.refused++
		return nil, errors.New("connect: connection refused (the test's)")
	}
	conn, err := c.Channel.Dial(ctx, network, addr)
	if err != nil || c.deaf == 0 {
		return conn, err
	}
	c.deaf--
	return &deafConn{Conn: conn, at: max(c.deafAt, 1)}, nil
}

// deafConn passes the console handshake (the nonces: one write, one
// read) and the messages before message at, then reads the reply to that
// one, so that dnsdist has run it, and loses it.
type deafConn struct {
	net.Conn
	writes, at int
}

func (c *deafConn) Write(b []byte) (int, error) {
	c.writes++
	return c.Conn.Write(b)
}

func (c *deafConn) Read(b []byte) (int, error) {
	if c.writes < c.at+1 {
		return c.Conn.Read(b)
	}
	if _, err := c.Conn.Read(b); err != nil {
		return 0, err
	}
	return 0, errors.New("read: connection reset by peer (the test's: the reply was lost)")
}

// faultyOpener hands out one faultyChannel per load balancer.
type faultyOpener map[string]*faultyChannel

func (o faultyOpener) Open(_ context.Context, _ *config.Fleet, b config.LoadBalancer) (lb.Channel, error) {
	return o[b.Name], nil
}

// TestRestoreSendsNoUndoWhereNothingWasSent: an update whose console
// connection was refused sent nothing, so its restore must not run
// undo_lua, which may not be neutral on a dnsdist the chunk never changed.
// The fake console answers as a dnsdist on which no chunk of this update
// ran.
func TestRestoreSendsNoUndoWhereNothingWasSent(t *testing.T) {
	key := testKey(t)
	addr, commands := startFakeConsole(t, key, func(string) string { return "none\n" })
	ch := &faultyChannel{Channel: &fakeChannel{key: key, console: addr}, refuse: 1}
	d := &Driver{Reach: lb.Reach{Channels: faultyOpener{"lb1": ch}}}
	fleet, balancer := lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", Driver: "dnsdist"}
	u := lb.Update{Kind: lb.UpdateConsole, Lua: "addACL('198.51.100.0/24')", UndoLua: "rmRule(0)", ID: "wf/run"}
	ctx := context.Background()
	if _, err := d.Update(ctx, fleet, balancer, u); err == nil || ch.refused != 1 {
		t.Fatalf("update through a refused connection: %v (%d refused), want its error", err, ch.refused)
	}
	did, err := d.Restore(ctx, fleet, balancer, u)
	if err != nil || did.Undone || !strings.Contains(did.Note, "never reached dnsdist") {
		t.Errorf("restore: %+v, %v; want nothing undone, saying the chunk never reached dnsdist", did, err)
	}
	for len(commands) > 0 {
		if cmd := <-commands; strings.Contains(cmd, u.UndoLua) {
			t.Errorf("the console got undo_lua: %q", cmd)
		}
	}
}
