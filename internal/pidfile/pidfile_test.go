package pidfile

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
)

// start runs a command and writes its pid to a file, as a daemon would.
func start(t *testing.T, name string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(path, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd, path
}

func TestRunningChecksTheProgram(t *testing.T) {
	cmd, path := start(t, "sleep", "60")
	pid, err := Running(path, "sleep")
	if err != nil || pid != cmd.Process.Pid {
		t.Fatalf("Running = %d, %v; want %d", pid, err, cmd.Process.Pid)
	}
	// A pid reused by another program is not ours to signal.
	if _, err := Running(path, "nginx"); err == nil || !strings.Contains(err.Error(), "not a running nginx") {
		t.Errorf("Running(nginx) on a sleep = %v, want not a running nginx", err)
	}
	if _, err := Running(filepath.Join(t.TempDir(), "none.pid"), "sleep"); err == nil {
		t.Error("Running with no pid file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.pid")
	_ = os.WriteFile(bad, []byte("x"), 0o644)
	if _, err := Running(bad, "sleep"); err == nil || !strings.Contains(err.Error(), "not a pid") {
		t.Errorf("Running on garbage = %v, want not a pid", err)
	}
}

func TestStopIsGracefulAndCountsZombiesAsGone(t *testing.T) {
	_, path := start(t, "sleep", "60")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The dead sleep stays a zombie (nobody waits for it until cleanup);
	// Stop must see it as gone rather than wait for ctx.
	if err := Stop(ctx, path, "sleep", syscall.SIGTERM); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := Running(path, "sleep"); err == nil {
		t.Error("still running after Stop")
	}
	if err := Stop(ctx, path, "sleep", syscall.SIGTERM); err != nil {
		t.Errorf("Stop of a stopped process: %v, want nil", err)
	}
}

func TestStopKillsWhatOutlivesTheDeadline(t *testing.T) {
	// sh ignores SIGTERM here, and its child sleep is in its process group.
	// It makes the file ready once its trap is set.
	ready := filepath.Join(t.TempDir(), "ready")
	cmd, path := start(t, "sh", "-c", `trap "" TERM; : >"$0"; sleep 60 & wait`, ready)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("sh never set its trap")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := Stop(ctx, path, "sh", syscall.SIGTERM)
	if err == nil || !strings.Contains(err.Error(), "killed pid") {
		t.Fatalf("Stop = %v, want killed after the deadline", err)
	}
	// The kill takes effect asynchronously; give it a moment.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		_, shErr := Running(path, "sh")
		// The group's sleep went with it: no process is left in the group.
		groupGone := syscall.Kill(-cmd.Process.Pid, 0) == syscall.ESRCH || onlyZombies(t, cmd.Process.Pid)
		if shErr != nil && groupGone {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("sh or its child still running after the kill")
}

// onlyZombies reports whether every process in group pgid is a zombie.
func onlyZombies(t *testing.T, pgid int) bool {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ..."
		f := strings.Fields(string(b))
		if len(f) > 4 && f[4] == strconv.Itoa(pgid) && f[2] != "Z" {
			return false
		}
	}
	return true
}
