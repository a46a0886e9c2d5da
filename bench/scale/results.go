package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
)

// The budgets of issue 14: a rollout's whole history, and any one payload
// in it. Both are taken at the stricter reading of "MB" and "KB".
const (
	historyBudget = 5_000_000
	payloadBudget = 256_000
)

// row is one fleet size.
type row struct {
	Zones int    `json:"zones"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Load is the machine's load average before and after the size ran.
	Load    [2]string `json:"load_average"`
	Seconds timings   `json:"seconds"`
	// History is the measured rollout's (revision B).
	History historyFigures `json:"history"`
	// WorkerPeakKB is the worker process's VmHWM after the rollout: its
	// peak resident memory over the rollout (it started just before).
	WorkerPeakKB int     `json:"worker_peak_kib"`
	Within       budgets `json:"within_budget"`
}

// timings are a size's durations: writing the zones and the config,
// starting the lab, the first rollout (revision A, creating blue; not
// measured further), the measured rollout, from its history's start and
// close events, and the whole size, from start to its files removed.
type timings struct {
	Generate float64 `json:"generate"`
	Lab      float64 `json:"lab,omitempty"`
	Blue     float64 `json:"blue"`
	Rollout  float64 `json:"rollout"`
	Size     float64 `json:"size,omitempty"`
}

// budgets say whether the measured rollout kept within each budget.
type budgets struct {
	History bool `json:"history"`
	Payload bool `json:"payload"`
}

// results are one run of the benchmark, as written to -out.
type results struct {
	When    time.Time `json:"when"`
	Command string    `json:"command"`
	// Machine is the host name, its CPUs, and where the labs' files were
	// (-dir) and on what.
	Machine string `json:"machine"`
	// Changed is how many zones the measured revision changed.
	Changed int `json:"changed_zones"`
	// Seconds is the benchmark's whole wall time, every size (the build
	// of make bench-scale not included).
	Seconds float64  `json:"seconds,omitempty"`
	Rows    []row    `json:"rows"`
	Growth  []growth `json:"growth"`
}

func (r *row) fill(h historyFigures) {
	r.History, r.Seconds.Rollout = h, h.Wall().Seconds()
	r.Within = budgets{History: h.Events > 0 && h.Bytes < historyBudget, Payload: h.Events > 0 && h.MaxPayload <= payloadBudget}
}

// growth compares two sizes: how the cost per zone changed from the
// smaller to the larger. A ratio of 1 is linear growth, below 1 better
// than linear (fixed costs spread over more zones), above 1 worse.
type growth struct {
	From, To int
	// Time and Memory are (cost at To / cost at From) / (To / From).
	Time   float64 `json:"time_per_zone_ratio"`
	Memory float64 `json:"memory_per_zone_ratio"`
}

// growthOf compares each successful size with the next successful one.
func growthOf(rows []row) []growth {
	var ok []row
	for _, r := range rows {
		if r.OK && r.Seconds.Rollout > 0 && r.WorkerPeakKB > 0 {
			ok = append(ok, r)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Zones < ok[j].Zones })
	var out []growth
	for i := 1; i < len(ok); i++ {
		a, b := ok[i-1], ok[i]
		if a.Zones == b.Zones {
			continue
		}
		scale := float64(b.Zones) / float64(a.Zones)
		out = append(out, growth{From: a.Zones, To: b.Zones,
			Time:   b.Seconds.Rollout / a.Seconds.Rollout / scale,
			Memory: float64(b.WorkerPeakKB) / float64(a.WorkerPeakKB) / scale})
	}
	return out
}

// line is the row in a sentence, printed as soon as the size is done.
func (r row) line() string {
	if r.History.Events == 0 {
		return fmt.Sprintf("   %s zones: FAILED: %s", benchdoc.Thousands(r.Zones), r.Error)
	}
	s := fmt.Sprintf("   %s zones: rollout %s in %.1fs, history %s in %d events, largest payload %s (%s), worker peak %s, analysis %s",
		benchdoc.Thousands(r.Zones), r.outcome(), r.Seconds.Rollout, size(r.History.Bytes), r.History.Events, size(r.History.MaxPayload), r.History.Where, size(r.WorkerPeakKB*1024), r.coverage())
	s += "\n   steps: " + r.steps()
	if r.Error != "" {
		s += "\n   error: " + r.Error
	}
	return s
}

// steps lists the activities' times, the longest first.
func (r row) steps() string {
	kinds := make([]string, 0, len(r.History.Steps))
	for k := range r.History.Steps {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return r.History.Steps[kinds[i]] > r.History.Steps[kinds[j]] })
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.1fs", k, r.History.Steps[k]))
	}
	return strings.Join(parts, ", ")
}

func (r row) outcome() string {
	if r.OK {
		return "succeeded"
	}
	return "FAILED"
}

// coverage says what the green analysis (VerifyGreen) checked: its
// coverage record when it has one, else the queries it judged.
func (r row) coverage() string {
	for _, a := range r.History.Analyses {
		if a.Activity != "VerifyGreen" {
			continue
		}
		s := fmt.Sprintf("%s queries to %d servers", benchdoc.Thousands(a.Queries), a.Targets)
		if c := describeCoverage(a.Coverage); c != "" {
			s = c + "; " + s
		}
		return s
	}
	return "none recorded"
}

// describeCoverage says what a coverage record (probe.Coverage as JSON)
// counts: the zones whose SOA was checked on every server (and over
// which protocol, when only one), those checked at every name, sampled (with the seed) or changed, and the distinct
// names asked. A record
// without those fields is listed as it is: its numbers as "name 1,000",
// sorted by name.
func describeCoverage(c map[string]any) string {
	num := func(k string) (string, bool) {
		v, ok := c[k].(float64)
		if strings.Contains(k, "seed") {
			return fmt.Sprint(int64(v)), ok
		}
		return benchdoc.Thousands(int(v)), ok
	}
	soa, ok1 := num("soa")
	full, ok2 := num("full")
	if ok1 && ok2 {
		names, _ := num("names")
		sampled, _ := num("sampled")
		seed, _ := num("seed")
		changed, _ := num("changed")
		if over, ok := c["soa_over"].(string); ok && over != "" {
			soa += " zones over " + over
		} else {
			soa += " zones"
		}
		return fmt.Sprintf("SOA of %s; every name of %s zones (%s sampled, seed %s; %s changed); %s names", soa, full, sampled, seed, changed, names)
	}
	var parts []string
	for k := range c {
		if n, ok := num(k); ok {
			parts = append(parts, strings.ReplaceAll(k, "_", " ")+" "+n)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// size writes a byte count in the unit that suits it.
func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// table is the results as markdown: one row per size, the growth between
// sizes, and what failed.
func (res results) table() string {
	var b strings.Builder
	b.WriteString("| zones | rollout | wall time | history | events | largest payload | worker peak | analysis of green (VerifyGreen) | history < 5 MB | payloads ≤ 256 KB |\n")
	b.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, r := range res.Rows {
		if r.History.Events == 0 {
			fmt.Fprintf(&b, "| %s | **failed** | | | | | | | | |\n", benchdoc.Thousands(r.Zones))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %s | %s | %s | %s | %s | %s | %s |\n",
			benchdoc.Thousands(r.Zones), map[bool]string{true: "succeeded", false: "**failed**"}[r.OK], r.Seconds.Rollout,
			size(r.History.Bytes), benchdoc.Thousands(r.History.Events), size(r.History.MaxPayload), size(r.WorkerPeakKB*1024), r.coverage(),
			yesNo(r.Within.History), yesNo(r.Within.Payload))
	}
	if len(res.Growth) > 0 {
		b.WriteString("\nGrowth per zone (cost per zone at the larger size ÷ cost per zone at the smaller; 1 is linear, below 1 better than linear):\n\n")
		for _, g := range res.Growth {
			fmt.Fprintf(&b, "- %s → %s zones: wall time per zone × %.3f, worker peak memory per zone × %.3f\n",
				benchdoc.Thousands(g.From), benchdoc.Thousands(g.To), g.Time, g.Memory)
		}
	}
	var notes []string
	for _, r := range res.Rows {
		if r.History.Events > 0 && r.History.Where != "" {
			notes = append(notes, fmt.Sprintf("- %s zones: the largest payload is in %s.", benchdoc.Thousands(r.Zones), r.History.Where))
		}
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("- %s zones failed: %s", benchdoc.Thousands(r.Zones), oneLine(r.Error)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

// oneLine folds an error with a worker log tail into one markdown line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "\\|")), " ")
}

// verdict is nil when every size's rollout succeeded within both budgets.
func (res results) verdict() error {
	var errs []error
	for _, r := range res.Rows {
		z := benchdoc.Thousands(r.Zones)
		switch {
		case !r.OK:
			errs = append(errs, fmt.Errorf("%s zones: the rollout failed", z))
		case !r.Within.History:
			errs = append(errs, fmt.Errorf("%s zones: history %d bytes, over the budget of %d", z, r.History.Bytes, historyBudget))
		case !r.Within.Payload:
			errs = append(errs, fmt.Errorf("%s zones: a payload of %d bytes (%s), over the budget of %d", z, r.History.MaxPayload, r.History.Where, payloadBudget))
		}
	}
	return errors.Join(errs...)
}

// save writes results.json, the plot and the docs' generated part.
func (res results) save(o options) error {
	if o.out != "" {
		if err := benchdoc.WriteJSON(o.out, res); err != nil {
			return err
		}
	}
	if o.plot != "" {
		if err := writePlot(o.plot, res.Rows); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if o.docs != "" {
		text, err := os.ReadFile(o.docs)
		if err != nil {
			return err
		}
		out, err := benchdoc.Replace(text, docsBegin, docsEnd, res.docsPart())
		if err != nil {
			return fmt.Errorf("%s: %w", o.docs, err)
		}
		return os.WriteFile(o.docs, out, 0o644)
	}
	return nil
}

// The results part of docs/benchmarks-scale.md, which -docs rewrites.
const (
	docsBegin = "<!-- bench:scale begin: written by `make bench-scale`, do not edit -->"
	docsEnd   = "<!-- bench:scale end -->"
)

func (res results) docsPart() string {
	var loads []string
	for _, r := range res.Rows {
		loads = append(loads, fmt.Sprintf("%s zones %s → %s", benchdoc.Thousands(r.Zones), r.Load[0], r.Load[1]))
	}
	return fmt.Sprintf("Measured by `%s` on %s (%s); a revision changing %d zones. Load average (1, 5, 15 min) before → after each size: %s. %s\n\n%s",
		res.Command, res.When.Format(time.RFC3339), res.Machine, res.Changed, strings.Join(loads, "; "), res.timeSpent(), res.table())
}

// timeSpent says where the run's wall time went, size by size: what the
// time of make bench-scale is made of, besides what each size measures.
func (res results) timeSpent() string {
	var sizes []string
	for _, r := range res.Rows {
		t := r.Seconds
		sizes = append(sizes, fmt.Sprintf("%s zones %.0f s (lab %.0f s, blue %.0f s, measured rollout %.0f s)", benchdoc.Thousands(r.Zones), t.Size, t.Lab, t.Blue, t.Rollout))
	}
	return fmt.Sprintf("The run took %.1f minutes (the build not included): %s.", res.Seconds/60, strings.Join(sizes, "; "))
}

// machine is the host's name, how many CPUs it has, and the labs'
// directory and whether it is in memory (tmpfs) or on disk.
func machine(dir string) string {
	h, _ := os.Hostname()
	kind := "disk"
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		kind = "tmpfs"
	}
	return fmt.Sprintf("%s, %d CPUs; lab files in %s (%s)", h, runtime.NumCPU(), dir, kind)
}
