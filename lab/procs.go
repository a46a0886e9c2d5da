package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/internal/childenv"
	"github.com/dnsroll/dnsroll/internal/pidfile"
)

// stopGrace is how long a lab daemon gets to stop gracefully before it is
// killed.
const stopGrace = 5 * time.Second

// stopPidFile stops the process in pidFile with sig, then SIGKILL if it is
// still alive after stopGrace. A missing or stale pid file is fine.
func stopPidFile(pidFile, comm string, sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	return pidfile.Stop(ctx, pidFile, comm, sig)
}

// running reports whether the process in pidFile is alive and is comm.
func running(pidFile, comm string) bool {
	_, err := pidfile.Running(pidFile, comm)
	return err == nil
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
	if running(filepath.Join(vmDir, "named.pid"), "named") {
		return nil
	}
	cmd := exec.Command("named", "-c", conf)
	cmd.Env = childenv.Minimal()
	out, err := cmd.CombinedOutput()
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
		if running(filepath.Join(lbDir, p.pidFile), p.comm) {
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
