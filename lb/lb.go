// Package lb holds what every load balancer driver shares. A driver
// (lb/nginx, lb/dnsdist) renders its program's config and runs its Ansible
// playbook; this package runs that playbook, tells a config the program
// rejected (which no retry fixes) from a failure that may pass on retry,
// places lab load balancers, and checks a lab one after its play.
package lb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"golang.org/x/crypto/ssh"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/pidfile"
	"github.com/dnsroll/dnsroll/provision"
)

// Runner runs Ansible playbooks; provision.Runner implements it. It is
// declared here, with the same method as activities.PlaybookRunner, so that
// drivers never import activities.
type Runner interface {
	Run(ctx context.Context, req provision.Request, progress func(msg string)) (provision.Result, error)
}

// nameRE keeps a load balancer name usable as a directory name, an
// inventory hostname and a config comment: "../x" would escape the lab
// directory, and a newline would turn the rest of the name into config.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName fails with EINVALID unless name is a usable load balancer name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return dnsroll.Errorf(dnsroll.EINVALID, "load balancer name %q: use letters, digits, dots, dashes and underscores", name)
	}
	return nil
}

// Reach is how a driver reaches a fleet's load balancers. It is the same
// for every driver, so the worker builds one and hands it to each; a driver
// embeds it.
type Reach struct {
	// Runner runs the driver's playbook.
	Runner Runner
	// Place says where a fleet's load balancers run (config.PlaceIn): a
	// lab one lives in <lab directory>/lb/<name>/. Nil places lab fleets in
	// no directory, which fails.
	Place config.Placer
	// Progress, when set, receives the playbook's progress messages, so the
	// worker can heartbeat while a playbook outlasts a heartbeat timeout.
	Progress func(ctx context.Context, msg string)
	// Channels opens the kept-open channels that a driver reaches a running
	// load balancer through. Nil means Local for fleets whose Ansible
	// connection is local (the lab), and an error otherwise (see Open).
	Channels Opener
}

// Dir is the directory of fleet's load balancer name, as r.Place resolves
// it: <lab directory>/lb/<name> in the lab, empty on a real machine.
func (r Reach) Dir(fleet *config.Fleet, name string) (string, error) {
	return Dir(r.Place.Place(fleet), name)
}

// Play runs req with r's Runner and Progress as a Playbook whose
// validateTask, checked by validator (such as "nginx -t"), installs the
// config; empty when a failure's message alone tells (see Playbook).
func (r Reach) Play(ctx context.Context, req provision.Request, validateTask, validator string) error {
	return Playbook{Runner: r.Runner, Request: req, Progress: r.Progress, ValidateTask: validateTask, Validator: validator}.Run(ctx)
}

// Forward is a connection a driver's flip opens through the channel:
// Network "tcp" or "unix", to Addr.
type Forward struct{ Network, Addr string }

// CheckAccess logs into balancer as its switch will, through the kept-open
// channel (the worker's key, the recorded host key, sudo -n for a user
// other than root), runs true there, and opens each of forwards as the
// flip does, so that a rollout's Plan step finds a load balancer it could
// not switch before it creates anything. A tcp forward is refused only
// when sshd forbids it (nothing need listen); a unix one is opened only
// where the socket exists (a rollout before made it), and must connect. A
// key the user does not accept, a sudo that asks for a password and a
// forward refused fail with EINVALID, naming the fix: no retry passes
// them.
func (r Reach) CheckAccess(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, forwards ...Forward) error {
	ch, err := Open(ctx, r.Channels, balancer.Driver, fleet, balancer)
	if _, local := ch.(Local); local {
		return nil // the lab's, on this machine: nothing to log into
	}
	if err == nil {
		_, err = ch.Run(ctx, "true")
	}
	for _, f := range forwards {
		if err != nil {
			break
		}
		err = checkForward(ctx, ch, f)
	}
	if err == nil || dnsroll.ErrorCode(err) != dnsroll.EINTERNAL {
		return err
	}
	user := cmp.Or(fleet.Ansible.LoadBalancerUser(), "root")
	switch msg := err.Error(); {
	case errors.Is(err, errForwardRefused):
		return dnsroll.Errorf(dnsroll.EINVALID, "%v: the switch reaches the load balancer's console or control socket through this forward: "+
			"allow it in its sshd_config (AllowTcpForwarding, AllowStreamLocalForwarding yes; DisableForwarding no; in a Match block for %s if need be), and let %s open the socket", err, user, user)
	case strings.Contains(msg, "unable to authenticate"):
		return dnsroll.Errorf(dnsroll.EINVALID, "%v: %s@%s does not accept the worker's SSH key (ANSIBLE_PRIVATE_KEY_FILE, or the ssh-agent's): "+
			"add its public key to that user's authorized_keys there, or set ansible.loadbalancer_ssh_user to a user that has it", err, user, balancer.SSHTarget())
	case strings.Contains(msg, "sudo: a password is required"), strings.Contains(msg, "is not in the sudoers file"), strings.Contains(msg, "is not allowed to run sudo"):
		return dnsroll.Errorf(dnsroll.EINVALID, "%v: %s may not run commands as root with sudo -n there: "+
			"give it passwordless sudo, or set ansible.loadbalancer_ssh_user to root", err, user)
	case strings.Contains(msg, "sudo: not found"), strings.Contains(msg, "sudo: command not found"):
		return dnsroll.Errorf(dnsroll.EINVALID, "%v: the load balancer has no sudo, which a user other than root (%s) needs: "+
			"install it, or set ansible.loadbalancer_ssh_user to root", err, user)
	}
	return err
}

// errForwardRefused marks a forward the load balancer's sshd refused.
var errForwardRefused = errors.New("its sshd refused the forward")

// checkForward opens f through ch, as the flip will, and closes it. A tcp
// forward to where nothing listens fails to connect, which a working
// forward does; an sshd that forbids it says administratively prohibited.
// OpenSSH says "connect failed" for a unix forward it forbids and for a
// socket that is not there, so one is asked for only where the socket is.
func checkForward(ctx context.Context, ch Channel, f Forward) error {
	if f.Network == "unix" {
		if _, err := ch.Run(ctx, "test -S "+Quote(f.Addr)); err != nil {
			return nil // not there yet: the first rollout's stage makes it
		}
	}
	conn, err := ch.Dial(ctx, f.Network, f.Addr)
	if err == nil {
		return conn.Close()
	}
	var refused *ssh.OpenChannelError
	switch {
	case !errors.As(err, &refused):
		return err
	case f.Network == "tcp" && refused.Reason != ssh.Prohibited:
		return nil // nothing listens there, and the forward works
	}
	return fmt.Errorf("%w: %w", errForwardRefused, err)
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Dir is the directory of load balancer name placed by p: empty on a real
// machine, <lab directory>/lb/<name> in the lab.
func Dir(p config.Placement, name string) (string, error) {
	if !p.InLab() {
		return "", nil
	}
	labDir := p.LabDir()
	if labDir == "" {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "the fleet runs in the lab but the driver has no lab directory")
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(labDir)
	if err != nil {
		return "", err
	}
	return config.LabLBDir(abs, name), nil
}

// Render executes a driver's config template, text, with data that the
// driver has already checked; a template that fails is EINVALID, with the
// driver's name in the message.
func Render(driver, name, text string, data any) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "%s: parse template: %v", driver, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "%s: render template: %v", driver, err)
	}
	return b.String(), nil
}

// Playbook is one run of a driver's playbook against one load balancer.
type Playbook struct {
	Runner  Runner
	Request provision.Request
	// Progress, when set, receives the playbook's progress messages, so the
	// worker can heartbeat while it runs.
	Progress func(ctx context.Context, msg string)
	// ValidateTask is the role task that installs the config only once the
	// program accepts it; its failure means the rendered config is invalid.
	// Empty: no task's failure means that by itself, only a message that
	// says "failed to validate" (a role whose one module also waits).
	ValidateTask string
	// Validator names that check in errors, such as "nginx -t".
	Validator string
}

// Overtaken is in the failure message of a role's module that did
// nothing because a command that reached the load balancer after it ran
// first (the loadbalancer role's, which takes its turn as the nginx
// driver's commands do).
const Overtaken = "overtaken by a newer dnsroll command"

// Run runs the playbook. A failure of ValidateTask comes back as EINVALID,
// so the workflow stops retrying something that cannot succeed; one
// overtaken by a newer command as ECONFLICT, since a retry would reach the
// load balancer after that command and undo it; any other failure is
// returned as it is and may succeed on retry.
func (p Playbook) Run(ctx context.Context) error {
	var progress func(string)
	if p.Progress != nil {
		progress = func(msg string) { p.Progress(ctx, msg) }
	}
	res, err := p.Runner.Run(ctx, p.Request, progress)
	if err == nil {
		return nil
	}
	for _, f := range res.Failures {
		if (p.ValidateTask != "" && strings.Contains(f.Task, p.ValidateTask)) || strings.Contains(f.Message, "failed to validate") {
			return dnsroll.Errorf(dnsroll.EINVALID, "%s rejected the config on %s: %s", p.Validator, f.Host, f.Message)
		}
		if strings.Contains(f.Message, Overtaken) {
			return dnsroll.Errorf(dnsroll.ECONFLICT, "on %s: %s", f.Host, f.Message)
		}
	}
	return err
}

// VerifyLab checks, after a successful play, that a lab load balancer's
// config on disk, <dir>/<confFile>, is the one just rendered and that its
// program (comm, with pid file <dir>/<pidFile>) runs. It catches a second
// writer racing this one; DNS through the load balancer is the probe step's
// job.
func VerifyLab(dir, confFile, want, pidFile, comm string) error {
	got, err := os.ReadFile(filepath.Join(dir, confFile))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if string(got) != want {
		return fmt.Errorf("verify: %s/%s is not the config just applied; another change raced this one", dir, confFile)
	}
	if _, err := pidfile.Running(filepath.Join(dir, pidFile), comm); err != nil {
		return fmt.Errorf("verify: %s: %w", dir, err)
	}
	return nil
}

// PointError prefixes a driver's error with what failed. It wraps the
// error, so its dnsroll code (invalid or retryable) and its type, such as a
// refused host key, stay visible to the activity.
func PointError(driver, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: point %s: %w", driver, name, err)
}
