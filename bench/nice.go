package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
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
	self := strconv.Itoa(os.Getpid())
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range pids {
			pid := filepath.Base(p)
			if !dataPath[readTrim(p+"/comm")] {
				continue
			}
			ppid := parentOf(pid)
			if ppid != self && !strings.Contains(cmdline(pid), abs) && !strings.Contains(cmdline(ppid), abs) {
				continue
			}
			// A process that has just started (a green named loading its
			// zones) is not serving yet; raised, its start-up would take
			// CPU from the ones that are. Threads forked later by a raised
			// process (new nginx workers after a reload) inherit it.
			if ppid != self && age(pid) < settleAge {
				continue
			}
			tasks, _ := filepath.Glob(p + "/task/[0-9]*")
			for _, t := range tasks {
				tid, _ := strconv.Atoi(filepath.Base(t))
				raise(tid, how)
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// raise gives thread tid SCHED_RR priority 10, or nice -10.
func raise(tid int, how string) {
	if how == priorityNice {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10)
		return
	}
	const schedRR = 2
	param := struct{ priority int32 }{10}
	_, _, _ = syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedRR, uintptr(unsafe.Pointer(&param)))
}

// canRaise reports whether this process may raise priorities as asked.
func canRaise(how string) error {
	if how == priorityNone {
		return nil
	}
	tid := syscall.Gettid()
	if how == priorityNice {
		err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, -1)
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 0)
		return err
	}
	param := struct{ priority int32 }{10}
	if _, _, errno := syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), 2, uintptr(unsafe.Pointer(&param))); errno != 0 {
		return errno
	}
	param.priority = 0
	_, _, _ = syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), 0, uintptr(unsafe.Pointer(&param)))
	return nil
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func cmdline(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// settleAge is how long a data-path process runs before it is raised.
const settleAge = 3 * time.Second

// clockTick is the unit of /proc/<pid>/stat times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// age is how long ago process pid started.
func age(pid string) time.Duration {
	f := statFields(pid)
	up := strings.Fields(readTrim("/proc/uptime"))
	if len(f) < 20 || len(up) == 0 {
		return 0
	}
	start, err1 := strconv.ParseInt(f[19], 10, 64)
	uptime, err2 := strconv.ParseFloat(up[0], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(uptime*float64(time.Second)) - time.Duration(start)*clockTick
}

// statFields are the fields of /proc/<pid>/stat after "pid (comm)": state
// is [0], ppid [1], starttime [19].
func statFields(pid string) []string {
	stat := readTrim("/proc/" + pid + "/stat")
	if i := strings.LastIndexByte(stat, ')'); i >= 0 {
		return strings.Fields(stat[i+1:])
	}
	return nil
}

// parentOf reads the parent pid from /proc/<pid>/stat ("pid (comm) S ppid").
func parentOf(pid string) string {
	if f := statFields(pid); len(f) > 1 {
		return f[1]
	}
	return ""
}
