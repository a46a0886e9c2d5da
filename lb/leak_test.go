package lb

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

	"github.com/dnsroll/dnsroll/internal/leaktest"
)

// A command run on a local load balancer that is cancelled (the step timed
// out, the rollout was stopped) returns at once and leaves no process,
// goroutine or pipe behind, even when it started children of its own, as
// the flip and update scripts do.
func TestLocalRunCancelledLeavesNothing(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	base := leaktest.Take(t)
	for range 5 {
		_ = os.Remove(pidFile)
		// Cancelled once its child runs: a deadline could come, on a
		// loaded machine, before the shell started it.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		ran := make(chan error, 1)
		go func() {
			_, err := Local{}.Run(ctx, "sleep 30 & echo $! > "+Quote(pidFile)+"; sleep 30; wait")
			ran <- err
		}()
		pid := waitPID(t, pidFile)
		start := time.Now()
		cancel()
		if err := <-ran; err == nil {
			t.Fatal("cancelled command succeeded")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("cancelled command returned %v after the cancel", took)
		}
		waitGone(t, pid)
	}
	leaktest.Check(t, base, 0, 3*time.Second)
}

// waitPID waits for file to hold a process ID, and returns it.
func waitPID(t *testing.T, file string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds no process ID: %q", file, b)
		}
	}
}

// waitGone fails t unless process pid exits (or is a zombie) soon.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		// The state follows the command name in parentheses.
		if err != nil || strings.HasPrefix(string(stat[strings.LastIndexByte(string(stat), ')')+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the cancelled command still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A cancelled command that started a daemon in a session of its own,
// which keeps the command's output open (a service started by hand, with
// no redirection), returns within localWaitDelay rather than when the
// daemon exits.
func TestLocalRunCancelledReturnsWhileADaemonHoldsItsOutput(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Local{}.Run(ctx, "setsid sleep 15 & echo $! > "+Quote(pidFile)+"; sleep 30")
	took := time.Since(start)
	if b, rerr := os.ReadFile(pidFile); rerr == nil {
		if pid, aerr := strconv.Atoi(strings.TrimSpace(string(b))); aerr == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err == nil {
		t.Fatal("cancelled command succeeded")
	}
	if took > localWaitDelay+3*time.Second {
		t.Errorf("cancelled command returned after %v, want within %v of the cancel: the daemon it started holds its output", took, localWaitDelay)
	}
}
