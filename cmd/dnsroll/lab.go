package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/lab/machines"
	"github.com/dnsroll/dnsroll/lb/channel"
	"github.com/dnsroll/dnsroll/worker"
)

// labFlags are shared by dev and demo.
type labFlags struct {
	dir         string
	fleets      string
	temporalBin string
	temporal    int
	ui          int
	sim         string
	// mode is "machines", "processes", or "auto" (machines when this host
	// can run them).
	mode     string
	labImage string
	modeWhy  string
	machines bool
}

func (f *labFlags) register(fs *flag.FlagSet, dir string, temporalPort, uiPort int, simAddr, mode string) {
	fs.StringVar(&f.dir, "dir", dir, "lab state directory")
	fs.StringVar(&f.fleets, "fleets", "fleets", "directory of fleet configs; the lab runs fleet \"lab\" (processes) or \"machines\"")
	fs.StringVar(&f.temporalBin, "temporal-bin", "bin/temporal", "temporal CLI binary (make tools installs it)")
	fs.IntVar(&f.temporal, "temporal-port", temporalPort, "Temporal gRPC port (0 = any free port)")
	fs.IntVar(&f.ui, "ui-port", uiPort, "Temporal Web UI port (0 = any free port)")
	fs.StringVar(&f.sim, "sim-addr", simAddr, "Linode API simulator listen address")
	fs.StringVar(&f.mode, "mode", mode, "lab mode: machines (Debian machines over SSH, fleet \"machines\"), processes (named and nginx on loopback, fleet \"lab\"), or auto: machines when this host can run them")
	fs.StringVar(&f.labImage, "lab-image", machines.DefaultBase, "the machine lab's base image (make lab-image builds it)")
}

// check refuses flags the lab would refuse only once it is starting.
func (f *labFlags) check() error {
	if f.mode != "machines" && f.mode != "processes" && f.mode != "auto" {
		return fmt.Errorf("--mode %q: use machines, processes or auto", f.mode)
	}
	if err := checkPort("--temporal-port", f.temporal); err != nil {
		return err
	}
	if err := checkPort("--ui-port", f.ui); err != nil {
		return err
	}
	return checkListen("--sim-addr", f.sim, "127.0.0.1:8711")
}

// chooseMode settles "auto" and says why; check has refused other modes.
func (f *labFlags) chooseMode() error {
	switch f.mode {
	case "machines":
		if err := machines.Check(f.labImage); err != nil {
			return err
		}
		f.machines, f.modeWhy = true, "asked for"
	case "auto":
		if err := machines.Check(f.labImage); err != nil {
			f.modeWhy = fmt.Sprintf("machines unavailable: %v", err)
		} else {
			f.machines, f.modeWhy = true, "this host runs machines"
		}
	default:
		f.modeWhy = "asked for"
	}
	return nil
}

// checkPort refuses a port flag outside 0 (any free port) to 65535.
func checkPort(flag string, p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("%s %d: must be a port from 0 (any free port) to 65535", flag, p)
	}
	return nil
}

// checkListen refuses a listen address net.Listen would refuse for its
// form; example is a good one, such as 127.0.0.1:8080.
func checkListen(flag, addr, example string) error {
	_, p, err := net.SplitHostPort(addr)
	if err == nil && p != "" {
		if _, err := net.LookupPort("tcp", p); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s %q: must be host:port, such as %s or :%s", flag, addr, example, port(example))
}

// modeName is how the lab's mode is printed.
func (f *labFlags) modeName() string {
	if f.machines {
		return "machines"
	}
	return "processes"
}

// labSession is a running lab with an in-process worker.
type labSession struct {
	lab    *lab.Lab
	client client.Client
	worker sdkworker.Worker
	fleet  *config.Fleet
	// channels are the worker's kept-open SSH connections (machine mode).
	channels *channel.Pool
}

// startLab starts the lab and an in-process worker. metrics, when not nil,
// receives the SDK's client and worker metrics.
func startLab(ctx context.Context, f *labFlags, out io.Writer, metrics client.MetricsHandler) (*labSession, error) {
	if err := f.chooseMode(); err != nil {
		return nil, err
	}
	fleetFile := "lab.yaml"
	if f.machines {
		fleetFile = "machines.yaml"
	}
	fmt.Fprintf(out, "lab mode: %s (%s); fleet %s\n", f.modeName(), f.modeWhy, filepath.Join(f.fleets, fleetFile))
	fleet, err := config.Load(filepath.Join(f.fleets, fleetFile))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(f.temporalBin); err != nil {
		return nil, fmt.Errorf("no temporal CLI at %s: run `make tools` first", f.temporalBin)
	}
	adoptLabDaemons()
	ui := f.ui
	if ui != 0 && !freeport.Free(ui) {
		ui = 0
	}
	l, err := lab.Start(ctx, lab.Options{
		Dir: f.dir, Fleet: fleet, TemporalBin: f.temporalBin,
		TemporalPort: f.temporal, UIPort: ui, SimAddr: f.sim,
		BootDelay: 500 * time.Millisecond, Log: out,
		Machines: f.machines, MachineBase: f.labImage,
	})
	if err != nil {
		return nil, err
	}
	s := &labSession{lab: l, fleet: fleet}
	wc := l.WorkerConfig(f.fleets)
	wc.LinodeRetryWait = time.Second
	if wc.BundleRetention, err = worker.RetentionFromEnv(); err != nil {
		l.Stop()
		return nil, err
	}
	if wc.Channels, err = wc.ChannelPool(); err != nil {
		l.Stop()
		return nil, err
	}
	s.channels = wc.Channels
	acts, err := worker.NewActivities(wc)
	if err == nil {
		tf := temporalFlags{address: l.TemporalAddress(), namespace: "default", metrics: metrics}
		s.client, err = tf.dial()
	}
	if err != nil {
		l.Stop()
		return nil, err
	}
	s.worker = worker.New(s.client, acts, worker.Options{})
	if err := s.worker.Start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *labSession) stop() {
	if s.worker != nil {
		s.worker.Stop()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.channels != nil {
		_ = s.channels.Close()
	}
	s.lab.Stop()
	reapLabDaemons()
}

func runDev(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "dev", `
Runs the local lab and keeps it running until Ctrl-C: a Temporal dev server
(Web UI on :8233), the Linode API simulator, lab nameservers (named) and load
balancers (nginx or dnsdist, per fleets/lab.yaml), and a worker. State
survives restarts in --dir.

It also serves the dnsroll API on --api-addr. Its bearer token is
$DNSROLL_API_TOKEN when set (make dev passes it through); otherwise a random
token kept in <dir>/api-token. A POST without a revision to a fleet that has
never succeeded rolls out revision A. The API's /metrics includes the
worker's Temporal SDK metrics.

In another terminal:
  dnsroll rollout start --fleet lab --revision B --wait
  temporal workflow signal --workflow-id rollout-lab --name abort --input '{"reason":"test"}'`)
	var f labFlags
	// Process mode by default: its state survives restarts, machines' do not.
	f.register(fs, ".lab/dev", 7233, 8233, "127.0.0.1:8711", "processes")
	apiAddr := fs.String("api-addr", "127.0.0.1:8080", "dnsroll API listen address")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if err := checkListen("--api-addr", *apiAddr, "127.0.0.1:8080"); err != nil {
		return err
	}
	// One registry for the API's /metrics: its request metrics and the SDK's
	// metrics of the worker and client it shares with the API.
	reg, sdkMetrics, closeMetrics := newMetrics()
	defer closeMetrics()
	s, err := startLab(ctx, &f, std.out, sdkMetrics)
	if err != nil {
		return err
	}
	defer s.stop()
	devAPI, err := startDevAPI(ctx, s.client, f, *apiAddr, s.lab.UIURL(), reg)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "\nlab is up. Ctrl-C stops everything.\n  Temporal:   %s\n  Web UI:     %s\n  Linode sim: %s (token %q)\n", s.lab.TemporalAddress(), s.lab.UIURL(), s.lab.SimURL(), lab.Token)
	for _, lb := range s.fleet.LoadBalancers {
		fmt.Fprintf(std.out, "  %s:        dig @%s -p %s www.example.com\n", lb.Name, host(lb.Address), port(lb.Address))
	}
	devAPI.print(std.out)
	fmt.Fprintf(std.out, "  export TEMPORAL_ADDRESS=%s\n  temporal workflow list --query 'Fleet=\"lab\"'\n", s.lab.TemporalAddress())
	<-ctx.Done()
	fmt.Fprintln(std.out, "\nstopping the lab…")
	return nil
}

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
