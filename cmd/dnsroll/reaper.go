package main

import (
	"log/slog"
	"syscall"

	"golang.org/x/sys/unix"
)

// adoptLabDaemons makes this process the reaper of orphaned descendants.
// The lab's named, nginx and dnsdist daemonize, so without it they are
// reparented to PID 1 and, once stopped, linger as zombies until PID 1 gets
// round to reaping them: `make demo` would seem to leave "[named]
// <defunct>" behind. With it they are reparented here, and
// reapLabDaemons reaps them when the lab stops.
func adoptLabDaemons() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		slog.Debug("cannot become the subreaper of the lab's daemons", "error", err)
	}
}

// reapLabDaemons reaps every child that has exited. Call it only once the
// lab has stopped: a child that os/exec still waits for would lose its
// exit status.
func reapLabDaemons() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
