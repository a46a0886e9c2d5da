package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// The lab puts what production keeps apart on one small machine: the data
// path (named, the load balancers, dnsperf) and the control plane that
// switches it (Temporal, the worker, ansible-playbook, which bursts to a
// full core). A data-path process that waits for a CPU longer than its
// socket buffer lasts (about 50 ms at 5,000 queries/s) drops queries that
// no switch lost. So the benchmark raises the data path's priority, the
// same for every driver, to measure switching rather than the lab's CPU:
// by default to round-robin real-time scheduling (the data path sleeps on
// sockets and only wakes per packet, and the kernel keeps 5% of every
// second for other tasks), or to nice -10.

// dataPath are the programs whose priority is raised, by process name.
var dataPath = map[string]bool{"named": true, "nginx": true, "dnsdist": true, "dnsperf": true}

// Priorities: -priority flag values.
const (
	priorityRT   = "rt"
	priorityNice = "nice"
	priorityNone = "none"
)

// prioritize raises the priority of every data-path thread that belongs to
// the lab in dir (its command line names dir, or its parent's does, as for
// nginx workers) or to this process, until stop is closed. It polls, since
// rollouts start new named and nginx processes all the time.
func prioritize(dir, how string, stop <-chan struct{}) {
	abs, err := filepath.Abs(dir)
	if err != nil || how == priorityNone {
		return
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return
	}
	every(stop, 250*time.Millisecond, func() {
		procs, _ := fs.AllProcs()
		for _, p := range procs {
			if !ours(fs, p, abs) {
				continue
			}
			threads, _ := fs.AllThreads(p.PID)
			for _, t := range threads {
				raise(t.PID, how)
			}
		}
	})
}

// ours reports whether p is a settled data-path process of the lab in
// dir or a child of this process.
func ours(fs procfs.FS, p procfs.Proc, dir string) bool {
	st, err := p.Stat()
	if err != nil || !dataPath[st.Comm] {
		return false
	}
	if st.PPID == os.Getpid() {
		return true
	}
	if !names(p, dir) && !names(parent(fs, st), dir) {
		return false
	}
	// A process that has just started (a green named loading its zones)
	// is not serving yet; raised, its start-up would take CPU from the
	// ones that are. Threads forked later by a raised process (new nginx
	// workers after a reload) inherit it.
	return age(st) >= settleAge
}

// parent is st's parent process; a zero Proc if it is gone.
func parent(fs procfs.FS, st procfs.ProcStat) procfs.Proc {
	p, _ := fs.Proc(st.PPID)
	return p
}

// names reports whether p's command line mentions dir.
func names(p procfs.Proc, dir string) bool {
	if p.PID == 0 {
		return false
	}
	args, _ := p.CmdLine()
	return strings.Contains(strings.Join(args, " "), dir)
}

// raise gives thread tid SCHED_RR priority 10, or nice -10.
func raise(tid int, how string) {
	if how == priorityNice {
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, -10)
		return
	}
	_ = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 10}, 0)
}

// canRaise reports whether this process may raise priorities as asked.
func canRaise(how string) error {
	if how == priorityNone {
		return nil
	}
	// Set and reset the same thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	if how == priorityNice {
		err := unix.Setpriority(unix.PRIO_PROCESS, tid, -1)
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
		return err
	}
	if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 10}, 0); err != nil {
		return err
	}
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
}

// settleAge is how long a data-path process runs before it is raised.
const settleAge = 3 * time.Second

// clockTick is the unit of /proc/<pid>/stat times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// age is how long ago the process of st started, on the clock its start
// time counts from (boot, suspend included).
func age(st procfs.ProcStat) time.Duration {
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return 0
	}
	return time.Duration(now.Nano()) - time.Duration(st.Starttime)*clockTick
}
