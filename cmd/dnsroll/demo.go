package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/progress"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// demoName is the record whose answer shows which revision is live.
const demoName = "release.example.com."

func runDemo(ctx context.Context, std streams, args []string) error {
	fs := newFlags(std, "demo", `
Runs a complete blue-green rollout in a fresh local lab and stops everything it
started. It creates the blue fleet (ns1, ns2 serving zone revision A behind lb1
and lb2) with a first rollout, plans revision B (a dry run), then rolls it
out, printing each step, and ends with a summary. Needs nothing configured; `+"`make demo`"+` installs what is missing.

In machine mode (the default where this host can run it: root and the base
image from `+"`make lab-image`"+`), every server and load balancer is a Debian 12
machine reached over SSH, as in production. Otherwise it runs in process mode:
named and nginx on loopback ports. It prints the mode it chose and why.`)
	var f labFlags
	f.register(fs, ".lab/demo", 0, 8233, "127.0.0.1:0", "auto")
	keep := fs.Bool("keep", false, "keep the lab state directory afterwards")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if err := os.RemoveAll(f.dir); err != nil {
		return err
	}
	out := std.out
	fmt.Fprintln(out, "== dnsroll demo: blue-green rollout of two BIND nameservers behind two load balancers")
	s, err := startLab(ctx, &f, out, nil)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "== stopping the lab (nginx, named, Temporal, simulator)")
		s.stop()
		if !*keep {
			os.RemoveAll(f.dir)
		}
	}()

	fmt.Fprintln(out, "\n== creating the blue fleet: first rollout, revision A")
	if _, _, err := demoRollout(ctx, out, s, "A", "demo: create blue"); err != nil {
		return err
	}
	before := lbAnswers(s)

	fmt.Fprintln(out, "\n== planning revision B: its Plan step alone, a dry run that creates nothing (dnsroll rollout plan)")
	rep, planRun, err := rollouts.Plan(ctx, s.client, workflows.RolloutInput{Fleet: s.fleet.Name, Revision: "B", Reason: "demo: plan B", RequestedBy: "demo"})
	if err != nil {
		return fmt.Errorf("plan of revision B: %w", err)
	}
	printPlan(out, api.Planned{PlanReport: rep, WorkflowID: planRun.WorkflowID, RunID: planRun.RunID,
		WebUI: dnsroll.WebUILink(s.lab.UIURL(), "default", planRun.WorkflowID, planRun.RunID)})

	fmt.Fprintln(out, "\n== rolling out revision B (blue → green)")
	start := time.Now()
	run, st, err := demoRollout(ctx, out, s, "B", "demo: roll out B")
	if err != nil {
		return err
	}
	took := time.Since(start)
	after := lbAnswers(s)

	fmt.Fprintf(out, "\n== summary\n  lab mode:  %s\n  rollout:   %s (run %s)\n  phase:     %s\n  duration:  %s\n", f.modeName(), run.WorkflowID, run.RunID, st.Phase, took.Round(100*time.Millisecond))
	changed := true
	for _, lb := range s.fleet.LoadBalancers {
		fmt.Fprintf(out, "  %s (%s) %s TXT:  before %s  →  after %s\n", lb.Name, lb.Address, demoName, before[lb.Name], after[lb.Name])
		changed = changed && before[lb.Name] == `"revision A"` && after[lb.Name] == `"revision B"`
	}
	for _, label := range []string{"ns1", "ns2"} {
		g := st.Green[label]
		fmt.Fprintf(out, "  %s is now Linode %d (was %d)\n", label, g.ID, st.Blue[label].ID)
	}
	if link := dnsroll.WebUILink(s.lab.UIURL(), "default", run.WorkflowID, run.RunID); link != "" {
		fmt.Fprintf(out, "  Web UI:    %s (%s)\n", link, demoUIHint(f.dir, *keep))
	}
	if !changed {
		return fmt.Errorf("the load balancers did not switch from revision A to B")
	}
	return nil
}

// demoUIHint says how to open the link once the demo has stopped: the run
// is in the demo's own Temporal state, not make dev's (.lab/dev).
func demoUIHint(dir string, keep bool) string {
	if keep {
		return "once the demo has stopped: `dnsroll dev --dir " + dir + "`"
	}
	return "gone when the demo stops; with --keep, `dnsroll dev --dir " + dir + "` shows it"
}

func demoRollout(ctx context.Context, out io.Writer, s *labSession, rev, reason string) (rollouts.Run, workflows.Status, error) {
	run, err := rollouts.Start(ctx, s.client, workflows.RolloutInput{Fleet: s.fleet.Name, Revision: rev, Reason: reason, RequestedBy: "demo"})
	if err != nil {
		return run, workflows.Status{}, err
	}
	p := &progress.Printer{W: out, Clock: time.Now}
	st, err := rollouts.Wait(ctx, s.client, run, 300*time.Millisecond, p.Update)
	if err != nil {
		return run, st, fmt.Errorf("rollout to %s: %w", rev, err)
	}
	return run, st, nil
}

// lbAnswers asks each load balancer for the demo record over UDP.
func lbAnswers(s *labSession) map[string]string {
	out := map[string]string{}
	for _, lb := range s.fleet.LoadBalancers {
		out[lb.Name] = queryTXT(lb.Address, demoName)
	}
	return out
}

func queryTXT(addr, name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	var txts []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, `"`+strings.Join(t.Txt, "")+`"`)
		}
	}
	return strings.Join(txts, " ")
}
