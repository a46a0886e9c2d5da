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

// Addrs is addrs, each as norm (a driver's SplitAddr and host check)
// writes it, or norm's first error.
func Addrs(addrs []string, norm func(addr string) (string, error)) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		n, err := norm(a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
