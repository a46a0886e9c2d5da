// Package provision runs Ansible playbooks through go-ansible and reports
// per-host results parsed from Ansible's JSON output.
//
// A run is a Temporal activity: it may be cancelled, lose its worker to
// kill -9, and be retried elsewhere, which is safe because playbooks are
// idempotent. So ansible-playbook gets a process group of its own that is
// SIGKILLed on cancel and dies with the worker, and nothing about the run
// is on its command line: inventory and extra vars are 0600 files that are
// removed afterwards. Errors quote task messages and the end of stderr but
// never go-ansible's own error text, which embeds the command line and the
// environment.
package provision

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/apenella/go-ansible/v2/pkg/execute"
	"github.com/apenella/go-ansible/v2/pkg/execute/stdoutcallback"
	"github.com/apenella/go-ansible/v2/pkg/playbook"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/internal/childenv"
)

// Host is one inventory host.
type Host struct {
	// Name is the inventory hostname, e.g. "ns1-next" or "lb1".
	Name string `json:"name"`
	// Address is what Ansible connects to (ansible_host).
	Address string `json:"address"`
	// Vars are host variables. Never put secrets here.
	Vars map[string]any `json:"vars,omitempty"`
}

// Request is one playbook run.
type Request struct {
	// Playbook is the path of the playbook file.
	Playbook string `json:"playbook"`
	// Hosts become the inventory's "all" group.
	Hosts []Host `json:"hosts"`
	// Connection is "ssh" or "local".
	Connection string `json:"connection"`
	// User is the SSH user (ssh connection only).
	User string `json:"user,omitempty"`
	// ExtraVars are passed in a file, not on the command line. Never secrets.
	ExtraVars map[string]any `json:"extra_vars,omitempty"`
}

// Result summarises a run, small enough for workflow history.
type Result struct {
	Hosts    map[string]HostStats `json:"hosts"`
	Failures []Failure            `json:"failures,omitempty"`
}

// HostStats are Ansible's per-host play recap counters.
type HostStats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
}

// Failure is one failed task on one host.
type Failure struct {
	Host    string `json:"host"`
	Task    string `json:"task"`
	Message string `json:"message"`
}

// Runner runs ansible-playbook. The zero value runs the ansible-playbook on
// PATH from the playbook's directory and reports progress every 2 s.
//
// The SSH private key is never part of a Request: ansible-playbook inherits
// the worker's environment, so set ANSIBLE_PRIVATE_KEY_FILE or SSH_AUTH_SOCK
// there (or in Env).
type Runner struct {
	// Binary is the ansible-playbook executable; empty means the one on PATH.
	Binary string
	// Dir is ansible-playbook's working directory. Empty means the
	// playbook's directory, which is how the ansible.cfg beside dnsroll's
	// playbooks takes effect.
	Dir string
	// Env is added to the inherited environment after dnsroll's defaults,
	// so it can override them.
	Env []string
	// HostKeys checks every ssh host's key before ansible-playbook runs and
	// sets how ssh checks it (hostkeys.Keeper). Nil leaves both to ssh's
	// and Ansible's own settings.
	HostKeys HostKeys
	// ProgressInterval is how often Run calls progress; zero means 2 s.
	ProgressInterval time.Duration
}

// HostKeys is the SSH host key policy; *hostkeys.Keeper implements it.
type HostKeys interface {
	// Verify checks the key that host name offers at addr, recording it
	// when the policy trusts first contact; a refused key is a
	// *hostkeys.Error, whose code is EINVALID.
	Verify(ctx context.Context, name, addr string) error
	// AnsibleEnv is the environment that makes ssh apply the policy, given
	// the inherited ANSIBLE_SSH_EXTRA_ARGS.
	AnsibleEnv(extraArgs string) []string
}

// Run runs req and blocks until ansible-playbook exits. progress, when not
// nil, is called periodically (at least every few seconds) while it runs,
// so callers can heartbeat. Cancelling ctx kills the whole process group.
// A failed playbook returns the parsed Result and an error naming the failed
// hosts and tasks.
func (r *Runner) Run(ctx context.Context, req Request, progress func(msg string)) (Result, error) {
	name := filepath.Base(req.Playbook)
	conn, err := req.check()
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}
	bin, err := exec.LookPath(cmp.Or(r.Binary, playbook.DefaultAnsiblePlaybookBinary))
	if errors.Is(err, exec.ErrNotFound) {
		// Invalid, so not retried: no retry installs it.
		return Result{}, dnsroll.Errorf(dnsroll.EINVALID, "ansible: %v: install Ansible on the worker (Debian: apt-get install ansible) and restart it", err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %w", err)
	}
	// ansible-playbook runs in another directory; relative paths would
	// resolve from there.
	bin, err = filepath.Abs(bin)
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %w", err)
	}
	book, err := filepath.Abs(req.Playbook)
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}
	// Inventory and extra vars go through 0600 files in a private
	// directory, so they never show up in ps or in go-ansible's errors. A
	// worker killed with -9 leaves the directory behind in os.TempDir.
	tmp, err := os.MkdirTemp("", "dnsroll-ansible-")
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	inv, vars, err := writeInputs(tmp, req, conn)
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}

	if err := r.verifyHosts(ctx, req, conn, progress); err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}
	tasks, taskEnv, err := installTaskLog(tmp, r.workDir(book))
	if err != nil {
		return Result{}, fmt.Errorf("ansible: %s: %w", name, err)
	}
	run := r.execute(ctx, bin, book, inv, vars, conn, taskEnv, tasks, progress)
	res, parseErr := parseOutput(run.stdout)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("ansible: %s: %w", name, ctx.Err())
	case run.startErr != nil:
		return res, fmt.Errorf("ansible: %s: start ansible-playbook: %w", name, run.startErr)
	case run.exit == 0 && run.err == nil && parseErr == nil:
		return res, nil
	}
	return res, runError(name, res, run, parseErr)
}

// workDir is where ansible-playbook runs for book, and so where it finds
// its ansible.cfg.
func (r *Runner) workDir(book string) string { return cmp.Or(r.Dir, filepath.Dir(book)) }

// outcome is what one ansible-playbook process left behind.
type outcome struct {
	stdout   []byte
	stderr   *tail
	exit     int   // -1 when it never ran or was killed
	err      error // go-ansible's error; its text holds the command line and environment, so it is never shown
	startErr error
}

// execute runs ansible-playbook through go-ansible with the JSON stdout
// callback and taskEnv, calling progress with the task tasks says it is on
// until it exits.
func (r *Runner) execute(ctx context.Context, bin, book, inv, vars, conn string, taskEnv []string, tasks taskLog, progress func(string)) outcome {
	var stdout bytes.Buffer
	out := outcome{stderr: newTail(stderrKeep), exit: -1}
	cmd := playbook.NewAnsiblePlaybookCmd(
		playbook.WithBinary(bin),
		playbook.WithPlaybooks(book),
		playbook.WithPlaybookOptions(&playbook.AnsiblePlaybookOptions{
			Inventory:     inv,
			ExtraVarsFile: []string{"@" + vars},
		}),
	)
	gx := &groupExec{dir: r.workDir(book), env: r.environ(conn, taskEnv)}
	de := execute.NewDefaultExecute(
		execute.WithCmd(cmd),
		execute.WithExecutable(gx),
		execute.WithWrite(&stdout),
		execute.WithWriteError(out.stderr),
	)
	// go-ansible only copies its settings (the stdout callback) into the
	// environment of an *exec.Cmd, which groupExec deliberately does not
	// return; hand them over when it builds the command.
	gx.late = func() []string { return de.EnvVars.Environ() }

	done := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that forked the child
		// exits, not the process: keep this thread alive until it is reaped.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := stdoutcallback.NewJSONStdoutCallbackExecute(de).Execute(ctx)
		gx.reap()
		done <- err
	}()
	out.err = heartbeat(done, filepath.Base(book), tasks, cmp.Or(r.ProgressInterval, 2*time.Second), progress)
	out.stdout = stdout.Bytes()
	if c := gx.cmd; c != nil {
		out.startErr = c.startErr
		if c.ProcessState != nil {
			out.exit = c.ProcessState.ExitCode()
		}
	}
	return out
}

// heartbeat waits for done, calling progress every interval meanwhile
// with the task the playbook is on. The message changes only when the task
// does, so a reader that prints each new one (progress.Printer) prints a
// line per task, however long one takes.
func heartbeat(done <-chan error, name string, tasks taskLog, interval time.Duration, progress func(string)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if progress == nil {
				continue
			}
			progress(fmt.Sprintf("ansible-playbook %s: %s", name, cmp.Or(tasks.current(), "starting")))
		}
	}
}

// environ is ansible-playbook's environment before go-ansible's settings:
// the worker's own, less its secrets (childenv), since ansible-playbook
// passes it on to ssh and to the daemons its modules start; then the
// run's own (extra: the task log's callback), and r.Env, which may
// override both.
func (r *Runner) environ(conn string, extra []string) []string {
	env := childenv.Minimal(
		// Interpreter discovery and deprecation warnings are noise in the
		// stderr tail that failure messages quote.
		"ANSIBLE_PYTHON_INTERPRETER=auto_silent",
		"ANSIBLE_DEPRECATION_WARNINGS=False",
		"ANSIBLE_LOCALHOST_WARNING=False",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
	)
	if conn == "ssh" && r.HostKeys != nil {
		// Connection local has no host key.
		env = append(env, r.HostKeys.AnsibleEnv(os.Getenv("ANSIBLE_SSH_EXTRA_ARGS"))...)
	}
	env = append(env, extra...)
	return append(env, r.Env...)
}

// verifyHosts checks each ssh host's key before Ansible connects, so a
// refused key fails the run with the policy's error (naming the host and
// the fix) rather than as an unreachable host that a retry would try again,
// and before anything on any host changed.
func (r *Runner) verifyHosts(ctx context.Context, req Request, conn string, progress func(string)) error {
	if conn != "ssh" || r.HostKeys == nil {
		return nil
	}
	for _, h := range req.Hosts {
		if progress != nil {
			progress("checking the SSH host key of " + h.Name)
		}
		if err := r.HostKeys.Verify(ctx, h.Name, h.Address); err != nil {
			return err
		}
	}
	return nil
}

// errNoOutput means ansible-playbook printed no JSON result.
var errNoOutput = errors.New("no JSON result on stdout")
