// Package localnamed runs BIND's named in the foreground on a free
// loopback port, serving one zone with the nameserver role's
// authoritative-only options (ansible/roles/nameserver/templates/
// named.conf.j2, lab variant): the BIND that rollouts verify, for the
// tests and benchmarks that need a real one.
package localnamed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/freeport"
)

const namedConf = `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port %[2]d { 127.0.0.1; };
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
};
controls { };
logging {
	channel local_log { file "%[1]s/named.log"; severity info; };
	category default { local_log; };
};
zone "%[3]s" {
	type primary;
	file "%[4]s";
};
`

// Server is one named process.
type Server struct {
	// Addr is where it answers, 127.0.0.1:port; Port is the port.
	Addr string
	Port int
	// Dir holds its config and log.
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
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
	conf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, namedConf, dir, port, origin, zoneFile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("named", "-f", "-c", conf)
	cmd.Env = childenv.Minimal()
	// Its own process group, and it dies with whoever started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("named (make deps?): %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return s, nil
}

// waitServing waits until s answers origin's SOA with serial. retry says
// whether named exited because its port was taken, and may be started on
// another when mayRetry.
func (s *Server) waitServing(origin string, serial uint32, mayRetry bool) (retry bool, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, ok := soaSerial(s.Addr, origin); ok && (serial == 0 || got == serial) {
			return false, nil
		}
		select {
		case <-s.exited:
			log := s.Log()
			if mayRetry && strings.Contains(log, "address in use") {
				return true, fmt.Errorf("named: port %d taken", s.Port)
			}
			return false, fmt.Errorf("named for %s exited: %s", origin, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return false, fmt.Errorf("named on %s does not serve %s serial %d: %s", s.Addr, origin, serial, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log is the end of named's log, for error messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "named.log"))
	if len(b) > 2000 {
		return "…" + string(b[len(b)-2000:])
	}
	return string(b)
}

// Terminate asks named to end without waiting, so that several can shut
// down at once; Stop waits.
func (s *Server) Terminate() { _ = s.cmd.Process.Signal(syscall.SIGTERM) }

// Stop asks named to end and waits for it, killing it after 5 s.
func (s *Server) Stop() {
	s.Terminate()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func soaSerial(addr, origin string) (uint32, bool) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(origin), dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: 300 * time.Millisecond}
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
