// Package proctable lists the machine's processes from /proc, for the
// tests and cleanups that find processes by what they run (a worker's
// playbooks, a dead machine lab's containers) rather than by a pid file.
package proctable

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is one process as /proc shows it.
type Process struct {
	PID, PPID int
	// State is its state letter: R running, S sleeping, Z exited and not
	// yet reaped (a zombie), and so on (proc(5)).
	State string
	// Args is its command line, argv[0] first; empty for kernel threads.
	Args []string
}

// Cmdline is Args joined by spaces.
func (p Process) Cmdline() string { return strings.Join(p.Args, " ") }

// List returns the processes alive now. One that exits while List reads
// it is left out.
func List() []Process {
	entries, _ := os.ReadDir("/proc")
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := read(pid, filepath.Join("/proc", e.Name())); ok {
			out = append(out, p)
		}
	}
	return out
}

func read(pid int, dir string) (Process, bool) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields start after the last ')'.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 2 {
		return Process{}, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return Process{}, false
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	var args []string
	if s := strings.TrimSuffix(string(cmdline), "\x00"); s != "" {
		args = strings.Split(s, "\x00")
	}
	return Process{PID: pid, PPID: ppid, State: fields[0], Args: args}, true
}
