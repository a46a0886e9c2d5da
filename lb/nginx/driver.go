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
	"fmt"
	"os"
	"path/filepath"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/provision"
)

// Paths on a real (Debian 12) load balancer. The role installs the config as
// /etc/nginx/nginx.conf; Debian's systemd unit expects this pid file.
const (
	vmPIDFile       = "/run/nginx.pid"
	vmErrorLog      = "/var/log/nginx/error.log"
	vmControlSocket = "/run/nginx-dnsroll.sock"
	vmStatusSocket  = "/run/nginx-dnsroll-status.sock"
	// vmStateDir holds the flip helpers and the staged record (the role's
	// dnsroll_nginx_state_dir); a lab load balancer uses its directory.
	vmStateDir = "/var/lib/dnsroll/nginx"
	vmConf     = "/etc/nginx/nginx.conf"
)

// applyTask is the role task (roles/loadbalancer/tasks/main.yml) whose
// module installs the config once "nginx -t" accepts it and waits until
// nginx serves it. It fails with "failed to validate" when nginx -t refuses
// the config, which no retry fixes; its other failures (nginx or a backend
// not ready in time) may pass on retry, so the task's name alone says
// nothing about the config.
const applyTask = "Apply the nginx config and wait until nginx serves it"

// Driver points nginx stream load balancers at backends. It implements
// activities.LoadBalancer.
type Driver struct {
	// Reach runs the loadbalancer playbook and opens the channels that
	// Flip runs its one command through.
	lb.Reach
	// Template is the path of a stream template to use instead of the
	// embedded nginx/stream.conf.tmpl; empty uses the embedded one, so the
	// binary needs no files beside it.
	Template string
}

// Point renders lb's nginx config for backends, applies it with the fleet's
// loadbalancer playbook and returns once the running nginx serves it, as
// its workers report on the config's control socket. It is idempotent and
// converges from whatever an interrupted attempt left: a config that nginx
// already serves leaves nginx untouched, and one that was written but never
// loaded is loaded.
//
// Like the driver's commands, it runs one at a time on the load balancer
// (the role's module waits for the lock that nginx.sh takes).
//
// Errors have code dnsroll.EINVALID when the input or the rendered config is
// invalid (nginx -t rejected it; the old config keeps serving), and
// dnsroll.ECONFLICT when a command that reached the load balancer after
// this one ran first while it waited (it did nothing, lest it undo that
// one); anything else, such as an unreachable host, may succeed on retry.
func (d *Driver) Point(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server) error {
	return lb.PointError("nginx", balancer.Name, d.point(ctx, fleet, balancer, backends))
}

func (d *Driver) point(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server) error {
	j, err := d.job(fleet, balancer, backends, nil)
	if err != nil {
		return err
	}
	return d.apply(ctx, j)
}

// apply runs j's playbook and, in the lab, checks that nginx serves it.
func (d *Driver) apply(ctx context.Context, j job) error {
	if err := d.Play(ctx, j.req, "", "nginx -t"); err != nil {
		return err
	}
	if j.labDir == "" {
		// The role checked through the control socket on the machine.
		return nil
	}
	if err := lb.VerifyLab(j.labDir, "nginx.conf", j.conf, "nginx.pid", "nginx"); err != nil {
		return err
	}
	return verifyServing(ctx, j.socket, j.id)
}

// job is one switch, worked out: the config, its ID and the playbook run
// that makes nginx serve it.
type job struct {
	conf, id, socket, labDir string
	data                     TemplateData
	paths                    paths
	req                      provision.Request
}

// paths are where one load balancer keeps what a flip touches.
type paths struct {
	conf, pid, stateDir string
	// nginx is the command that validates a config as the running nginx
	// would read it.
	nginx []string
}

// job works out the switch to backends, with weights (nil: equal) as in
// a flip. The staged record is backends; Stage adds its staged ones.
func (d *Driver) job(fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server, weights []int) (job, error) {
	if err := lb.CheckName(balancer.Name); err != nil {
		return job{}, err
	}
	listenHost, listenPort, err := splitListen(balancer.Address)
	if err != nil {
		return job{}, err
	}
	data := TemplateData{Name: balancer.Name, Listen: balancer.Address, PIDFile: vmPIDFile, ErrorLog: vmErrorLog, ControlSocket: vmControlSocket, StatusSocket: vmStatusSocket, Weights: weights}
	for _, b := range backends {
		data.Backends = append(data.Backends, b.DNSAddr())
	}
	p := paths{conf: vmConf, pid: vmPIDFile, stateDir: vmStateDir, nginx: []string{"nginx"}}
	labDir, err := d.Dir(fleet, balancer.Name)
	if err != nil {
		return job{}, err
	}
	if labDir != "" {
		// One worker per lab load balancer: the lab runs several on a
		// small machine and carries little traffic.
		data.PIDFile, data.ErrorLog, data.Workers = filepath.Join(labDir, "nginx.pid"), filepath.Join(labDir, "error.log"), 1
		data.ControlSocket = filepath.Join(labDir, "control.sock")
		data.StatusSocket = filepath.Join(labDir, "status.sock")
		// The role's lab paths and nginx command (vars/main.yml).
		p = paths{conf: filepath.Join(labDir, "nginx.conf"), pid: data.PIDFile, stateDir: labDir, nginx: []string{"nginx", "-e", data.ErrorLog}}
	}
	conf, err := d.render(data)
	if err != nil {
		return job{}, err
	}
	id, err := configID(conf)
	if err != nil {
		return job{}, err
	}
	staged, err := stagedVar(backends)
	if err != nil {
		return job{}, err
	}
	vars := map[string]any{
		"dnsroll_nginx_conf":           conf,
		"dnsroll_nginx_config_id":      id,
		"dnsroll_nginx_control_socket": data.ControlSocket,
		"dnsroll_nginx_status_socket":  data.StatusSocket,
		"dnsroll_nginx_state_dir":      p.stateDir,
		"dnsroll_nginx_staged":         staged,
		"dnsroll_lab_dir":              labDir,
		"dnsroll_lb_listen_host":       listenHost,
		"dnsroll_lb_listen_port":       listenPort,
	}
	req := provision.Request{
		Playbook:   fleet.Path(fleet.Ansible.LoadBalancerPlaybook),
		Hosts:      []provision.Host{{Name: balancer.Name, Address: balancer.SSHTarget(), Vars: vars}},
		Connection: fleet.Ansible.Connection,
		User:       fleet.Ansible.LoadBalancerUser(),
	}
	return job{conf: conf, id: id, socket: data.ControlSocket, labDir: labDir, data: data, paths: p, req: req}, nil
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

// splitListen splits the load balancer's address for the play's port check.
func splitListen(addr string) (string, int, error) {
	host, port, err := lb.SplitAddr(addr)
	if err != nil {
		return "", 0, dnsroll.Errorf(dnsroll.EINVALID, "address %v", err)
	}
	return host, port, nil
}

// CheckLogin logs into balancer as Flip will, and opens a forward to
// nginx's control socket, which Flip asks which config the workers run
// (lb.Reach.CheckAccess).
func (d *Driver) CheckLogin(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) error {
	return d.CheckAccess(ctx, fleet, balancer, lb.Forward{Network: "unix", Addr: vmControlSocket})
}
