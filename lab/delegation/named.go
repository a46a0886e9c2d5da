package delegation

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/childenv"
)

// Server is one named of the delegation lab, answering on its own
// loopback address, port 53.
type Server struct {
	Addr   netip.Addr
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	// added says the server put Addr on lo and removes it when stopped.
	added bool
}

// authConf is an authoritative-only named. minimal-responses keeps the
// zone's own NS records out of its answers, so that what resolvers cache
// of the delegation is what the parent's referral said.
const authConf = `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port 53 { %[2]s; };
	listen-on-v6 { none; };
	recursion no;
	allow-query { any; };
	allow-transfer { none; };
	minimal-responses yes;
	notify no;
	dnssec-validation no;
	version none;
	hostname none;
	server-id none;
};
controls { };
logging {
	channel local_log { file "%[1]s/named.log"; severity info; };
	category default { local_log; };
};
%[3]s
`

// Serve runs an authoritative named on addr:53 in dir serving zone from
// zoneText (a master file), and returns once it answers the zone's SOA:
// a child zone's name server (a load balancer's address) in tests.
func Serve(dir string, addr netip.Addr, zone, zoneText string) (*Server, error) {
	zone = dns.Fqdn(zone)
	file := filepath.Join(dir, "zone.db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, []byte(zoneText), 0o644); err != nil {
		return nil, err
	}
	zones := fmt.Sprintf("zone %q { type primary; file %q; };\n", zone, file)
	return serve(dir, addr, fmt.Sprintf(authConf, dir, addr, zones), zone, false)
}

// serve starts named with conf and waits until it answers probe's SOA
// (with recursion when recursive: the resolver).
func serve(dir string, addr netip.Addr, conf, probe string, recursive bool) (*Server, error) {
	added, err := addLoopback(addr)
	if err != nil {
		return nil, err
	}
	confFile := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// -4: the lab is IPv4 loopback only, so named never sends a query
	// over IPv6 to an address outside it.
	cmd := exec.Command("named", "-f", "-4", "-c", confFile)
	cmd.Env = childenv.Minimal()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if added {
			removeLoopback(addr)
		}
		return nil, fmt.Errorf("delegation: named (make deps?): %w", err)
	}
	s := &Server{Addr: addr, Dir: dir, cmd: cmd, exited: make(chan struct{}), added: added}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if s.answers(probe, recursive) {
			return s, nil
		}
		select {
		case <-s.exited:
			s.Stop()
			return nil, fmt.Errorf("delegation: named on %s:53 exited: %s", addr, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("delegation: named on %s:53 does not answer %s SOA: %s", addr, probe, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) answers(zone string, recursive bool) bool {
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	m.RecursionDesired = recursive
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, s.AddrPort().String())
	return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
}

// AddrPort is where the server answers.
func (s *Server) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.Addr, 53) }

// Log is the end of named's log, for error messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "named.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Stop ends named and waits for it, killing it after 5 s. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
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
