// Package dnsdist is a load balancer driver for dnsdist that switches
// without losing a query. nginx's reload closes the old workers' sockets and
// drops replies in flight (about 7 queries per switch at 5,000 queries/s);
// dnsdist instead changes its backends at runtime through its console, and
// the process never restarts.
//
// It switches in two phases (lb.Share, activities.Stager):
//
//   - Stage, off the critical path, runs the dnsdist Ansible playbook in
//     stage mode: green's backends join pool "staged", health-checked but
//     given no traffic, and nothing live is touched.
//   - Flip, the promote or the rollback, is one console exchange and no
//     playbook: the weighted backends join the default pool (""), which
//     gets the traffic under the weighted random policy, then every other
//     backend leaves it. A backend that leaves keeps answering the queries
//     it has; the split is read back before Flip returns.
//   - Point, afterwards, serves exactly the given backends: it adds what is
//     missing, sets the rest down, waits until dnsdist has no outstanding
//     query to them, and removes them.
//
// The console is reached over an lb.Channel that the worker keeps open to
// the load balancer: SSH to the load balancer, which connects to the
// console on its own loopback, or, in the lab, directly on this machine.
// Its key is read from the load balancer through the same channel and kept
// in memory only.
//
// Point and Stage render a complete dnsdist.conf that records the live and
// the staged backends, so a restart comes back the same way. A flip does
// not rewrite that file: dnsdist itself records the flip's split in a small
// file (TemplateData.SplitFile) that the config applies at start. The same
// driver serves real load balancers (Debian VMs over SSH, systemd) and lab
// ones (a dnsdist per load balancer on loopback, in <LabDir>/lb/<name>/).
package dnsdist

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/provision"
)

// Where the console listens and its key lives on a real load balancer. The
// console is loopback-only: Ansible runs the console client on the load
// balancer itself, and the worker reaches it through SSH to the load
// balancer (lb.Channel.Dial), so the port is never open to the network.
const (
	vmConsole = "127.0.0.1:5199"
	vmKeyFile = "/etc/dnsdist/dnsroll-console.key"
	// vmSplitFile records the last flip's split; dnsdist writes it itself,
	// as _dnsdist, which may write under /var only (ProtectSystem=full).
	vmSplitFile = "/var/lib/dnsroll-dnsdist/split"
)

// labConsoleHost is where lab consoles listen, on the load balancer's own
// port number: Linux routes all of 127/8 to lo, and 127.0.0.1:<port> is the
// load balancer's DNS listener, so the pair is free whenever the lab could
// bind the load balancer itself, and two lab load balancers never collide.
// A lab load balancer on an address of its own (the delegation lab's, on
// port 53, as glue needs) keeps its console there, on vmConsole's port.
// One on ::1, which is a single address like 127.0.0.1, keeps its console
// on labConsoleHost6 at its own port.
const (
	labConsoleHost  = "127.0.0.2"
	labConsoleHost6 = "127.0.0.3"
)

// PlaybookName is the playbook that applies a dnsdist config. By default it
// is looked up beside the fleet's loadbalancer playbook (ansible/).
const PlaybookName = "dnsdist.yml"

// installTask is the role task (roles/dnsdist/tasks/main.yml) whose module
// installs the config once "dnsdist --check-config" accepts it and keeps
// dnsdist running its settings. It fails with "failed to validate" when
// the check refuses the config, which no retry fixes; its other failures
// (dnsdist not listening in time) may pass on retry, so the task's name
// alone says nothing about the config.
const installTask = "Install the dnsdist config and keep dnsdist running its settings"

// Driver points dnsdist load balancers at backends. It implements
// activities.LoadBalancer.
type Driver struct {
	// Reach runs the dnsdist playbook and opens the channels that Flip and
	// Stats reach the console through.
	lb.Reach
	// Playbook is the playbook's path; empty means PlaybookName in the
	// directory of the fleet's loadbalancer_playbook.
	Playbook string

	mu    sync.Mutex
	keys  map[string]*keptKey // console keys by keyID; never logged
	clock uint64              // counts key uses, for keptKey.used
}

// Point makes lb send all DNS traffic to backends and returns once dnsdist
// serves only them, every one health-checked up. It is idempotent: pointing
// at the current backends changes nothing. Errors have code dnsroll.EINVALID
// when the input or the rendered config is invalid (the old config keeps
// serving); anything else may succeed on retry.
func (d *Driver) Point(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server) error {
	return lb.PointError("dnsdist", balancer.Name, d.point(ctx, fleet, balancer, backends))
}

func (d *Driver) point(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server) error {
	return d.play(ctx, fleet, balancer, "point", backends, nil)
}

// play renders the config with live and staged backends and runs the
// playbook in mode "point" (serve exactly live, remove the rest) or
// "stage" (add what is missing, touch nothing live).
func (d *Driver) play(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, mode string, live, staged []dnsroll.Server) error {
	if err := lb.CheckName(balancer.Name); err != nil {
		return err
	}
	listen, err := IPPort(balancer.Address)
	if err != nil {
		return dnsroll.Errorf(dnsroll.EINVALID, "address: %v (dnsdist listens on an IP address)", err)
	}
	listenHost, portText, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portText)
	data := TemplateData{Name: balancer.Name, Listen: listen}
	site, err := d.console(fleet, balancer)
	if err != nil {
		return err
	}
	data.Console, data.KeyFile, data.SplitFile = site.addr, site.keyFile, site.splitFile
	if len(fleet.Zones) > 0 {
		data.CheckName, data.CheckType, data.MustResolve = HealthCheck(fleet.Zones[0].Name)
	} else {
		data.CheckName, data.CheckType, data.MustResolve = HealthCheck("")
	}
	for _, b := range live {
		data.Backends = append(data.Backends, b.DNSAddr())
	}
	for _, b := range staged {
		data.Staged = append(data.Staged, b.DNSAddr())
	}
	labDir, err := d.Dir(fleet, balancer.Name)
	if err != nil {
		return err
	}
	conf, err := Render(data)
	if err != nil {
		return err
	}
	// The same config without backends: the settings that only a restart
	// applies. The role restarts dnsdist only when these change.
	settings := data
	settings.Backends, settings.Staged = nil, nil
	settingsConf, err := Render(settings)
	if err != nil {
		return err
	}
	clean, _ := data.normalize()
	vars := map[string]any{
		"dnsroll_dnsdist_conf":         conf,
		"dnsroll_dnsdist_settings":     settingsConf,
		"dnsroll_dnsdist_mode":         mode,
		"dnsroll_dnsdist_backends":     clean.Backends,
		"dnsroll_dnsdist_staged":       clean.Staged,
		"dnsroll_dnsdist_console":      data.Console,
		"dnsroll_dnsdist_key_file":     data.KeyFile,
		"dnsroll_dnsdist_split_file":   data.SplitFile,
		"dnsroll_dnsdist_check_name":   data.CheckName,
		"dnsroll_dnsdist_check_type":   data.CheckType,
		"dnsroll_dnsdist_must_resolve": data.MustResolve,
		"dnsroll_lab_dir":              labDir,
		"dnsroll_lb_listen_host":       listenHost,
		"dnsroll_lb_listen_port":       port,
	}
	req := provision.Request{
		Playbook:   d.playbook(fleet),
		Hosts:      []provision.Host{{Name: balancer.Name, Address: balancer.SSHTarget(), Vars: vars}},
		Connection: fleet.Ansible.Connection,
		User:       fleet.Ansible.LoadBalancerUser(),
	}
	if err := d.Play(ctx, req, "", "dnsdist --check-config"); err != nil {
		return err
	}
	if labDir != "" {
		return lb.VerifyLab(labDir, "dnsdist.conf", conf, PIDFile, "dnsdist")
	}
	return nil
}

// site is where a load balancer's console listens, the file holding its
// key, and the file in which a flip records its split.
type site struct{ addr, keyFile, splitFile string }

// console returns balancer's site: the lab's per load balancer address and
// directory, or the fixed loopback port and paths on a real load balancer.
func (d *Driver) console(fleet *config.Fleet, balancer config.LoadBalancer) (site, error) {
	dir, err := d.Dir(fleet, balancer.Name)
	if err != nil || dir == "" {
		return site{vmConsole, vmKeyFile, vmSplitFile}, err
	}
	listen, err := IPPort(balancer.Address)
	if err != nil {
		return site{}, dnsroll.Errorf(dnsroll.EINVALID, "address: %v (dnsdist listens on an IP address)", err)
	}
	host, port, _ := net.SplitHostPort(listen)
	var console string
	switch host {
	case "127.0.0.1":
		console = net.JoinHostPort(labConsoleHost, port)
	case "::1":
		console = net.JoinHostPort(labConsoleHost6, port)
	default:
		_, vmPort, _ := net.SplitHostPort(vmConsole)
		console = net.JoinHostPort(host, vmPort)
	}
	return site{console, filepath.Join(dir, "console.key"), filepath.Join(dir, "split")}, nil
}

func (d *Driver) playbook(fleet *config.Fleet) string {
	if d.Playbook != "" {
		return d.Playbook
	}
	return filepath.Join(filepath.Dir(fleet.Path(fleet.Ansible.LoadBalancerPlaybook)), PlaybookName)
}

// CheckLogin logs into balancer as Flip will, and opens a forward to
// dnsdist's console, which Flip and Stats talk to (lb.Reach.CheckAccess).
func (d *Driver) CheckLogin(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer) error {
	s, err := d.console(fleet, balancer)
	if err != nil {
		return err
	}
	return d.CheckAccess(ctx, fleet, balancer, lb.Forward{Network: "tcp", Addr: s.addr})
}
