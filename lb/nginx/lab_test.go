package nginx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/pidfile"
	"github.com/dnsroll/dnsroll/lb/lbtest"
	"github.com/dnsroll/dnsroll/provision"
)

// TestLabPoint switches a real lab nginx between two real DNS servers with
// the real playbook, and checks what a resolver sees through it.
func TestLabPoint(t *testing.T) {
	s := newLab(t)
	d, fleet, lb, dir, blue, green := s.d, s.Fleet, s.LB, s.Dir, s.blue, s.green
	// The real runner: this exercises the same path as a rollout.
	var progressed atomic.Int32
	d.Runner = &provision.Runner{ProgressInterval: 100 * time.Millisecond}
	d.Progress = func(context.Context, string) { progressed.Add(1) }
	var err error
	ctx := context.Background()

	point := func(backend dnsroll.Server) {
		t.Helper()
		if err := d.Point(ctx, fleet, lb, []dnsroll.Server{backend}); err != nil {
			t.Fatalf("Point at %s: %v", backend.Label, err)
		}
	}
	point(blue)
	lbtest.WantTXT(t, lb.Address, "blue")
	if progressed.Load() == 0 {
		t.Error("Point never passed on the runner's progress; a worker could not heartbeat")
	}
	master := mustMaster(t, dir)

	point(green)
	lbtest.WantTXT(t, lb.Address, "green")
	if got := mustMaster(t, dir); got != master {
		t.Errorf("master pid changed from %d to %d: a switch must reload, not restart", master, got)
	}
	// A repeated Point is lbtest.Contract's.

	// Configs that nginx -t rejects: EINVALID, and green keeps serving.
	bad := lb
	bad.Address = "192.0.2.1:" + lbtest.FreePort(t) // TEST-NET-1 is on no interface: bind fails
	err = d.Point(ctx, fleet, bad, []dnsroll.Server{blue})
	t.Logf("bad listen address: %v", err)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("listen address on no interface: error %v (code %q), want %q", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	tmpl := filepath.Join(t.TempDir(), "bad.tmpl")
	if err := os.WriteFile(tmpl, []byte("events {}\nno_such_directive on;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badTemplate := &Driver{Reach: d.Reach, Template: tmpl}
	err = badTemplate.Point(ctx, fleet, lb, []dnsroll.Server{blue})
	t.Logf("bad template: %v", err)
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("template with an unknown directive: error %v (code %q), want %q", err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
	}
	lbtest.WantTXT(t, lb.Address, "green")
	if got := mustMaster(t, dir); got != master {
		t.Errorf("master pid changed from %d to %d after rejected configs", master, got)
	}
}

// stopOnCleanup stops the lab nginx in dir when the test ends and checks
// that neither the master nor its workers outlive it.
func stopOnCleanup(t testing.TB, dir string) {
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

func mustMaster(t testing.TB, dir string) int {
	t.Helper()
	pid, err := MasterPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// workerPIDs lists the live nginx children of master, sorted.
func workerPIDs(t testing.TB, master int) []int {
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

func itoa(n int) string { return strconv.Itoa(n) }

// TestLabPointAfterInterruptedSwitch leaves a lab nginx as a worker killed
// mid-switch does, for each point of the switch, and checks that the next
// Point makes the running nginx serve the wanted backend, whatever state
// the interrupted attempt left.
func TestLabPointAfterInterruptedSwitch(t *testing.T) {
	s := newLab(t)
	d, fleet, lb, dir, blue, green := s.d, s.Fleet, s.LB, s.Dir, s.blue, s.green
	ctx := context.Background()
	point := func(backend dnsroll.Server) {
		t.Helper()
		if err := d.Point(ctx, fleet, lb, []dnsroll.Server{backend}); err != nil {
			t.Fatalf("Point at %s: %v", backend.Label, err)
		}
		lbtest.WantTXT(t, lb.Address, backend.Label)
	}
	// writeOnly installs backend's config as the role's copy task does,
	// and stops there: the worker died before the reload.
	writeOnly := func(backend dnsroll.Server) {
		t.Helper()
		job, err := d.job(fleet, lb, []dnsroll.Server{backend}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(job.conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	point(blue)
	// Killed between the config write and the reload, forward and back.
	writeOnly(green)
	lbtest.WantTXT(t, lb.Address, "blue") // the state a crash leaves
	point(green)
	writeOnly(blue)
	lbtest.WantTXT(t, lb.Address, "green")
	point(blue)

	// Killed after the reload signal, before the new workers were waited
	// for: the retry finds the switch done or in progress, and finishes.
	writeOnly(green)
	master := mustMaster(t, dir)
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	point(green)

	// Killed with nginx itself (kill -9 of master and workers, say by the
	// OOM killer): the retry starts it again on the wanted config, although
	// a dead master leaves its control socket behind.
	// The master is stopped first: it is still replacing the workers of
	// the reload above, and a worker forked after the list was taken
	// outlived the kill, orphaned, still answering on the old config (it
	// failed the test once, and stayed running).
	workers := stoppedWorkers(t, master)
	for _, pid := range append(workers, master) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(t, append(workers, master))
	point(green)
}

// stoppedWorkers stops master (SIGSTOP), so that it forks no more
// workers, and returns its workers once it has stopped.
func stoppedWorkers(t *testing.T, master int) []int {
	t.Helper()
	if err := syscall.Kill(master, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", master))
		if f := strings.Fields(string(b)); err == nil && len(f) > 2 && f[2] == "T" {
			return workerPIDs(t, master)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx master %d did not stop: %v", master, err)
		}
	}
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for pidfile.Alive(pid, "nginx") {
			if time.Now().After(deadline) {
				t.Fatalf("nginx pid %d outlived SIGKILL", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestLabPointIPv6 points a real lab nginx listening on ::1 with the real
// playbook, which waits until nginx accepts on that address.
func TestLabPointIPv6(t *testing.T) {
	s := newLab(t)
	s.LB.Address = "[::1]:" + lbtest.FreePort(t)
	if err := s.d.Point(context.Background(), s.Fleet, s.LB, []dnsroll.Server{s.blue}); err != nil {
		t.Fatalf("Point at blue: %v", err)
	}
	lbtest.WantTXT(t, s.LB.Address, "blue")
}
