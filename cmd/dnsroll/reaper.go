package main

import (
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dnsroll/dnsroll/internal/proctable"
)

var adoptOnce sync.Once

// adoptLabDaemons makes this process the reaper of orphaned descendants.
// The lab's named, nginx and dnsdist daemonize, so without it they are
// reparented to PID 1 and, once stopped, linger as zombies until PID 1 gets
// round to reaping them: `make demo` would seem to leave "[named]
// <defunct>" behind. With it they are reparented here, and reaped as they
// exit (reapAdopted): a deleted VM's named or a replaced load balancer's
// nginx does not stay a zombie for as long as `make dev` runs.
func adoptLabDaemons() {
	adoptOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			slog.Debug("cannot become the subreaper of the lab's daemons", "error", err)
			return
		}
		if !goWaitsThroughPidfds() {
			slog.Debug("os/exec does not wait through pidfds here: orphaned lab daemons are reaped when the lab stops")
			return
		}
		// Before any adopted daemon can exit, so that no exit goes
		// unnoticed; SIGCHLDs coalesce, and each reaps all there are.
		exits := make(chan os.Signal, 1)
		signal.Notify(exits, syscall.SIGCHLD)
		go func() {
			for range exits {
				reapAdopted()
			}
		}()
	})
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

// reapAdopted reaps the exited children of this process that it adopted,
// and leaves those it started: os/exec waits for each of these and must
// get its exit status. os/exec holds a pidfd of every child it starts
// until it has waited for it, so a zombie child of which this process holds
// no pidfd is an adopted one. It is reaped through a pidfd opened first,
// which names that one process even if its pid is reused meanwhile.
func reapAdopted() {
	self := os.Getpid()
	for _, pid := range zombieChildren(self) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // reaped meanwhile
		}
		if !heldPidfds(fd)[pid] {
			var info unix.Siginfo
			_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
		}
		unix.Close(fd)
	}
}

// zombieChildren lists the children of parent that have exited and not
// been reaped.
func zombieChildren(parent int) []int {
	var out []int
	for _, p := range proctable.List() {
		if p.PPID == parent && p.State == "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}

// heldPidfds returns the pids of the processes that this process holds a
// pidfd of, besides except.
func heldPidfds(except int) map[int]bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	held := map[int]bool{}
	for _, e := range ents {
		if e.Name() == strconv.Itoa(except) {
			continue
		}
		// "anon_inode:[pidfd]", or "pidfd:[inode]" since Linux 6.9.
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); !strings.Contains(link, "pidfd") {
			continue
		}
		info, _ := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					held[pid] = true
				}
			}
		}
	}
	return held
}

// goWaitsThroughPidfds reports whether os/exec holds a pidfd of each child
// it starts, as reapAdopted needs. The os package uses pidfds for all its
// processes or for none, and os.FindProcess opens one when it does.
func goWaitsThroughPidfds() bool {
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		return false
	}
	defer p.Release()
	return heldPidfds(-1)[os.Getpid()]
}
