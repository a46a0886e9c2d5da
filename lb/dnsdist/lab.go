package dnsdist

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

// PIDFile is the name of a lab dnsdist's pid file in its load balancer's
// directory. dnsdist writes none itself; the role starts it with
// start-stop-daemon --make-pidfile.
const PIDFile = "dnsdist.pid"

// PID returns the pid of the lab dnsdist that owns <dir>/dnsdist.pid. It
// fails when none runs: a missing pid file, a pid that is gone, a zombie,
// or a pid reused by another program.
func PID(dir string) (int, error) {
	path := filepath.Join(dir, PIDFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("dnsdist: no running lab dnsdist in %s: %w", dir, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("dnsdist: %s holds %q, not a pid", path, b)
	}
	if !isDnsdist(pid) {
		return 0, fmt.Errorf("dnsdist: pid %d from %s is not a running dnsdist", pid, path)
	}
	return pid, nil
}

// isDnsdist reports whether pid is a live (not zombie) process named dnsdist.
func isDnsdist(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat))
	return len(fields) > 2 && fields[1] == "(dnsdist)" && fields[2] != "Z"
}

// Stop stops the lab dnsdist in dir with SIGTERM and waits until it has
// exited; one that outlives ctx is killed. A dir with no running dnsdist is
// not an error, so lab teardown can call Stop for every load balancer.
func Stop(ctx context.Context, dir string) error {
	pid, err := PID(dir)
	if err != nil {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("dnsdist: stop %s: %w", dir, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for isDnsdist(pid) {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("dnsdist: stop %s: killed pid %d after %w", dir, pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}
