// Package freeport picks loopback ports for servers that another process
// will bind: lab load balancers, Temporal, the API, named in tests.
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
		if free(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for TCP and UDP in %d-%d", First, Last)
}

func free(port int) bool {
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
