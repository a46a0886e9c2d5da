package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/probe"
)

// namedConf is the nameserver role's authoritative-only configuration
// (ansible/roles/nameserver/templates/named.conf.j2, lab variant), so the
// bench measures the BIND that rollouts verify.
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
	channel bench_log { file "%[1]s/named.log"; severity info; };
	category default { bench_log; };
};
zone "%[3]s" {
	type primary;
	file "%[4]s";
};
`

// namedServer is one named process started by the bench.
type namedServer struct {
	addr string
	port int
	cmd  *exec.Cmd
}

// startNamed runs named in the foreground on a free loopback port serving
// zoneFile, and waits until it answers the zone's SOA.
func startNamed(dir, origin, zoneFile string, serial uint32) (*namedServer, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, namedConf, dir, port, origin, zoneFile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("named", "-f", "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("named: %w", err)
	}
	s := &namedServer{addr: "127.0.0.1:" + strconv.Itoa(port), port: port, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := probe.SOASerial(context.Background(), s.addr, origin, 500*time.Millisecond)
		if err == nil && got == serial {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("named on %s does not serve %s serial %d: %v (log: %s/named.log)", s.addr, origin, serial, err, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the named this bench started, by its pid.
func (s *namedServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}
