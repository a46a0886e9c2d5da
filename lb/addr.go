package lb

import (
	"fmt"
	"net"
	"strconv"
)

// SplitAddr splits addr, a load balancer's or a backend's host:port, and
// checks that the port is 1 to 65535. Each driver then checks the host its
// program accepts (dnsdist only IP addresses).
func SplitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return host, port, nil
}
