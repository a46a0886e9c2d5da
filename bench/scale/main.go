// Command scale measures what a rollout costs as a fleet grows: for fleets
// of 1, 1,000, 10,000 and 100,000 small zones (-sizes) it starts a
// process-mode lab (a Temporal dev server, the Linode simulator, named and
// nginx on loopback), brings blue up with a first rollout, then rolls out
// a revision in which a few zones changed, through the real workflow and a
// `dnsroll worker` process. From that rollout's history and its worker it
// measures the rollout's wall time, the history's size and its largest
// payload, the worker's peak memory, and what the analysis covered.
//
// `make bench-scale` runs it; docs/benchmarks-scale.md has the method and
// the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/sys/unix"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
	"github.com/dnsroll/dnsroll/bench/internal/wfhistory"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/freeport"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

type options struct {
	sizes       []int
	changed     int
	dnsroll     string
	temporalBin string
	ansibleDir  string
	timeout     time.Duration
	out, plot   string
	docs        string
	dir         string
	keep        bool
	// temporal is the address of a Temporal that every size's lab uses
	// (run starts one dev server for all sizes); empty, each lab starts
	// and stops a dev server of its own.
	temporal string
}

func main() {
	var o options
	sizes := flag.String("sizes", "1,1000,10000,100000", "fleet sizes in zones, comma-separated")
	flag.IntVar(&o.changed, "changed", 3, "zones whose serial the rolled-out revision bumps")
	flag.StringVar(&o.dnsroll, "dnsroll", "bin/dnsroll", "the dnsroll binary whose worker runs the rollouts (make build)")
	flag.StringVar(&o.temporalBin, "temporal-bin", "bin/temporal", "the temporal CLI (make tools)")
	flag.StringVar(&o.ansibleDir, "ansible", "ansible", "the Ansible directory (nameserver.yml, loadbalancer.yml)")
	flag.DurationVar(&o.timeout, "timeout", 8*time.Minute, "longest a rollout may take before it is terminated and counted as failed")
	flag.StringVar(&o.out, "out", "docs/benchmarks-scale.json", "write the results here as JSON (empty: do not)")
	flag.StringVar(&o.plot, "plot", "docs/benchmarks-scale.png", "draw cost against zone count here as PNG (empty: do not)")
	flag.StringVar(&o.docs, "docs", "docs/benchmarks-scale.md", "rewrite the results table between the markers of this file (empty: do not)")
	flag.StringVar(&o.dir, "dir", defaultDir(), "where each size's lab directory goes (zones, snapshots, named's zone sets: 1.6 GB of small files for 100,000 zones)")
	flag.BoolVar(&o.keep, "keep", false, "keep each size's lab directory (zones, configs, logs)")
	flag.Parse()
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

// defaultDir is tmpfs (/dev/shm) where there is one: 100,000 zones leave
// about 1.6 GB in some 800,000 small files, which a disk filesystem
// mounted with discard takes minutes to delete. Elsewhere, the system's
// temporary directory.
func defaultDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && unix.Access("/dev/shm", unix.W_OK) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes: %q is not a zone count (a whole number, at least 1)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(o options) error {
	for _, p := range []string{o.dnsroll, o.temporalBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("needs %s (run `make build tools`)", p)
		}
	}
	var err error
	if o.dnsroll, err = filepath.Abs(o.dnsroll); err != nil {
		return err
	}
	if o.ansibleDir, err = filepath.Abs(o.ansibleDir); err != nil {
		return err
	}
	root, err := os.MkdirTemp(o.dir, "dnsroll-bench-scale-")
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	defer func() {
		if !o.keep {
			os.RemoveAll(root)
		}
	}()
	res := results{When: time.Now().UTC(), Machine: machine(o.dir), Command: "make bench-scale", Changed: o.changed}
	// One Temporal dev server for every size: starting and stopping one
	// per size cost about half a minute each, and nothing measured
	// depends on it being fresh (each rollout's history is its own).
	srv, err := lab.StartDevServer(ctx, filepath.Join(root, "temporal"), o.temporalBin)
	if err != nil {
		return err
	}
	defer srv.Stop()
	o.temporal = srv.Address()
	for _, n := range o.sizes {
		r := measure(ctx, o, filepath.Join(root, fmt.Sprintf("zones-%d", n)), n)
		res.Rows = append(res.Rows, r)
		fmt.Printf("%s\n\n", r.line())
		if ctx.Err() != nil {
			break
		}
	}
	if o.keep {
		fmt.Println("lab directories kept in", root)
	}
	res.Seconds = time.Since(res.When).Seconds()
	res.Growth = growthOf(res.Rows)
	fmt.Print(res.table())
	if err := res.save(o); err != nil {
		return err
	}
	return res.verdict()
}

// measure runs one fleet size and returns its row; a failure is recorded
// in the row, never returned, so that the other sizes still run.
func measure(ctx context.Context, o options, dir string, n int) row {
	start := time.Now()
	r := row{Zones: n, Load: [2]string{benchdoc.LoadAvg()}}
	if err := measureInto(ctx, o, dir, &r); err != nil {
		r.Error = err.Error()
	}
	if !o.keep {
		os.RemoveAll(dir)
	}
	r.Load[1] = benchdoc.LoadAvg()
	r.Seconds.Size = time.Since(start).Seconds()
	return r
}

func measureInto(ctx context.Context, o options, dir string, r *row) error {
	n := r.Zones
	fmt.Printf("== %s zones\n", benchdoc.Thousands(n))
	sz, err := startSize(ctx, o, dir, n)
	if err != nil {
		return err
	}
	defer sz.stop()
	r.Seconds.Generate, r.Seconds.Lab = sz.generate.Seconds(), sz.labStart.Seconds()
	fmt.Printf("   zones and fleet config written in %.1fs, lab started in %.1fs\n", r.Seconds.Generate, r.Seconds.Lab)

	// Blue: the fleet's first rollout, with the cheapest analysis (its
	// config, see fleetParams.Blue) and on a worker of its own, so that
	// the measured worker's peak is the measured rollout's.
	if err := sz.writeConfig(true); err != nil {
		return err
	}
	w, err := sz.startWorker(o)
	if err != nil {
		return err
	}
	blue, err := rollout(ctx, sz.client, o.timeout, sz.fleet.Name, "A")
	w.Stop()
	r.Seconds.Blue = blue.Wall().Seconds()
	if err != nil {
		return fmt.Errorf("bringing blue up (revision A): %w%s", err, logTail(sz.logPath))
	}
	fmt.Printf("   blue up (revision A) in %.1fs\n", r.Seconds.Blue)

	if err := sz.writeConfig(false); err != nil {
		return err
	}
	w, err = sz.startWorker(o)
	if err != nil {
		return err
	}
	defer w.Stop()
	h, err := rollout(ctx, sz.client, o.timeout, sz.fleet.Name, "B")
	r.fill(h)
	if peak, perr := w.PeakKB(); perr == nil {
		r.WorkerPeakKB = peak
	}
	if err != nil {
		return fmt.Errorf("rollout of revision B: %w%s", err, logTail(sz.logPath))
	}
	r.OK = true
	return nil
}

// sizeLab is one fleet size's lab: its zones and fleet config under dir, the
// lab started for it and a client of its Temporal.
type sizeLab struct {
	fleet                    *config.Fleet
	lab                      *lab.Lab
	client                   client.Client
	fleetDir, state, logPath string
	// params are the fleet config's, for writeConfig.
	params fleetParams
	// generate is how long writing the zones and fleet config took,
	// labStart how long the lab took to start.
	generate, labStart time.Duration
}

// startSize writes n zones (revisions A and B) and their fleet under dir
// and starts the lab; stop stops it.
func startSize(ctx context.Context, o options, dir string, n int) (*sizeLab, error) {
	start := time.Now()
	if err := writeZones(filepath.Join(dir, "zones"), n, changedZones(n, o.changed)); err != nil {
		return nil, fmt.Errorf("write zones: %w", err)
	}
	sz := &sizeLab{fleetDir: filepath.Join(dir, "fleets"), state: filepath.Join(dir, "state"), logPath: filepath.Join(dir, "worker.log")}
	var err error
	if sz.params, err = fleetParamsOf(o, dir, n); err != nil {
		return nil, err
	}
	if err := sz.writeConfig(false); err != nil {
		return nil, err
	}
	sz.generate = time.Since(start)
	sz.lab, err = lab.Start(ctx, lab.Options{
		Dir: filepath.Join(dir, "lab"), Fleet: sz.fleet, TemporalBin: o.temporalBin, TemporalAddress: o.temporal,
		Headless: true, BootDelay: 200 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	sz.labStart = time.Since(start) - sz.generate
	if sz.client, err = client.Dial(client.Options{HostPort: sz.lab.TemporalAddress(), Logger: lab.QuietLogger()}); err != nil {
		sz.lab.Stop()
		return nil, err
	}
	return sz, nil
}

// startWorker starts a `dnsroll worker` process for the size's fleet.
func (sz *sizeLab) startWorker(o options) (*workerProc, error) {
	return startWorker(o.dnsroll, sz.fleetDir, sz.state, sz.logPath, sz.lab)
}

func (sz *sizeLab) stop() {
	sz.client.Close()
	sz.lab.Stop()
}

// fleetParamsOf are the size's fleet config's parameters, with free ports.
func fleetParamsOf(o options, dir string, n int) (fleetParams, error) {
	ports, err := freeport.LoopbackN(2)
	if err != nil {
		return fleetParams{}, err
	}
	base, err := freeport.BenchBases.Pick(40)
	if err != nil {
		return fleetParams{}, err
	}
	// Ansible's and the analysis's time grow with the zones: the deadlines
	// follow the benchmark's own.
	limit := o.timeout.String()
	return fleetParams{
		Name: "scale", Zones: n, ZoneDir: filepath.Join(dir, "zones"), AnsibleDir: o.ansibleDir,
		LB1: fmt.Sprintf("127.0.0.1:%d", ports[0]), LB2: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		DNSPortBase: base, ProvisionLimit: limit, ProbeLimit: limit,
	}, nil
}

// writeConfig writes the size's fleet config into fleetDir, blue's or the
// measured one (fleetParams.Blue), and loads it into sz.fleet. A worker
// reads the file at each rollout's start, so the next worker's rollout
// runs with it.
func (sz *sizeLab) writeConfig(blue bool) error {
	p := sz.params
	p.Blue = blue
	if err := os.MkdirAll(sz.fleetDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(sz.fleetDir, p.Name+".yaml")
	if err := os.WriteFile(path, []byte(fleetYAML(p)), 0o644); err != nil {
		return err
	}
	var err error
	sz.fleet, err = config.Load(path)
	return err
}

// rollout rolls rev out and returns its history's figures. A rollout that
// outlasts timeout is terminated, so that its history ends and can still
// be measured.
func rollout(ctx context.Context, c client.Client, timeout time.Duration, fleet, rev string) (historyFigures, error) {
	run, err := rollouts.Start(ctx, c, workflows.RolloutInput{Fleet: fleet, Revision: rev, Reason: "bench-scale", RequestedBy: "bench-scale"})
	if err != nil {
		return historyFigures{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var phase workflows.Phase
	_, werr := rollouts.Wait(wctx, c, run, 2*time.Second, func(st workflows.Status) {
		if st.Phase != phase {
			phase = st.Phase
			fmt.Printf("   %s %s\n", time.Now().Format("15:04:05"), phase)
		}
	})
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer hcancel()
	if wctx.Err() != nil {
		why := fmt.Sprintf("not done after %s", timeout)
		if ctx.Err() != nil {
			why = "interrupted"
		}
		werr = fmt.Errorf("%s (last phase %s): terminated", why, phase)
		_ = c.TerminateWorkflow(hctx, run.WorkflowID, run.RunID, "bench-scale: "+why)
	}
	events, err := wfhistory.Events(hctx, c, run.WorkflowID, run.RunID)
	return measureHistory(events), errors.Join(werr, err)
}

// logTail is the end of the worker's log, to show with a failure.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "\nworker log (last lines):\n  " + strings.Join(lines[max(0, len(lines)-8):], "\n  ")
}
