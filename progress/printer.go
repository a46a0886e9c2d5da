// Package progress prints a rollout's progress for a person at a terminal:
// the CLI's --wait and --follow, its status, and the demo. It only formats
// workflows.Status; reading it from Temporal or the API is the caller's.
package progress

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/workflows"
)

// Printer writes a rollout's progress for humans: one line per phase change,
// step start and step end, and per progress a long step reports. Feed it
// every status you see; it prints only what is new.
type Printer struct {
	W io.Writer
	// Clock, when set, prefixes each line with the time it returns (the
	// CLI's --follow); nil prints no times.
	Clock func() time.Time
	// ID is the run's API ID; when set, the approval gate prints the
	// commands that approve or abort it.
	ID string
	// Group is the CLI command group of those commands: "rollout" (when
	// empty) or "lb", for a load balancer replacement.
	Group string
	phase workflows.Phase
	// phaseFrom is the index of the first step that can be under phase:
	// a step before it that changes state (a background step ending late)
	// is printed without a header of its own.
	phaseFrom int
	seen      map[string]string // step key → last printed state
	// events counts status events already printed; warnings, the status's
	// warnings.
	events, warnings int
	// share is the green share last printed.
	share int
}

// Update prints what changed since the last status.
func (p *Printer) Update(st workflows.Status) {
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	// Each step under the phase it began in, then the phase the run is in.
	for i, s := range st.Steps {
		key := fmt.Sprintf("%d", i)
		// A running step's note is how a wait the workflow runs itself
		// (a bake, a canary step) reports its rounds: each is news.
		state := s.State
		if s.State == workflows.StepRunning {
			state += " " + s.Note
		}
		if p.seen[key] == state {
			continue
		}
		p.seen[key] = state
		if phase := stepPhase(st, s, p.phase); phase != p.phase && i >= p.phaseFrom {
			p.enter(st, phase, i)
		}
		// Padded to columns; a step with no detail ends at its state.
		line := fmt.Sprintf("    %-24s %-10s %s", stepName(s), s.State, stepDetail(s))
		p.printf("%s\n", strings.TrimRight(line, " "))
	}
	if st.Phase != p.phase {
		p.enter(st, st.Phase, len(st.Steps))
	}
	if st.GreenShare != p.share {
		p.printf("    = green gets %d%% of the queries\n", st.GreenShare)
		p.share = st.GreenShare
	}
	for ; p.events < len(st.Events); p.events++ {
		p.printf("    ! %s\n", st.Events[p.events].Message)
	}
	// Warnings ask the operator to act (copy a replacement's new addresses
	// into the fleet config, say); one an event said is not said again.
	for ; p.warnings < len(st.Warnings); p.warnings++ {
		w := st.Warnings[p.warnings]
		if !slices.ContainsFunc(st.Events, func(e workflows.Event) bool { return e.Message == w }) {
			p.printf("    warning: %s\n", w)
		}
	}
	for _, w := range st.Working {
		key := "working " + w.Activity + " " + w.Progress
		if p.seen[key] != "" {
			continue
		}
		p.seen[key] = "printed"
		p.printf("    … %s: %s\n", w.Activity, w.Progress)
	}
	for _, r := range st.Retrying {
		key := fmt.Sprintf("retry %s %s %d", r.Activity, r.Progress, r.Attempt)
		if p.seen[key] != "" {
			continue
		}
		p.seen[key] = "printed"
		what := r.Activity
		if r.Progress != "" {
			what += " (" + r.Progress + ")"
		}
		when := ""
		if !r.NextAttemptAt.IsZero() {
			// In the clock's zone, as the lines' own times are.
			when = " at " + r.NextAttemptAt.UTC().Format("15:04:05 UTC")
			if p.Clock != nil {
				when = " at " + r.NextAttemptAt.In(p.Clock().Location()).Format("15:04:05")
			}
		}
		p.printf("    ~ %s: attempt %d%s after: %s\n", what, r.Attempt, when, r.LastError)
	}
}

func stepName(s *workflows.Step) string {
	if s.Target == "" {
		return s.Name
	}
	return s.Name + " " + s.Target
}

func stepDetail(s *workflows.Step) string {
	var parts []string
	if !s.EndedAt.IsZero() {
		parts = append(parts, s.EndedAt.Sub(s.StartedAt).Round(10*time.Millisecond).String())
	}
	if s.Attempts > 1 {
		parts = append(parts, fmt.Sprintf("%d attempts", s.Attempts))
	}
	if s.Note != "" {
		parts = append(parts, s.Note)
	}
	if s.Error != "" {
		parts = append(parts, "error: "+s.Error)
	}
	return strings.Join(parts, "  ")
}

// stepPhase is the phase step s began in. A status from before steps
// recorded it has none: an ended step is put under the phase printed last,
// a running one under the run's phase now.
func stepPhase(st workflows.Status, s *workflows.Step, printed workflows.Phase) workflows.Phase {
	switch {
	case s.Phase != "":
		return s.Phase
	case s.State == workflows.StepRunning:
		return st.Phase
	}
	return printed
}

// enter prints the header of phase, whose first step is st.Steps[from].
func (p *Printer) enter(st workflows.Status, phase workflows.Phase, from int) {
	p.printf("==> %s\n", phase)
	p.phase, p.phaseFrom = phase, from
	// Only the gate the run waits at now: its step is the last (or yet
	// to come). A gate passed is a phase like any other.
	if phase == workflows.PhaseAwaitingApproval && st.Phase == workflows.PhaseAwaitingApproval && from >= len(st.Steps)-1 {
		p.gate(st)
	}
}

func (p *Printer) printf(format string, args ...any) {
	if p.Clock != nil {
		fmt.Fprint(p.W, p.Clock().Format("15:04:05 "))
	}
	fmt.Fprintf(p.W, format, args...)
}

// gate prints the decision in front of the operator at the approval gate:
// at a canary step's hold, what the step measured; what the revision
// changes against the live one, what green changes against blue, the
// deadline, and the commands.
func (p *Printer) gate(st workflows.Status) {
	if n := len(st.Canary); n > 0 && st.GreenShare > 0 && st.GreenShare < 100 {
		// A canary step's hold: what the step measured is the decision.
		last := st.Canary[n-1]
		p.printf("    green has %d%% of the queries; the canary step at %d%% measured: %s\n", st.GreenShare, last.Weight, last.Summary)
	}
	for _, l := range ChangeLines(st.Changes) {
		p.printf("    %s\n", l)
	}
	diffs := false
	for _, a := range st.Analysis {
		if a.Step != "VerifyGreen" {
			continue
		}
		for _, rep := range a.Result.Reports {
			for _, d := range rep.Diffs {
				p.printf("    zone %s on %s against %s: %s\n", d.Zone, rep.Name, d.Against, d.Summary)
				diffs = true
			}
			if rep.DiffsOmitted > 0 {
				// The report keeps a few zones (probe.samples): the rest
				// are counted, lest the few read as all.
				p.printf("    and %d more zones on %s, not shown (those that differ come first)\n", rep.DiffsOmitted, rep.Name)
			}
		}
	}
	if diffs {
		// Green's names are asked of both: a name only blue has is not.
		p.printf("    (green and blue were asked the new zone files' names and types: those only blue has are not seen here)\n")
	}
	switch by := st.ApproveBy.UTC().Format("2006-01-02 15:04:05 MST"); {
	case st.ApproveBy.IsZero():
	case len(st.OnGreen) > 0:
		// A later gate of approval: each.
		p.printf("    approve by %s, or it is rolled back: %s go back to blue\n", by, strings.Join(st.OnGreen, ", "))
	default:
		p.printf("    approve by %s, or it is aborted\n", by)
	}
	if p.ID != "" {
		group := cmp.Or(p.Group, "rollout")
		gate, input := "", `{"by":"you"}`
		if st.ApprovalGate > 0 {
			// The gate shown: approved after another operator approved
			// it, the approval does not open the next one.
			gate, input = fmt.Sprintf(" --gate %d", st.ApprovalGate), fmt.Sprintf(`{"by":"you","gate":%d}`, st.ApprovalGate)
		}
		p.printf("    approve: dnsroll %s approve --id %s%s --reason '...'\n", group, p.ID, gate)
		p.printf("    abort:   dnsroll %s abort --id %s --reason '...'\n", group, p.ID)
		// With the run, as the gate is that run's: Temporal refuses the
		// signal once it has ended, rather than give it to the fleet's
		// next run, whose gates are numbered from 1 again.
		wid, rid, _ := strings.Cut(p.ID, ":")
		if rid != "" {
			wid += " --run-id " + rid
		}
		p.printf("    (or: temporal workflow signal --workflow-id %s --name approve --input '%s')\n", wid, input)
	}
}
