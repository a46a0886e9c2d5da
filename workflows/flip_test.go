package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

// The promote is a flip of every load balancer, after green was staged
// beside blue; blue is released only once the rollout commits, before it is
// deleted.
func TestPromoteIsAFlipOfStagedGreen(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 5m, bake_interval: 1m}", "")
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	order := []string{"VerifyGreen", "Stage lb1 ns1-next", "Flip lb1 ns1-next:100,ns1:0", "VerifyLoadBalancers", "BakeCheck", "Switch lb1 ns1-next", "DeleteServer ns1"}
	h.wantInOrder(t, order...)
	if n := h.rec.count("Switch lb1 ns1-next"); n != 1 {
		t.Errorf("blue released %d times from lb1, want once: %v", n, h.rec.calls)
	}
	if st.GreenShare != 100 || strings.Join(st.OnGreen, ",") != "lb1,lb2" {
		t.Errorf("green share %d, on green %v; want 100 and both", st.GreenShare, st.OnGreen)
	}
}

// A rollback during the bake flips every load balancer back to blue at
// once, then releases green and deletes it. (That the flip back starts
// when the signal arrives, not when the analysis round it cancels returns,
// the test environment cannot show: it abandons a cancelled activity at
// once. make bench measures it on a real server.)
func TestRollbackDuringBakeIsAFlip(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
	signalAt(h.env, 10*time.Minute+30*time.Second, SignalRollback, SignalInput{Reason: "errors", By: "bob"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	back1, back2 := h.callIndex("Flip lb1 ns1-next:0,ns1:100"), h.callIndex("Flip lb2 ns2-next:0,ns2:100")
	release := h.callIndex("Switch lb1 ns1")
	del := h.callIndex("DeleteGreen")
	if back1 < 0 || back2 < 0 || !(back1 < release && back2 < release && release < del) {
		t.Errorf("want both flips back, then the release of green, then its deletion; calls %v", h.rec.calls)
	}
	if h.rec.count("Flip lb1 ns1-next:0") != 1 {
		t.Errorf("lb1 flipped back %d times, want once: %v", h.rec.count("Flip lb1 ns1-next:0"), h.rec.calls)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
		t.Errorf("load balancers on %s, want blue", got)
	}
	var flipBack *Step
	for _, s := range st.Steps {
		if s.Name == "FlipBackToBlue" {
			flipBack = s
		}
	}
	if flipBack == nil || flipBack.State != StepSucceeded {
		t.Fatalf("no successful FlipBackToBlue step in %+v", st.Steps)
	}
	if st.GreenShare != 0 || len(st.OnGreen) != 0 {
		t.Errorf("green share %d, on green %v after rollback", st.GreenShare, st.OnGreen)
	}
}

// A worker killed mid-flip leaves one load balancer flipped and the other
// not; the retried flip, on another worker, finishes the job, and every
// load balancer ends on one side.
func TestFlipResumesAfterWorkerDiesMidFlip(t *testing.T) {
	for _, tt := range []struct {
		name string
		// dies is how the first flip attempt of lb2 ends.
		dies func(h *harness) error
	}{
		{"between stage and flip", func(h *harness) error {
			// The worker died before lb2's flip did anything.
			return temporal.NewApplicationError("worker lost", activities.ErrStep)
		}},
		{"mid-flip", func(h *harness) error {
			// lb2 took the new split, then the worker died before
			// confirming it.
			h.rec.mu.Lock()
			h.rec.lbs["lb2"] = "ns2-next"
			h.rec.mu.Unlock()
			return temporal.NewApplicationError("worker lost", activities.ErrStep)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessWith(t, "rollout: {bake: 2m, bake_interval: 1m}", "")
			died := false
			h.rec.onFlip = func(in activities.FlipInput) error {
				if in.LB.Name == "lb2" && !died {
					died = true
					return tt.dies(h)
				}
				return nil
			}
			st, err := h.run(t)
			if err != nil {
				t.Fatalf("rollout failed: %v", err)
			}
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1-next,ns2-next" {
				t.Errorf("load balancers on %s, want both on green", got)
			}
			if n := h.rec.count("Flip lb2 ns2-next:100"); n != 2 {
				t.Errorf("lb2 flipped %d times, want a failed attempt and its retry: %v", n, h.rec.calls)
			}
			if st.Phase != PhaseSucceeded {
				t.Errorf("phase %s", st.Phase)
			}
		})
	}
}

// A flip that cannot finish rolls the rollout back: every load balancer
// flips back to blue, the one that did flip and the one that did not, so
// none is left half-switched.
// An abort that comes while a failure is being undone starts nothing of
// its own: the undo's flip back to blue is the only one. Before, the abort
// started a second flip back of every load balancer, racing the release of
// green, and the ended run's status showed those flips still running.
func TestAbortDuringTheUndoOfAFailureStartsNoSecondFlipBack(t *testing.T) {
	h := newHarness(t, "VerifyLoadBalancers", "FlipLoadBalancer")
	signalAt(h.env, 90*time.Minute, SignalAbort, SignalInput{Reason: "hurry", By: "ops"})
	st, err := h.run(t)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeRolledBack || st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "VerifyLoadBalancers exploded") {
		t.Errorf("err %v, phase %s: want rolled back for the failure", err, st.Phase)
	}
	if n := h.rec.count("Flip lb1 ns1-next:0"); n != 1 {
		t.Errorf("lb1 flipped back %d times, want once: %v", n, h.rec.calls)
	}
	for _, s := range st.Steps {
		if s.State == StepRunning {
			t.Errorf("step %s %s still running in the ended run's status", s.Name, s.Target)
		}
	}
}

func TestFailedFlipFlipsEveryLoadBalancerBack(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 2m, bake_interval: 1m}", "")
	h.rec.onFlip = func(in activities.FlipInput) error {
		if in.LB.Name == "lb2" && in.Shares[0].Weight == 100 {
			return temporal.NewNonRetryableApplicationError("dnsdist refused", activities.ErrInvalid, nil)
		}
		return nil
	}
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
		t.Errorf("load balancers on %s, want both back on blue", got)
	}
	if !h.rec.has("Flip lb1 ns1-next:0,ns1:100") || !h.rec.has("Flip lb2 ns2-next:0,ns2:100") || !h.rec.has("DeleteGreen") {
		t.Errorf("calls %v", h.rec.calls)
	}
	if !strings.Contains(st.Failure, "FlipLoadBalancer lb2 failed: dnsdist refused") {
		t.Errorf("failure %q", st.Failure)
	}
}

// canaryCounters makes the load balancers' counters grow as a flip's
// weights say, at 1,000 queries a minute, with greenDrops of green's lost.
type canaryCounters struct {
	h          *harness
	greenDrops float64
	weight     int
	since      time.Time
	total      map[string]*[2]lb.BackendStats
}

func (c *canaryCounters) install(t *testing.T) {
	c.total = map[string]*[2]lb.BackendStats{}
	c.h.rec.onFlip = func(in activities.FlipInput) error {
		c.advance()
		c.weight = in.Shares[0].Weight
		return nil
	}
	c.h.rec.counters = func(name string) []lb.BackendStats {
		c.advance()
		tot := c.counts(name)
		return []lb.BackendStats{tot[0], tot[1]}
	}
}

func (c *canaryCounters) counts(name string) *[2]lb.BackendStats {
	tot, ok := c.total[name]
	if !ok {
		fronts := map[string]string{"lb1": "1", "lb2": "2"}[name]
		tot = &[2]lb.BackendStats{{Addr: "192.0.2.9:53"}, {Addr: "192.0.2." + fronts + ":53"}}
		c.total[name] = tot
	}
	return tot
}

// advance adds the queries since the last reading at the current weight.
func (c *canaryCounters) advance() {
	now := c.h.env.Now()
	if !c.since.IsZero() {
		n := uint64(now.Sub(c.since).Minutes() * 1000)
		for _, name := range []string{"lb1", "lb2"} {
			tot := c.counts(name)
			g := n * uint64(c.weight) / 100
			tot[0].Queries += g
			tot[0].Drops += uint64(float64(g) * c.greenDrops)
			tot[1].Queries += n - g
		}
	}
	c.since = now
}

func TestCanaryStepsThroughItsWeights(t *testing.T) {
	h := newCanaryHarness(t)
	c := &canaryCounters{h: h}
	c.install(t)
	var shares []int
	for _, at := range []time.Duration{3 * time.Minute, 8 * time.Minute} {
		h.env.RegisterDelayedCallback(func() {
			v, _ := h.env.QueryWorkflow(QueryStatus)
			var st Status
			_ = v.Get(&st)
			shares = append(shares, st.GreenShare)
		}, at)
	}
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shares, []int{10, 50}) {
		t.Errorf("green share seen at 3m and 8m: %v, want [10 50]", shares)
	}
	if len(st.Canary) != 2 {
		t.Fatalf("canary results %+v", st.Canary)
	}
	for i, want := range []float64{10, 50} {
		for _, s := range st.Canary[i].LoadBalancers {
			if s.Measured < want-0.5 || s.Measured > want+0.5 {
				t.Errorf("step %d %s: measured %.2f%% on green, want %.0f%%", i, s.LB, s.Measured, want)
			}
		}
	}
	order := []string{"Flip lb1 ns1-next:10,ns1:90", "Flip lb1 ns1-next:50,ns1:50", "Flip lb1 ns1-next:100,ns1:0", "DeleteServer ns1"}
	h.wantInOrder(t, order...)
	if st.GreenShare != 100 {
		t.Errorf("green share %d at the end", st.GreenShare)
	}
}

// A rollback at 50% is one flip back to blue.
func TestCanaryRollbackAt50(t *testing.T) {
	h := newCanaryHarness(t)
	c := &canaryCounters{h: h}
	c.install(t)
	signalAt(h.env, 8*time.Minute, SignalRollback, SignalInput{Reason: "latency"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if h.rec.has("Flip lb1 ns1-next:100") || !h.rec.has("Flip lb1 ns1-next:0,ns1:100") {
		t.Errorf("calls %v", h.rec.calls)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" || st.GreenShare != 0 {
		t.Errorf("load balancers on %s, green share %d", got, st.GreenShare)
	}
}

// Green losing more queries than blue, as the load balancers count them,
// fails the step and rolls back.
func TestCanaryJudgesGreenByLoadBalancerCounters(t *testing.T) {
	h := newCanaryHarness(t)
	c := &canaryCounters{h: h, greenDrops: 0.05}
	c.install(t)
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if !strings.Contains(st.Failure, "canary at 10%") || !strings.Contains(st.Failure, "green left 5.00% of its queries unanswered, blue 0.00%") {
		t.Errorf("failure %q", st.Failure)
	}
	if h.rec.has("Flip lb1 ns1-next:50") || h.rec.has("DeleteServer") {
		t.Errorf("went on after a failed step: %v", h.rec.calls)
	}
}

const canaryRollout = "rollout: {strategy: canary, canary: {steps: [{weight: 10, duration: 5m}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}"

// newCanaryHarness runs a canary on dnsdist load balancers: a canary
// refuses nginx ones, which cannot count per backend.
func newCanaryHarness(t *testing.T) *harness {
	t.Helper()
	return newCanaryHarnessWith(t, canaryRollout)
}

// canaryFleet is one load balancer lb1 in front of ns1, allowing green 1
// point more drops than blue, with blue ns1 and green ns1-next.
func canaryFleet() (*config.Fleet, map[string]dnsroll.Server, map[string]dnsroll.Server) {
	fleet := &config.Fleet{LoadBalancers: []config.LoadBalancer{{Name: "lb1", Fronts: config.Labels{"ns1"}}}}
	fleet.Rollout.Canary.MaxDropRateIncrease = 0.01
	return fleet, map[string]dnsroll.Server{"ns1": {IPv4: "192.0.2.1", DNSPort: 53}}, map[string]dnsroll.Server{"ns1": {IPv4: "192.0.2.9", DNSPort: 53}}
}

// At a high weight blue has few queries: its drop rate says nothing, and
// green is judged against none lost. Before, a green that lost every
// query passed beside a blue that lost its one.
func TestJudgeCanaryWithFewBlueQueries(t *testing.T) {
	fleet, blue, green := canaryFleet()
	after := map[string][]lb.BackendStats{"lb1": {{Addr: "192.0.2.9:53", Queries: 9900, Drops: 9900}, {Addr: "192.0.2.1:53", Queries: 1, Drops: 1}}}
	res, err := judgeCanaryWith(fleet, blue, green, 99, nil, after, true)
	if err == nil || !strings.Contains(res.Summary, "blue had 1 queries") || !strings.Contains(err.Error(), "against none lost") {
		t.Errorf("green lost every query beside a blue of one lost query: err %v, summary %q", err, res.Summary)
	}
	after["lb1"][0].Drops = 50 // 0.5%: within the allowed point
	if _, err := judgeCanaryWith(fleet, blue, green, 99, nil, after, true); err != nil {
		t.Errorf("0.5%% lost beside a blue too small to judge: %v", err)
	}
	after["lb1"][0].Drops = 9900
	if _, err := judgeCanaryWith(fleet, blue, green, 99, nil, after, false); err != nil {
		t.Errorf("runs from before versionCanaryBlueSample judge as they did: %v", err)
	}
	// From minJudgedQueries on, blue's own rate is the baseline.
	after["lb1"][1] = lb.BackendStats{Addr: "192.0.2.1:53", Queries: minJudgedQueries, Drops: minJudgedQueries / 10}
	after["lb1"][0].Drops = 1000 // 10.1%: within a point of blue's 10%
	if _, err := judgeCanaryWith(fleet, blue, green, 98, nil, after, true); err != nil {
		t.Errorf("green judged against none lost beside a blue of %d queries: %v", minJudgedQueries, err)
	}
}

func TestJudgeCanaryIgnoresTooFewQueries(t *testing.T) {
	fleet, blue, green := canaryFleet()
	after := map[string][]lb.BackendStats{"lb1": {{Addr: "192.0.2.9:53", Queries: 50, Drops: 10}, {Addr: "192.0.2.1:53", Queries: 5000}}}
	res, err := judgeCanary(fleet, blue, green, 1, nil, after)
	if err != nil {
		t.Errorf("judged 50 queries: %v", err)
	}
	if m := res.LoadBalancers[0].Measured; m < 0.98 || m > 1 {
		t.Errorf("measured %.3f%%", m)
	}
	// The summary shows green's 20% drops: it says why they passed.
	if !strings.Contains(res.Summary, "not judged: green had 50 queries, fewer than 200") {
		t.Errorf("summary %q does not say the drop rate was not judged", res.Summary)
	}
	after["lb1"][0] = lb.BackendStats{Addr: "192.0.2.9:53", Queries: 500, Drops: 10}
	if _, err := judgeCanary(fleet, blue, green, 10, nil, after); err == nil {
		t.Error("2% of 500 queries lost on green passed")
	}
	// A backend re-added between readings counts from zero.
	before := map[string][]lb.BackendStats{"lb1": {{Addr: "192.0.2.9:53", Queries: 9000, Drops: 9000}}}
	if _, err := judgeCanary(fleet, blue, green, 10, before, map[string][]lb.BackendStats{"lb1": {{Addr: "192.0.2.9:53", Queries: 300}}}); err != nil {
		t.Errorf("counter reset: %v", err)
	}
}

// Green fails a step when its drop rate exceeds blue's by more than
// max_drop_rate_increase, and passes at that increase exactly; counters
// read across a backend's re-adding count from zero, though only one of
// them went down.
func TestJudgeCanaryDropRates(t *testing.T) {
	fleet, blue, green := canaryFleet()
	for _, tt := range []struct {
		name          string
		before, after lb.BackendStats
		fails         bool
	}{
		{"at the allowed increase", lb.BackendStats{}, lb.BackendStats{Queries: 1000, Drops: 10}, false},
		{"over it", lb.BackendStats{}, lb.BackendStats{Queries: 1000, Drops: 11}, true},
		// Re-added after the first reading: 300 queries since, 10 lost
		// (3.3%), though its drops did not go down. Subtracted from the
		// old reading, the queries wrapped round and the rate was nil.
		{"queries counted again from zero", lb.BackendStats{Queries: 1000}, lb.BackendStats{Queries: 300, Drops: 10}, true},
		{"drops counted again from zero", lb.BackendStats{Queries: 1000, Drops: 50}, lb.BackendStats{Queries: 1300, Drops: 1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.before.Addr, tt.after.Addr = "192.0.2.9:53", "192.0.2.9:53"
			blueStats := lb.BackendStats{Addr: "192.0.2.1:53", Queries: 9000}
			before := map[string][]lb.BackendStats{"lb1": {tt.before, blueStats}}
			after := map[string][]lb.BackendStats{"lb1": {tt.after, {Addr: "192.0.2.1:53", Queries: 18000}}}
			res, err := judgeCanaryWith(fleet, blue, green, 10, before, after, true)
			if (err != nil) != tt.fails {
				t.Errorf("err %v, want failed %v; summary %q", err, tt.fails, res.Summary)
			}
		})
	}
}

// A fleet's first rollout has no blue: a canary there would compare green
// with nothing and send green all the queries at every step's weight. The
// steps are skipped, saying so, and the switch is all at once.
func TestFirstRolloutSkipsTheCanary(t *testing.T) {
	h := newCanaryHarness(t)
	clear(h.blue)
	st, err := h.run(t)
	if err != nil || st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s (%v), want succeeded", st.Phase, err)
	}
	if slices.Contains(h.rec.calls, "Flip lb1 ns1-next:10") || h.rec.has("Flip lb1 ns1-next:50") || len(st.Canary) != 0 || h.rec.has("Stats") {
		t.Errorf("ran canary steps with no blue: calls %v, results %+v", h.rec.calls, st.Canary)
	}
	if !strings.Contains(eventsText(st), "canary skipped: with no blue server") {
		t.Errorf("no event says why the canary was skipped: %s", eventsText(st))
	}
	h.wantInOrder(t, "Flip lb1 ns1-next:100", "VerifyLoadBalancers", "RenameServer ns1-next ns1")
}

// dnsdist load balancers are staged one at a time, since a stage may
// restart dnsdist; nginx ones, which reload gracefully, all at once, and
// first. A failed stage stops the others from starting.
func TestDnsdistLoadBalancersStageInTurn(t *testing.T) {
	stages := func(st Status) map[string]Step { return stepsByTarget(st, "StageLoadBalancer") }
	h := newHarnessFleet(t, lbFleet, "", "StageLoadBalancer")
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if s := stages(st); len(s) != 2 || s["lb2"].StartedAt.Before(s["lb1"].EndedAt) {
		t.Errorf("dnsdist stages %v: want lb2's to start once lb1's has ended", s)
	}

	h = newHarnessFleet(t, labFleet, "", "StageLoadBalancer")
	if st, err = h.run(t); err != nil {
		t.Fatal(err)
	}
	if s := stages(st); len(s) != 2 || !s["lb2"].StartedAt.Equal(s["lb1"].StartedAt) {
		t.Errorf("nginx stages %v: want both to start at once", s)
	}

	// In a fleet of both, an nginx load balancer listed after a dnsdist
	// one does not wait for that one's stage.
	mixed := strings.Replace(lbFleet, `fronts: ns2, driver: dnsdist}`, `fronts: ns2, driver: nginx}`, 1)
	h = newHarnessFleet(t, mixed, "", "StageLoadBalancer")
	if st, err = h.run(t); err != nil {
		t.Fatal(err)
	}
	if s := stages(st); len(s) != 2 || s["lb2"].StartedAt.After(s["lb1"].StartedAt) {
		t.Errorf("stages of dnsdist lb1 and nginx lb2 %v: want lb2's to start no later than lb1's", s)
	}
	// A run begun before that change keeps the listed order on replay.
	h = newHarnessFleet(t, mixed, "", "StageLoadBalancer")
	h.env.OnGetVersion(versionStageInTurn, workflow.DefaultVersion, 2).Return(workflow.Version(1))
	if st, err = h.run(t); err != nil {
		t.Fatal(err)
	}
	if s := stages(st); len(s) != 2 || s["lb2"].StartedAt.Before(s["lb1"].EndedAt) {
		t.Errorf("version 1: stages %v; want lb2's to start once lb1's has ended, as listed", s)
	}

	h = newHarnessFleet(t, lbFleet, "StageLoadBalancer")
	_, err = h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if h.rec.count("Stage lb1") != 1 || h.rec.count("Stage lb2") != 0 {
		t.Errorf("after lb1's stage failed: calls %v; want lb2 never staged", h.rec.calls)
	}
	// The undo releases green where a stage began, and leaves lb2, which
	// never knew green, alone: pointing it would restart its dnsdist on
	// new settings beside lb1's.
	if h.rec.count("Switch lb1 ns1") != 1 || h.rec.count("Switch lb2") != 0 {
		t.Errorf("the undo after lb1's stage failed: calls %v; want green released from lb1 alone", h.rec.calls)
	}
	if h.callIndex("DeleteGreen") < 0 {
		t.Errorf("calls %v: want green deleted", h.rec.calls)
	}
}

// A switch back to blue may restart dnsdist too: a cleanup-only run after
// an upgrade of dnsroll that changed dnsdist's settings points load
// balancers that never saw them. So the undo switches dnsdist load
// balancers one at a time, as the stage does, and goes on to the next when
// one fails; nginx's reload is graceful, and they all switch at once.
func TestDnsdistLoadBalancersSwitchBackInTurn(t *testing.T) {
	cleanup := RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}}
	switches := func(st Status) map[string]Step { return stepsByTarget(st, "SwitchBackToBlue") }
	h := newHarnessFleet(t, lbFleet, "", "SwitchLoadBalancer")
	st, err := h.runInput(t, cleanup)
	if err != nil {
		t.Fatal(err)
	}
	if s := switches(st); len(s) != 2 || s["lb2"].StartedAt.Before(s["lb1"].EndedAt) {
		t.Errorf("dnsdist switches back to blue %v: want lb2's to start once lb1's has ended", s)
	}

	h = newHarnessFleet(t, labFleet, "", "SwitchLoadBalancer")
	if st, err = h.runInput(t, cleanup); err != nil {
		t.Fatal(err)
	}
	if s := switches(st); len(s) != 2 || !s["lb2"].StartedAt.Equal(s["lb1"].StartedAt) {
		t.Errorf("nginx switches back to blue %v: want both to start at once", s)
	}

	// One that fails (lb2's, listed first here) does not keep the next on
	// green.
	lb1, lb2 := `{name: lb1, address: "198.51.100.1:53", fronts: ns1, driver: dnsdist}`, `{name: lb2, address: "198.51.100.2:53", fronts: ns2, driver: dnsdist}`
	h = newHarnessFleet(t, strings.NewReplacer(lb1, lb2, lb2, lb1).Replace(lbFleet), "SwitchBackToBlue")
	h.rec.lbs["lb1"], h.rec.lbs["lb2"] = "ns1-next", "ns2-next"
	if _, err = h.runInput(t, cleanup); err == nil {
		t.Fatal("the cleanup succeeded though lb2's switch back failed")
	}
	if h.rec.count("Switch lb1 ns1") == 0 || h.callIndex("Switch lb1 ns1") < h.callIndex("Switch lb2 ns2") {
		t.Errorf("after lb2's switch back failed: calls %v; want lb1 switched back after it", h.rec.calls)
	}
}

// stepsByTarget are st's steps called name, by target; a later one with a
// target replaces an earlier.
func stepsByTarget(st Status, name string) map[string]Step {
	out := map[string]Step{}
	for _, s := range st.Steps {
		if s.Name == name {
			out[s.Target] = *s
		}
	}
	return out
}

// Switches back to blue made in turn share the cleanup's time: a load
// balancer that does not answer gets at most switch_timeout and its share
// of what is left, so the next one starts in time and the round ends by
// steps.cleanup_timeout, where each once got the whole budget in turn.
func TestSwitchesBackInTurnShareTheCleanupTime(t *testing.T) {
	for _, tc := range []struct {
		steps string
		want  []time.Duration
	}{
		// lb1 half the time left, lb2 (here at once) the rest.
		{"steps: {switch_timeout: 5m, cleanup_timeout: 4m}\n", []time.Duration{2 * time.Minute, 4 * time.Minute}},
		// No more than a switch gets.
		{"steps: {switch_timeout: 1m, cleanup_timeout: 1h}\n", []time.Duration{time.Minute, time.Minute}},
	} {
		h := newHarnessFleet(t, lbFleet+tc.steps, "")
		var budgets []time.Duration
		h.env.SetOnActivityStartedListener(func(info *activity.Info, ctx context.Context, args converter.EncodedValues) {
			h.rec.checkFleetArg(info, ctx, args)
			if info.ActivityType.Name == "SwitchLoadBalancer" {
				budgets = append(budgets, info.ScheduleToCloseTimeout)
			}
		})
		if _, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}}); err != nil {
			t.Fatal(err)
		}
		if len(budgets) != 2 || budgets[0] > tc.want[0] || budgets[1] > tc.want[1] {
			t.Errorf("%s: the switches back got %v; want at most %v", strings.TrimSpace(tc.steps), budgets, tc.want)
		}
	}
}

// steps.cleanup_timeout bounds the whole cleanup, the flip back that a
// rollback signal starts at once included: before, that flip had three
// times steps.switch_timeout, and a cleanup of 40s took over two minutes.
func TestRollbackFlipBackWithinTheCleanupTimeout(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}\nsteps: {switch_timeout: 2m, cleanup_timeout: 40s}", "")
	h.rec.onFlip = func(in activities.FlipInput) error {
		for _, sh := range in.Shares {
			if in.LB.Name == "lb2" && strings.HasSuffix(sh.Server.Label, "-next") && sh.Weight == 0 {
				return errors.New("dnsdist console: connection refused")
			}
		}
		return nil
	}
	var signalled time.Time
	h.env.RegisterDelayedCallback(func() {
		signalled = h.env.Now()
		h.env.SignalWorkflow(SignalRollback, SignalInput{Reason: "bad answers", By: "alice"})
	}, 3*time.Minute)
	_, _ = h.run(t)
	if took := h.env.Now().Sub(signalled); signalled.IsZero() || took > 90*time.Second {
		t.Errorf("the cleanup after the rollback took %s, want about steps.cleanup_timeout (40s)", took)
	}
}

// newCanaryHarnessWith runs the canary of newCanaryHarness with rollout
// settings of its own.
func newCanaryHarnessWith(t *testing.T, rollout string) *harness {
	t.Helper()
	text := strings.Replace(labFleet, "rollout: {bake: 0s}", rollout, 1)
	text = strings.ReplaceAll(text, "fronts: ns1}", "fronts: ns1, driver: dnsdist}")
	text = strings.ReplaceAll(text, "fronts: ns2}", "fronts: ns2, driver: dnsdist}")
	return newHarnessFleet(t, text, "")
}

// A canary step with approve: true holds green at its weight once its
// analysis passed, awaiting approval, until an approve signal; an approve
// sent before the hold does not count.
func TestCanaryStepHoldsForApproval(t *testing.T) {
	h := newCanaryHarnessWith(t, "rollout: {strategy: canary, canary: {steps: [{weight: 10, duration: 5m, approve: true}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}")
	c := &canaryCounters{h: h}
	c.install(t)
	var held Status
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		held = temporaltest.Value[Status](t, v, err)
	}, 2*time.Hour)
	signalAt(h.env, 3*time.Minute, SignalApprove, SignalInput{By: "early"})
	signalAt(h.env, 3*time.Hour, SignalApprove, SignalInput{By: "ana"})
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if held.Phase != PhaseAwaitingApproval || held.GreenShare != 10 {
		t.Errorf("two hours in: phase %s, green share %d; want awaiting approval at 10%%", held.Phase, held.GreenShare)
	}
	h.wantInOrder(t, "Flip lb1 ns1-next:10,ns1:90", "Flip lb1 ns1-next:50,ns1:50", "Flip lb1 ns1-next:100,ns1:0", "DeleteServer ns1")
	var gates []string
	for _, s := range st.Steps {
		if s.Name == "AwaitApproval" {
			gates = append(gates, s.Target)
		}
	}
	if !slices.Equal(gates, []string{"canary 10%"}) {
		t.Errorf("approval gates %q, want one after the 10%% step", gates)
	}
	if !strings.Contains(eventsText(st), "approve ignored") || !strings.Contains(eventsText(st), "approved by ana") {
		t.Errorf("events %q: want the early approve ignored and ana's taken", eventsText(st))
	}
}

// Without approval within rollout.approval_timeout, a canary held at its
// weight rolls back: one flip to blue, green deleted.
func TestCanaryHoldRollsBackWithoutApproval(t *testing.T) {
	h := newCanaryHarnessWith(t, "rollout: {strategy: canary, approval_timeout: 1h, canary: {steps: [{weight: 10, duration: 5m, approve: true}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}")
	c := &canaryCounters{h: h}
	c.install(t)
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if h.rec.has("Flip lb1 ns1-next:50") || !h.rec.has("Flip lb1 ns1-next:0,ns1:100") || h.callIndex("DeleteGreen") < 0 {
		t.Errorf("calls %v; want a flip back to blue from 10%% and green deleted", h.rec.calls)
	}
	if st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "not approved within 1h0m0s") {
		t.Errorf("phase %s, failure %q; want rolled back for want of approval", st.Phase, st.Failure)
	}
}

// A fleet's first rollout skips the canary, and with it the steps' holds
// for approval; where the fleet asked for one, it holds once before the
// switch instead, where an abort is still possible: past it there is no
// way back. Before, it switched without asking.
func TestFirstRolloutHoldsOnceWhereTheCanaryWouldHave(t *testing.T) {
	holds := "rollout: {strategy: canary, approval_timeout: 1h, canary: {steps: [{weight: 10, duration: 5m, approve: true}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}"
	t.Run("approved", func(t *testing.T) {
		h := newCanaryHarnessWith(t, holds)
		clear(h.blue)
		signalAt(h.env, 30*time.Minute, SignalApprove, SignalInput{By: "ana"})
		st, err := h.run(t)
		if err != nil || st.Phase != PhaseSucceeded {
			t.Fatalf("phase %s (%v), want succeeded", st.Phase, err)
		}
		var gates []*Step
		for _, s := range st.Steps {
			if s.Name == "AwaitApproval" {
				gates = append(gates, s)
			}
		}
		if len(gates) != 1 || gates[0].EndedAt.Sub(st.StartedAt) < 30*time.Minute {
			t.Fatalf("approval gates %+v: want one, passed at ana's approve", gates)
		}
		if !strings.Contains(eventsText(st), "one hold for approval before the switch") {
			t.Errorf("events %q do not say the holds became one before the switch", eventsText(st))
		}
		h.wantInOrder(t, "Flip lb1 ns1-next:100", "VerifyLoadBalancers")
	})
	t.Run("not approved", func(t *testing.T) {
		h := newCanaryHarnessWith(t, holds)
		clear(h.blue)
		st, err := h.run(t)
		wantErrType(t, err, ErrTypeAborted)
		if h.rec.has("Flip lb1") || h.callIndex("DeleteGreen") < 0 {
			t.Errorf("calls %v: want green deleted, no load balancer flipped", h.rec.calls)
		}
		if st.NoWayBack != "" {
			t.Errorf("no_way_back %q: the rollout stopped before it", st.NoWayBack)
		}
	})
}

// With approval: manual, a fleet's first rollout has held for approval
// already; its canary's holds add none: one approve is enough, where a
// second hold would wait for an approve nobody is asked for and roll back.
func TestFirstRolloutWithManualApprovalHoldsOnce(t *testing.T) {
	h := newCanaryHarnessWith(t, "rollout: {strategy: canary, approval: manual, approval_timeout: 1h, canary: {steps: [{weight: 10, duration: 5m, approve: true}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}")
	clear(h.blue)
	signalAt(h.env, 30*time.Minute, SignalApprove, SignalInput{By: "ana"})
	st, err := h.run(t)
	if err != nil || st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s (%v), want succeeded on one approve", st.Phase, err)
	}
	if gates := countSteps(st, "AwaitApproval"); gates != 1 {
		t.Errorf("%d approval gates, want the one of approval: manual", gates)
	}
}
