package dnsdist

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/provision"
)

// TestLabPoint switches a real lab dnsdist between two real DNS servers with
// the real playbook while queries flow through it, and checks that none is
// lost, that a switch never restarts dnsdist, and what a resolver sees.
func TestLabPoint(t *testing.T) {
	l := newStageLab(t)
	d, fleet, lb, dir := l.d, l.Fleet, l.LB, l.Dir
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	var progressed atomic.Int32
	d.Runner = &provision.Runner{ProgressInterval: 100 * time.Millisecond}
	d.Progress = func(context.Context, string) { progressed.Add(1) }
	ctx := context.Background()
	point := func(backends ...dnsroll.Server) {
		t.Helper()
		if err := d.Point(ctx, fleet, lb, backends); err != nil {
			t.Fatalf("Point at %v: %v", backends, err)
		}
	}

	point(blue)
	lbtest.WantTXT(t, lb.Address, "blue")
	if progressed.Load() == 0 {
		t.Error("Point never passed on the runner's progress; a worker could not heartbeat")
	}
	pid, err := PID(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.Stat(filepath.Join(dir, "console.key"))
	if err != nil || key.Mode().Perm() != 0o600 {
		t.Errorf("console key: %v, mode %v; want a 0600 file", err, key.Mode().Perm())
	}

	// Switch to green and back under load: not one query may be lost.
	load := startFlipLoad(t, lb.Address, 1000, 0, 0)
	point(green)
	lbtest.WantTXT(t, lb.Address, "green")
	point(blue)
	lbtest.WantTXT(t, lb.Address, "blue")
	checkLoad(t, load.stop(), []string{"udp"})
	if got, _ := PID(dir); got != pid {
		t.Errorf("dnsdist pid changed from %d to %d: a switch must not restart it", pid, got)
	}

	// No backends answer SERVFAIL, and the config on disk records the
	// backends for a restart (a repeated Point is lbtest.Contract's).
	point()
	if got := rcode(t, lb.Address); got != dns.RcodeServerFailure {
		t.Errorf("with no backends the rcode is %s, want SERVFAIL", dns.RcodeToString[got])
	}
	point(green)
	conf, _ := os.ReadFile(filepath.Join(dir, "dnsdist.conf"))
	if !strings.Contains(string(conf), "address = '"+green.DNSAddr()+"'") || strings.Contains(string(conf), blue.DNSAddr()) {
		t.Errorf("dnsdist.conf does not record green as the only backend:\n%s", conf)
	}
	if got, _ := PID(dir); got != pid {
		t.Errorf("dnsdist pid changed from %d to %d", pid, got)
	}

	// A restart (the lab after a reboot) comes back pointing at green.
	if err := Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	point(green)
	lbtest.WantTXT(t, lb.Address, "green")

	// Another program on the address (nginx, before a move to dnsdist):
	// the play says so instead of failing to start dnsdist.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	other := config.LoadBalancer{Name: "lb2", Address: taken.Addr().String(), Fronts: config.Labels{"ns1"}, Driver: "dnsdist"}
	if err := d.Point(ctx, fleet, other, []dnsroll.Server{green}); err == nil || !strings.Contains(err.Error(), "taken by another program") {
		t.Errorf("Point at an address another program holds: %v, want an error saying so", err)
	}
	if otherDir, _ := d.Dir(fleet, other.Name); otherDir != "" {
		if _, err := PID(otherDir); err == nil {
			t.Errorf("a dnsdist runs in %s although its address was taken", otherDir)
			_ = Stop(ctx, otherDir)
		}
	}
}

func rcode(t *testing.T, addr string) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("probe.dnsroll.test.", dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s: %v", addr, err)
	}
	return r.Rcode
}

// TestLabPointAfterInterruptedSwitch leaves a lab dnsdist as a worker
// killed in the middle of the console switch does, forward and back, and
// checks that the next Point converges: the running dnsdist serves exactly
// the wanted backend, as its console's server list and DNS both say.
func TestLabPointAfterInterruptedSwitch(t *testing.T) {
	l := newStageLab(t)
	d, fleet, lb, dir := l.d, l.Fleet, l.LB, l.Dir
	blue, green := lbtest.StartTXT(t, "blue"), lbtest.StartTXT(t, "green")
	console := func(lua string) string {
		t.Helper()
		out, err := exec.Command("dnsdist", "-C", filepath.Join(dir, "console.conf"), "-c", "-e", lua).CombinedOutput()
		if err != nil {
			t.Fatalf("console %q: %v: %s", lua, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	servers := func() string {
		t.Helper()
		return console(`local o = {} for _, s in ipairs(getServers()) do o[#o + 1] = s.name .. '=' .. (s:isUp() and 'up' or 'down') end return table.concat(o, ' ')`)
	}
	point := func(backend dnsroll.Server) {
		t.Helper()
		if err := d.Point(context.Background(), fleet, lb, []dnsroll.Server{backend}); err != nil {
			t.Fatalf("Point at %s: %v", backend.Label, err)
		}
		lbtest.WantTXT(t, lb.Address, backend.Label)
		if got, want := servers(), backend.DNSAddr()+"=up"; got != want {
			t.Errorf("after Point at %s the console lists %q, want only %q", backend.Label, got, want)
		}
	}

	point(blue)
	// Killed after adding green, before setting blue down.
	console(fmt.Sprintf(`newServer({address = '%s', name = '%s'})`, green.DNSAddr(), green.DNSAddr()))
	point(green)
	// Switching back, killed while green drained: both listed, green down.
	console(fmt.Sprintf(`newServer({address = '%s', name = '%s'})`, blue.DNSAddr(), blue.DNSAddr()))
	console(fmt.Sprintf(`for _, s in ipairs(getServers()) do if s.name == '%s' then s:setDown() end end`, green.DNSAddr()))
	point(blue)
	// Killed after setting the wanted backend down on an earlier attempt
	// (a switch away that was itself interrupted, then reversed).
	console(fmt.Sprintf(`for _, s in ipairs(getServers()) do if s.name == '%s' then s:setDown() end end`, blue.DNSAddr()))
	point(blue)
}

// A console key file that holds no key (edited by hand, or another tool's
// file at that path) fails the point with the fix, and the file's text
// appears nowhere: dnsdist's own error would quote it into the failure,
// which workflow history keeps.
func TestLabPointRefusesAConsoleKeyThatIsNoKey(t *testing.T) {
	l := newStageLab(t)
	const notAKey = "hunter2-not-base64!"
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "console.key"), []byte(notAKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := l.d.Point(context.Background(), l.Fleet, l.LB, []dnsroll.Server{lbtest.StartTXT(t, "blue")})
	if err == nil || !strings.Contains(err.Error(), "console.key does not hold a console key") || strings.Contains(err.Error(), notAKey) {
		t.Fatalf("Point with a key file that holds no key: %v; want it refused with the fix, never quoting the file", err)
	}
}
