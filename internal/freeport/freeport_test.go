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
		if free(port) {
			t.Errorf("free(%d) while bound", port)
		}
		ln.Close()
		pc.Close()
	}
}
