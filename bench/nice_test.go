package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// start starts a process that runs until the test ends and returns its
// /proc entry.
func start(t *testing.T, name string, args ...string) procfs.Proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p, err := procfs.NewProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustStat(t *testing.T, p procfs.Proc) procfs.ProcStat {
	t.Helper()
	st, err := p.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// raise changes the scheduling that /proc then reports for the thread.
func TestRaise(t *testing.T) {
	for _, tc := range []struct {
		how   string
		check func(procfs.ProcStat) bool
		want  string
	}{
		{priorityNice, func(st procfs.ProcStat) bool { return st.Nice == -10 }, "nice -10"},
		{priorityRT, func(st procfs.ProcStat) bool {
			return st.Policy == unix.SCHED_RR && st.RTPriority == 10
		}, "SCHED_RR priority 10"},
	} {
		t.Run(tc.how, func(t *testing.T) {
			if err := canRaise(tc.how); err != nil {
				t.Skipf("this process may not raise priorities (%v)", err)
			}
			p := start(t, "sleep", "60")
			if st := mustStat(t, p); tc.check(st) {
				t.Fatalf("a new process already has %s", tc.want)
			}
			raise(p.PID, tc.how)
			if st := mustStat(t, p); !tc.check(st) {
				t.Errorf("after raise: nice %d, policy %d, rt priority %d; want %s", st.Nice, st.Policy, st.RTPriority, tc.want)
			}
		})
	}
}

// age counts from the process's start: a process started now is younger
// than one second, and this test binary is older than the time it waited.
func TestAge(t *testing.T) {
	const wait = 200 * time.Millisecond
	time.Sleep(wait)
	if got := age(mustStat(t, start(t, "sleep", "60"))); got < 0 || got > time.Second {
		t.Errorf("age of a process just started = %v", got)
	}
	self, err := procfs.NewProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := age(mustStat(t, self)); got < wait {
		t.Errorf("age of this test = %v, want at least %v", got, wait)
	}
}

// ours picks data-path processes by name, and among those not started by
// this process, only the lab's (their command line names its directory)
// once they have settled.
func TestOurs(t *testing.T) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(dir, "named")
	if err := os.WriteFile(named, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if p := start(t, sleep, "60"); ours(fs, p, dir) {
		t.Errorf("a sleep started by this process counts as the data path")
	}
	if p := start(t, named, "60"); !ours(fs, p, "/nowhere") {
		t.Errorf("a named started by this process does not count as the data path")
	}
	// The shell stays named's parent: it has more to run after it.
	shell := start(t, "sh", "-c", named+" 61; :")
	var p procfs.Proc
	waitFor(t, func() bool {
		p, err = child(fs, shell.PID)
		return err == nil
	})
	if ours(fs, p, "/nowhere") {
		t.Errorf("another lab's named counts as this lab's")
	}
	if ours(fs, p, dir) {
		t.Errorf("the lab's named counts before it has run for %v", settleAge)
	}
}

// child is a process whose parent is ppid.
func child(fs procfs.FS, ppid int) (procfs.Proc, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return procfs.Proc{}, err
	}
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PPID == ppid {
			return p, nil
		}
	}
	return procfs.Proc{}, os.ErrNotExist
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
	}
}
