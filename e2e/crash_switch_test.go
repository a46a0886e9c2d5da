package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb/nginx"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// killPoint is a moment inside a load balancer switch at which the test
// kills the worker with SIGKILL (and with it the playbook it runs).
type killPoint string

const (
	// killAtStart: as soon as the switch activity has started.
	killAtStart killPoint = "start"
	// killAfterWrite: the new config file is in place, and the program has
	// not been told about it (nginx not reloaded, dnsdist's console not
	// switched).
	killAfterWrite killPoint = "after-config-write"
	// killMidSwitch: the program has begun switching (nginx serves the new
	// config; dnsdist has the new backend beside the old one, draining).
	killMidSwitch killPoint = "mid-switch"
)

// A worker killed with SIGKILL inside SwitchLoadBalancer, and again inside
// SwitchBackToBlue after a rollback signal, at each kill point and for both
// drivers: the rollout converges, and every load balancer answers, over UDP
// and TCP, from the side that the status reports: first green while the
// rollout bakes, then blue once it has rolled back.
func TestWorkerKilledMidSwitch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		for _, p := range []killPoint{killAtStart, killAfterWrite, killMidSwitch} {
			t.Run(string(p), func(t *testing.T) { testWorkerKilledMidSwitch(t, driver, p) })
		}
	})
}

func testWorkerKilledMidSwitch(t *testing.T, driver string, point killPoint) {
	tl := startLabDriver(t, driver, nil)
	// A bake long enough to send the rollback signal during it.
	tl.editFleet(t, "bake: 6s", "bake: 60s")
	w := tl.startWorkerProcess(t)
	if _, _, err := tl.rollout(t, "A"); err != nil {
		t.Fatalf("rollout A: %v", err)
	}
	blue := tl.assertOnly(t, "ns1", "ns2")

	run, err := rollouts.Start(context.Background(), tl.client, workflows.RolloutInput{Fleet: "lab", Revision: "B"})
	if err != nil {
		t.Fatal(err)
	}
	running := tl.runningConfigs(driver)
	tl.waitForPhase(t, run, workflows.PhaseSwitching)
	w = tl.killInSwitch(t, w, driver, point, "B", running)
	st := tl.waitForPhase(t, run, workflows.PhaseBaking)
	tl.wantServing(t, st, "switched to green after a kill "+string(point))

	running = tl.runningConfigs(driver)
	if err := rollouts.Signal(context.Background(), tl.client, run, workflows.SignalRollback, workflows.SignalInput{Reason: "e2e", By: "ci"}); err != nil {
		t.Fatal(err)
	}
	tl.waitForPhase(t, run, workflows.PhaseRollingBack)
	tl.killInSwitch(t, w, driver, point, "A", running)
	st, err = tl.wait(t, run)
	if st.Phase != workflows.PhaseRolledBack {
		t.Fatalf("rollout ended %s (%v), want rolled-back", st.Phase, err)
	}
	tl.wantServing(t, st, "rolled back after a kill "+string(point))
	after := tl.assertOnly(t, "ns1", "ns2")
	for _, l := range []string{"ns1", "ns2"} {
		if after[l].ID != blue[l].ID {
			t.Errorf("%s is instance %d, want blue's %d", l, after[l].ID, blue[l].ID)
		}
	}
	retried := map[string]bool{}
	for _, s := range st.Steps {
		if strings.HasPrefix(s.Name, "Switch") && s.Attempts >= 2 {
			retried[s.Name] = true
		}
	}
	if !retried["SwitchLoadBalancer"] || !retried["SwitchBackToBlue"] {
		t.Errorf("no retried switch step after the kills (retried: %v); did the kills land inside them?", retried)
	}
}

// killInSwitch waits for point inside the running switch activity, kills
// the worker there and starts another, which it returns. toRev is the
// revision the switch moves to; it is used to check that a kill after the
// config write really came before the program switched. running is
// runningConfigs from before the switch began.
func (tl *testLab) killInSwitch(t *testing.T, w *exec.Cmd, driver string, point killPoint, toRev string, running map[string]string) *exec.Cmd {
	t.Helper()
	dirs := tl.lbDirs()
	conf := map[string]string{"nginx": "nginx.conf", "dnsdist": "dnsdist.conf"}[driver]
	switch point {
	case killAtStart:
		waitForPlaybook(t, w)
		killWorker(t, w)
	case killAfterWrite:
		dir := waitForWrite(t, dirs, conf)
		killWorker(t, w)
		// The kill must have come between the write and the switch: the
		// load balancer still answers from the side it leaves.
		from := map[string]string{"A": "revision B", "B": "revision A"}[toRev]
		addr := tl.fleet.LoadBalancers[map[string]int{dirs[0]: 0, dirs[1]: 1}[dir]].Address
		if got := queryTXT(addr, "release.example.com."); got != from {
			t.Fatalf("killed after %s/%s was written, the load balancer already answers %q; want %q (the kill came too late)", dir, conf, got, from)
		}
	case killMidSwitch:
		waitMidSwitch(t, driver, dirs, running)
		killWorker(t, w)
	}
	t.Logf("worker killed %s inside the switch to revision %s", point, toRev)
	return tl.startWorkerProcess(t)
}

// killWorker freezes every playbook the worker runs, then kills the worker
// and those playbooks with SIGKILL, as a crash of the worker's machine
// would: nothing of the switch runs a moment longer.
func killWorker(t *testing.T, w *exec.Cmd) {
	t.Helper()
	groups := playbookGroups(w.Process.Pid)
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGSTOP)
	}
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
}

// playbookGroups returns the process groups of the playbooks that worker
// runs: provision.Runner starts each under a supervising sh, as the leader
// of its own group, with "dnsroll-ansible" as its $0.
func playbookGroups(worker int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		f := strings.Fields(string(stat))
		if len(f) > 3 && f[3] == strconv.Itoa(worker) && strings.Contains(string(cmd), "dnsroll-ansible") {
			out = append(out, pid)
		}
	}
	return out
}

// waitForPlaybook blocks until worker runs a playbook: in the switching
// phases, the switch's.
func waitForPlaybook(t *testing.T, worker *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for len(playbookGroups(worker.Process.Pid)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker never ran the switch's playbook")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForWrite blocks until file name is written (or renamed into place,
// as Ansible's copy does) in one of dirs, and returns that dir.
func waitForWrite(t *testing.T, dirs []string, name string) string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	byWatch := map[int32]string{}
	for _, d := range dirs {
		wd, err := syscall.InotifyAddWatch(fd, d, syscall.IN_CLOSE_WRITE|syscall.IN_MOVED_TO)
		if err != nil {
			t.Fatal(err)
		}
		byWatch[int32(wd)] = d
	}
	done := make(chan string, 1)
	go func() {
		buf := make([]byte, 64*1024)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				if strings.TrimRight(string(nameBytes), "\x00") == name {
					done <- byWatch[ev.Wd]
					return
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s was never written in %v", name, dirs)
		return ""
	}
}

func (tl *testLab) lbDirs() []string {
	return []string{config.LabLBDir(tl.Dir(), "lb1"), config.LabLBDir(tl.Dir(), "lb2")}
}

// runningConfigs records, per lab load balancer directory, the config ID
// that a lab nginx serves; empty for dnsdist.
func (tl *testLab) runningConfigs(driver string) map[string]string {
	out := map[string]string{}
	if driver != "nginx" {
		return out
	}
	for _, d := range tl.lbDirs() {
		out[d], _ = nginx.RunningConfigID(context.Background(), filepath.Join(d, "control.sock"))
	}
	return out
}

// waitMidSwitch blocks until a load balancer has begun to switch: an nginx
// whose running config is no longer the one in before, or a dnsdist with
// two backends, the new one added and the old one not yet removed.
func waitMidSwitch(t *testing.T, driver string, dirs []string, before map[string]string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		for _, d := range dirs {
			switch driver {
			case "nginx":
				id, err := nginx.RunningConfigID(context.Background(), filepath.Join(d, "control.sock"))
				if err == nil && id != before[d] {
					return
				}
			case "dnsdist":
				out, err := exec.Command("dnsdist", "-C", filepath.Join(d, "console.conf"), "-c", "-e", "#getServers()").CombinedOutput()
				if err == nil && strings.TrimSpace(string(out)) == "2" {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no load balancer in %v began to switch", dirs)
}

// waitForPhase polls the rollout's status until it reaches phase, and
// returns that status. It fails if the rollout ends first.
func (tl *testLab) waitForPhase(t *testing.T, run rollouts.Run, phase workflows.Phase) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := rollouts.Status(ctx, tl.client, run)
		cancel()
		if err == nil && st.Phase == phase {
			return st
		}
		if err == nil && st.Phase.Done() {
			t.Fatalf("rollout ended %s (%s) before reaching %s", st.Phase, st.Failure, phase)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("rollout never reached %s", phase)
	return workflows.Status{}
}

// wantServing checks that every load balancer answers, over UDP and TCP,
// from the side the status says it is on: green (revision B) for those in
// OnGreen, blue (revision A) for the others.
func (tl *testLab) wantServing(t *testing.T, st workflows.Status, when string) {
	t.Helper()
	onGreen := map[string]bool{}
	for _, n := range st.OnGreen {
		onGreen[n] = true
	}
	for _, lb := range tl.fleet.LoadBalancers {
		want := "revision A"
		if onGreen[lb.Name] {
			want = "revision B"
		}
		for _, proto := range []string{"udp", "tcp"} {
			if got := queryTXTOver(lb.Address, proto, "release.example.com."); got != want {
				t.Errorf("%s: %s answers %q over %s; the status (on green: %v) says %q", when, lb.Name, got, proto, st.OnGreen, want)
			}
		}
	}
}

func queryTXTOver(addr, proto, name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	r, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return dns.RcodeToString[r.Rcode]
	}
	return strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
}
