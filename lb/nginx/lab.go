package nginx

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/dnsroll/dnsroll/internal/pidfile"
)

// MasterPID returns the pid of the nginx master that owns <dir>/nginx.pid,
// the pid file of a lab load balancer. It fails when none runs: a missing
// pid file, a pid that is gone, a zombie, or a pid reused by another program.
func MasterPID(dir string) (int, error) {
	pid, err := pidfile.Running(filepath.Join(dir, "nginx.pid"), "nginx")
	if err != nil {
		return 0, fmt.Errorf("nginx: lab load balancer in %s: %w", dir, err)
	}
	return pid, nil
}

// Stop shuts down the lab nginx in dir gracefully (SIGQUIT lets in-flight
// queries finish) and waits until it has exited. If it outlives ctx it is
// killed with its workers. A dir with no running nginx is not an error, so
// lab teardown can call Stop for every load balancer it ever made.
func Stop(ctx context.Context, dir string) error {
	if err := pidfile.Stop(ctx, filepath.Join(dir, "nginx.pid"), "nginx", syscall.SIGQUIT); err != nil {
		return fmt.Errorf("nginx: %s: %w", dir, err)
	}
	return nil
}
