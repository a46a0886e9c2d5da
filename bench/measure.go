package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// Lead and tail are steady load before a rollout starts and after it ends,
// so that both edges of the disturbance are inside the measurement.
const (
	lead = 2 * time.Second
	tail = 2 * time.Second
	// steadyFor is how long the steady scenario (no rollout) lasts.
	steadyFor = 10 * time.Second
)

// measure runs one scenario with a load through each of the loaded load
// balancers and returns one result per loaded load balancer and the series
// to plot. Every load balancer of the fleet switches; the loaded ones are
// the ones measured.
func (b *bench) measure(ctx context.Context, proto, scenario string, loaded []config.LoadBalancer) ([]Result, runPlot, error) {
	from, to := b.live, b.live
	if scenario != "steady" && !isInPlace(scenario) {
		var err error
		if to, err = b.newRevision(); err != nil {
			return nil, runPlot{}, err
		}
	}
	var names []string
	for _, lb := range loaded {
		names = append(names, lb.Driver)
	}
	through := strings.Join(names, " and ")
	fmt.Fprintf(b.out, "== %s %s, revision %s → %s, %d queries/s through %s\n", proto, scenario, from, to, b.opts.qps, through)
	addrs := map[string]string{}
	loads := map[string]*load{}
	defer func() {
		for _, l := range loads {
			_ = l.cmd.Process.Kill()
		}
	}()
	for _, lb := range loaded {
		addrs[lb.Name] = lb.Address
		l, err := startLoad(lb.Address, proto, b.opts.qps, b.queryFile, b.opts.timeout)
		if err != nil {
			return nil, runPlot{}, err
		}
		loads[lb.Name] = l
	}
	t0, loadAvg := time.Now(), loadAverage()
	fmt.Fprintf(b.out, "   load average %.2f\n", loadAvg)
	probes := startProber(addrs)
	time.Sleep(lead)

	var tl timeline
	var st workflows.Status
	var updates []int64
	runErr := ""
	switch {
	case scenario == "steady":
		time.Sleep(steadyFor)
		time.Sleep(tail)
	case isInPlace(scenario):
		// A failed update is reported, not fatal, as a failed rollout is.
		var err error
		if updates, st, err = b.updateInPlace(ctx, scenario, loaded[0]); err != nil {
			runErr = err.Error()
			fmt.Fprintf(b.out, "   the update did not go as planned: %v\n", err)
		}
		time.Sleep(tail)
	default:
		// A rollout that ends the wrong way is reported, not fatal: its
		// load still says what the clients saw.
		var err error
		if tl, st, err = b.disturb(ctx, proto, scenario, to); err != nil {
			runErr = err.Error()
			fmt.Fprintf(b.out, "   the rollout did not go as planned: %v\n", err)
			time.Sleep(tail)
		}
	}
	samples := probes.stop()

	plot := runPlot{Title: fmt.Sprintf("%s %s, revision %s to %s, %d queries/s through %s", proto, scenario, from, to, b.opts.qps, through), Start: t0, Timeline: tl}
	var results []Result
	for _, lb := range loaded {
		stats, err := loads[lb.Name].stop()
		delete(loads, lb.Name)
		raw := filepath.Join(b.opts.out, "out", fmt.Sprintf("%s-%s-%s.txt", proto, scenario, lb.Name))
		_ = os.WriteFile(raw, []byte(stats.Summary), 0o644)
		if err != nil {
			return nil, runPlot{}, fmt.Errorf("%s: %w", lb.Name, err)
		}
		r := newResult(lb, scenario, proto, b.opts, stats, tl)
		r.From, r.To, r.Outcome, r.Error, r.LoadAvg = from, to, string(st.Phase), runErr, loadAvg
		r.fillSwitch(samples[lb.Name], tl, from, to, scenario)
		r.fillCanary(st)
		r.UpdateMS = updates
		results = append(results, r)
		plot.Green, plot.Blue = laterOf(plot.Green, r.greenAt), laterOf(plot.Blue, r.blueAt)
		plot.Series = append(plot.Series, series{Driver: lb.Driver, Offset: stats.Start.Sub(t0), Seconds: stats.Seconds})
		what := "switch " + ms(r.SwitchMS)
		if isInPlace(scenario) {
			what = fmt.Sprintf("%d updates", len(updates))
		}
		fmt.Fprintf(b.out, "   %-8s sent %d, lost %d, failed %d, %s\n", lb.Driver, r.Sent, r.Lost, r.Failed, what)
	}
	switch {
	case scenario == "steady":
		return results, plot, nil
	case isInPlace(scenario):
		fmt.Fprintf(b.out, "   %d updates %s, each %s\n", len(updates), st.Phase, spread(updates))
		return results, plot, nil
	}
	fmt.Fprintf(b.out, "   rollout %s: wall %s, activities %s, bake timers %s, overhead %s\n", st.Phase,
		tl.Wall().Round(time.Millisecond), tl.Activities.Round(time.Millisecond), tl.Timers.Round(time.Millisecond), tl.Overhead().Round(time.Millisecond))
	return results, plot, nil
}

// disturb runs the scenario's rollout to revision to and waits until it
// has ended and the tail has passed.
func (b *bench) disturb(ctx context.Context, proto, scenario, to string) (timeline, workflows.Status, error) {
	run, err := rollouts.Start(ctx, b.client, workflows.RolloutInput{Fleet: b.fleet.Name, Revision: to, Reason: "bench: " + proto + " " + scenario, RequestedBy: "bench"})
	if err != nil {
		return timeline{}, workflows.Status{}, err
	}
	want := workflows.PhaseSucceeded
	switch scenario {
	case "rollback":
		want = workflows.PhaseRolledBack
		err = b.rollbackWhen(ctx, run, "every load balancer on green and baking", func(st workflows.Status) bool {
			return st.Phase == workflows.PhaseBaking && len(st.OnGreen) == len(b.fleet.LoadBalancers)
		})
	case "canary-rollback":
		want = workflows.PhaseRolledBack
		err = b.rollbackWhen(ctx, run, "the canary at 50%", func(st workflows.Status) bool {
			return st.Phase == workflows.PhaseCanary && st.GreenShare == 50
		})
	}
	if err != nil {
		return timeline{}, workflows.Status{}, err
	}
	st, err := b.wait(ctx, run)
	if st.Phase == workflows.PhaseSucceeded {
		b.live = to
	}
	if st.Phase != want {
		if st.Failure != "" {
			err = errors.New(st.Failure)
		}
		return timeline{}, st, fmt.Errorf("rollout ended %s, want %s: %v", st.Phase, want, err)
	}
	time.Sleep(tail)
	tl, err := readTimeline(ctx, b.client, run.WorkflowID, run.RunID)
	return tl, st, err
}

// rollbackWhen sends the rollback signal a second after the rollout's
// status first satisfies ready: the moment an operator would.
func (b *bench) rollbackWhen(ctx context.Context, run rollouts.Run, what string, ready func(workflows.Status) bool) error {
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := rollouts.Status(ctx, b.client, run)
		if err == nil && ready(st) {
			time.Sleep(time.Second)
			return rollouts.Signal(ctx, b.client, run, workflows.SignalRollback, workflows.SignalInput{Reason: "benchmark rollback", By: "bench"})
		}
		if err == nil && st.Phase.Done() {
			return fmt.Errorf("rollout ended (%s) before %s: %s", st.Phase, what, st.Failure)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("rollout never reached %s", what)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// loadAverage is the 1-minute load average, or 0 where there is none.
func loadAverage() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return 0
	}
	return l.Load1
}

// updateGap is the steady load between two updates, so that each one's
// disturbance has seconds of its own in the per-second series.
const updateGap = time.Second

// inplaceGroup is the load balancer an in-place scenario updates and
// loads: the fleet's first of its driver.
func (b *bench) inplaceGroup(scenario string) ([][]config.LoadBalancer, error) {
	s, _ := inplaceNamed(scenario)
	for _, balancer := range b.fleet.LoadBalancers {
		if balancer.Driver == s.driver {
			return [][]config.LoadBalancer{{balancer}}, nil
		}
	}
	return nil, fmt.Errorf("%s: the fleet has no %s load balancer", scenario, s.driver)
}

// updateInPlace makes the scenario's updates to balancer, one workflow run
// each, updateGap apart, and returns each one's time from its start until
// its end as the client saw them. The first that fails ends it: the
// workflow has restored that load balancer, and its status says why.
func (b *bench) updateInPlace(ctx context.Context, scenario string, balancer config.LoadBalancer) ([]int64, workflows.Status, error) {
	s, _ := inplaceNamed(scenario)
	dir := config.LabLBDir(b.labDir, balancer.Name)
	var took []int64
	var st workflows.Status
	for i := range s.updates {
		u, err := s.update(dir, i)
		if err != nil {
			return took, st, err
		}
		in := workflows.LBUpdateInput{
			FleetName: b.fleet.Name, LoadBalancers: []string{balancer.Name}, Update: u,
			Reason: fmt.Sprintf("bench: %s %d of %d", scenario, i+1, s.updates), RequestedBy: "bench",
		}
		began := time.Now()
		run, err := b.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.LBUpdateWorkflowID(b.fleet.Name), TaskQueue: workflows.TaskQueue, WorkflowExecutionErrorWhenAlreadyStarted: true,
		}, workflows.LoadBalancerUpdateWorkflow, in)
		if err != nil {
			return took, st, err
		}
		runErr := run.Get(ctx, &st)
		took = append(took, time.Since(began).Milliseconds())
		if runErr != nil {
			// A failed workflow returns no result; its query still answers.
			st, _ = rollouts.Status(ctx, b.client, rollouts.Run{WorkflowID: run.GetID(), RunID: run.GetRunID()})
			return took, st, fmt.Errorf("update %d of %d: %s: %w", i+1, s.updates, st.Phase, runErr)
		}
		time.Sleep(updateGap)
	}
	return took, st, nil
}
