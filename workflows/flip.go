package workflows

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
)

// The switch in two phases (version "two-phase-switch"): before the
// promote decision, every load balancer stages green beside blue, health
// checked and with no traffic; the promote is then a flip over a channel the
// worker keeps open, every load balancer at once, and so is a rollback
// during the bake, since blue stays staged until the rollout commits.
// Removing the side that lost happens after, off the critical path: a
// rollback releases green, a commit releases blue, each once its
// outstanding queries have drained.

// stageLBs stages green on every load balancer.
func (r *rollout) stageLBs(ctx workflow.Context) error {
	fleet := r.plan.Fleet
	r.setPhase(ctx, PhaseStaging)
	// From here a load balancer may know green.
	r.undos.push(UndoReleaseGreen, r.releaseGreen)
	version := workflow.GetVersion(ctx, versionStageInTurn, workflow.DefaultVersion, 2)
	inTurn := version >= 1
	if inTurn {
		r.stageBegun = []config.LoadBalancer{}
	}
	var calls []*call
	var indexes []int
	var first error
	for _, i := range stageOrder(fleet.LoadBalancers, version) {
		balancer := fleet.LoadBalancers[i]
		in := activities.StageInput{StepFleet: r.plan.StepFleet(), LB: balancer, Live: serversOf(r.st.Blue, balancer.Fronts), Staged: serversOf(r.st.Green, balancer.Fronts)}
		c := r.st.start(ctx, "StageLoadBalancer", balancer.Name, r.options(fleet.Steps.SwitchTimeout), a.StageLoadBalancer, in)
		r.stageBegun = append(r.stageBegun, balancer)
		staged := shares(r.st.Blue, r.st.Green, balancer.Fronts, 0)
		if !inTurn || !stagesByRestart[balancer.Driver] {
			calls, indexes = append(calls, c), append(indexes, i)
			continue
		}
		var res activities.StepResult
		if first = c.wait(ctx, &res); first != nil {
			break
		}
		r.setBackends(balancer.Name, staged)
	}
	// The others, staged in parallel, are waited for even when one staged
	// in turn failed: the undo must not start while they run.
	return cmp.Or(first, waitEach(ctx, calls, func(i int, _ activities.StepResult) {
		balancer := fleet.LoadBalancers[indexes[i]]
		r.setBackends(balancer.Name, shares(r.st.Blue, r.st.Green, balancer.Fronts, 0))
	}))
}

// versionStageInTurn: version 1 stages the load balancers of
// stagesByRestart one at a time; earlier rollouts staged all at once.
// Version 2 starts the others first (stageOrder).
const versionStageInTurn = "stage-restarting-drivers-in-turn"

// stageOrder is the order stageLBs starts lbs in: as listed, or, from
// version 2 of versionStageInTurn, those staged at once before those
// staged in turn, so that an nginx load balancer listed after a dnsdist
// one does not wait for that one's stage.
func stageOrder(lbs []config.LoadBalancer, version workflow.Version) []int {
	var atOnce, inTurn []int
	for i, balancer := range lbs {
		if version >= 2 && stagesByRestart[balancer.Driver] {
			inTurn = append(inTurn, i)
		} else {
			atOnce = append(atOnce, i)
		}
	}
	return append(atOnce, inTurn...)
}

// stagesByRestart are the drivers whose stage may restart the load
// balancer: dnsdist, when a release of dnsroll changes its settings
// (ansible/roles/dnsdist). Restarting every load balancer at once would
// leave none answering, so they are staged one at a time; nginx stages by
// a graceful reload, all at once. The map decides the order of the
// workflow's commands (versionStageInTurn, versionSwitchBackInTurn): a
// change to it needs a new version of both.
var stagesByRestart = map[string]bool{"dnsdist": true}

// flipLBs sends greenShare percent of the queries of each of lbs to green
// and the rest to blue, every load balancer in parallel, and records where
// each one points.
func (r *rollout) flipLBs(ctx workflow.Context, lbs []config.LoadBalancer, greenShare int, step string, opts workflow.ActivityOptions) error {
	before := len(r.undos)
	r.undos.push(UndoFlipBackToBlue, r.flipBackToBlue)
	unsent := cancelledInThisTask(ctx)
	calls := r.startFlips(ctx, lbs, greenShare, step, opts, r.plan.StepFleet())
	r.flipsInFlight++
	defer func() { r.flipsInFlight-- }()
	err := r.waitFlips(ctx, calls, lbs, greenShare)
	if len(r.undos) > before && *unsent && allCancelled(ctx, calls) &&
		workflow.GetVersion(ctx, versionUnsentFlipMovedNothing, workflow.DefaultVersion, 1) == 1 {
		// A stop in the workflow task that started the first flips (an
		// abort with the approve) cancelled them before Temporal had
		// them: no load balancer moved, so nothing is to be flipped
		// back, and the outcome is aborted, not rolled back.
		r.undos = r.undos[:before]
	}
	return err
}

// versionUnsentFlipMovedNothing marks the change that drops the flip
// back of first flips that were all cancelled before they were sent
// (flipLBs). Runs from before flipped back, and said they rolled back.
// Until the flips' cancel was judged by the task it came in
// (cancelledInThisTask), rather than by how the SDK settles it, no run
// on a real server took it: a real server settles even an unsent
// activity's cancel as an ActivityError, so no history has its marker.
const versionUnsentFlipMovedNothing = "unsent-flip-moved-nothing"

// taskMark names the workflow task a workflow is in: the history's length
// at its start, and its time (the test environment keeps no history).
type taskMark struct {
	length int
	at     time.Time
}

func markTask(ctx workflow.Context) taskMark {
	return taskMark{workflow.GetInfo(ctx).GetCurrentHistoryLength(), workflow.Now(ctx)}
}

// cancelledInThisTask reports, once ctx is cancelled, whether that
// happened in the workflow task that called it. Temporal has a task's
// commands only when the task ends, so an activity started and cancelled
// in one task was never sent to a worker. How the SDK settles such a
// cancel tells nothing: a real server settles it as an ActivityError, as
// it does a running one's; the test environment settles both bare.
func cancelledInThisTask(ctx workflow.Context) *bool {
	started, same := markTask(ctx), new(bool)
	workflow.Go(ctx, func(ctx workflow.Context) {
		ctx.Done().Receive(ctx, nil)
		*same = markTask(ctx) == started
	})
	return same
}

// allCancelled tells whether every one of calls, ended, was cancelled.
func allCancelled(ctx workflow.Context, calls []*call) bool {
	for _, c := range calls {
		if !temporal.IsCanceledError(c.future.Get(ctx, nil)) {
			return false
		}
	}
	return true
}

// startFlips starts a flip of each of lbs to greenShare, its input naming
// the fleet as fleet does: the plan's StepFleet forward, its UndoStepFleet
// back.
func (r *rollout) startFlips(ctx workflow.Context, lbs []config.LoadBalancer, greenShare int, step string, opts workflow.ActivityOptions, fleet activities.StepFleet) []*call {
	var calls []*call
	for _, balancer := range lbs {
		in := activities.FlipInput{StepFleet: fleet, LB: balancer, Shares: r.flipShares(balancer, greenShare)}
		o := opts
		o.Summary = fmt.Sprintf("%s %s → green %d%%", step, balancer.Name, greenShare)
		calls = append(calls, r.st.start(ctx, step, balancer.Name, o, a.FlipLoadBalancer, in))
	}
	return calls
}

func (r *rollout) waitFlips(ctx workflow.Context, calls []*call, lbs []config.LoadBalancer, greenShare int) error {
	return waitEach(ctx, calls, func(i int, _ activities.StepResult) {
		r.markOnGreen(lbs[i].Name, greenShare > 0)
		r.setShare(lbs[i].Name, greenShare)
		r.setBackends(lbs[i].Name, r.flipShares(lbs[i], greenShare))
	})
}

// flipShares are the weights a flip of balancer to greenShare percent
// gives the blue and green servers it fronts.
func (r *rollout) flipShares(balancer config.LoadBalancer, greenShare int) []lb.Share {
	return shares(r.st.Blue, r.st.Green, balancer.Fronts, greenShare)
}

// flipBackNow starts the flip of every load balancer back to blue the
// moment a stop signal arrives after a flip, before the steps it cancels
// have returned: a rollback is a flip away. It is not started while a flip
// is in flight, whose late arrival could undo it; the compensation flips
// back after that flip has ended.
func (r *rollout) flipBackNow(ctx workflow.Context) {
	if !r.undos.has(UndoFlipBackToBlue) || r.flipsInFlight > 0 || r.flipBack != nil {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	// The cleanup waits on this flip, so it gets what the cleanup would:
	// no more than steps.cleanup_timeout from now.
	o := r.cleanupOptions(ctx)
	if r.cleanupUntil.IsZero() {
		within(&o, r.plan.Fleet.Steps.CleanupTimeout.D())
	}
	r.flipBack = r.startFlips(ctx, r.plan.Fleet.LoadBalancers, 0, "FlipBackToBlue", o, r.plan.UndoStepFleet())
}

// flipBackToBlue undoes the flips: every load balancer flips back to blue,
// through the flip the stop signal already started, if any.
func (r *rollout) flipBackToBlue(ctx workflow.Context) error {
	calls := r.flipBack
	r.flipBack = nil
	if calls == nil {
		calls = r.startFlips(ctx, r.plan.Fleet.LoadBalancers, 0, "FlipBackToBlue", r.cleanupOptions(ctx), r.plan.UndoStepFleet())
	}
	return r.waitFlips(ctx, calls, r.plan.Fleet.LoadBalancers, 0)
}

// releaseGreen undoes the staging: every load balancer is pointed at blue
// alone, which removes green once its queries have drained.
func (r *rollout) releaseGreen(ctx workflow.Context) error {
	lbs := r.plan.Fleet.LoadBalancers
	if r.stageBegun != nil {
		// Staged in turn: those whose stage never began do not know green,
		// and pointing them, on settings a new release changed, would
		// restart their dnsdist all at once.
		lbs = r.stageBegun
	}
	return r.switchLBs(ctx, lbs, r.st.Blue, "ReleaseGreen", false)
}

// canary shifts the fleet's canary steps of traffic to green on every load
// balancer, each for its duration, comparing green's answers with blue's
// every bake interval and, at the step's end, the rates at which green and
// blue left queries unanswered, as each load balancer counted them. A
// failed step rolls back, which is a flip. A step to approve then holds
// green at its weight at an approval gate.
func (r *rollout) canary(ctx workflow.Context) error {
	fleet := r.plan.Fleet
	rc := fleet.Rollout
	for _, cs := range rc.Canary.Steps {
		r.setPhase(ctx, PhaseSwitching)
		if err := r.flipLBs(ctx, fleet.LoadBalancers, cs.Weight, "FlipLoadBalancer", r.options(fleet.Steps.SwitchTimeout)); err != nil {
			return err
		}
		r.setPhase(ctx, PhaseCanary)
		s := r.st.begin(ctx, "Canary", fmt.Sprintf("%d%%", cs.Weight))
		before, err := r.readStats(ctx)
		if err == nil {
			// Through a load balancer, an answer may come from either
			// side; green's are compared with blue's directly, at the
			// same moment, and the load balancers' counters at the end.
			err = r.analyse(ctx, s, r.greenTargets(), blueTargets(r.st.Blue), cs.Duration.D())
		}
		var after map[string][]lb.BackendStats
		if err == nil {
			after, err = r.readStats(ctx)
		}
		if err == nil {
			var result CanaryResult
			blueSampled := workflow.GetVersion(ctx, versionCanaryBlueSample, workflow.DefaultVersion, 1) == 1
			result, err = judgeCanaryWith(fleet, r.st.Blue, r.st.Green, cs.Weight, before, after, blueSampled)
			r.st.Canary = append(r.st.Canary, result)
			s.Note = result.Summary
		}
		if err := s.end(ctx, err); err != nil {
			return err
		}
		if cs.Approve {
			if err := r.approvalGate(ctx, fmt.Sprintf("canary %d%%", cs.Weight)); err != nil {
				return err
			}
		}
	}
	return nil
}

// analyse runs the bake's DNS analysis of targets, against baseline when
// given, every bake interval for d.
func (r *rollout) analyse(ctx workflow.Context, s *Step, targets, baseline []activities.ProbeTarget, d time.Duration) error {
	return bakeRounds(ctx, s, r.plan.Fleet.Rollout.BakeInterval.D(), d, func(ctx workflow.Context) (int32, string, error) {
		res, err := r.verifyAs(ctx, "Bake", a.BakeCheck, targets, baseline, false)
		return res.Attempt, passSummary(res), err
	}, func(round int, err error) string { return fmt.Sprintf("round %d: %s", round, reason(err)) })
}

// bakeRounds runs check every interval for d, the last at d's end, as
// step s; a check that fails ends it, with failed's word on that round as
// s's error. While it runs, s's note says when it ends: a bake or canary
// step is one long wait, and the operator needs its end.
func bakeRounds(ctx workflow.Context, s *Step, interval, d time.Duration, check func(workflow.Context) (attempt int32, summary string, err error),
	failed func(round int, err error) string) error {
	end := workflow.Now(ctx).Add(d)
	until := "until " + end.UTC().Format("2006-01-02 15:04:05 MST")
	passed := ""
	s.Note = until
	defer func() { s.Note = passed }()
	for round := 1; ; round++ {
		wait := min(interval, end.Sub(workflow.Now(ctx)))
		if wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		attempt, summary, err := check(ctx)
		// Attempts are retries, as in every step: the most any round's
		// check took. The rounds are in the note.
		if err != nil {
			s.Attempts = max(s.Attempts, failedAttempts(err, 0), 1)
			s.Error = failed(round, err)
			return err
		}
		s.Attempts = max(s.Attempts, attempt, 1)
		passed = fmt.Sprintf("%d round(s) passed, %s", round, summary)
		s.Note = passed + "; " + until
		if !workflow.Now(ctx).Before(end) {
			return nil
		}
	}
}

// readStats reads every load balancer's per-backend counters, in parallel.
func (r *rollout) readStats(ctx workflow.Context) (map[string][]lb.BackendStats, error) {
	fleet := r.plan.Fleet
	ctx = workflow.WithActivityOptions(ctx, r.options(fleet.Steps.ProbeTimeout))
	futures := make([]workflow.Future, len(fleet.LoadBalancers))
	for i, balancer := range fleet.LoadBalancers {
		in := activities.StatsInput{StepFleet: r.plan.StepFleet(), LB: balancer}
		futures[i] = workflow.ExecuteActivity(ctx, a.LoadBalancerStats, in)
	}
	out := map[string][]lb.BackendStats{}
	for i, f := range futures {
		var res activities.StatsResult
		if err := f.Get(ctx, &res); err != nil {
			return nil, err
		}
		out[fleet.LoadBalancers[i].Name] = res.Backends
	}
	return out, nil
}

// shares is the split of the load balancer fronting label: greenShare
// percent to green, the rest to blue. A side with no server is left out.
// shares splits the queries of a load balancer fronting labels: each
// green server gets greenShare and each blue one the rest, so with a blue
// and a green per label, green has greenShare percent of the whole.
func shares(blue, green map[string]dnsroll.Server, labels config.Labels, greenShare int) []lb.Share {
	var out []lb.Share
	for _, label := range labels {
		if g, ok := green[label]; ok {
			out = append(out, lb.Share{Server: g, Weight: greenShare})
		}
		if b, ok := blue[label]; ok {
			out = append(out, lb.Share{Server: b, Weight: 100 - greenShare})
		}
	}
	return out
}

// serversOf are the servers of labels that servers has, in the order of
// labels (never of the map, which would not replay).
func serversOf(servers map[string]dnsroll.Server, labels config.Labels) []dnsroll.Server {
	var out []dnsroll.Server
	for _, label := range labels {
		if s, ok := servers[label]; ok {
			out = append(out, s)
		}
	}
	return out
}

// CanaryResult is what one canary step measured, per load balancer.
type CanaryResult struct {
	// Weight is the percentage of queries the step sent to green.
	Weight        int           `json:"weight"`
	LoadBalancers []CanaryShare `json:"load_balancers"`
	Summary       string        `json:"summary"`
}

// CanaryShare is one load balancer's counts over one canary step.
type CanaryShare struct {
	LB string `json:"lb"`
	// GreenQueries and BlueQueries are the queries the load balancer sent
	// each side during the step; Measured is green's share of them, in
	// percent.
	GreenQueries uint64  `json:"green_queries"`
	BlueQueries  uint64  `json:"blue_queries"`
	Measured     float64 `json:"measured"`
	// GreenDropRate and BlueDropRate are the fractions of those queries
	// that each side never answered.
	GreenDropRate float64 `json:"green_drop_rate"`
	BlueDropRate  float64 `json:"blue_drop_rate"`
}

// minJudgedQueries is how many queries green must have had in a step for
// its drop rate to be judged: below it, one lost query is a rate of
// several points.
const minJudgedQueries = 200

// versionCanaryBlueSample marks rollouts whose canary judges green against
// no drops where blue had too few queries to have a rate
// (judgeCanaryWith); before it, blue's rate of however few counted.
const versionCanaryBlueSample = "canary-blue-sample"

// judgeCanary is judgeCanaryWith as rollouts from before
// versionCanaryBlueSample judged.
func judgeCanary(fleet *config.Fleet, blue, green map[string]dnsroll.Server, weight int, before, after map[string][]lb.BackendStats) (CanaryResult, error) {
	return judgeCanaryWith(fleet, blue, green, weight, before, after, false)
}

// judgeCanaryWith compares green's and blue's counters over a step: green
// fails if it left a larger share of its queries unanswered than blue did,
// by more than the fleet allows. With blueSampled, a blue with fewer than
// minJudgedQueries queries (a high weight) counts as losing none: its
// rate says nothing. It is a pure function of the counters, so the
// decision is in the workflow's history.
func judgeCanaryWith(fleet *config.Fleet, blue, green map[string]dnsroll.Server, weight int, before, after map[string][]lb.BackendStats, blueSampled bool) (CanaryResult, error) {
	res := CanaryResult{Weight: weight}
	var parts, failures []string
	for _, balancer := range fleet.LoadBalancers {
		var gq, gd, bq, bd uint64
		for _, label := range balancer.Fronts {
			q, d := delta(before[balancer.Name], after[balancer.Name], green[label].DNSAddr())
			gq, gd = gq+q, gd+d
			q, d = delta(before[balancer.Name], after[balancer.Name], blue[label].DNSAddr())
			bq, bd = bq+q, bd+d
		}
		cs := CanaryShare{LB: balancer.Name, GreenQueries: gq, BlueQueries: bq, GreenDropRate: rate(gd, gq), BlueDropRate: rate(bd, bq)}
		if gq+bq > 0 {
			cs.Measured = 100 * float64(gq) / float64(gq+bq)
		}
		res.LoadBalancers = append(res.LoadBalancers, cs)
		part := fmt.Sprintf("%s: green %.1f%% of %d queries, drops green %.2f%% blue %.2f%%", balancer.Name, cs.Measured, gq+bq, 100*cs.GreenDropRate, 100*cs.BlueDropRate)
		baseline := cs.BlueDropRate
		switch {
		case gq < minJudgedQueries:
			part += fmt.Sprintf(" (not judged: green had %d queries, fewer than %d)", gq, minJudgedQueries)
		case blueSampled && bq < minJudgedQueries:
			baseline = 0
			part += fmt.Sprintf(" (blue had %d queries, fewer than %d: green judged against none lost)", bq, minJudgedQueries)
		}
		parts = append(parts, part)
		if gq >= minJudgedQueries && cs.GreenDropRate > baseline+fleet.Rollout.Canary.MaxDropRateIncrease {
			against := fmt.Sprintf("blue %.2f%%", 100*cs.BlueDropRate)
			if baseline != cs.BlueDropRate {
				against = fmt.Sprintf("against none lost (blue had %d queries, too few to judge by)", bq)
			}
			failures = append(failures, fmt.Sprintf("%s: green left %.2f%% of its queries unanswered, %s (allowed: %.2f points more)",
				balancer.Name, 100*cs.GreenDropRate, against, 100*fleet.Rollout.Canary.MaxDropRateIncrease))
		}
	}
	res.Summary = fmt.Sprintf("%d%%: %s", weight, strings.Join(parts, "; "))
	if len(failures) > 0 {
		return res, fmt.Errorf("canary at %d%%: %s", weight, strings.Join(failures, "; "))
	}
	return res, nil
}

// delta is how many queries a backend got, and left unanswered, between
// two readings. A backend that was re-added in between starts again from
// zero, so a counter that went down counts from zero.
func delta(before, after []lb.BackendStats, addr string) (queries, drops uint64) {
	var b, a lb.BackendStats
	for _, s := range before {
		if s.Addr == addr {
			b = s
		}
	}
	for _, s := range after {
		if s.Addr == addr {
			a = s
		}
	}
	if a.Queries < b.Queries || a.Drops < b.Drops {
		b = lb.BackendStats{}
	}
	return a.Queries - b.Queries, a.Drops - b.Drops
}

func rate(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}
