package delegation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/child"
	"github.com/dnsroll/dnsroll/internal/localnamed"
)

// Server is one named of the delegation lab, answering on its own
// loopback address, port 53 unless said otherwise.
type Server struct {
	Addr netip.Addr
	port uint16
	*localnamed.Named
	// added says the server put Addr on lo and removes it when stopped.
	added bool
}

// authOptions make an authoritative-only named keep the zone's own NS
// records out of its answers, so that what resolvers cache of the
// delegation is what the parent's referral said.
const authOptions = "\tminimal-responses yes;\n"

// Serve runs an authoritative named on addr:53 in dir serving zone from
// zoneText (a master file), and returns once it answers the zone's SOA:
// a child zone's name server (a load balancer's address) in tests.
func Serve(dir string, addr netip.Addr, zone, zoneText string) (*Server, error) {
	return ServeAt(dir, netip.AddrPortFrom(addr, 53), zone, zoneText)
}

// ServeAt is Serve on any port: a name server behind the lab's load
// balancers, which glue never names, needs no port 53.
func ServeAt(dir string, addr netip.AddrPort, zone, zoneText string) (*Server, error) {
	zone = dns.Fqdn(zone)
	file := filepath.Join(dir, "zone.db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, []byte(zoneText), 0o644); err != nil {
		return nil, err
	}
	return serveAuth(dir, addr, localnamed.Primary(zone, file), zone)
}

// serveAuth starts an authoritative named with zones and waits until it
// answers probe's SOA.
func serveAuth(dir string, addr netip.AddrPort, zones, probe string) (*Server, error) {
	return serve(dir, addr, localnamed.Conf(dir, addr, authOptions, zones), probe, false)
}

// serve starts named with conf and waits until it answers probe's SOA
// (with recursion when recursive: the resolver).
func serve(dir string, addr netip.AddrPort, conf, probe string, recursive bool) (*Server, error) {
	added, err := addLoopback(addr.Addr())
	if err != nil {
		return nil, err
	}
	// -4: the lab is IPv4 loopback only, so named never sends a query
	// over IPv6 to an address outside it.
	n, err := localnamed.Run(dir, conf, "-4")
	if err != nil {
		if added {
			removeLoopback(addr.Addr())
		}
		return nil, fmt.Errorf("delegation: %w", err)
	}
	s := &Server{Addr: addr.Addr(), port: addr.Port(), Named: n, added: added}
	err = s.Await(15*time.Second, func() error { return s.answers(probe, recursive) })
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, child.ErrExited):
		s.Stop()
		return nil, fmt.Errorf("delegation: named on %s exited: %s", addr, s.Log())
	default:
		s.Stop()
		return nil, fmt.Errorf("delegation: named on %s does not answer %s SOA: %s", addr, probe, s.Log())
	}
}

func (s *Server) answers(zone string, recursive bool) error {
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	m.RecursionDesired = recursive
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, s.AddrPort().String())
	if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0) {
		err = fmt.Errorf("answer %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return err
}

// AddrPort is where the server answers.
func (s *Server) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.Addr, s.port) }

// Stop ends named and waits for it, killing it after 5 s. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.Named.Stop()
	if s.added {
		removeLoopback(s.Addr)
		s.added = false
	}
}

// addLoopback puts addr on lo unless it is there: named listens only on
// the addresses of interfaces, and glue needs port 53 on an address of
// its own. It says whether it added addr. Only 127.0.0.0/8 is accepted.
func addLoopback(addr netip.Addr) (bool, error) {
	if !netip.MustParsePrefix("127.0.0.0/8").Contains(addr) {
		return false, fmt.Errorf("delegation: %s is not a loopback address; the lab serves on 127.0.0.0/8 only", addr)
	}
	if addr == netip.MustParseAddr("127.0.0.1") {
		return false, nil
	}
	out, err := exec.Command("ip", "addr", "add", addr.String()+"/32", "dev", "lo").CombinedOutput()
	switch {
	case err == nil:
		return true, nil
	case strings.Contains(string(out), "File exists"):
		return false, nil
	default:
		return false, fmt.Errorf("delegation: put %s on lo (needs root and iproute2): %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
}

func removeLoopback(addr netip.Addr) {
	_ = exec.Command("ip", "addr", "del", addr.String()+"/32", "dev", "lo").Run()
}

// free53 reports whether addr:53 is free for both UDP and TCP now.
func free53(addr netip.Addr) bool {
	a := net.JoinHostPort(addr.String(), "53")
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", a)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
