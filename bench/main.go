// Command bench measures what a rollout costs the DNS traffic going through
// dnsroll's load balancers. It starts a lab whose fleet has one load
// balancer per driver (nginx and dnsdist, each in front of its own
// nameserver), sends each a steady dnsperf load (5,000 queries/s by
// default), and runs complete rollouts and rollbacks over UDP and TCP while
// probes watch which revision every load balancer serves. It prints a table,
// writes bench/results.json and draws bench/results.png. docs/benchmarks.md
// explains the method; `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lab"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/worker"
	"github.com/dnsroll/dnsroll/workflows"
)

type options struct {
	qps         int
	protocols   []string
	scenarios   []string
	timeout     time.Duration
	bake        time.Duration
	out         string
	labDir      string
	temporalBin string
	fleetFile   string
	keep        bool
	priority    string
	together    bool
	// canaryStep is how long each canary step holds its weight.
	canaryStep time.Duration
	// docs is the markdown file whose in-place table is rendered from
	// results.json; empty leaves it alone. With docsOnly nothing is
	// measured: the table is rendered from the results.json there is.
	docs     string
	docsOnly bool
}

// defaultScenarios are what `go run ./bench` measures without -scenarios.
var defaultScenarios = []string{"rollout", "rollback", "inplace-nginx-config", "inplace-nginx-binary", "inplace-dnsdist-config", "canary", "canary-rollback"}

func main() {
	var o options
	protocols := flag.String("protocols", "udp,tcp", "transports to measure, comma-separated: udp, tcp")
	scenarios := flag.String("scenarios", strings.Join(defaultScenarios, ","), "scenarios, comma-separated: rollout (blue → green), rollback (rolled back during the bake), canary (1% → 10% → 50% → 100%, dnsdist only), canary-rollback (the same, rolled back at 50%), inplace-nginx-config (10 validated reloads), inplace-nginx-binary (3 binary upgrades), inplace-dnsdist-config (10 console changes), steady (no rollout: the load's own baseline)")
	flag.IntVar(&o.qps, "qps", 5000, "queries per second sent through each load balancer")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "a reply later than this counts as lost (whole seconds)")
	flag.DurationVar(&o.bake, "bake", 4*time.Second, "the bench fleet's bake window; rollbacks are signalled during it")
	flag.StringVar(&o.out, "out", "bench", "directory for results.json and results.png; raw dnsperf output goes to <out>/out/")
	flag.StringVar(&o.labDir, "lab-dir", ".lab/bench", "lab state directory; emptied first")
	flag.StringVar(&o.temporalBin, "temporal-bin", "bin/temporal", "temporal CLI binary (make tools)")
	flag.StringVar(&o.fleetFile, "fleet", "fleets/lab.yaml", "lab fleet config the bench fleet is derived from")
	flag.StringVar(&o.priority, "priority", priorityRT, "the data path's (named, nginx, dnsdist, dnsperf) priority over the lab's control plane: rt, nice or none (see nice.go)")
	flag.BoolVar(&o.together, "together", false, "load every load balancer in the same rollouts instead of one driver per rollout")
	flag.BoolVar(&o.keep, "keep", false, "keep the lab state directory afterwards")
	flag.DurationVar(&o.canaryStep, "canary-step", 5*time.Second, "how long each canary step holds its weight")
	flag.StringVar(&o.docs, "docs", "", "a markdown file whose in-place table (between the bench:inplace markers) is rewritten from results.json")
	flag.BoolVar(&o.docsOnly, "docs-only", false, "measure nothing: only rewrite -docs from <out>/results.json")
	flag.Parse()
	o.protocols, o.scenarios = strings.Split(*protocols, ","), strings.Split(*scenarios, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.docsOnly {
		if o.docs == "" {
			return errors.New("-docs-only needs -docs: the markdown file whose table to rewrite")
		}
		all, err := readResults(filepath.Join(o.out, "results.json"))
		if err == nil {
			err = renderDocs(o.docs, all)
		}
		return err
	}
	if err := preflight(o); err != nil {
		return err
	}
	began := time.Now()
	if err := os.RemoveAll(o.labDir); err != nil {
		return err
	}
	fleetDir := filepath.Join(o.labDir, "fleets")
	zoneDir, err := filepath.Abs(filepath.Join(o.labDir, "zones"))
	if err != nil {
		return err
	}
	fleet, tmpls, err := writeBenchFleet(o.fleetFile, fleetDir, zoneDir, o.bake)
	if err != nil {
		return err
	}
	queryFile := filepath.Join(o.labDir, "queries.txt")
	if err := os.WriteFile(queryFile, []byte(queries), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.out, "out"), 0o755); err != nil {
		return err
	}

	stopNice := make(chan struct{})
	defer close(stopNice)
	if err := canRaise(o.priority); err != nil {
		fmt.Fprintf(out, "warning: cannot raise the data path's priority (%v); losses may come from the lab's CPU, not from switching\n", err)
		o.priority = priorityNone
	}
	go prioritize(o.labDir, o.priority, stopNice)

	fmt.Fprintf(out, "== starting the lab in %s\n", o.labDir)
	l, err := lab.Start(ctx, lab.Options{
		Dir: filepath.Join(o.labDir, "lab"), Fleet: fleet, TemporalBin: o.temporalBin,
		Headless: true, BootDelay: 200 * time.Millisecond, Log: out,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "== stopping the lab")
		l.Stop()
		if !o.keep {
			os.RemoveAll(o.labDir)
		}
	}()
	c, err := client.Dial(client.Options{HostPort: l.TemporalAddress(), Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	acts, err := worker.NewActivities(worker.Config{
		FleetDir: fleetDir, LabDir: l.Dir(), LinodeURL: l.SimURL(), LinodeToken: lab.Token,
		LinodeRetryWait: 200 * time.Millisecond, KnownHostsFile: l.KnownHostsFile(),
	})
	if err != nil {
		return err
	}
	w := worker.New(c, acts, worker.Options{})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()

	b := &bench{opts: o, client: c, fleet: fleet, queryFile: queryFile, out: out, zoneDir: zoneDir, zoneTmpls: tmpls, fleetDir: fleetDir, from: o.fleetFile, labDir: l.Dir()}
	first, err := b.newRevision()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== creating blue: the fleet's first rollout, revision %s (no load)\n", first)
	if _, _, err := b.rollout(ctx, first, "bench: create blue"); err != nil {
		return err
	}
	var results []Result
	var runs []runPlot
	// By default each driver is measured in a rollout of its own, with the
	// load through its load balancer only: two loads at once would take
	// more of the lab's two CPUs than the data path needs.
	groups := [][]config.LoadBalancer{fleet.LoadBalancers}
	if !o.together {
		groups = nil
		for _, lb := range fleet.LoadBalancers {
			groups = append(groups, []config.LoadBalancer{lb})
		}
	}
	// The in-place updates come after the switches, and the canary
	// scenarios last: they run on a fleet of the load balancers that can
	// weigh backends (dnsdist) only, and the others are no longer
	// switched after that.
	for pass := range passes {
		if pass == canaryPass {
			if !slices.ContainsFunc(o.scenarios, isCanary) {
				break
			}
			var err error
			if groups, err = b.useCanaryFleet(); err != nil {
				return err
			}
		}
		for _, proto := range o.protocols {
			for _, sc := range o.scenarios {
				if passOf(sc) != pass {
					continue
				}
				measured := groups
				if pass == inplacePass {
					var err error
					if measured, err = b.inplaceGroup(sc); err != nil {
						return err
					}
				}
				for _, loaded := range measured {
					rs, plot, err := b.measure(ctx, proto, sc, loaded)
					if err != nil {
						return fmt.Errorf("%s %s: %w", proto, sc, err)
					}
					results, runs = append(results, rs...), append(runs, plot)
				}
			}
		}
	}
	fmt.Fprintln(out)
	printTable(out, results)
	jsonPath, pngPath := filepath.Join(o.out, "results.json"), filepath.Join(o.out, plotName(o.scenarios))
	all, err := writeJSON(jsonPath, results, o)
	if err != nil {
		return err
	}
	if err := writePlot(pngPath, runs, o.qps); err != nil {
		return err
	}
	if o.docs != "" {
		if err := renderDocs(o.docs, all); err != nil {
			return err
		}
		fmt.Fprintf(out, "rewrote the in-place table in %s\n", o.docs)
	}
	fmt.Fprintf(out, "\nwrote %s and %s (%s in all)\n", jsonPath, pngPath, time.Since(began).Round(time.Second))
	return nil
}

// Passes over the scenarios, in order: switches, in-place updates, then
// canaries on a dnsdist-only fleet.
const (
	switchPass = iota
	inplacePass
	canaryPass
	passes
)

func passOf(scenario string) int {
	switch {
	case isCanary(scenario):
		return canaryPass
	case isInPlace(scenario):
		return inplacePass
	}
	return switchPass
}

// plotName is results.png, or inplace.png for a run of in-place scenarios
// only, so that such a run leaves the rollouts' plot alone.
func plotName(scenarios []string) string {
	for _, s := range scenarios {
		if !isInPlace(s) {
			return "results.png"
		}
	}
	return "inplace.png"
}

// preflight names every missing program at once.
func preflight(o options) error {
	var missing []string
	for _, p := range []string{"dnsperf", "dnsdist", "nginx", "named", "ansible-playbook", "start-stop-daemon"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := os.Stat(o.temporalBin); err != nil {
		missing = append(missing, o.temporalBin)
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make deps tools`", strings.Join(missing, ", "))
	}
	for _, p := range o.protocols {
		if p != "udp" && p != "tcp" {
			return fmt.Errorf("protocol %q: want udp or tcp", p)
		}
	}
	known := append([]string{"steady"}, defaultScenarios...)
	for _, s := range o.scenarios {
		if !slices.Contains(known, s) {
			return fmt.Errorf("scenario %q: want one of %s", s, strings.Join(known, ", "))
		}
	}
	if o.timeout < time.Second || o.timeout%time.Second != 0 {
		return errors.New("-timeout must be whole seconds")
	}
	return nil
}

// isCanary reports whether a scenario runs strategy canary.
func isCanary(scenario string) bool { return strings.HasPrefix(scenario, "canary") }

// rolledBack reports whether a scenario's rollout is rolled back.
func rolledBack(scenario string) bool { return strings.HasSuffix(scenario, "rollback") }

// bench is the running benchmark: the lab's client and which revision the
// fleet serves now.
type bench struct {
	opts      options
	client    client.Client
	fleet     *config.Fleet
	queryFile string
	out       io.Writer
	// live is the revision the fleet serves; revisions counts the ones
	// made so far (r1, r2, ...), each with a newer zone serial.
	live      string
	revisions int
	zoneDir   string
	zoneTmpls map[string][]byte
	// fleetDir and from are where the fleet file is and what it was
	// derived from.
	fleetDir, from string
	// labDir is the lab's state directory, with the load balancers'.
	labDir string
}

// rollout starts a rollout of rev and waits for it to end.
func (b *bench) rollout(ctx context.Context, rev, reason string) (rollouts.Run, workflows.Status, error) {
	run, err := rollouts.Start(ctx, b.client, workflows.RolloutInput{Fleet: b.fleet.Name, Revision: rev, Reason: reason, RequestedBy: "bench"})
	if err != nil {
		return run, workflows.Status{}, err
	}
	st, err := b.wait(ctx, run)
	if err == nil {
		b.live = rev
	}
	return run, st, err
}

func (b *bench) wait(ctx context.Context, run rollouts.Run) (workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return rollouts.Wait(ctx, b.client, run, 100*time.Millisecond, nil)
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
