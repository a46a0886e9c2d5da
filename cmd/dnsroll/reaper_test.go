package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startOrphan starts a daemon as the lab's named and nginx are started: a
// shell runs it in the background and exits, which orphans it. It returns
// the daemon's pid.
func startOrphan(t *testing.T) int {
	t.Helper()
	pid, err := orphan(t)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// orphan is startOrphan for any goroutine.
func orphan(t *testing.T) (int, error) {
	out, err := exec.Command("sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid, nil
}

// procState is the state letter and parent pid of pid, from /proc; ok is
// false once the process is gone (reaped).
func procState(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// A lab daemon that stops while `make dev` runs (a deleted VM's named, a
// replaced load balancer's nginx) is reaped when it exits, not kept as a
// zombie until the lab stops.
func TestStoppedLabDaemonIsReaped(t *testing.T) {
	adoptLabDaemons()
	pid := startOrphan(t)
	if _, ppid, ok := procState(pid); !ok || ppid != os.Getpid() {
		t.Fatalf("daemon %d: parent %d, want this process (%d), which adopts orphans", pid, ppid, os.Getpid())
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, _, ok := procState(pid)
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped daemon %d is still there, in state %s", pid, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reaping orphans takes no exit status from the children that os/exec
// waits for (ansible-playbook, the Temporal dev server): each still learns
// how its child exited, while orphans exit beside them.
func TestReapingOrphansLeavesOwnChildren(t *testing.T) {
	adoptLabDaemons()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				pid, err := orphan(t)
				if err != nil {
					t.Error(err)
					return
				}
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		})
		wg.Go(func() {
			for range 20 {
				err := exec.Command("sh", "-c", "exit 3").Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Errorf("child exiting with status 3: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
