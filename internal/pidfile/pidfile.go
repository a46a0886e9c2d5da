// Package pidfile finds and stops the daemons the lab runs (named, nginx,
// dnsdist) through the pid files they keep. A pid counts only while it is a
// live process of the expected program, so a stale file whose pid the kernel
// has since reused never gets someone else's process signalled.
package pidfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Running returns the pid in path if that process is alive, not a zombie,
// and named comm. The error says which of those failed.
func Running(path, comm string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("no running %s: %w", comm, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds %q, not a pid", path, b)
	}
	if !Alive(pid, comm) {
		return 0, fmt.Errorf("pid %d from %s is not a running %s", pid, path, comm)
	}
	return pid, nil
}

// Alive reports whether pid is a live (not zombie) process named comm. A
// zombie counts as gone: daemons are orphaned by their daemonizing fork, and
// whoever inherits them may reap them late.
func Alive(pid int, comm string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ..."; none of the lab's programs has a space or a
	// parenthesis in its name.
	fields := strings.Fields(string(stat))
	return len(fields) > 2 && fields[1] == "("+comm+")" && fields[2] != "Z"
}

// Stop sends sig (the program's graceful stop) to the process in path and
// waits until it has exited. If it outlives ctx it is killed, with its
// process group when it leads one (nginx's workers die only that way), and
// the error says so. No running process is not an error, so teardown can
// call Stop for everything it ever started.
func Stop(ctx context.Context, path, comm string, sig syscall.Signal) error {
	pid, err := Running(path, comm)
	if err != nil {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s %d: %w", comm, pid, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for Alive(pid, comm) {
		select {
		case <-ctx.Done():
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("stop %s: killed pid %d after %w", comm, pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}
