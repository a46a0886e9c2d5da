package dnsdist

import (
	"cmp"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dnsroll/dnsroll"
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

// markConsole answers as dnsdist's console does to the update's chunks:
// it keeps the marks that Update and Restore set in markTable, answers
// the restore's read of one, and refuses chunks that name refuse, with
// the error dnsdist prints.
type markConsole struct {
	mu    sync.Mutex
	marks map[string]string
	set   *regexp.Regexp
	read  *regexp.Regexp
}

func newMarkConsole() *markConsole {
	return &markConsole{
		marks: map[string]string{},
		set:   regexp.MustCompile(markTable + `\['([0-9a-f]+)'\] = '(sent|undone)'`),
		read:  regexp.MustCompile(`^return \(` + markTable + ` and ` + markTable + `\['([0-9a-f]+)'\]\) or 'none'$`),
	}
}

func (m *markConsole) reply(cmd string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.read.FindStringSubmatch(cmd); r != nil {
		return cmp.Or(m.marks[r[1]], "none") + "\n"
	}
	if strings.Contains(cmd, "refuse") {
		return "[string \"chunk\"]:1: attempt to call a nil value (global 'refuse')\n"
	}
	for _, s := range m.set.FindAllStringSubmatch(cmd, -1) {
		m.marks[s[1]] = s[2]
	}
	return ""
}

// undoSent counts the messages that carried u's undo_lua.
func undoSent(commands chan string, u lb.Update) int {
	n := 0
	for len(commands) > 0 {
		if strings.Contains(<-commands, u.UndoLua) {
			n++
		}
	}
	return n
}

// Restore runs undo_lua once where the update's chunk ran, however often
// it is asked; another run's update with the same chunk has a mark of its
// own, and where that one never reached dnsdist its restore runs nothing;
// a chunk that dnsdist refuses fails the update as EINVALID.
func TestRestoreRunsUndoOnceAndOnlyForItsOwnUpdate(t *testing.T) {
	key := testKey(t)
	m := newMarkConsole()
	addr, commands := startFakeConsole(t, key, m.reply)
	d := &Driver{Reach: lb.Reach{Channels: faultyOpener{"lb1": &faultyChannel{Channel: &fakeChannel{key: key, console: addr}}}}}
	fleet, balancer := lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53", Driver: "dnsdist"}
	ctx := context.Background()
	u := lb.Update{Kind: lb.UpdateConsole, Lua: "addACL('198.51.100.0/24')", UndoLua: "rmACL('198.51.100.0/24')", ID: "wf/run-a"}
	if _, err := d.Update(ctx, fleet, balancer, u); err != nil {
		t.Fatal(err)
	}
	other := u
	other.ID = "wf/run-b"
	if did, err := d.Restore(ctx, fleet, balancer, other); err != nil || did.Undone || undoSent(commands, u) != 0 {
		t.Errorf("restore of another run's update of the same chunk, which never ran: %+v, %v; want nothing undone, no undo_lua sent", did, err)
	}
	for i := range 2 {
		did, err := d.Restore(ctx, fleet, balancer, u)
		if err != nil || !did.Undone {
			t.Fatalf("restore %d: %+v, %v; want it undone", i+1, did, err)
		}
		if n, want := undoSent(commands, u), 1-i; n != want {
			t.Errorf("restore %d sent undo_lua %d times, want %d", i+1, n, want)
		}
	}
	bad := lb.Update{Kind: lb.UpdateConsole, Lua: "refuse()", UndoLua: "rmRule(0)", ID: "wf/run-c"}
	if _, err := d.Update(ctx, fleet, balancer, bad); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("update with a chunk dnsdist refuses: %v, want EINVALID", err)
	}
}
