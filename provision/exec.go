package provision

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"

	ansibleexec "github.com/apenella/go-ansible/v2/pkg/execute/exec"
)

// supervisor runs ansible-playbook ("$@") under sh. Pdeathsig only reaches
// the direct child, and a SIGKILLed ansible-playbook leaves its forked
// workers and their commands running; sh instead turns its parent's death
// into a SIGKILL for its whole process group. The trap is set before
// ansible-playbook starts, so there is no window without it.
const supervisor = `trap 'kill -KILL 0' TERM; "$@" & wait $!`

// groupExec implements go-ansible's execute.Executabler. It starts
// ansible-playbook in a process group of its own, so that cancelling kills
// the group (workers, ssh, module commands) and not just the leader.
//
// It returns its own Cmder rather than an *exec.Cmd on purpose: go-ansible
// wires an *exec.Cmd's stdin to the worker's, and a process that is not in
// the foreground process group is stopped when it reads the terminal.
type groupExec struct {
	dir  string
	env  []string
	late func() []string // go-ansible's settings, which win over env
	cmd  *groupCmd
}

// Command is CommandContext without a context.
func (g *groupExec) Command(name string, arg ...string) ansibleexec.Cmder {
	return g.CommandContext(context.Background(), name, arg...)
}

// CommandContext builds the command that runs name under supervisor. When
// ctx is done the whole group is SIGKILLed: ansible-playbook is idempotent
// and will be run again, so there is nothing to shut down gracefully.
func (g *groupExec) CommandContext(ctx context.Context, name string, arg ...string) ansibleexec.Cmder {
	args := append([]string{"-c", supervisor, "dnsroll-ansible", name}, arg...)
	c := exec.CommandContext(ctx, "/bin/sh", args...)
	c.Dir = g.dir
	c.Env = slices.Clone(g.env)
	if g.late != nil {
		c.Env = append(c.Env, g.late()...)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	c.Cancel = func() error { return killGroup(c.Process.Pid) }
	g.cmd = &groupCmd{Cmd: c}
	return g.cmd
}

// reap kills and waits for the process group if go-ansible returned
// without waiting, which it does when ctx is cancelled: it stops reading
// output and returns at once, leaving a zombie behind.
func (g *groupExec) reap() {
	c := g.cmd
	if c == nil || c.Process == nil || c.waited {
		return
	}
	_ = killGroup(c.Process.Pid)
	_ = c.Wait()
}

// groupCmd is an *exec.Cmd that remembers whether it was waited for and
// why it failed to start.
type groupCmd struct {
	*exec.Cmd
	waited   bool
	startErr error
}

// Start starts the process.
func (c *groupCmd) Start() error {
	c.startErr = c.Cmd.Start()
	return c.startErr
}

// Wait waits for the process to exit.
func (c *groupCmd) Wait() error {
	c.waited = true
	return c.Cmd.Wait()
}

// killGroup SIGKILLs process group pgid. Until its leader is reaped, the
// group id cannot be reused, so this never hits a stranger.
func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// stderrKeep is how much of ansible-playbook's stderr is kept for errors.
const stderrKeep = 8 << 10

// tail is an io.Writer that keeps only the last max bytes written.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

// Write keeps the end of p and what came before it, up to max bytes.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns up to n trailing non-blank lines.
func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
