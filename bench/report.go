package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

// Result is one load balancer's measurement in one run; results.json holds
// the latest one per load balancer, scenario and protocol.
type Result struct {
	Driver    string `json:"driver"`
	LB        string `json:"lb"`
	Scenario  string `json:"scenario"`
	Protocol  string `json:"protocol"`
	TargetQPS int    `json:"target_qps"`
	From      string `json:"from_revision"`
	To        string `json:"to_revision"`
	Outcome   string `json:"outcome"`
	// Error says why the rollout did not end as the scenario wanted.
	Error string `json:"error,omitempty"`
	// UpdateMS is each in-place update's time, from the start of its
	// LoadBalancerUpdateWorkflow run until its end, both checks through
	// DNS included (in-place scenarios only; fewer than asked when one
	// failed, which Outcome and Error then say).
	UpdateMS []int64 `json:"update_ms,omitempty"`
	// Sent and Lost are dnsperf's totals; Lost had no reply within
	// TimeoutS. Failed were answered with an rcode other than NOERROR.
	Sent     int     `json:"sent"`
	Lost     int     `json:"lost"`
	Failed   int     `json:"failed"`
	TimeoutS float64 `json:"timeout_s"`
	// Reconnections are TCP connections dnsperf had to open again.
	Reconnections int     `json:"reconnections,omitempty"`
	LatAvgMS      float64 `json:"latency_avg_ms"`
	LatMaxMS      float64 `json:"latency_max_ms"`
	Worst         worst   `json:"worst_second"`
	// SwitchMS runs from the promote decision until this load balancer
	// served green for good (until the rollback signal, in a rollback),
	// as seen by probes every 20 ms; -1 if it never did.
	SwitchMS int64 `json:"switch_ms"`
	// RollbackMS runs from the rollback signal until it served blue for good.
	RollbackMS *int64 `json:"rollback_ms,omitempty"`
	// SwitchActivityMS is how long this load balancer's switch to green
	// took inside the worker (its driver's Point, last attempt), and
	// SwitchAttempts how many attempts it needed; the rest of SwitchMS is
	// scheduling and probing.
	SwitchActivityMS int64 `json:"switch_activity_ms"`
	SwitchAttempts   int32 `json:"switch_attempts"`
	// Canary is what each canary step measured at this load balancer: the
	// weight asked for, and green's share of the queries it sent, from its
	// own per-backend counters (canary scenarios only).
	Canary []canaryStep `json:"canary,omitempty"`
	// The rollout's times, from its workflow history (the same for every
	// load balancer of a run). OverheadMS is WallMS minus the time in which
	// an activity ran or a bake timer was pending.
	WallMS       int64 `json:"wall_ms"`
	ActivitiesMS int64 `json:"activities_ms"`
	TimersMS     int64 `json:"bake_timers_ms"`
	OverheadMS   int64 `json:"overhead_ms"`
	// How and when it was measured; LoadAvg is the machine's 1-minute
	// load average when the run began (other work on it shows here).
	LoadAvg float64   `json:"load_avg"`
	Command string    `json:"command"`
	Host    string    `json:"host"`
	Date    time.Time `json:"date"`
	// Seconds is the per-second series the plot draws, by the second in
	// which replies arrived (a lost query counts in the second it was sent).
	Seconds []second `json:"seconds"`

	greenAt, blueAt time.Time
}

// canaryStep is one canary step at one load balancer.
type canaryStep struct {
	Weight       int     `json:"weight"`
	Measured     float64 `json:"measured"`
	GreenQueries uint64  `json:"green_queries"`
	BlueQueries  uint64  `json:"blue_queries"`
}

// fillCanary copies this load balancer's canary measurements from the
// rollout's final status.
func (r *Result) fillCanary(st workflows.Status) {
	for _, step := range st.Canary {
		for _, s := range step.LoadBalancers {
			if s.LB == r.LB {
				r.Canary = append(r.Canary, canaryStep{Weight: step.Weight, Measured: round3(s.Measured), GreenQueries: s.GreenQueries, BlueQueries: s.BlueQueries})
			}
		}
	}
}

// worst is the run's worst second: the most lost or failed queries, or
// failing that the slowest reply.
type worst struct {
	AtS      int     `json:"at_s"`
	Lost     int     `json:"lost"`
	Failed   int     `json:"failed"`
	Answered int     `json:"answered"`
	LatMaxMS float64 `json:"latency_max_ms"`
}

func newResult(lb config.LoadBalancer, scenario, proto string, o options, st loadStats, tl timeline) Result {
	r := Result{
		Driver: lb.Driver, LB: lb.Name, Scenario: scenario, Protocol: proto, TargetQPS: o.qps,
		Sent: st.Sent, Lost: st.Lost, Failed: st.Failed, TimeoutS: o.timeout.Seconds(),
		Reconnections: st.Reconnections, LatAvgMS: round3(st.LatAvgMS), LatMaxMS: round3(st.LatMaxMS),
		WallMS: tl.Wall().Milliseconds(), ActivitiesMS: tl.Activities.Milliseconds(),
		TimersMS: tl.Timers.Milliseconds(), OverheadMS: tl.Overhead().Milliseconds(),
		Seconds: st.Seconds,
	}
	for i := range r.Seconds {
		s := &r.Seconds[i]
		s.LatAvgMS, s.LatMaxMS = round3(s.LatAvgMS), round3(s.LatMaxMS)
		w := r.Worst
		if i == 0 || s.Lost+s.Failed > w.Lost+w.Failed || (s.Lost+s.Failed == w.Lost+w.Failed && s.LatMaxMS > w.LatMaxMS) {
			r.Worst = worst{AtS: i, Lost: s.Lost, Failed: s.Failed, Answered: s.Answered, LatMaxMS: s.LatMaxMS}
		}
	}
	return r
}

// fillSwitch derives the switch and rollback times from the probes.
func (r *Result) fillSwitch(samples []sample, tl timeline, from, to, scenario string) {
	if scenario == "steady" || isInPlace(scenario) {
		return
	}
	if sw := tl.Switches[r.LB]; len(sw) > 0 && !sw[0].Ended.IsZero() {
		r.SwitchActivityMS, r.SwitchAttempts = sw[0].Ended.Sub(sw[0].Started).Milliseconds(), sw[0].Attempts
	}
	end := time.Now()
	if rolledBack(scenario) {
		end = tl.Signal
	}
	r.SwitchMS = -1
	if at, ok := settled(samples, tl.Promote, end, to); ok && !tl.Promote.IsZero() {
		r.SwitchMS, r.greenAt = at.Sub(tl.Promote).Milliseconds(), at
	}
	if rolledBack(scenario) {
		v := int64(-1)
		if at, ok := settled(samples, tl.Signal, time.Now(), from); ok {
			v, r.blueAt = at.Sub(tl.Signal).Milliseconds(), at
		}
		r.RollbackMS = &v
	}
}

func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "driver\tscenario\tproto\tqps\tsent\tlost\tfailed\tworst second\tswitch\tactivity\trollback\twall\toverhead\t")
	for _, r := range results {
		rb := "-"
		if r.RollbackMS != nil {
			rb = ms(*r.RollbackMS)
		}
		ws := fmt.Sprintf("%ds: %d lost, max %.1fms", r.Worst.AtS, r.Worst.Lost+r.Worst.Failed, r.Worst.LatMaxMS)
		sw, act, wall, over := ms(r.SwitchMS), ms(r.SwitchActivityMS), ms(r.WallMS), ms(r.OverheadMS)
		switch {
		case r.Scenario == "canary-rollback":
			sw, act = "-", "-" // rolled back before any switch to 100%
		case isInPlace(r.Scenario):
			sw, act, wall, over = "-", "-", "-", "-" // no switch, and one workflow per update
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Driver, r.Scenario, r.Protocol, r.TargetQPS,
			r.Sent, r.Lost, r.Failed, ws, sw, act, rb, wall, over)
	}
	tw.Flush()
	for _, r := range results {
		if isInPlace(r.Scenario) {
			fmt.Fprintf(w, "%s %s: %d updates (%s), lost %d of %d, each update %s\n", r.Scenario, r.Protocol, len(r.UpdateMS), r.Outcome, r.Lost, r.Sent, spread(r.UpdateMS))
		}
	}
	for _, r := range results {
		if len(r.Canary) == 0 {
			continue
		}
		var steps []string
		for _, c := range r.Canary {
			steps = append(steps, fmt.Sprintf("%d%% → %.2f%% of %d", c.Weight, c.Measured, c.GreenQueries+c.BlueQueries))
		}
		fmt.Fprintf(w, "canary %s %s %s: green's measured share per step: %s\n", r.Driver, r.Scenario, r.Protocol, strings.Join(steps, ", "))
	}
}

// writeJSON writes results.json: an array with one object per load
// balancer, scenario and protocol, each saying how and when it was
// measured. This run's results replace those of the same load balancer,
// scenario and protocol; the others stay, so a run of some scenarios
// (make bench-inplace) keeps the rest. It returns what it wrote.
func writeJSON(path string, results []Result, o options) ([]Result, error) {
	cmd := fmt.Sprintf("go run ./bench -qps %d -protocols %s -scenarios %s -timeout %s -bake %s -canary-step %s -priority %s -together=%v", o.qps, join(o.protocols), join(o.scenarios), o.timeout, o.bake, o.canaryStep, o.priority, o.together)
	host := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	date := time.Now().UTC().Truncate(time.Second)
	for i := range results {
		results[i].Command, results[i].Host, results[i].Date = cmd, host, date
	}
	all, err := readResults(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	all = mergeResults(all, results)
	return all, benchdoc.WriteJSON(path, all)
}

// readResults reads a results.json.
func readResults(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var all []Result
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to start afresh)", path, err)
	}
	return all, nil
}

// mergeResults replaces each of old's results that a new one measures
// again (the same load balancer, scenario and protocol) in its place, and
// appends the rest of the new ones.
func mergeResults(old, fresh []Result) []Result {
	key := func(r Result) string { return r.LB + " " + r.Scenario + " " + r.Protocol }
	at := map[string]int{}
	out := append([]Result(nil), old...)
	for i, r := range out {
		at[key(r)] = i
	}
	for _, r := range fresh {
		if i, ok := at[key(r)]; ok {
			out[i] = r
			continue
		}
		at[key(r)] = len(out)
		out = append(out, r)
	}
	return out
}

// spread is the shortest and longest of some times in milliseconds.
func spread(msecs []int64) string {
	if len(msecs) == 0 {
		return "-"
	}
	lo, hi := slices.Min(msecs), slices.Max(msecs)
	return fmt.Sprintf("%.2f to %.2f s", float64(lo)/1000, float64(hi)/1000)
}

func ms(v int64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", float64(v)/1000)
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
