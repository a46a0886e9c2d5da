// Package freeport picks loopback ports for servers that another process
// will bind: lab load balancers, Temporal, the API, named in tests, and the
// blocks of ports that a lab's nameservers answer DNS on. It is the one
// place that picks ports, and the one that knows which ranges are whose.
//
// Asking the kernel for port 0 hands out a port from its ephemeral range
// (32768-60999 on Linux), the same range it takes source ports of outgoing
// connections from. Between the check and the other process's bind, any
// outgoing connection on the machine, such as one of Temporal's own, can
// take that port, and the bind fails with "address already in use". Ports
// from below the ephemeral range are only ever taken by an explicit bind.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
)

// The range Loopback picks from. It is below the kernel's ephemeral ports
// and clear of the lab's lab-VM DNS ports: `make dev`'s 15300-16299, the
// benchmark's 10000-14999 and the end-to-end tests' 20000-31999.
const (
	First = 16400
	Last  = 19999
)

// Loopback returns a port in [First, Last] on 127.0.0.1 that is free for
// both TCP and UDP (DNS needs both), and is not one of the last recentPorts
// ports it returned: callers in one process that pick ports at once then
// get different ones, though neither has bound its port yet. It picks at
// random so that other processes rarely try the same one.
func Loopback() (int, error) {
	for range 200 {
		port := First + rand.IntN(Last-First+1)
		if handedOut.claim(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for TCP and UDP in %d-%d", First, Last)
}

// recentPorts is how many of the ports it returned last Loopback avoids:
// more than the busiest test (the corpus's, a dozen servers a second)
// starts in the time one takes to bind its port, and under a third of
// the range, so a free port is still found in a few tries.
const recentPorts = 1024

// recent is the ports Loopback returned last, oldest first.
type recent struct {
	mu    sync.Mutex
	ports []int
}

var handedOut = &recent{}

// claim records port as handed out, and reports whether it was neither
// handed out lately nor in use.
func (r *recent) claim(port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.ports, port) || !Free(port) {
		return false
	}
	if len(r.ports) == recentPorts {
		r.ports = r.ports[1:]
	}
	r.ports = append(r.ports, port)
	return true
}

// Free reports whether port on 127.0.0.1 is free for both TCP and UDP now.
func Free(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// Bases is where one kind of lab picks its DNS port base from: First,
// First+Step, ... (Count bases). A lab VM with Linode ID n answers DNS on
// base + n%1000 (config.Lab.DNSPortBase); the simulator's IDs start at 1001,
// so a lab uses the ports just above its base. The ranges stay clear of
// `make dev`'s 15300-16299, Loopback's [First, Last] and the kernel's
// ephemeral ports from 32768; TestRangesApart checks it.
type Bases struct{ First, Step, Count int }

var (
	// BenchBases are the benchmark's: 10000-14999.
	BenchBases = Bases{First: 10000, Step: 200, Count: 25}
	// TestBases are the end-to-end tests': 20000-31999.
	TestBases = Bases{First: 20000, Step: 1000, Count: 12}
)

// Pick returns a base, chosen at random so that labs on one machine rarely
// collide, whose ports base+1 to base+span are all free.
func (b Bases) Pick(span int) (int, error) {
	for range 50 {
		base := b.First + b.Step*rand.IntN(b.Count)
		if b.blockFree(base, span) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no base in %d-%d with %d free ports above it", b.First, b.First+b.Step*(b.Count-1), span)
}

func (b Bases) blockFree(base, span int) bool {
	for p := base + 1; p <= base+span; p++ {
		if !Free(p) {
			return false
		}
	}
	return true
}

// LoopbackN returns n distinct ports as Loopback does.
func LoopbackN(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := Loopback()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
