// Package lab runs dnsroll's local lab: a real Temporal dev server, the
// Linode API simulator, lab VMs that are real named processes on loopback
// ports, and lab load balancers that are real nginx or dnsdist instances, as
// each load balancer's driver says. Only the Linode API is simulated, and the
// unmodified linodego client talks to it.
package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/worker"
)

// deleteDelay is how long the lab's deleted instances show "deleting".
const deleteDelay = 2 * time.Second

// Token is the lab simulator's API token. It is not a secret: the simulator
// listens on loopback only and holds no real resources.
const Token = "dnsroll-lab-token"

// Options configure a lab. Zero ports mean "pick a free one".
type Options struct {
	// Dir holds all lab state: temporal.db, linodesim.json, vms/, lb/, logs.
	Dir string
	// Fleet is the lab fleet's config (a config with a lab section).
	Fleet *config.Fleet
	// TemporalBin is the temporal CLI binary (bin/temporal).
	TemporalBin  string
	TemporalPort int
	UIPort       int
	// TemporalAddress, when set, is an external Temporal frontend
	// (host:port, namespace "default" with SearchAttributes registered,
	// such as lab/cluster's) that the lab uses instead of starting a dev
	// server; TemporalBin, TemporalPort and UIPort are then unused.
	TemporalAddress string
	// Headless disables the Temporal Web UI (tests).
	Headless bool
	// SimAddr is where the Linode API simulator listens, e.g. 127.0.0.1:8711.
	SimAddr string
	// BootDelay is how long each of provisioning and booting takes in the simulator.
	BootDelay time.Duration
	// DeleteDelay is how long a deleted instance shows "deleting", its
	// label still taken, in the simulator; zero means 2 s. Tests that
	// delete servers in every rollout give less.
	DeleteDelay time.Duration
	// Disposable says that nothing reads the lab's state after Stop (tests
	// remove its directory): Stop then kills the Temporal dev server
	// rather than wait some 3 s for its graceful shutdown, which only
	// keeps temporal.db tidy for the next start.
	Disposable bool
	// Log receives progress lines for humans.
	Log io.Writer
	// SeeRootPass, when set, is told the root password of every instance
	// the simulator creates (process mode), so that tests can look for it
	// where it must not be. The simulator itself never keeps it.
	SeeRootPass func(label, pass string)
	// Machines runs the lab in machine mode: every instance the simulator
	// creates boots a Debian machine (lab/machines) on the lab network, the
	// load balancers are machines too, and the fleet is a production fleet
	// (connection ssh, port 53, no lab section) whose load balancer
	// addresses are on that network. Machine labs start empty.
	Machines bool
	// MachineBase is the machines' base image; empty means machines.DefaultBase.
	MachineBase string
	// MachineUsers are extra sudo users, with the lab's SSH key, on the
	// load balancers and on instances made from PrivateImage: a hardened
	// image's login instead of root. As on Linode, an instance made from
	// one of Linode's images has only root.
	MachineUsers []string
}

// Lab is a running lab.
type Lab struct {
	opts     Options
	sim      *linodesim.Sim
	simURL   string
	simSrv   *http.Server
	temporal *devServer
	// machines is set in machine mode.
	machines *machineLab
}

// Start brings the lab up: the simulator, Temporal, the lab VMs that exist in
// the simulator's saved state, and one nginx or dnsdist per load balancer,
// each pointed at the servers it fronts (or at nothing, before the first rollout).
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	switch {
	case opts.Fleet == nil:
		return nil, errors.New("lab: no fleet config")
	case opts.Machines && opts.Fleet.Lab != nil:
		return nil, errors.New("lab: machine mode runs production fleets; this one has a lab section (process mode)")
	case !opts.Machines && opts.Fleet.Lab == nil:
		return nil, errors.New("lab: the fleet config has no lab section")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{opts: opts}
	if err := l.start(ctx); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

func (l *Lab) start(ctx context.Context) error {
	opts := l.opts
	if opts.Machines {
		if err := l.startMachines(); err != nil {
			return err
		}
	}
	if err := l.startSim(); err != nil {
		return err
	}
	fmt.Fprintf(opts.Log, "lab: Linode API simulator on %s\n", l.simURL)
	if err := l.bootVMs(); err != nil {
		return err
	}
	var err error
	if opts.TemporalAddress != "" {
		// An address only (no cmd): Stop leaves it running.
		l.temporal = &devServer{address: opts.TemporalAddress}
		fmt.Fprintf(opts.Log, "lab: Temporal at %s\n", opts.TemporalAddress)
	} else if l.temporal, err = startDevServer(ctx, opts); err != nil {
		return err
	} else {
		fmt.Fprintf(opts.Log, "lab: Temporal dev server on %s (state in %s)\n", l.temporal.address, filepath.Join(opts.Dir, "temporal.db"))
	}
	if opts.Machines {
		if err := l.bootLoadBalancers(ctx); err != nil {
			return err
		}
	}
	return l.startLoadBalancers(ctx)
}

func (l *Lab) startSim() error {
	opts := linodesim.Options{
		Token:     Token,
		BootDelay: l.opts.BootDelay,
		StateFile: filepath.Join(l.opts.Dir, "linodesim.json"),
		// As on Linode, a deleted instance keeps its label for a while.
		DeleteDelay: cmp.Or(l.opts.DeleteDelay, deleteDelay),
		OnDelete: func(inst linodesim.Instance) {
			// Deleting a VM stops its nameserver, as on a real cloud.
			_ = stopVM(config.LabVMDir(l.opts.Dir, inst.ID))
		},
	}
	if see := l.opts.SeeRootPass; see != nil {
		opts.OnCreate = func(inst linodesim.Instance, boot linodesim.Boot) (string, error) {
			see(inst.Label, boot.RootPass)
			return inst.IPv4[0], nil
		}
	}
	if m := l.machines; m != nil {
		opts.Images = []string{PrivateImage}
		// Machines do not outlive the lab, so neither do instances.
		opts.StateFile = ""
		opts.OnCreate = m.bootInstance
		opts.OnDelete = func(inst linodesim.Instance) { go m.host.Destroy(machineName(inst.ID)) }
	}
	sim, err := linodesim.New(opts)
	if err != nil {
		return fmt.Errorf("lab: simulator: %w", err)
	}
	addr := l.opts.SimAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("lab: simulator: %w", err)
	}
	l.sim = sim
	l.simURL = "http://" + ln.Addr().String() + "/v4"
	l.simSrv = &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.simSrv.Serve(ln) }()
	return nil
}

// bootVMs restarts the named of every VM the simulator still has.
func (l *Lab) bootVMs() error {
	for _, inst := range l.sim.Instances() {
		if err := bootVM(config.LabVMDir(l.opts.Dir, inst.ID)); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	return nil
}

// Servers returns the fleet's servers in the simulator, with their lab ports.
func (l *Lab) Servers() []dnsroll.Server {
	fleet := l.opts.Fleet
	var out []dnsroll.Server
	for _, inst := range l.sim.Instances() {
		if l.machines != nil {
			out = append(out, machineServer(inst))
			continue
		}
		s := dnsroll.Server{ID: inst.ID, Label: inst.Label, Status: inst.Status, Region: inst.Region, Tags: inst.Tags, DNSPort: fleet.Lab.LabDNSPort(inst.ID)}
		if len(inst.IPv4) > 0 {
			s.IPv4 = inst.IPv4[0]
		}
		out = append(out, s)
	}
	return out
}

// startLoadBalancers points every load balancer that is not running yet at
// the servers it fronts. Each is an Ansible run of several seconds, so they
// run side by side, as a rollout's steps for the load balancers do.
func (l *Lab) startLoadBalancers(ctx context.Context) error {
	fleet := l.opts.Fleet
	drivers := worker.Drivers(l.Runner(), l.opts.Dir, nil)
	servers := l.Servers()
	started := make([]bool, len(fleet.LoadBalancers))
	errs := make([]error, len(fleet.LoadBalancers))
	var wg sync.WaitGroup
	for i, lb := range fleet.LoadBalancers {
		if l.machines == nil && lbRunning(config.LabLBDir(l.opts.Dir, lb.Name)) {
			continue
		}
		driver, ok := drivers[lb.Driver]
		if !ok {
			errs[i] = fmt.Errorf("lab: load balancer %s: no driver %q", lb.Name, lb.Driver)
			continue
		}
		var backends []dnsroll.Server
		for _, s := range servers {
			if lb.Fronts.Has(s.Label) && s.HasTag(fleet.Tag()) {
				backends = append(backends, s)
			}
		}
		wg.Go(func() {
			if err := driver.Point(ctx, fleet, lb, backends); err != nil {
				errs[i] = fmt.Errorf("lab: start load balancer %s: %w", lb.Name, err)
				return
			}
			started[i] = true
		})
	}
	wg.Wait()
	for i, lb := range fleet.LoadBalancers {
		if started[i] {
			fmt.Fprintf(l.opts.Log, "lab: load balancer %s (%s) on %s fronting %s\n", lb.Name, lb.Driver, lb.Address, lb.Fronts.String())
		}
	}
	return errors.Join(errs...)
}

// SimURL is the simulator's Linode API base URL (a worker's --linode-url).
func (l *Lab) SimURL() string { return l.simURL }

// Sim is the running simulator, for tests that inspect or inject faults.
func (l *Lab) Sim() *linodesim.Sim { return l.sim }

// TemporalAddress is the dev server's (or the external Temporal's) gRPC host:port.
func (l *Lab) TemporalAddress() string { return l.temporal.address }

// UIURL is the Temporal Web UI, empty when headless.
func (l *Lab) UIURL() string { return l.temporal.uiURL }

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.opts.Dir }

// Stop stops everything the lab started: load balancers, named, Temporal and the
// simulator. Lab state stays on disk, so the next Start resumes it.
func (l *Lab) Stop() {
	lbs, _ := filepath.Glob(filepath.Join(config.LabLBsDir(l.opts.Dir), "*"))
	for _, d := range lbs {
		_ = stopLB(d)
	}
	vms, _ := filepath.Glob(filepath.Join(config.LabVMsDir(l.opts.Dir), "*"))
	for _, d := range vms {
		_ = stopVM(d)
	}
	if l.temporal != nil {
		l.temporal.stop(l.opts.Disposable)
	}
	if l.simSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.simSrv.Shutdown(ctx)
	}
	if l.machines != nil {
		l.machines.host.Close()
	}
}
