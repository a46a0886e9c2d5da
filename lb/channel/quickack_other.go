//go:build !linux

package channel

import "net"

// quickAck leaves conn as it is where TCP_QUICKACK does not exist.
func quickAck(conn net.Conn) net.Conn { return conn }
