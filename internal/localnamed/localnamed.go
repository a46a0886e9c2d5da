// Package localnamed runs BIND's named in the foreground on a free
// loopback port, serving one zone with the nameserver role's
// authoritative-only options (ansible/roles/nameserver/templates/
// named.conf.j2, lab variant): the BIND that rollouts verify, for the
// tests and benchmarks that need a real one. Run and Conf are the parts
// that other lab servers (lab/delegation's) share.
package localnamed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/child"
	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/freeport"
)

// conf is an authoritative-only named.conf: the nameserver role's options
// (lab variant), with extra options and the zone (and key) statements.
const conf = `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port %[2]d { %[3]s; };
	listen-on-v6 { none; };
	recursion no;
	allow-recursion { none; };
	allow-query { any; };
	allow-query-cache { none; };
	allow-transfer { none; };
	allow-update { none; };
	notify no;
	dnssec-validation no;
	version none;
	hostname none;
	server-id none;
%[4]s};
controls { };
logging {
	channel local_log { file "%[1]s/named.log"; severity info; };
	category default { local_log; };
};
%[5]s`

// Conf is the config of an authoritative-only named in dir answering on
// addr, with extra options (each line ending in ";\n") and the zone
// statements zones (Primary's, or key and zone statements of one's own).
func Conf(dir string, addr netip.AddrPort, options, zones string) string {
	return fmt.Sprintf(conf, dir, addr.Port(), addr.Addr(), options, zones)
}

// Primary is the statement of a primary zone origin read from file.
func Primary(origin, file string) string {
	return fmt.Sprintf("zone %q { type primary; file %q; };\n", origin, file)
}

// Named is one named process in the foreground, its config, pid file and
// log in Dir.
type Named struct {
	Dir  string
	proc *child.Proc
}

// Run writes conf to dir/named.conf (0600: it may hold a TSIG secret) and
// starts named on it with flags.
func Run(dir, conf string, flags ...string) (*Named, error) {
	file := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("named", append(append([]string{"-f"}, flags...), "-c", file)...)
	cmd.Env = childenv.Minimal()
	p, err := child.Start(cmd, "")
	if err != nil {
		return nil, fmt.Errorf("named (make deps?): %w", err)
	}
	return &Named{Dir: dir, proc: p}, nil
}

// Await waits until ready succeeds, for at most limit. It fails with
// child.ErrExited if named exits first, else with ready's last error.
func (n *Named) Await(limit time.Duration, ready func() error) error {
	return n.proc.WaitFor(context.Background(), limit, 20*time.Millisecond, func(context.Context) error { return ready() })
}

// Log is the end of named's log, for error messages.
func (n *Named) Log() string { return child.Tail(filepath.Join(n.Dir, "named.log"), 2000) }

// Terminate asks named to end without waiting, so that several can shut
// down at once; Stop waits.
func (n *Named) Terminate() { n.proc.Signal(syscall.SIGTERM) }

// Stop asks named to end and waits for it, killing it after 5 s.
func (n *Named) Stop() { n.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// Server is one named serving one zone on a free loopback port.
type Server struct {
	// Addr is where it answers, 127.0.0.1:port; Port is the port.
	Addr string
	Port int
	*Named
}

// Start runs named in dir serving zoneFile as origin, and returns once it
// answers origin's SOA with serial (any serial when serial is 0). A named
// that finds its port taken meanwhile is started again on another.
func Start(dir, origin, zoneFile string, serial uint32) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		s, err := start(dir, origin, zoneFile)
		if err != nil {
			return nil, err
		}
		retry, err := s.waitServing(origin, serial, attempt < 3)
		if err == nil {
			return s, nil
		}
		if !retry {
			return nil, err
		}
	}
}

func start(dir, origin, zoneFile string) (*Server, error) {
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	n, err := Run(dir, Conf(dir, addr, "", Primary(origin, zoneFile)))
	if err != nil {
		return nil, err
	}
	return &Server{Addr: addr.String(), Port: port, Named: n}, nil
}

// waitServing waits until s answers origin's SOA with serial over UDP
// and TCP, or fails as soon as named logs that the zone does not load.
// retry says whether its port was taken, so that named may be
// started on another when mayRetry: named exits when it cannot bind UDP,
// but one that cannot bind TCP logs it where its log file does not see
// and answers UDP alone, leaving DNS over TCP to whatever holds the port.
func (s *Server) waitServing(origin string, serial uint32, mayRetry bool) (retry bool, err error) {
	var udpSince time.Time // when named first answered UDP
	tcpTaken := false      // it has answered UDP for tcpGrace, and TCP not
	notLoaded := false     // named logged that the zone does not load
	err = s.Await(30*time.Second, func() error {
		switch {
		case !serves(s.Addr, "udp", origin, serial):
			if strings.Contains(s.Log(), "not loaded due to errors") {
				notLoaded = true
				return nil
			}
			return errors.New("not serving")
		case serves(s.Addr, "tcp", origin, serial):
			return nil
		case udpSince.IsZero():
			udpSince = time.Now()
		case time.Since(udpSince) > tcpGrace:
			tcpTaken = true
			return nil
		}
		return errors.New("not serving over TCP")
	})
	switch {
	case err == nil && notLoaded:
		s.Stop()
		return false, fmt.Errorf("named does not load %s: %s", origin, s.Log())
	case err == nil && !tcpTaken:
		return false, nil
	case err == nil:
		s.Stop()
		return mayRetry, fmt.Errorf("named on %s answers UDP but not TCP: port %d taken for TCP", s.Addr, s.Port)
	case errors.Is(err, child.ErrExited):
		log := s.Log()
		if mayRetry && strings.Contains(log, "address in use") {
			return true, fmt.Errorf("named: port %d taken", s.Port)
		}
		return false, fmt.Errorf("named for %s exited: %s", origin, log)
	default:
		s.Stop()
		return false, fmt.Errorf("named on %s does not serve %s serial %d: %s", s.Addr, origin, serial, s.Log())
	}
}

// tcpGrace is how long named may answer UDP before TCP: it opens both
// sockets before loading zones, so a second is ample on a loaded machine.
const tcpGrace = 3 * time.Second

// serves reports whether addr answers origin's SOA over network ("udp"
// or "tcp") with serial, or with any serial when serial is 0.
func serves(addr, network, origin string, serial uint32) bool {
	got, ok := soaSerial(addr, network, origin)
	return ok && (serial == 0 || got == serial)
}

func soaSerial(addr, network, origin string) (uint32, bool) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(origin), dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return 0, false
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, true
		}
	}
	return 0, false
}
