package nginx

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/internal/pidfile"
	"github.com/dnsroll/dnsroll/provision"
)

// TestLabPoint switches a real lab nginx between two real DNS servers with
// the real playbook, and checks what a resolver sees through it.
func TestLabPoint(t *testing.T) {
	needNginx(t)
	needTool(t, "ansible-playbook")
	blue, green := startDNS(t, "blue"), startDNS(t, "green")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fleet := &config.Fleet{
		Name: "lab", Dir: root, Lab: &config.Lab{DNSPortBase: 15300},
		Ansible: config.Ansible{Connection: "local", LoadBalancerPlaybook: "ansible/loadbalancer.yml", SSHUser: "root"},
	}
	// The real runner: this exercises the same path as a rollout.
	var progressed atomic.Int32
	d := &Driver{
		Runner:   &provision.Runner{ProgressInterval: 100 * time.Millisecond},
		LabDir:   t.TempDir(),
		Progress: func(context.Context, string) { progressed.Add(1) },
	}
	lb := config.LoadBalancer{Name: "lb1", Address: "127.0.0.1:" + freePort(t), Fronts: "ns1", Driver: "nginx"}
	dir, err := d.Dir(lb.Name)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, dir)
	ctx := context.Background()

	point := func(backend dnsroll.Server) {
		t.Helper()
		if err := d.Point(ctx, fleet, lb, []dnsroll.Server{backend}); err != nil {
			t.Fatalf("Point at %s: %v", backend.Label, err)
		}
	}
	point(blue)
	wantAnswer(t, lb.Address, "blue")
	if progressed.Load() == 0 {
		t.Error("Point never passed on the runner's progress; a worker could not heartbeat")
	}
	master := mustMaster(t, dir)

	point(green)
	wantAnswer(t, lb.Address, "green")
	if got := mustMaster(t, dir); got != master {
		t.Errorf("master pid changed from %d to %d: a switch must reload, not restart", master, got)
	}

	workers := workerPIDs(t, master)
	point(green)
	wantAnswer(t, lb.Address, "green")
	if got := workerPIDs(t, master); !slices.Equal(got, workers) {
		t.Errorf("pointing at the same backend again replaced workers %v with %v; it should change nothing", workers, got)
	}

	// Configs that nginx -t rejects: EINVALID, and green keeps serving.
	bad := lb
	bad.Address = "192.0.2.1:" + freePort(t) // TEST-NET-1 is on no interface: bind fails
	err = d.Point(ctx, fleet, bad, []dnsroll.Server{blue})
	t.Logf("bad listen address: %v", err)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("listen address on no interface: error %v (code %q), want %q", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	tmpl := filepath.Join(t.TempDir(), "bad.tmpl")
	if err := os.WriteFile(tmpl, []byte("events {}\nno_such_directive on;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badTemplate := &Driver{Runner: d.Runner, LabDir: d.LabDir, Template: tmpl}
	err = badTemplate.Point(ctx, fleet, lb, []dnsroll.Server{blue})
	t.Logf("bad template: %v", err)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("template with an unknown directive: error %v (code %q), want %q", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	wantAnswer(t, lb.Address, "green")
	if got := mustMaster(t, dir); got != master {
		t.Errorf("master pid changed from %d to %d after rejected configs", master, got)
	}
}

// stopOnCleanup stops the lab nginx in dir when the test ends and checks
// that neither the master nor its workers outlive it.
func stopOnCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		master, err := MasterPID(dir)
		if err != nil {
			return
		}
		workers := workerPIDs(t, master)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := Stop(ctx, dir); err != nil {
			t.Errorf("Stop: %v", err)
		}
		for _, pid := range append(workers, master) {
			if pidfile.Alive(pid, "nginx") {
				t.Errorf("nginx pid %d still runs after Stop", pid)
			}
		}
	})
}

func mustMaster(t *testing.T, dir string) int {
	t.Helper()
	pid, err := MasterPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// workerPIDs lists the live nginx children of master, sorted.
func workerPIDs(t *testing.T, master int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 3 && f[1] == "(nginx)" && f[2] != "Z" && f[3] == itoa(master) {
			pid, _ := strconv.Atoi(f[0])
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// wantAnswer queries TXT through addr over UDP and TCP. Point promises the
// new config is live when it returns, so a wrong answer fails at once;
// only a lost UDP packet is retried.
func wantAnswer(t *testing.T, addr, want string) {
	t.Helper()
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("probe.dnsroll.test.", dns.TypeTXT)
		var r *dns.Msg
		var err error
		for range 3 {
			if r, _, err = c.Exchange(m, addr); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s query through %s: %v", proto, addr, err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("%s query through %s: answer %v, want one TXT", proto, addr, r.Answer)
		}
		txt, ok := r.Answer[0].(*dns.TXT)
		if !ok || len(txt.Txt) != 1 || txt.Txt[0] != want {
			t.Fatalf("%s query through %s: answer %v, want TXT %q", proto, addr, r.Answer[0], want)
		}
	}
}

// startDNS starts a DNS server on one loopback port for UDP and TCP that
// answers every query with TXT answer.
func startDNS(t *testing.T, answer string) dnsroll.Server {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{answer},
		}}
		_ = w.WriteMsg(m)
	})
	pc, ln := listenBoth(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return dnsroll.Server{Label: answer, IPv4: "127.0.0.1", DNSPort: port}
}

// listenBoth binds one loopback port for UDP and TCP, as a lab VM needs.
func listenBoth(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// freePort returns a loopback port that was free for UDP and TCP a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return itoa(port)
}

func itoa(n int) string { return strconv.Itoa(n) }
