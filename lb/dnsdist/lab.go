package dnsdist

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/dnsroll/dnsroll/internal/pidfile"
)

// PIDFile is the name of a lab dnsdist's pid file in its load balancer's
// directory. dnsdist writes none itself; the role starts it with
// start-stop-daemon --make-pidfile.
const PIDFile = "dnsdist.pid"

// PID returns the pid of the lab dnsdist that owns <dir>/dnsdist.pid. It
// fails when none runs: a missing pid file, a pid that is gone, a zombie,
// or a pid reused by another program.
func PID(dir string) (int, error) {
	pid, err := pidfile.Running(filepath.Join(dir, PIDFile), "dnsdist")
	if err != nil {
		return 0, fmt.Errorf("dnsdist: lab load balancer in %s: %w", dir, err)
	}
	return pid, nil
}

// Stop stops the lab dnsdist in dir with SIGTERM and waits until it has
// exited; one that outlives ctx is killed. A dir with no running dnsdist is
// not an error, so lab teardown can call Stop for every load balancer.
func Stop(ctx context.Context, dir string) error {
	if err := pidfile.Stop(ctx, filepath.Join(dir, PIDFile), "dnsdist", syscall.SIGTERM); err != nil {
		return fmt.Errorf("dnsdist: %s: %w", dir, err)
	}
	return nil
}
