// Command analysis measures dnsroll's DNS analysis against real BIND: a
// generated zone of -names owner names is served by -servers named
// processes on loopback and analysed as the Verify activity does (every
// name, every type, UDP and TCP, recursion and EDNS checks, SOA serials,
// and the green-against-blue diff), then dnsperf measures BIND's raw query
// rate against the same named processes in the same run.
//
// `make bench-analysis` runs it; docs/benchmarks-analysis.md has results.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
	"github.com/dnsroll/dnsroll/internal/localnamed"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

const origin = "example.com"

type options struct {
	names, servers, concurrency, runs, perfSeconds int
	nice                                           int
	keep                                           bool
	cpuProfile, out                                string
}

func main() {
	var o options
	flag.IntVar(&o.names, "names", 10000, "owner names in the generated zone")
	flag.IntVar(&o.servers, "servers", 4, "named processes (an even number: half green, half blue in the diff scenario)")
	flag.IntVar(&o.concurrency, "concurrency", 0, "queries in flight across all servers (probe.concurrency); 0 means 64 per server, dnsperf's window here")
	flag.IntVar(&o.runs, "runs", 3, "runs of each analysis scenario; the fastest is reported")
	flag.IntVar(&o.perfSeconds, "dnsperf-seconds", 5, "how long each dnsperf run lasts")
	flag.IntVar(&o.nice, "nice", -10, "nice value of this process, and so of named and dnsperf (0 leaves it); the same for both sides")
	flag.BoolVar(&o.keep, "keep", false, "keep the zone, named configs and logs")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the analysis runs to this file")
	flag.StringVar(&o.out, "out", "bench/analysis/results.json", "write the figures and the ratio here as JSON (empty: do not)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-analysis:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	for _, prog := range []string{"named", "dnsperf"} {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("needs %s (run `make deps`)", prog)
		}
	}
	if o.servers < 2 || o.servers%2 != 0 {
		return fmt.Errorf("-servers must be even and at least 2")
	}
	if o.concurrency <= 0 {
		o.concurrency = perfWindow * o.servers
	}
	if o.nice != 0 {
		if err := renice(o.nice); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "dnsroll-bench-analysis-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("files in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	const serial = 2026112301
	zonePath := filepath.Join(dir, origin+".zone")
	if err := writeZone(zonePath, origin, o.names, serial); err != nil {
		return err
	}
	// The same parser and check builder the Verify activity uses.
	start := time.Now()
	z, err := zone.ParseFile(zonePath, origin)
	if err != nil {
		return err
	}
	checks := probe.Checks(z, probe.Scope{All: true})
	prep := time.Since(start)

	// The named processes run in their own process group, so they must be
	// stopped on every way out: the end, an error, Ctrl-C, or a reader of
	// the output going away (SIGPIPE, which is then only an error on write).
	var mu sync.Mutex
	var servers []*localnamed.Server
	stopAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range servers {
			s.Stop()
		}
		servers = nil
	}
	defer stopAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGPIPE {
				stopAll()
				os.RemoveAll(dir)
				os.Exit(1)
			}
		}
	}()
	for i := range o.servers {
		s, err := localnamed.Start(filepath.Join(dir, fmt.Sprintf("ns%d", i+1)), origin, zonePath, serial)
		if err != nil {
			return err
		}
		mu.Lock()
		servers = append(servers, s)
		mu.Unlock()
	}
	mu.Lock()
	running := slices.Clone(servers)
	mu.Unlock()
	version, _ := exec.Command("named", "-v").Output()
	fmt.Printf("zone:    %d owner names, %d checks (name × type), parsed and built in %s\n", len(z.Names()), len(checks), prep.Round(time.Millisecond))
	fmt.Printf("servers: %d × %s on 127.0.0.1, %d CPUs\n", o.servers, strings.TrimSpace(string(version)), numCPU())
	fmt.Printf("prober:  concurrency %d (dnsperf: %d per server), best of %d runs, nice %d; load average %s (other work on the machine skews the figures)\n\n", o.concurrency, perfWindow, o.runs, o.nice, benchdoc.LoadAvg())

	var targets []probe.Server
	for i, s := range running {
		targets = append(targets, probe.Server{Name: fmt.Sprintf("ns%d", i+1), Addr: s.Addr})
	}
	half := o.servers / 2
	var green, blue []probe.Server
	for i := range half {
		green = append(green, probe.Server{Name: fmt.Sprintf("ns%d-next", i+1), Addr: targets[i].Addr})
		blue = append(blue, probe.Server{Name: fmt.Sprintf("ns%d", i+1), Addr: targets[half+i].Addr})
	}
	serials := map[string]uint32{origin: serial}
	scenarios := []scenario{
		{name: fmt.Sprintf("%d targets, udp", o.servers), job: probe.Job{Role: "server", Targets: targets, Checks: checks, Serials: serials}, protocols: []string{"udp"}},
		{name: fmt.Sprintf("%d targets, udp+tcp", o.servers), job: probe.Job{Role: "server", Targets: targets, Checks: checks, Serials: serials}, protocols: []string{"udp", "tcp"}},
		{name: fmt.Sprintf("%d green vs %d blue, udp+tcp (VerifyGreen)", half, half),
			job: probe.Job{Role: "green", Targets: green, Baseline: blue, BaselineRole: "blue", Checks: checks, Serials: serials}, protocols: []string{"udp", "tcp"}},
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	rec := record{When: time.Now().UTC().Format(time.RFC3339), Names: len(z.Names()), Checks: len(checks), Servers: o.servers,
		Concurrency: o.concurrency, Runs: o.runs, CPUs: numCPU(), LoadAvg: benchdoc.LoadAvg(), Named: strings.TrimSpace(string(version))}
	var udpRate float64
	for i, sc := range scenarios {
		r, err := sc.measure(o, len(z.Names()))
		if err != nil {
			return err
		}
		fmt.Println(r)
		if i == 0 {
			udpRate = r.qps
		}
		rec.Analyses = append(rec.Analyses, analysisRecord{Scenario: sc.name, Seconds: r.took.Seconds(), Queries: r.queries,
			QPS: r.qps, NamesServersPerSecond: r.nsRate, CPUMicrosPerQuery: float64(r.cpu.Microseconds()) / float64(r.queries)})
	}

	pprof.StopCPUProfile()
	queries := make([]string, len(checks))
	for i, c := range checks {
		queries[i] = c.Name + " " + c.Type
	}
	qfile := filepath.Join(dir, "queries.txt")
	if err := writeQueries(qfile, queries); err != nil {
		return err
	}
	fmt.Println()
	var perfUDP float64
	for _, mode := range []string{"udp", "tcp"} {
		cpu0 := childrenCPU()
		qps, err := dnsperf(running, qfile, mode, o.perfSeconds)
		if err != nil {
			return err
		}
		cpu := childrenCPU() - cpu0
		rec.Dnsperf = append(rec.Dnsperf, dnsperfRecord{Protocol: mode, Seconds: o.perfSeconds, QPS: qps, CPUMicrosPerQuery: float64(cpu.Microseconds()) / (qps * float64(o.perfSeconds))})
		fmt.Printf("dnsperf %s, the same %d queries against the same %d named, %d s: %8.0f queries/s %5.1f µs CPU/query\n", mode, len(queries), o.servers, o.perfSeconds, qps,
			float64(cpu.Microseconds())/(qps*float64(o.perfSeconds)))
		if mode == "udp" {
			perfUDP = qps
		}
	}
	rec.Ratio = udpRate / perfUDP
	fmt.Printf("\nratio:   analysis over UDP ÷ dnsperf over UDP = %.2f (goal ≥ 0.5)\n", rec.Ratio)
	if o.out != "" {
		if err := benchdoc.WriteJSON(o.out, rec); err != nil {
			return err
		}
		fmt.Println("wrote", o.out)
	}
	return nil
}

// scenario is one analysis to time.
type scenario struct {
	name      string
	job       probe.Job
	protocols []string
}

type result struct {
	scenario    string
	took        time.Duration
	queries     int
	nameServers int
	qps, nsRate float64
	// cpu is the least CPU time (user and system) this process used in
	// one run: what the analysis costs, whatever else the machine runs.
	cpu time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("analysis %-42s %6.2f s %6d names×servers %7.0f names×servers/s %7.0f queries/s %5.1f µs CPU/query",
		r.scenario+":", r.took.Seconds(), r.nameServers, r.nsRate, r.qps, float64(r.cpu.Microseconds())/float64(r.queries))
}

// measure runs the scenario's analysis o.runs times (one round each) and
// keeps the fastest; every run must pass.
func (sc scenario) measure(o options, names int) (result, error) {
	servers := len(sc.job.Targets) + len(sc.job.Baseline)
	queries := len(sc.job.Checks)*len(sc.protocols)*len(sc.job.Targets) + len(sc.protocols)*len(sc.job.Targets) + len(sc.job.Checks)*len(sc.job.Baseline)
	best := result{scenario: sc.name, queries: queries, nameServers: names * servers}
	for range max(o.runs, 1) {
		p := &probe.Prober{Timeout: 2 * time.Second, Attempts: 3, Concurrency: o.concurrency}
		cpu0 := cpuTime()
		start := time.Now()
		a := p.Analyze(context.Background(), sc.job, probe.Settings{Protocols: sc.protocols, Thresholds: probe.Thresholds{Rounds: 1}, ExpectChanges: false})
		took := time.Since(start)
		cpu := cpuTime() - cpu0
		if !a.OK {
			return result{}, fmt.Errorf("%s: the analysis failed: %s", sc.name, a.Reason)
		}
		if best.took == 0 || took < best.took {
			best.took = took
		}
		if best.cpu == 0 || cpu < best.cpu {
			best.cpu = cpu
		}
	}
	best.qps = float64(queries) / best.took.Seconds()
	best.nsRate = float64(best.nameServers) / best.took.Seconds()
	return best, nil
}
