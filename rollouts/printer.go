package rollouts

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/workflows"
)

// Printer writes a rollout's progress for humans: one line per phase change,
// step start and step end. Feed it every status you see; it prints only
// what is new.
type Printer struct {
	W io.Writer
	// Clock, when set, prefixes each line with the time it returns (the
	// CLI's --follow); nil prints no times.
	Clock func() time.Time
	phase workflows.Phase
	seen  map[string]string // step key → last printed state
	// events counts status events already printed.
	events int
}

// Update prints what changed since the last status.
func (p *Printer) Update(st workflows.Status) {
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	// Ended steps first, then the phase they led to, then the steps it started.
	p.steps(st, false)
	if st.Phase != p.phase {
		p.printf("==> %s\n", st.Phase)
		p.phase = st.Phase
	}
	p.steps(st, true)
	for ; p.events < len(st.Events); p.events++ {
		p.printf("    ! %s\n", st.Events[p.events].Message)
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
		p.printf("    ~ %s: attempt %d after: %s\n", what, r.Attempt, r.LastError)
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

func (p *Printer) steps(st workflows.Status, running bool) {
	for i, s := range st.Steps {
		key := fmt.Sprintf("%d", i)
		if p.seen[key] == s.State || (s.State == workflows.StepRunning) != running {
			continue
		}
		p.seen[key] = s.State
		p.printf("    %-24s %-10s %s\n", stepName(s), s.State, stepDetail(s))
	}
}

func (p *Printer) printf(format string, args ...any) {
	if p.Clock != nil {
		fmt.Fprint(p.W, p.Clock().Format("15:04:05 "))
	}
	fmt.Fprintf(p.W, format, args...)
}
