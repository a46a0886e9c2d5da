package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dnsroll/dnsroll/progress"
	"github.com/dnsroll/dnsroll/zone"

	"github.com/dnsroll/dnsroll/api"
	"github.com/dnsroll/dnsroll/workflows"
)

const rolloutUsage = `Usage: dnsroll rollout <command> [flags]   (dnsroll rollout <command> --help for its flags)

  start     start a rollout of a fleet; --wait follows it, printing each step, and
            exits non-zero unless it succeeds, printing the reason: 2 with blue
            serving, 3 when a person must act (cleanup-failed, failed past
            the point of no return, or terminated mid-way)
  plan      a dry run of start: what the rollout's Plan step finds (blue, the zones
            whose serial changes, what changed since the live revision, warnings)
            or its refusal (exit 1); creates nothing, and may run beside a rollout
  status    print a rollout's phase, steps and failure (--json for all of it)
  list      list rollouts, newest first
  abort     stop a rollout: before the switch green is deleted and blue is untouched;
            after it, the same as rollback
  rollback  point the load balancers back at blue and delete green; both are refused
            past the point of no return (blue's deletion began, or the switch of a
            fleet's first rollout)
  approve   let a rollout waiting at the approval gate switch (or, with approval:
            each, switch its next load balancer; or, at a canary step with
            approve: true, go on to the next step)
  retry     start a failed rollout again with the same input (--force for one that
            succeeded, or that abort or rollback stopped)
  cleanup   finish the cleanup of a cleanup-failed rollout, or undo one whose workflow
            ended mid-way (terminated): every load balancer back on blue, every
            -next server deleted (the status's "left to undo")

These talk to the dnsroll API: --api-url or $DNSROLL_API_URL (default
http://127.0.0.1:8080), and the token in $DNSROLL_API_TOKEN (or --token, which
other users of the machine can see in ps).
`

func runRollout(ctx context.Context, std streams, args []string) error {
	return runAPICommand(ctx, std, "rollout", rolloutUsage, args, func(c *apiCmd, fs *flag.FlagSet, sub string) func(context.Context) error {
		switch sub {
		case "start":
			return c.startFlags(fs)
		case "plan":
			return c.planFlags(fs)
		case "status":
			return c.statusFlags(fs, "start --wait", c.target, c.status, c.follow)
		case "list":
			return c.listFlags(fs)
		case "abort", "rollback", "approve":
			return c.signalFlags(fs, "rollout", sub, func(ctx context.Context, in api.SignalRequest) (string, error) {
				id, err := c.target()
				if err != nil {
					return "", err
				}
				acc, err := c.client.Signal(ctx, id, sub, in)
				if acc.Warning != "" {
					fmt.Fprintln(c.stderr, "warning:", acc.Warning)
				}
				return cmp.Or(acc.ID, id), err
			})
		case "retry":
			return c.retryFlags(fs)
		case "cleanup":
			return c.cleanupFlags(fs)
		}
		return nil
	})
}

// target is the rollout --id or --fleet names.
func (c *apiCmd) target() (string, error) {
	switch {
	case c.id != "":
		return c.id, idOfFleet(api.Rollouts, c.id, c.fleet)
	case c.fleet != "":
		return workflows.WorkflowID(c.fleet), nil
	}
	return "", errors.New("--fleet or --id is required")
}

// rolloutFlags registers the flags of a rollout's input that start and
// plan share; the function they return fills req from them, or refuses.
func (c *apiCmd) rolloutFlags(fs *flag.FlagSet, req *api.StartRequest) func() error {
	fs.StringVar(&req.Revision, "revision", "", "revision to roll out (selects {revision} zone files; default: the fleet's last successful one)")
	fs.BoolVar(&req.AllowSerialDecrease, "allow-serial-decrease", false, "accept SOA serials behind blue's: to return to an older revision")
	fs.BoolVar(&req.AllowNewKSK, "allow-new-ksk", false, "accept green's DNSKEY set signed by none of blue's key-signing keys, or none at all where blue signs: the parent's DS already names green's key (a double-DS rollover), or is gone")
	expect := fs.String("expect-changes", "", "true: a zone change; false: infrastructure only, any difference from blue stops the rollout (default: the fleet's probe.expect_changes)")
	return func() error {
		switch *expect {
		case "":
		case "true", "false":
			v := *expect == "true"
			req.ExpectChanges = &v
		default:
			return fmt.Errorf("--expect-changes must be true or false, got %q", *expect)
		}
		if c.fleet == "" {
			return errors.New("--fleet is required")
		}
		req.Fleet = c.fleet
		return nil
	}
}

func (c *apiCmd) planFlags(fs *flag.FlagSet) func(context.Context) error {
	var req api.StartRequest
	fill := c.rolloutFlags(fs, &req)
	fs.BoolVar(&c.asJSON, "json", false, "print the API's JSON")
	return func(ctx context.Context) error {
		if err := fill(); err != nil {
			return err
		}
		// A worker reads blue's serials and snapshots the revision: seconds,
		// or minutes for a large fleet. Standard error, so that --json's
		// output stays JSON.
		fmt.Fprintf(c.stderr, "planning a rollout of fleet %s to revision %s on a worker...\n", req.Fleet, cmp.Or(req.Revision, "(not given: the live one)"))
		p, err := c.client.Plan(ctx, req)
		if err != nil || c.asJSON {
			return c.printJSON(p, err)
		}
		printPlan(c.out, p)
		return nil
	}
}

// printPlan prints what a rollout of a revision would start from.
func printPlan(w io.Writer, p api.Planned) {
	zones := "zones"
	if p.Zones == 1 {
		zones = "zone"
	}
	fmt.Fprintf(w, "plan      fleet %s, revision %s, %d %s\n", p.Fleet, orNone(p.Revision), p.Zones, zones)
	if p.Bundle != "" {
		fmt.Fprintf(w, "bundle    %s\n", p.Bundle)
	}
	labels := slices.Sorted(maps.Keys(p.Blue))
	if len(labels) == 0 {
		fmt.Fprintln(w, "blue      none: the first rollout creates every nameserver")
	}
	heading := "blue"
	for _, l := range labels {
		s := p.Blue[l]
		fmt.Fprintf(w, "%-10s%s: Linode %d, %s\n", heading, l, s.ID, s.DNSAddr())
		heading = ""
	}
	for _, l := range progress.ChangeLines(p.Changes) {
		fmt.Fprintf(w, "          %s\n", l)
	}
	for _, z := range p.Diffs {
		printZoneDiff(w, z.Zone, z.Diff)
	}
	if p.MoreDiffs > 0 {
		fmt.Fprintf(w, "diff      and %d more zones whose files changed\n", p.MoreDiffs)
	}
	for _, warning := range p.Warnings {
		fmt.Fprintf(w, "warning   %s\n", warning)
	}
	fmt.Fprintf(w, "workflow  %s\n", p.WorkflowID)
	if p.WebUI != "" {
		fmt.Fprintf(w, "Web UI    %s\n", p.WebUI)
	}
	fmt.Fprintf(w, "ok: a rollout of revision %s would start from this plan; nothing was created\n", orNone(p.Revision))
}

// printZoneDiff prints what a revision changes in one zone: the counts,
// then each RRset change, as "changed www.example.com. A: [..] → [..]".
func printZoneDiff(w io.Writer, name string, d zone.ZoneDiff) {
	added, removed, changed := len(d.Added)+d.MoreAdded, len(d.Removed)+d.MoreRemoved, len(d.Changed)+d.MoreChanged
	fmt.Fprintf(w, "diff      %s, serial %d → %d: %d added, %d removed, %d changed\n", name, d.OldSerial, d.NewSerial, added, removed, changed)
	for i, l := range [][]zone.RRsetChange{d.Added, d.Removed, d.Changed} {
		for _, c := range l {
			fmt.Fprintf(w, "            %s %s\n", [...]string{"added", "removed", "changed"}[i], c)
		}
	}
	if more := d.MoreAdded + d.MoreRemoved + d.MoreChanged; more > 0 {
		fmt.Fprintf(w, "            and %d more\n", more)
	}
}

func (c *apiCmd) startFlags(fs *flag.FlagSet) func(context.Context) error {
	var req api.StartRequest
	fill := c.rolloutFlags(fs, &req)
	whoFlags(fs, &req.Reason, &req.RequestedBy)
	key := fs.String("idempotency-key", "", "a key for this start, such as the CI job's ID: the same start again with it, as a CI job's rerun, "+
		"gets the rollout it started instead of a second rollout or a conflict (default: one of this command's own, so that its retries are safe)")
	then := waitFlags(fs, "the rollout, printing each step")
	return func(ctx context.Context) error {
		if err := fill(); err != nil {
			return err
		}
		if *key == "" {
			*key = "dnsroll-cli-" + rand.Text()
		}
		// The key makes the start safe to send again: an API restarting,
		// or a proxy's 502, does not fail the command.
		started, err := c.client.StartOnce(ctx, req, *key, api.Retry{For: c.retryFor, OnRetry: c.retrying})
		if err != nil {
			return unanswered(ctx, err, "rollout", workflows.WorkflowID(req.Fleet))
		}
		fmt.Fprintf(c.out, "started %s (revision %s)\n", started.ID, orNone(started.Revision))
		c.printWebUI(started.Links.WebUI)
		return then(ctx, started.ID, c.follow)
	}
}

// follow prints a rollout's progress until it ends; only success exits 0.
func (c *apiCmd) follow(ctx context.Context, id string, poll time.Duration) (string, error) {
	out := c.progressOut()
	p := &progress.Printer{W: out, Clock: time.Now, ID: id}
	ro, err := api.Poll(ctx, poll, reading(c, poll, func(ctx context.Context) (api.Rollout, string, error) {
		ro, err := c.client.Get(ctx, id)
		if err == nil {
			// The run first read, not the fleet's next one.
			id = ro.ID
		}
		return ro, ro.State, err
	}), func(ro api.Rollout) {
		c.warn(ro.Warning)
		p.Update(ro.Status)
	})
	if err != nil {
		return id, followError("rollout", id, err)
	}
	switch ro.Phase {
	case workflows.PhaseSucceeded:
		fmt.Fprintf(out, "rollout %s succeeded in %s\n", ro.ID, ro.EndedAt.Sub(ro.StartedAt).Round(100*time.Millisecond))
		return id, nil
	case workflows.PhaseCleanedUp:
		fmt.Fprintf(out, "%s in %s: blue is serving and green was deleted\n", ro.Failure, ro.EndedAt.Sub(ro.StartedAt).Round(100*time.Millisecond))
		return id, nil
	case workflows.PhaseCleanupFailed:
		printLeft(out, ro)
	}
	return id, &exitError{code: followedExit(ro.Status), err: fmt.Errorf("rollout %s %s: %s", ro.ID, ro.Phase, whyEnded(ro.Status, ro.State, midWayFix(ro)))}
}

// whyEnded is why a followed run that did not succeed ended: its failure,
// else its workflow's state; and, for one that ended in a phase that is
// no end (terminated, reset or timed out), that no undo ran, and fix.
func whyEnded(st workflows.Status, state, fix string) string {
	why := st.Failure
	if why == "" {
		why = "the workflow " + state
	}
	if !st.Phase.Done() {
		why += ": it ended before its own end (terminated, reset or timed out), so none of its undo steps ran; " + fix
	}
	return why
}

// byHand is what to do about a run that ended mid-way when nothing undoes
// it for the operator.
const byHand = "see where it stopped (its status) and put the load balancers and servers right by hand"

// midWayFix is what to do about rollout ro had it ended mid-way: before
// its point of no return, a cleanup puts every load balancer back on blue
// and deletes green (the API allows it); past it, a person finishes it,
// as after a run that recorded no blue servers to go back to, which the
// API does not clean up after.
func midWayFix(ro api.Rollout) string {
	if ro.NoWayBack != "" || ro.Phase == workflows.PhaseDeletingBlue || ro.Phase == workflows.PhaseRenaming {
		return "it had passed its point of no return, so its load balancers stay on green: delete the blue servers left, " +
			"then rename each <label>-next to <label> (README, what each outcome means)"
	}
	if len(ro.Blue) == 0 {
		return byHand
	}
	return fmt.Sprintf("`dnsroll rollout cleanup --id %s` puts every load balancer back on blue and deletes green, "+
		"unless a later rollout has run (then %s)", ro.ID, byHand)
}

// Exit statuses of a followed rollout that did not succeed: exitStopped
// for one that left blue serving, with nothing to undo by hand;
// exitNeedsHands for one that left something to undo (cleanup-failed), or
// failed past its point of no return, which a person finishes.
const (
	exitStopped    = 2
	exitNeedsHands = 3
)

// followedExit is the exit status of a followed rollout that ended as st
// did without succeeding. One whose workflow ended in a phase that is no
// end (terminated or reset in the Web UI, timed out) ran no undo.
func followedExit(st workflows.Status) int {
	if !st.Phase.Done() || st.Phase == workflows.PhaseCleanupFailed || (st.Phase == workflows.PhaseFailed && st.NoWayBack != "") {
		return exitNeedsHands
	}
	return exitStopped
}

// status prints the rollout id names and returns its ID.
func (c *apiCmd) status(ctx context.Context, id string) (string, error) {
	ro, err := c.client.Get(ctx, id)
	if err == nil {
		c.warn(ro.Warning)
	}
	if err != nil || c.asJSON {
		return ro.ID, c.printJSON(ro, err)
	}
	fmt.Fprintf(c.out, "rollout   %s\nfleet     %s (revision %s)\nstate     %s, phase %s\nstarted   %s\n",
		ro.ID, ro.Fleet, orNone(ro.Revision), ro.State, ro.Phase, ro.StartedAt.Local().Format(localTime))
	if ro.Bundle != "" {
		fmt.Fprintf(c.out, "bundle    %s\n", ro.Bundle)
	}
	heading := "backends"
	for _, l := range progress.BackendLines(ro.Backends) {
		fmt.Fprintf(c.out, "%-10s%s\n", heading, l)
		heading = ""
	}
	// At the approval gate the progress below prints them.
	if ro.Phase != workflows.PhaseAwaitingApproval {
		for _, l := range progress.ChangeLines(ro.Changes) {
			fmt.Fprintf(c.out, "          %s\n", l)
		}
	}
	if !ro.EndedAt.IsZero() {
		fmt.Fprintf(c.out, "ended     %s (%s)\n", ro.EndedAt.Local().Format(localTime), ro.EndedAt.Sub(ro.StartedAt).Round(100*time.Millisecond))
	}
	if ro.Links.WebUI != "" {
		fmt.Fprintf(c.out, "Web UI    %s\n", ro.Links.WebUI)
	}
	fmt.Fprintln(c.out)
	(&progress.Printer{W: c.out, ID: ro.ID}).Update(ro.Status)
	if ro.Failure != "" {
		fmt.Fprintf(c.out, "\nfailure: %s\n", ro.Failure)
	}
	printLeft(c.out, ro)
	// Whoever terminated it reads its status, not --wait's last line.
	if !api.Open(ro.State) && !ro.Phase.Done() {
		fmt.Fprintf(c.out, "\nits workflow ended (%s) before its own end, so none of its undo steps ran; %s\n", ro.State, midWayFix(ro))
	}
	return ro.ID, nil
}

// printLeft lists what a cleanup-failed rollout left, and how to undo it.
func printLeft(w io.Writer, ro api.Rollout) {
	if ro.Phase != workflows.PhaseCleanupFailed || ro.Cleanup == nil || len(ro.Cleanup.Left) == 0 {
		return
	}
	fmt.Fprintf(w, "\nleft to undo:\n")
	for _, l := range ro.Cleanup.Left {
		id := ""
		if l.ID != 0 {
			id = fmt.Sprintf(" (Linode %d)", l.ID)
		}
		fmt.Fprintf(w, "  %-13s %s%s: %s\n", l.Kind, l.Name, id, l.Action)
	}
	fmt.Fprintf(w, "once the cause is fixed: dnsroll rollout cleanup --id %s --reason '...'\n", ro.ID)
}

func (c *apiCmd) cleanupFlags(fs *flag.FlagSet) func(context.Context) error {
	var in api.SignalRequest
	fs.StringVar(&c.id, "id", "", "the ID of the cleanup-failed (or terminated) rollout, or give it as the argument (default: the fleet's latest rollout)")
	whoFlags(fs, &in.Reason, &in.By)
	then := waitFlags(fs, "the cleanup (success is cleaned-up)")
	return func(ctx context.Context) error {
		id, err := c.target()
		if err != nil {
			return err
		}
		started, err := c.client.Cleanup(ctx, id, in)
		if err != nil {
			return unanswered(ctx, err, "rollout", workflowOf(id))
		}
		fmt.Fprintf(c.out, "cleaning up after %s as %s\n", id, started.ID)
		return then(ctx, started.ID, c.follow)
	}
}

func (c *apiCmd) listFlags(fs *flag.FlagSet) func(context.Context) error {
	q := c.filterFlags(fs, "rollouts")
	fs.StringVar(&q.Phase, "phase", "", "only rollouts in this `phase`: one of "+phaseList())
	return func(ctx context.Context) error {
		q.Fleet = c.fleet
		page, err := c.client.List(ctx, *q)
		return c.printPage(page, err, page.NextPageToken, "ID\tFLEET\tREVISION\tSTATE\tPHASE\tSTARTED\tENDED", func(tw io.Writer) {
			for _, r := range page.Rollouts {
				rev := r.Revision
				if rev == "" {
					rev = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Fleet, rev, r.State, r.Phase, listTime(r.StartedAt), listTime(r.EndedAt))
			}
		})
	}
}

// filterFlags are a list's flags besides --fleet: --status, --limit,
// --page-token and --json.
func (c *apiCmd) filterFlags(fs *flag.FlagSet, noun string) *api.ListOptions {
	q := &api.ListOptions{Limit: 20}
	fs.StringVar(&q.Status, "status", "", "only "+noun+" in this state: "+strings.Join(api.States, ", "))
	// The client would leave out a limit under 1, silently giving the
	// API's default.
	fs.Var(atLeast[int]{&q.Limit, 1, strconv.Atoi}, "limit", "at most this `number` of "+noun+", from 1 to 100")
	fs.StringVar(&q.PageToken, "page-token", "", "the next page, as the list before it said (with the same filters)")
	fs.BoolVar(&c.asJSON, "json", false, "print the API's JSON")
	return q
}

// printPage prints one page of a list: the API's JSON with --json, else
// a table of header and the lines rows writes, then, on standard error so
// that the table stays a table, how to read the next page if there is one.
func (c *apiCmd) printPage(page any, err error, next, header string, rows func(tw io.Writer)) error {
	if err != nil || c.asJSON {
		return c.printJSON(page, err)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	err = tw.Flush()
	if next != "" {
		fmt.Fprintf(c.stderr, "more: the next page is --page-token %s (with the same filters)\n", next)
	}
	return err
}

// listTime is a list's start or end time, in local time; "-" for none.
func listTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(localTime)
}

// localTime is how the CLI prints a time in the local zone: naming the
// zone, since the deadlines the workflows write (approve by, a bake's end)
// are in UTC.
const localTime = time.DateTime + " MST"

func (c *apiCmd) retryFlags(fs *flag.FlagSet) func(context.Context) error {
	fs.StringVar(&c.id, "id", "", "rollout ID, or give it as the argument (default: the fleet's latest rollout)")
	force := fs.Bool("force", false, "retry a rollout that succeeded, or that an abort or rollback signal stopped (refused without it)")
	then := waitFlags(fs, "the new rollout")
	return func(ctx context.Context) error {
		id, err := c.target()
		if err != nil {
			return err
		}
		started, err := c.client.Retry(ctx, id, *force)
		if err != nil {
			return unanswered(ctx, err, "rollout", workflowOf(id))
		}
		fmt.Fprintf(c.out, "retried %s as %s (revision %s)\n", id, started.ID, orNone(started.Revision))
		return then(ctx, started.ID, c.follow)
	}
}

// workflowOf is the workflow ID of run ID id: a retry or a cleanup starts
// a new run of it, its latest.
func workflowOf(id string) string {
	wf, _, _ := strings.Cut(id, ":")
	return wf
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// idOfFleet refuses an --id that names a run of another fleet than --fleet,
// or of another kind than k: an abort would reach a fleet the operator did
// not name. With no --fleet, any ID goes.
func idOfFleet(k api.Kind, id, fleet string) error {
	if fleet == "" {
		return nil
	}
	run, err := k.ParseID(id)
	if err != nil {
		return fmt.Errorf("--id %s is not a %s of fleet %s (%v); give --id or --fleet, not both", id, k.Noun, fleet, err)
	}
	if got := k.Fleet(run); got != fleet {
		return fmt.Errorf("--id %s is a %s of fleet %s, not of --fleet %s; give --id or --fleet, not both", id, k.Noun, got, fleet)
	}
	return nil
}

// phaseList names the phases a rollout can be in, for --help.
func phaseList() string {
	names := make([]string, len(workflows.RolloutPhases))
	for i, p := range workflows.RolloutPhases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
