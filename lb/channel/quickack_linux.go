package channel

import (
	"net"
	"syscall"
)

// quickAck makes conn acknowledge every segment at once. sshd sets
// TCP_NODELAY only on interactive sessions, so on the exec sessions and
// forwarded connections a flip uses, Nagle's algorithm holds its small
// replies until the previous one is acknowledged, which a delayed ACK
// postpones by 40 ms: every console exchange and command paid that.
// Linux clears TCP_QUICKACK as it pleases, so it is set before each read.
func quickAck(conn net.Conn) net.Conn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return conn
	}
	return &quickAckConn{Conn: tc, raw: raw}
}

// quickAckConn embeds net.Conn, not *net.TCPConn, so that io.Copy cannot
// splice around its Read.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return c.Conn.Read(b)
}
