package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MasterPID returns the pid of the nginx master that owns <dir>/nginx.pid,
// the pid file of a lab load balancer. It fails when none runs: a missing
// pid file, a pid that is gone, a zombie, or a pid reused by another program.
func MasterPID(dir string) (int, error) {
	path := filepath.Join(dir, "nginx.pid")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("nginx: no running lab nginx in %s: %w", dir, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("nginx: %s holds %q, not a pid", path, b)
	}
	if !isNginx(pid) {
		return 0, fmt.Errorf("nginx: pid %d from %s is not a running nginx", pid, path)
	}
	return pid, nil
}

// isNginx reports whether pid is a live (not zombie) process named nginx.
// A zombie counts as gone: the lab's nginx is orphaned by its daemonizing
// fork, and whoever inherits it may reap it late.
func isNginx(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ..."; nginx's comm has no spaces or parentheses.
	fields := strings.Fields(string(stat))
	return len(fields) > 2 && fields[1] == "(nginx)" && fields[2] != "Z"
}

// Stop shuts down the lab nginx in dir gracefully (SIGQUIT lets in-flight
// queries finish) and waits until it has exited. If it outlives ctx it is
// killed. A dir with no running nginx is not an error, so lab teardown can
// call Stop for every load balancer it ever made.
func Stop(ctx context.Context, dir string) error {
	pid, err := MasterPID(dir)
	if err != nil {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("nginx: stop %s: %w", dir, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for isNginx(pid) {
		select {
		case <-ctx.Done():
			// Workers die with the master's process group only if we
			// signal them too; the group is the master's (it called setsid).
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			return fmt.Errorf("nginx: stop %s: killed pid %d after %w", dir, pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}
