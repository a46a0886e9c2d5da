package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/progress"
	"github.com/dnsroll/dnsroll/workflows"
)

// lbRun is a run as the CLI shows it: the status the progress printer
// takes, and a replacement's own.
type lbRun struct {
	ID, State string
	WebUI     string
	Status    workflows.Status
	Replace   *workflows.LBReplaceStatus
	// raw is the API's answer, for --json.
	raw any
}

func (c *lbCmd) read(ctx context.Context, id string) (lbRun, error) {
	k := kindOf(id)
	if k.Type == api.LBUpdates.Type {
		var run api.WorkflowRun[workflows.Status]
		err := c.client.ReadRun(ctx, k, id, &run)
		if err != nil || run.Status == nil {
			return lbRun{}, err
		}
		return lbRun{ID: run.ID, State: run.State, WebUI: run.Links.WebUI, Status: *run.Status, raw: run}, nil
	}
	var run api.WorkflowRun[workflows.LBReplaceStatus]
	if err := c.client.ReadRun(ctx, k, id, &run); err != nil || run.Status == nil {
		return lbRun{}, err
	}
	st := run.Status
	return lbRun{ID: run.ID, State: run.State, WebUI: run.Links.WebUI, Replace: st, raw: run, Status: workflows.Status{
		Fleet: st.Fleet, Run: st.Run, ApproveBy: st.ApproveBy, ApprovalGate: st.ApprovalGate, NoWayBack: st.NoWayBack,
		Failure: st.Failure, Warnings: st.Warnings, Events: st.Events,
	}}, nil
}

// status prints the run id names and returns its ID.
func (c *lbCmd) status(ctx context.Context, id string) (string, error) {
	run, err := c.read(ctx, id)
	if err != nil || c.asJSON {
		return run.ID, c.printJSON(run.raw, err)
	}
	k := kindOf(id)
	st := run.Status
	fmt.Fprintf(c.out, "%s %s\nfleet     %s\nstate     %s, phase %s\nstarted   %s\n", k.Noun, run.ID, st.Fleet, run.State, st.Phase, st.StartedAt.Local().Format(localTime))
	if !st.EndedAt.IsZero() {
		fmt.Fprintf(c.out, "ended     %s (%s)\n", st.EndedAt.Local().Format(localTime), st.EndedAt.Sub(st.StartedAt).Round(100*time.Millisecond))
	}
	if run.WebUI != "" {
		fmt.Fprintf(c.out, "Web UI    %s\n", run.WebUI)
	}
	fmt.Fprintln(c.out)
	(&progress.Printer{W: c.out, ID: run.ID, Group: "lb"}).Update(st)
	(&replacePrinter{}).update(c.out, run.Replace)
	if st.Failure != "" {
		fmt.Fprintf(c.out, "\nfailure: %s\n", st.Failure)
	}
	return run.ID, nil
}

// follow prints a run's progress until it ends; only success exits 0,
// and a failure exits as a followed rollout's does (followedExit).
func (c *lbCmd) follow(ctx context.Context, id string, poll time.Duration) (string, error) {
	k := kindOf(id)
	out := c.progressOut()
	p := &progress.Printer{W: out, Clock: time.Now, ID: id, Group: "lb"}
	var rp replacePrinter
	run, err := api.Poll(ctx, poll, reading(c.apiCmd, poll, func(ctx context.Context) (lbRun, string, error) {
		run, err := c.read(ctx, id)
		if err == nil {
			// The run first read, not the fleet's next one.
			id = run.ID
		}
		return run, run.State, err
	}), func(run lbRun) {
		p.Update(run.Status)
		rp.update(out, run.Replace)
	})
	if err != nil {
		return id, followError("lb", id, err)
	}
	st := run.Status
	if st.Phase == workflows.PhaseSucceeded {
		fmt.Fprintf(out, "%s %s succeeded in %s\n", k.Noun, run.ID, st.EndedAt.Sub(st.StartedAt).Round(100*time.Millisecond))
		return id, nil
	}
	return id, &exitError{code: followedExit(st), err: fmt.Errorf("%s %s %s: %s", k.Noun, run.ID, st.Phase, whyEnded(st, run.State, byHand))}
}

// replacePrinter prints what a replacement adds to the steps: the zone
// revision it waits for, the glue to set (manual registrar) and how the
// drain stands, each when it changes.
type replacePrinter struct{ zone, glue, drain, drainEnd string }

func (p *replacePrinter) update(w io.Writer, st *workflows.LBReplaceStatus) {
	if st == nil {
		return
	}
	if z := st.Zone; z != nil && z.Instructions != "" && z.Instructions != p.zone {
		fmt.Fprintf(w, "    the zone's own records: %s\n", z.Instructions)
		p.zone = z.Instructions
	}
	if g := st.Glue.Instructions; g != "" && g != p.glue {
		fmt.Fprintf(w, "    at the registrar:\n      %s\n    then: dnsroll lb glue-updated --fleet %s\n", strings.ReplaceAll(strings.TrimSpace(g), "\n", "\n      "), st.Fleet)
		p.glue = g
	}
	if d := drainLine(st.Drain); d != "" && d != p.drain {
		fmt.Fprintf(w, "    drain: %s\n", d)
		p.drain = d
	}
	if e := drainEnd(st); e != "" && e != p.drainEnd {
		fmt.Fprintf(w, "    drain: %s\n", e)
		p.drainEnd = e
	}
}

// drainEnd says, for a drain under way, when it ends at the latest and
// how to end it now: its time left is only the least, which stays at the
// quiet period for as long as queries arrive.
func drainEnd(st *workflows.LBReplaceStatus) string {
	d := st.Drain
	if d == nil || d.Ended != "" || d.GiveUpAt.IsZero() {
		return ""
	}
	// max_wait ends it only once the TTLs have passed too.
	end := d.GiveUpAt
	if d.Until.After(end) {
		end = d.Until
	}
	return fmt.Sprintf("unless the old load balancers fall quiet first, it ends at %s (max_wait); to end it now: dnsroll lb force-drain --fleet %s --reason '...'",
		end.UTC().Format("2006-01-02 15:04:05 MST"), st.Fleet)
}

// drainLine is the queries per second still at each old load balancer
// and the time left, or how the drain ended.
func drainLine(d *workflows.DrainStatus) string {
	if d == nil {
		return ""
	}
	if d.Ended != "" {
		return "ended " + d.Ended + strings.TrimSuffix(" ("+d.Forced+")", " ()")
	}
	names := make([]string, 0, len(d.QPS))
	for n := range d.QPS {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f q/s", n, d.QPS[n]))
	}
	for _, n := range d.Uncounted {
		parts = append(parts, n+" (no counter: TTL only)")
	}
	return fmt.Sprintf("%s; %s left", strings.Join(parts, ", "), d.TimeLeft.D().Round(time.Second))
}
