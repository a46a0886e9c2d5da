package dnsdist

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

func TestSplitRejects(t *testing.T) {
	a := dnsroll.Server{Label: "a", IPv4: "192.0.2.1"}
	b := dnsroll.Server{Label: "b", IPv4: "192.0.2.2"}
	for name, shares := range map[string][]lb.Share{
		"none":            nil,
		"all zero":        {{Server: a}, {Server: b}},
		"negative":        {{Server: a, Weight: 1}, {Server: b, Weight: -1}},
		"twice":           {{Server: a, Weight: 1}, {Server: a, Weight: 2}},
		"no address":      {{Server: dnsroll.Server{Label: "c"}, Weight: 1}},
		"weight too high": {{Server: a, Weight: 2_000_000}},
	} {
		if _, err := split(shares); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("%s: split = %v, want EINVALID", name, err)
		}
	}
}

// TestCheckFlip: Flip succeeds only when dnsdist's default pool, read back,
// is exactly the weighted shares, each once and up.
func TestCheckFlip(t *testing.T) {
	want := map[string]int{"192.0.2.1:53": 90, "192.0.2.2:53": 10, "192.0.2.3:53": 0}
	for reply, ok := range map[string]bool{
		"dnsroll-ok recorded 192.0.2.1:53=90=up 192.0.2.2:53=10=up\n":                  true,
		"dnsroll-ok recorded 192.0.2.1:53=90=up\n":                                     false, // green missing
		"dnsroll-ok recorded 192.0.2.1:53=90=up 192.0.2.2:53=10=down":                  false,
		"dnsroll-ok recorded 192.0.2.1:53=90=up 192.0.2.2:53=1=up":                     false,
		"dnsroll-ok recorded 192.0.2.1:53=90=up 192.0.2.2:53=10=up 192.0.2.3:53=1=up":  false, // weight 0 still live
		"dnsroll-ok recorded 192.0.2.1:53=90=up 192.0.2.2:53=10=up 192.0.2.2:53=10=up": false, // twice
		"Error: [string \"...\"]:1: attempt to call a nil value":                       false,
		"dnsroll-unstaged 192.0.2.2:53":                                                false,
		"dnsroll-down 192.0.2.2:53":                                                    false,
	} {
		err := checkFlip(reply, want, "/var/lib/x/split")
		if (err == nil) != ok {
			t.Errorf("checkFlip(%q) = %v, want ok=%v", reply, err, ok)
		}
	}
	err := checkFlip("dnsroll-unstaged 192.0.2.2:53", want, "/var/lib/x/split")
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "stage them first") {
		t.Errorf("unstaged: %v, want EINVALID saying to stage first", err)
	}
}

// TestParseStats reads a real dnsdist 1.7.3 showServers() table.
func TestParseStats(t *testing.T) {
	table := `#   Name                 Address                       State     Qps    Qlim Ord Wt    Queries   Drops Drate   Lat Outstanding Pools
0   127.0.0.1:15301      127.0.0.1:15301                  up    12.0       0   1 90       3578       2   0.0   0.1           1 
1   [2001:db8::1234:5678]:53 [2001:db8::1234:5678]:53     up     1.0       0   1 10        422       0   0.0   0.1           0 staged
All                                                             13.0                      4000       2                         
`
	lua := "dnsroll-ok 127.0.0.1:15301 up 90 1 2 [2001:db8::1234:5678]:53 down 0 0 0\n"
	st, err := parseStats(lua, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("stats = %+v, want two", st)
	}
	a, b := st[0], st[1]
	if a.Addr != "127.0.0.1:15301" || a.Queries != 3578 || a.Drops != 2 || a.Outstanding != 1 || a.Responses != 3575 || !a.Up || a.Weight != 90 {
		t.Errorf("first = %+v", a)
	}
	if b.Addr != "[2001:db8::1234:5678]:53" || b.Queries != 422 || b.Up || b.Weight != 0 {
		t.Errorf("second = %+v", b)
	}
	if _, err := parseStats("Error: boom", table); err == nil {
		t.Error("parseStats accepted an error reply")
	}
}

// fakeChannel is a load balancer reached through a channel: its key file
// holds key, and its console is a fakeConsole.
type fakeChannel struct {
	key      *[32]byte
	console  string
	commands []string
}

func (c *fakeChannel) Run(_ context.Context, cmd string) ([]byte, error) {
	c.commands = append(c.commands, cmd)
	return []byte(base64.StdEncoding.EncodeToString(c.key[:]) + "\n"), nil
}

func (c *fakeChannel) Dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, c.console)
}

type fakeOpener map[string]*fakeChannel

func (o fakeOpener) Open(_ context.Context, _ *config.Fleet, b config.LoadBalancer) (lb.Channel, error) {
	return o[b.Name], nil
}

// TestFlipThroughChannel flips two real load balancers (same console
// address and key file, different keys) through their channels: each key
// is read from its own load balancer once, with sudo for a non-root SSH
// user, and read again when the load balancer's key changed.
func TestFlipThroughChannel(t *testing.T) {
	green := dnsroll.Server{Label: "green", IPv4: "192.0.2.30"}
	reply := func(string) string { return "dnsroll-ok recorded 192.0.2.30:53=1=up\n" }
	opener := fakeOpener{}
	for _, name := range []string{"lb1", "lb2"} {
		key := testKey(t)
		addr, _ := startFakeConsole(t, key, reply)
		opener[name] = &fakeChannel{key: key, console: addr}
	}
	d := &Driver{Reach: lb.Reach{Channels: opener}}
	fleet := lbtest.VMFleet()
	flip := func(name string) error {
		return d.Flip(context.Background(), fleet, config.LoadBalancer{Name: name, Address: "192.0.2.10:53"}, []lb.Share{{Server: green, Weight: 1}})
	}
	for range 2 {
		for _, name := range []string{"lb1", "lb2"} {
			if err := flip(name); err != nil {
				t.Fatalf("Flip %s: %v", name, err)
			}
		}
	}
	for name, ch := range opener {
		if want := []string{"sudo -n cat -- '" + vmKeyFile + "'"}; !slices.Equal(ch.commands, want) {
			t.Errorf("%s: commands %q, want the key read once: %q", name, ch.commands, want)
		}
	}
	// lb1's key is recreated: the console closes on the old one, and the
	// driver reads the new one.
	lb1 := opener["lb1"]
	newKey := testKey(t)
	lb1.key = newKey
	lb1.console, _ = startFakeConsole(t, newKey, reply)
	if err := flip("lb1"); err != nil {
		t.Fatalf("Flip after the key changed: %v", err)
	}
	if len(lb1.commands) != 2 {
		t.Errorf("after the key changed the driver read it %d times in all, want 2", len(lb1.commands))
	}
}

// unitChannel is a load balancer whose systemd says dnsdist is state.
type unitChannel struct {
	fakeChannel
	state string
}

func (c *unitChannel) Run(ctx context.Context, cmd string) ([]byte, error) {
	if strings.HasPrefix(cmd, "systemctl is-active") {
		return []byte(c.state + "\n"), nil
	}
	return c.fakeChannel.Run(ctx, cmd)
}

// On a VM a flip whose console cannot be reached asks systemd whether
// dnsdist runs: stopped or failed, the flip wraps lb.ErrNotRunning, so the
// flip activity starts it with its playbook; otherwise it does not.
func TestFlipSaysWhenDnsdistIsStopped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	green := dnsroll.Server{Label: "green", IPv4: "192.0.2.30"}
	for state, want := range map[string]bool{"inactive": true, "failed": true, "active": false, "activating": false} {
		ch := &unitChannel{fakeChannel: fakeChannel{key: testKey(t), console: closed}, state: state}
		d := &Driver{Reach: lb.Reach{Channels: singleOpener{ch}}}
		err := d.Flip(context.Background(), lbtest.VMFleet(), config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}, []lb.Share{{Server: green, Weight: 1}})
		if err == nil || errors.Is(err, lb.ErrNotRunning) != want {
			t.Errorf("dnsdist %s: Flip: %v; want lb.ErrNotRunning wrapped: %v", state, err, want)
		}
	}
}

type singleOpener struct{ ch lb.Channel }

func (o singleOpener) Open(context.Context, *config.Fleet, config.LoadBalancer) (lb.Channel, error) {
	return o.ch, nil
}
