package proctable

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A child started with a known command line is listed with its parent,
// its arguments, spaces included, and its state, a zombie once it has
// exited, and is gone once it has been reaped.
func TestListFindsAChild(t *testing.T) {
	args := []string{"sh", "-c", "sleep 60; :", "an (odd) arg"}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // for its sleep to be killed with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	find := func() (Process, bool) {
		for _, p := range List() {
			if p.PID == cmd.Process.Pid {
				return p, true
			}
		}
		return Process{}, false
	}
	p, ok := find()
	if !ok {
		t.Fatalf("pid %d not listed", cmd.Process.Pid)
	}
	if p.PPID != os.Getpid() || !slices.Equal(p.Args, args) {
		t.Errorf("listed %+v, want parent %d and args %q", p, os.Getpid(), args)
	}
	if got, want := p.Cmdline(), "sh -c sleep 60; : an (odd) arg"; got != want {
		t.Errorf("Cmdline = %q, want %q", got, want)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	// Exited and not yet reaped, it is listed as a zombie.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, _ := find(); p.State == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("killed child never listed in state Z")
			break
		}
	}
	_ = cmd.Wait()
	if p, ok := find(); ok {
		t.Errorf("pid %d still listed after it was reaped: %+v", cmd.Process.Pid, p)
	}
}

// A program whose name holds a parenthesis and what looks like the
// fields after it is still listed with its own parent.
func TestListReadsPastAnOddName(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	odd := filepath.Join(t.TempDir(), "x) S 1 2")
	if err := os.Symlink(sleep, odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for _, p := range List() {
		if p.PID == cmd.Process.Pid {
			if p.PPID != os.Getpid() || p.State == "" || p.State == "Z" {
				t.Errorf("listed %+v, want parent %d and a live state", p, os.Getpid())
			}
			return
		}
	}
	t.Errorf("pid %d not listed", cmd.Process.Pid)
}
