// Package testnet serves the tests' stand-in TCP and unix socket servers
// on loopback.
package testnet

import (
	"net"
	"testing"
)

// ServeTCP listens on a loopback port until tb ends, handles each
// connection with handle and then closes it, and returns the address.
func ServeTCP(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	return serve(tb, "tcp", "127.0.0.1:0", handle)
}

// ServeUnix does as ServeTCP on a unix socket at path, and returns path.
func ServeUnix(tb testing.TB, path string, handle func(net.Conn)) string {
	tb.Helper()
	return serve(tb, "unix", path, handle)
}

func serve(tb testing.TB, network, addr string, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen(network, addr)
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
