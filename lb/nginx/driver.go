// Package nginx is the load balancer driver for nginx stream proxies. It
// renders a complete nginx.conf from the embedded template in the top-level
// nginx package and applies it with the loadbalancer Ansible playbook, which
// validates it with "nginx -t" and returns once the new config serves.
//
// The same driver serves real load balancers (Debian VMs over SSH) and lab
// ones (an nginx per load balancer on loopback, in <LabDir>/lb/<name>/).
package nginx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/provision"
)

// Runner runs Ansible playbooks; provision.Runner implements it. It is
// declared here, with the same method as activities.PlaybookRunner, so that
// this package never imports activities.
type Runner interface {
	Run(ctx context.Context, req provision.Request, progress func(msg string)) (provision.Result, error)
}

// Paths on a real (Debian 12) load balancer. The role installs the config as
// /etc/nginx/nginx.conf; Debian's systemd unit expects this pid file.
const (
	vmPIDFile  = "/run/nginx.pid"
	vmErrorLog = "/var/log/nginx/error.log"
)

// validateTask is the name of the role task that installs the config after
// "nginx -t" accepts it (roles/loadbalancer/tasks/main.yml). Its failure
// means the rendered config is invalid, which no retry will fix.
const validateTask = "Install the nginx config, validated with nginx -t"

// lbNameRE keeps a load balancer name usable as a directory name and an
// inventory hostname; "../x" would otherwise escape the lab directory.
var lbNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Driver points nginx stream load balancers at backends. It implements
// activities.LoadBalancer.
type Driver struct {
	// Runner runs the loadbalancer playbook.
	Runner Runner
	// LabDir is the lab's state directory; a lab load balancer lives in
	// <LabDir>/lb/<name>/. Required for fleets with a lab section only.
	LabDir string
	// Template is the path of a stream template to use instead of the
	// embedded nginx/stream.conf.tmpl; empty uses the embedded one, so the
	// binary needs no files beside it.
	Template string
	// Progress, when set, receives the playbook's progress messages; the
	// worker uses it to heartbeat, since a playbook can outlast a heartbeat
	// timeout.
	Progress func(ctx context.Context, msg string)
}

// Point renders lb's nginx config for backends, applies it with the fleet's
// loadbalancer playbook and returns once the new config serves traffic. It
// is idempotent: an unchanged config leaves nginx untouched.
//
// Errors have code dnsroll.EINVALID when the input or the rendered config is
// invalid (nginx -t rejected it; the old config keeps serving); anything
// else, such as an unreachable host, may succeed on retry.
func (d *Driver) Point(ctx context.Context, fleet *config.Fleet, lb config.LoadBalancer, backends []dnsroll.Server) error {
	if err := d.point(ctx, fleet, lb, backends); err != nil {
		var e *dnsroll.Error
		if errors.As(err, &e) {
			return dnsroll.Errorf(e.Code, "nginx: point %s: %v", lb.Name, err)
		}
		return fmt.Errorf("nginx: point %s: %w", lb.Name, err)
	}
	return nil
}

func (d *Driver) point(ctx context.Context, fleet *config.Fleet, lb config.LoadBalancer, backends []dnsroll.Server) error {
	if !lbNameRE.MatchString(lb.Name) {
		return dnsroll.Errorf(dnsroll.EINVALID, "load balancer name %q: use letters, digits, dots, dashes and underscores", lb.Name)
	}
	listenHost, listenPort, err := splitListen(lb.Address)
	if err != nil {
		return err
	}
	data := TemplateData{Name: lb.Name, Listen: lb.Address, PIDFile: vmPIDFile, ErrorLog: vmErrorLog}
	for _, b := range backends {
		data.Backends = append(data.Backends, b.DNSAddr())
	}
	labDir := ""
	if fleet.Lab != nil {
		if labDir, err = d.Dir(lb.Name); err != nil {
			return err
		}
		// One worker per lab load balancer: the lab runs several on a
		// small machine and carries little traffic.
		data.PIDFile, data.ErrorLog, data.Workers = filepath.Join(labDir, "nginx.pid"), filepath.Join(labDir, "error.log"), 1
	}
	conf, err := d.render(data)
	if err != nil {
		return err
	}
	address := lb.SSHHost
	if address == "" {
		address = listenHost
	}
	vars := map[string]any{
		"dnsroll_nginx_conf":     conf,
		"dnsroll_lab_dir":        labDir,
		"dnsroll_lb_listen_host": listenHost,
		"dnsroll_lb_listen_port": listenPort,
	}
	req := provision.Request{
		Playbook:   fleet.Path(fleet.Ansible.LoadBalancerPlaybook),
		Hosts:      []provision.Host{{Name: lb.Name, Address: address, Vars: vars}},
		Connection: fleet.Ansible.Connection,
		User:       fleet.Ansible.SSHUser,
	}
	res, err := d.Runner.Run(ctx, req, d.progress(ctx))
	if err != nil {
		return classify(res, err)
	}
	if labDir != "" {
		return verifyLab(labDir, conf)
	}
	return nil
}

// Dir is the directory of lab load balancer name: <LabDir>/lb/<name>.
func (d *Driver) Dir(name string) (string, error) {
	if d.LabDir == "" {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "the fleet runs in the lab but the nginx driver has no lab directory")
	}
	if !lbNameRE.MatchString(name) {
		return "", dnsroll.Errorf(dnsroll.EINVALID, "load balancer name %q: use letters, digits, dots, dashes and underscores", name)
	}
	abs, err := filepath.Abs(d.LabDir)
	if err != nil {
		return "", err
	}
	return filepath.Join(abs, "lb", name), nil
}

func (d *Driver) render(data TemplateData) (string, error) {
	if d.Template == "" {
		return Render(data)
	}
	text, err := os.ReadFile(d.Template)
	if err != nil {
		return "", fmt.Errorf("read template: %w", err)
	}
	return renderText(string(text), data)
}

func (d *Driver) progress(ctx context.Context) func(string) {
	if d.Progress == nil {
		return nil
	}
	return func(msg string) { d.Progress(ctx, msg) }
}

// splitListen splits the load balancer's address for the play's port check.
func splitListen(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, dnsroll.Errorf(dnsroll.EINVALID, "address %q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, dnsroll.Errorf(dnsroll.EINVALID, "address %q: port must be 1-65535", addr)
	}
	return host, n, nil
}

// classify turns a failed run into EINVALID when nginx -t rejected the
// config, so the workflow stops retrying something that cannot succeed.
func classify(res provision.Result, err error) error {
	for _, f := range res.Failures {
		if strings.Contains(f.Task, validateTask) || strings.Contains(f.Message, "failed to validate") {
			return dnsroll.Errorf(dnsroll.EINVALID, "nginx -t rejected the config on %s: %s", f.Host, f.Message)
		}
	}
	return err
}

// verifyLab checks, after a successful play, that the lab load balancer's
// config on disk is the one just rendered and that its master runs. It
// catches a second writer racing this one; the play already waited for the
// new workers, and DNS through the load balancer is the probe step's job.
func verifyLab(dir, want string) error {
	got, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if string(got) != want {
		return fmt.Errorf("verify: %s/nginx.conf is not the config just applied; another change raced this one", dir)
	}
	if _, err := MasterPID(dir); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
