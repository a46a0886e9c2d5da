// Package pid1 lets dnsroll be a container's first process, as it is
// under `docker run` or on Kubernetes without an init. Every orphan in
// the container is handed to PID 1: Ansible's shared SSH connections
// (ControlPersist masters), which outlive each playbook, and whatever a
// killed run left. A PID 1 that never reaps them keeps one zombie per
// host per playbook, until the pid table (a pod's pids limit) is full and
// nothing can start. So dnsroll, started as PID 1, starts itself again as
// its one child and does an init's job: it reaps every process that
// exits, passes signals on to the child, and exits as the child does.
package pid1

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// childEnv marks the child, which must not supervise in turn (and would
// not, as pid 2; it is set for the tests, which play PID 1 without it).
const childEnv = "DNSROLL_PID1_CHILD"

// forwarded are the signals passed on to the child: those a person or a
// container runtime sends to stop, reload or inspect a process.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Supervise runs this program again as its child and reaps orphans until
// the child exits, when this process is PID 1; it returns the exit
// status for main to exit with and true. Anywhere else it returns false
// at once, and main goes on.
func Supervise() (int, bool) {
	if os.Getpid() != 1 || os.Getenv(childEnv) != "" {
		return 0, false
	}
	return supervise(os.Args), true
}

func supervise(args []string) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsroll: as PID 1, cannot find its own program to run:", err)
		return 1
	}
	child := exec.Command(exe, args[1:]...)
	child.Args[0] = args[0]
	child.Env = append(os.Environ(), childEnv+"=1")
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	// A group of its own, in the terminal's foreground when there is one:
	// Ctrl-C then reaches the child once, from the terminal, and not a
	// second time through here (which the worker takes for "stop now").
	// Only the controlling terminal has a foreground to give (TIOCGPGRP
	// answers for no other): a terminal on stdin that is not the
	// session's would fail the start.
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetInt(int(os.Stdin.Fd()), unix.TIOCGPGRP); err == nil {
		child.SysProcAttr.Foreground, child.SysProcAttr.Ctty = true, int(os.Stdin.Fd())
	}

	// Ctrl-Z on the container's terminal stops nothing, as it did not
	// stop dnsroll as PID 1 (the kernel spares PID 1 what it does not
	// handle): no shell here could resume the work, and a stopped work
	// takes no SIGTERM. The child inherits the ignore across exec, and Go
	// keeps it, as it installs no handler of its own for SIGTSTP.
	signal.Ignore(syscall.SIGTSTP)
	// Before the start, so that no exit goes unnoticed.
	exits := make(chan os.Signal, 1)
	signal.Notify(exits, syscall.SIGCHLD)
	sigs := make(chan os.Signal, len(forwarded))
	signal.Notify(sigs, forwarded...)
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "dnsroll: as PID 1, cannot start itself as its child:", err)
		return 1
	}
	pid := child.Process.Pid
	for {
		select {
		case s := <-sigs:
			_ = syscall.Kill(pid, s.(syscall.Signal))
		case <-exits:
			if status, done := reap(pid); done {
				return status
			}
		}
	}
}

// reap reaps every process that has exited (SIGCHLDs coalesce: one may
// stand for many). It returns the child's exit status, as a shell gives
// it, and true once the child is among them.
func reap(child int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
