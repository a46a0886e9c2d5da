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
	"strconv"
)

// The range Loopback picks from. It is below the kernel's ephemeral ports
// and clear of the lab's lab-VM DNS ports: `make dev`'s 15300-16299, the
// benchmark's 10000-14999 and the end-to-end tests' 20000-31999.
const (
	First = 16400
	Last  = 19999
)

// Loopback returns a port in [First, Last] on 127.0.0.1 that is free for
// both TCP and UDP (DNS needs both), chosen at random so that concurrent
// callers rarely try the same one.
func Loopback() (int, error) {
	for range 200 {
		port := First + rand.IntN(Last-First+1)
		if Free(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for TCP and UDP in %d-%d", First, Last)
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
