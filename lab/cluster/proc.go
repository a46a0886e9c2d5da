package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// proc is a child process in its own process group that dies with us,
// even on kill -9 (Pdeathsig, set after the switch to cred's user).
type proc struct {
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
}

func startProc(bin, logFile string, cred *syscall.Credential, args ...string) (*proc, error) {
	// Appended to, so a restarted process's log follows its predecessor's.
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		_ = logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	p := &proc{cmd: exec.Command(bin, args...), logFile: logFile, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// errExited is a process that exited while waited for.
var errExited = errors.New("exited early")

// waitFor polls ready until it succeeds, the process exits, or limit passes.
func (p *proc) waitFor(ctx context.Context, limit time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%w: %v", errExited, p.cmd.ProcessState)
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
		time.Sleep(300 * time.Millisecond)
	}
}

// logTail is the end of the process's log, for errors: Stop removes the
// directory the log is in.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logFile)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", filepath.Base(p.logFile), b)
}

// stop sends sig to the process group, then SIGKILL after grace.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}
