package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidAlive reads a pid file and reports the pid if that process is alive
// and is the program named want (guarding against reused pids).
func pidAlive(pidFile, want string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != want {
		return 0, false
	}
	return pid, true
}

// stopPidFile stops the process in pidFile with sig, then SIGKILL if it is
// still alive after a grace period. A missing or stale pid file is fine.
func stopPidFile(pidFile, want string, sig syscall.Signal) error {
	pid, ok := pidAlive(pidFile, want)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s %d: %w", want, pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := pidAlive(pidFile, want); !ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return nil
}

// stopVM stops a lab VM's named: what deleting a real VM does to its DNS.
func stopVM(vmDir string) error {
	return stopPidFile(filepath.Join(vmDir, "named.pid"), "named", syscall.SIGTERM)
}

// bootVM starts the named of a lab VM that was provisioned before the lab
// was stopped, as a real VM comes back after a reboot.
func bootVM(vmDir string) error {
	conf := filepath.Join(vmDir, "named.conf")
	if _, err := os.Stat(conf); err != nil {
		return nil // never provisioned: nothing to boot
	}
	if _, ok := pidAlive(filepath.Join(vmDir, "named.pid"), "named"); ok {
		return nil
	}
	out, err := exec.Command("named", "-c", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("boot %s: %v: %s", vmDir, err, out)
	}
	return nil
}

// lbPrograms are the lab load balancer programs, with the pid file each
// keeps in its load balancer's directory and its graceful stop signal.
var lbPrograms = []struct {
	pidFile, comm string
	stop          syscall.Signal
}{
	{"nginx.pid", "nginx", syscall.SIGQUIT},
	{"dnsdist.pid", "dnsdist", syscall.SIGTERM},
}

// lbRunning reports whether a lab load balancer's process is alive.
func lbRunning(lbDir string) bool {
	for _, p := range lbPrograms {
		if _, ok := pidAlive(filepath.Join(lbDir, p.pidFile), p.comm); ok {
			return true
		}
	}
	return false
}

// stopLB stops a lab load balancer gracefully, whichever program it runs.
func stopLB(lbDir string) error {
	for _, p := range lbPrograms {
		if err := stopPidFile(filepath.Join(lbDir, p.pidFile), p.comm, p.stop); err != nil {
			return err
		}
	}
	return nil
}
