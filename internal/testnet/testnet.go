// Package testnet serves the tests' stand-in TCP servers on loopback.
package testnet

import (
	"net"
	"testing"
)

// ServeTCP listens on a loopback port until tb ends, handles each
// connection with handle and then closes it, and returns the address.
func ServeTCP(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}
