// Package child runs the lab's servers (named, the Temporal dev server,
// PostgreSQL and temporal-server) as child processes that never outlive
// whoever started them: each leads a process group of its own, the kernel
// SIGKILLs it when its parent dies, even by kill -9 (Pdeathsig), and it is
// stopped with its whole group.
package child

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a started child process.
type Proc struct {
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
}

// ErrExited is a process that exited while WaitFor waited for it.
var ErrExited = errors.New("exited early")

// Start starts cmd. Given a logFile, the process's stdout and stderr are
// appended to it, so that a restarted process's log follows its
// predecessor's; the file is given to cmd's Credential, if it has one.
// cmd.Env is the caller's to set.
func Start(cmd *exec.Cmd, logFile string) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Pdeathsig is applied after the switch to Credential's user.
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	p := &Proc{cmd: cmd, logFile: logFile, done: make(chan struct{})}
	var logf *os.File
	if logFile != "" {
		var err error
		if logf, err = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, err
		}
		if cred := cmd.SysProcAttr.Credential; cred != nil {
			_ = logf.Chown(int(cred.Uid), int(cred.Gid))
		}
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	err := cmd.Start()
	if logf != nil {
		logf.Close() // the child has its own descriptor
	}
	if err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// WaitFor calls ready every interval until it succeeds. It fails with
// ErrExited if the process exits first, with ctx's error if ctx ends, and
// with ready's last error once limit has passed.
func (p *Proc) WaitFor(ctx context.Context, limit, interval time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%w: %v", ErrExited, p.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// Signal sends sig to the process's group, unless it has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Stop sends sig to the process's group and waits for the process to
// exit, SIGKILLing the group after grace.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	p.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Tail is the last n bytes of file, for error messages: a process's log
// (LogTail) or a log it writes itself.
func Tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}

// LogTail is the last n bytes of the log Start was given.
func (p *Proc) LogTail(n int) string { return Tail(p.logFile, n) }
