package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		port, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if port < First || port > Last || port >= 32768 {
			t.Fatalf("port %d outside %d-%d, or in the kernel's ephemeral range", port, First, Last)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("TCP bind of %d: %v", port, err)
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ln.Close()
			t.Fatalf("UDP bind of %d: %v", port, err)
		}
		// A port in use is never handed out.
		if Free(port) {
			t.Errorf("Free(%d) while bound", port)
		}
		ln.Close()
		pc.Close()
	}
}

// Each kind of lab has its own ports: no two ranges overlap, and none
// reaches the kernel's ephemeral ports.
func TestRangesApart(t *testing.T) {
	type span struct {
		name        string
		first, last int
	}
	last := func(b Bases) int { return b.First + b.Step*(b.Count-1) + 999 }
	spans := []span{
		{"make dev (fleets/lab.yaml dns_port_base 15300)", 15300, 16299},
		{"Loopback", First, Last},
		{"BenchBases", BenchBases.First, BenchBases.First + BenchBases.Step*BenchBases.Count - 1},
		{"TestBases", TestBases.First, last(TestBases)},
		{"TestPickSkipsTakenBlocks", 15000, 15199},
	}
	for i, a := range spans {
		if a.last >= 32768 {
			t.Errorf("%s reaches %d, in the ephemeral range", a.name, a.last)
		}
		for _, b := range spans[i+1:] {
			if a.first <= b.last && b.first <= a.last {
				t.Errorf("%s (%d-%d) overlaps %s (%d-%d)", a.name, a.first, a.last, b.name, b.first, b.last)
			}
		}
	}
}

// Pick never returns a base with a port in use in its block, its first
// and last port included. The blocks are in 15000-15199, which no picker
// hands out (TestRangesApart keeps it apart): in Loopback's range, as
// before, a test of another package running at once could hold a port of
// the other block too (seen once).
func TestPickSkipsTakenBlocks(t *testing.T) {
	b := Bases{First: 15000, Step: 100, Count: 2}
	for _, taken := range []int{15001, 15005, 15010} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(taken))
		if err != nil {
			t.Skipf("cannot hold port %d: %v", taken, err)
		}
		for range 20 {
			base, err := b.Pick(10)
			if err != nil {
				t.Fatal(err)
			}
			if base != 15100 {
				t.Fatalf("Pick = %d, whose block holds the taken port %d", base, taken)
			}
		}
		ln.Close()
	}
}

func TestLoopbackN(t *testing.T) {
	ports, err := LoopbackN(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d twice in %v", p, ports)
		}
		seen[p] = true
	}
	if len(ports) != 5 {
		t.Errorf("%d ports, want 5", len(ports))
	}
}

// Callers in one process that each pick a port and start a server on it
// get different ports, even before any of them binds: a port is free to
// Free until its server starts, and two named processes on one port (BIND
// binds with SO_REUSEPORT) share its queries between them. The corpus
// test's concurrent green servers did, and one zone's mutation answered
// for another's identical server.
func TestLoopbackDoesNotRepeatRecentPorts(t *testing.T) {
	const n = 1000 // well within recent; unrepeated by chance in 3,600 ports with odds below 1e-60
	seen := map[int]bool{}
	for i := range n {
		port, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice within %d calls", port, i+1)
		}
		seen[port] = true
	}
}

// A port counts as free only when neither TCP nor UDP holds it (a DNS
// server binds both), and Loopback never claims one that is held: the
// server it is for would fail to bind.
func TestHeldPortIsNotFree(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			var addr net.Addr
			if network == "tcp" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				addr = ln.Addr()
			} else {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr()
			}
			_, p, _ := net.SplitHostPort(addr.String())
			port, _ := strconv.Atoi(p)
			if Free(port) {
				t.Errorf("Free(%d) while %s holds it", port, network)
			}
			if (&recent{}).claim(port) {
				t.Errorf("claimed port %d while %s holds it", port, network)
			}
		})
	}
}
