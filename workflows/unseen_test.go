package workflows

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// lbsOn says where every load balancer of the harness points.
func (h *harness) lbsOn(names ...string) string {
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	var out []string
	for _, n := range names {
		out = append(out, n+"="+h.rec.lbs[n])
	}
	return strings.Join(out, ",")
}

// A second abort neither starts a second undo nor replaces the first's reason.
func TestUnseenAbortTwice(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "first", By: "alice"})
	signalAt(h.env, 2*time.Minute, SignalAbort, SignalInput{Reason: "second", By: "bob"})
	st := h.runFails(t, ErrTypeAborted, "aborted by alice: first")
	if strings.Contains(st.Failure, "second") || h.rec.count("DeleteGreen") != 1 && h.rec.count("DeleteGreen") != 2 {
		t.Errorf("failure %q, calls %v", st.Failure, h.rec.calls)
	}
	if h.rec.has("Flip") || h.rec.has("Switch") || h.rec.has("Stage") {
		t.Errorf("load balancers touched by an abort before staging: %v", h.rec.calls)
	}
}

// A rollback during the bake, then an abort: the rollback's outcome stands.
func TestUnseenRollbackThenAbort(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
	signalAt(h.env, 10*time.Minute, SignalRollback, SignalInput{Reason: "errors", By: "bob"})
	signalAt(h.env, 10*time.Minute+time.Second, SignalAbort, SignalInput{Reason: "also", By: "carol"})
	st := h.runFails(t, ErrTypeRolledBack, "rolled back by bob: errors")
	if st.StoppedBy != SignalRollback || h.lbsOn("lb1", "lb2") != "lb1=ns1,lb2=ns2" || !h.rec.has("DeleteGreen") || h.rec.has("DeleteServer") {
		t.Errorf("stopped by %q, lbs %s, calls %v", st.StoppedBy, h.lbsOn("lb1", "lb2"), h.rec.calls)
	}
	if n := h.rec.count("Flip lb1 ns1-next:0"); n != 1 {
		t.Errorf("%d flips of lb1 back to blue, want 1: %v", n, h.rec.calls)
	}
}

// An abort before any step ran (during Plan) creates nothing and undoes nothing.
func TestUnseenAbortAtTheStart(t *testing.T) {
	h := newHarness(t, "")
	signalAt(h.env, 0, SignalAbort, SignalInput{Reason: "oops"})
	st := h.runFails(t, ErrTypeAborted, "aborted: oops")
	if h.rec.has("EnsureServer") || h.rec.has("Stage") || h.rec.has("Flip") {
		t.Errorf("an abort at the start still created or switched: %v", h.rec.calls)
	}
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s", st.Phase)
	}
}

// An approve sent before the gate opens is not kept for it: the gate still
// times out, and the outcome names the timeout, not an abort by anyone.
func TestUnseenApproveBeforeTheGateIsNotKept(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 2h, bake: 0s}", "", "ProvisionNameservers")
	signalAt(h.env, time.Minute, SignalApprove, SignalInput{By: "eager"})
	st := h.runFails(t, ErrTypeAborted, "not approved within 2h0m0s")
	if h.rec.has("Flip") || !strings.Contains(eventsText(st), "approve ignored") || st.StoppedBy != "" {
		t.Errorf("calls %v events %q stopped by %q", h.rec.calls, eventsText(st), st.StoppedBy)
	}
}

// An approve after the gate timed out changes nothing: still an approval
// timeout, green released and deleted, nothing flipped.
func TestUnseenApproveAfterTimeout(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 2h, bake: 0s}", "")
	signalAt(h.env, 2*time.Hour+time.Millisecond, SignalApprove, SignalInput{By: "late"})
	st := h.runFails(t, ErrTypeAborted, "not approved within 2h0m0s")
	if h.rec.has("Flip") || h.rec.has("DeleteServer") || !h.rec.has("DeleteGreen") || h.lbsOn("lb1", "lb2") != "lb1=ns1,lb2=ns2" {
		t.Errorf("calls %v lbs %s", h.rec.calls, h.lbsOn("lb1", "lb2"))
	}
	if st.StoppedBy != "" || strings.Contains(st.Failure, "late") {
		t.Errorf("stopped by %q failure %q", st.StoppedBy, st.Failure)
	}
}

// approval: each, an abort at the second gate (lb1 already on green): the
// traffic came back, so it is rolled back, every load balancer on blue.
func TestUnseenAbortAtTheSecondGate(t *testing.T) {
	h := newHarnessWith(t, "rollout: {strategy: one-at-a-time, approval: each, approval_timeout: 24h, bake: 10m, bake_interval: 5m}", "")
	signalAt(h.env, time.Hour, SignalApprove, SignalInput{By: "a", Gate: 1})
	signalAt(h.env, 3*time.Hour, SignalAbort, SignalInput{Reason: "lb1 looks bad", By: "b"})
	st := h.runFails(t, ErrTypeRolledBack, "lb1 looks bad")
	if st.Phase != PhaseRolledBack || h.lbsOn("lb1", "lb2") != "lb1=ns1,lb2=ns2" || h.rec.has("Flip lb2 ns2-next:100") || h.rec.has("DeleteServer") {
		t.Errorf("phase %s lbs %s calls %v", st.Phase, h.lbsOn("lb1", "lb2"), h.rec.calls)
	}
}

// An abort, then a rollback, while blue is being deleted: both rejected,
// nothing undone, and the rollout finishes.
func TestUnseenStopsDuringTheDeletionOfBlue(t *testing.T) {
	h := newHarness(t, "", "DeleteServer")
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{})
	signalAt(h.env, 2*time.Minute, SignalRollback, SignalInput{})
	st, err := h.run(t)
	ev := eventsText(st)
	if err != nil || st.Phase != PhaseSucceeded || h.rec.has("DeleteGreen") || !strings.Contains(ev, "abort rejected") || !strings.Contains(ev, "rollback rejected") {
		t.Errorf("err %v phase %s calls %v events %q", err, st.Phase, h.rec.calls, ev)
	}
}

var threeLBFleet = strings.Replace(fleettest.YAML("test", "127.0.0.1:5301", "127.0.0.1:5302"), "zones:",
	"  - {name: lb3, address: \"127.0.0.1:5303\", fronts: ns1}\nzones:", 1) + "ansible: {connection: local}\n"

// one-at-a-time over three load balancers, an abort while lb2 of 3 flips:
// all three end on blue (lb2's flip may have half happened), lb3 never
// moved, green deleted, and the outcome is a rollback.
func TestUnseenAbortDuringTheFlipOfLB2Of3(t *testing.T) {
	h := newHarnessFleet(t, threeLBFleet+"rollout: {strategy: one-at-a-time, bake: 10m, bake_interval: 5m}\n", "")
	h.rec.lbs["lb3"] = "ns1"
	h.rec.slowFlipTo = "lb2"
	signalAt(h.env, 40*time.Minute, SignalAbort, SignalInput{Reason: "stop", By: "op"})
	st := h.runFails(t, ErrTypeRolledBack, "stop")
	if got := h.lbsOn("lb1", "lb2", "lb3"); got != "lb1=ns1,lb2=ns2,lb3=ns1" {
		t.Errorf("lbs %s, want all on blue; calls %v", got, h.rec.calls)
	}
	if h.rec.has("Flip lb3 ns1-next:100") || h.rec.has("DeleteServer") || !h.rec.has("DeleteGreen") {
		t.Errorf("calls %v", h.rec.calls)
	}
	if len(st.OnGreen) != 0 || st.GreenShare != 0 || st.Phase != PhaseRolledBack {
		t.Errorf("on green %v share %d phase %s", st.OnGreen, st.GreenShare, st.Phase)
	}
}

// A step that keeps failing with an error a retry may fix: an abort during
// its retries stops it at once, and the outcome is the abort, with blue
// untouched and green deleted.
func TestUnseenAbortDuringRetries(t *testing.T) {
	h := newHarness(t, "ProvisionNameservers")
	h.rec.retryable = true
	signalAt(h.env, 2*time.Minute, SignalAbort, SignalInput{Reason: "give up", By: "op"})
	st := h.runFails(t, ErrTypeAborted, "aborted by op: give up")
	if n := h.rec.count("ProvisionNameservers"); n < 2 {
		t.Errorf("%d attempts before the abort, want retries", n)
	}
	if !h.rec.has("DeleteGreen") || h.rec.has("Flip") || st.EndedAt.Sub(st.StartedAt) > time.Hour {
		t.Errorf("calls %v, took %s", h.rec.calls, st.EndedAt.Sub(st.StartedAt))
	}
}

// A step whose every attempt fails with an error a retry may fix gives up
// at its deadline (the test environment does not say why retries ended;
// reason_live_test checks the wording on a real server); the outcome names
// the step, and the load
// balancers end where the outcome says.
func TestUnseenRetryableFailureAtEachStep(t *testing.T) {
	for _, tt := range []struct {
		step, target string
		typ          string
		phase        Phase
		blue         bool
		says         string
	}{
		{"EnsureServer", "ns1-next", ErrTypeFailed, PhaseFailed, true, ""},
		{"ProvisionNameservers", "green", ErrTypeFailed, PhaseFailed, true, ""},
		{"VerifyGreen", "ns1-next,ns2-next", ErrTypeFailed, PhaseFailed, true, ""},
		{"StageLoadBalancer", "lb1", ErrTypeFailed, PhaseFailed, true, ""},
		{"FlipLoadBalancer", "lb1", ErrTypeRolledBack, PhaseRolledBack, true, "rolled back automatically"},
		{"VerifyLoadBalancers", "lb1,lb2", ErrTypeRolledBack, PhaseRolledBack, true, "rolled back automatically"},
		{"BakeCheck", "", ErrTypeRolledBack, PhaseRolledBack, true, "rolled back automatically"},
		{"RenameServer", "ns1-next", ErrTypeFailed, PhaseFailed, false, "failed after the point of no return"},
	} {
		t.Run(tt.step, func(t *testing.T) {
			h := newHarnessWith(t, "rollout: {bake: 5m, bake_interval: 1m}", tt.step)
			h.rec.retryable = true
			st, err := h.run(t)
			wantErrType(t, err, tt.typ)
			if st.Phase != tt.phase || !strings.Contains(st.Failure, tt.says) {
				t.Errorf("phase %s failure %q", st.Phase, st.Failure)
			}
			step := tt.step
			if step == "BakeCheck" {
				step = "Bake"
			}
			if !strings.HasPrefix(st.Failure, step+" "+tt.target) {
				t.Errorf("failure %q does not begin with the step %s %s", st.Failure, step, tt.target)
			}
			want := "lb1=ns1,lb2=ns2"
			if !tt.blue {
				want = "lb1=ns1-next,lb2=ns2-next"
			}
			if got := h.lbsOn("lb1", "lb2"); got != want {
				t.Errorf("lbs %s, want %s", got, want)
			}
			if tt.blue != h.rec.has("DeleteGreen") || tt.blue == h.rec.has("DeleteServer") {
				t.Errorf("calls %v", h.rec.calls)
			}
			if n := h.rec.count("EnsureServer ns1-next"); tt.step != "EnsureServer" && n != 1 {
				t.Errorf("ns1-next created %d times", n)
			}
		})
	}
}

// A step whose worker stops heartbeating fails at the heartbeat timeout,
// and the outcome says so.
func TestUnseenHeartbeatTimeout(t *testing.T) {
	h := newHarnessFleet(t, labFleet+"steps: {heartbeat_timeout: 1s, max_attempts: 1}\n", "Hang")
	h.env.SetTestTimeout(time.Minute)
	st := h.runFails(t, ErrTypeFailed, "ProvisionNameservers green failed")
	if !strings.Contains(st.Failure, "no heartbeat") || !h.rec.has("DeleteGreen") || h.rec.has("Stage") {
		t.Errorf("failure %q calls %v", st.Failure, h.rec.calls)
	}
}

// approval: each, the second gate times out with lb1 on green: rolled
// back, by the timeout, not by anyone's signal.
func TestUnseenSecondGateTimesOut(t *testing.T) {
	h := newHarnessWith(t, "rollout: {strategy: one-at-a-time, approval: each, approval_timeout: 2h, bake: 10m, bake_interval: 5m}", "")
	signalAt(h.env, time.Hour, SignalApprove, SignalInput{By: "a"})
	st := h.runFails(t, ErrTypeRolledBack, "not approved within 2h0m0s")
	if st.StoppedBy != "" || h.lbsOn("lb1", "lb2") != "lb1=ns1,lb2=ns2" || !h.rec.has("DeleteGreen") || h.rec.has("Flip lb2 ns2-next:100") {
		t.Errorf("stopped by %q lbs %s calls %v", st.StoppedBy, h.lbsOn("lb1", "lb2"), h.rec.calls)
	}
}

// A rollback whose flip back cannot confirm lb2 on blue, in every round:
// cleanup-failed, lb2 named as on green, and green never deleted under it.
func TestUnseenRollbackWhoseFlipBackFails(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "FlipBackToBlue")
	signalAt(h.env, 10*time.Minute, SignalRollback, SignalInput{Reason: "errors", By: "bob"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseCleanupFailed || strings.Contains(st.Failure, "blue is serving") || !strings.Contains(st.Failure, "lb2") {
		t.Errorf("phase %s failure %q", st.Phase, st.Failure)
	}
	if h.rec.has("DeleteGreen") || h.lbsOn("lb2") != "lb2=ns2-next" || !slices.Equal(st.OnGreen, []string{"lb2"}) {
		t.Errorf("calls %v lbs %s on green %v", h.rec.calls, h.lbsOn("lb1", "lb2"), st.OnGreen)
	}
}

// An approve and an abort that arrive together: the abort wins, and as no
// load balancer moved, the outcome is aborted (not rolled back) and the
// webhook says aborted.
func TestUnseenApproveAndAbortTogether(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}\nnotifications: {webhooks: [{url: 'https://h.example.net/x'}]}", "")
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalApprove, SignalInput{By: "a"})
		h.env.SignalWorkflow(SignalAbort, SignalInput{By: "b", Reason: "no"})
	}, time.Hour)
	st := h.runFails(t, ErrTypeAborted, "aborted by b: no")
	// No flip was ever asked for, not even one back to blue.
	if h.rec.has("Flip") || st.Phase != PhaseAborted || !h.rec.has("DeleteGreen") {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
	if n := h.notified(); !slices.Contains(n, "aborted") || slices.Contains(n, "rolled_back") || slices.Contains(n, "switched") {
		t.Errorf("notified %v", n)
	}
}

// one-at-a-time over three load balancers, lb2's flip to green refused:
// lb1 (on green) and lb2 go back, lb3 never moves, rolled back.
func TestUnseenFailedFlipOfLB2Of3(t *testing.T) {
	h := newHarnessFleet(t, threeLBFleet+"rollout: {strategy: one-at-a-time, bake: 10m, bake_interval: 5m}\n", "")
	h.rec.lbs["lb3"] = "ns1"
	h.rec.onFlip = func(in activities.FlipInput) error {
		if in.LB.Name == "lb2" && in.Shares[0].Weight == 100 {
			return temporal.NewNonRetryableApplicationError("dnsdist refused the weights", activities.ErrRefused, nil)
		}
		return nil
	}
	st := h.runFails(t, ErrTypeRolledBack, "FlipLoadBalancer lb2 failed: dnsdist refused the weights; rolled back automatically")
	if got := h.lbsOn("lb1", "lb2", "lb3"); got != "lb1=ns1,lb2=ns2,lb3=ns1" || h.rec.has("Flip lb3 ns1-next:100") || !h.rec.has("DeleteGreen") {
		t.Errorf("lbs %s calls %v", got, h.rec.calls)
	}
	if len(st.OnGreen) != 0 {
		t.Errorf("on green %v", st.OnGreen)
	}
}

// An abort while Plan retries: nothing was created, nothing is undone.
func TestUnseenAbortWhilePlanRetries(t *testing.T) {
	h := newHarness(t, "Plan")
	h.rec.retryable = true
	signalAt(h.env, 2*time.Minute, SignalAbort, SignalInput{Reason: "later"})
	st := h.runFails(t, ErrTypeAborted, "aborted: later")
	if h.rec.has("EnsureServer") || h.rec.has("DeleteGreen") || st.Phase != PhaseAborted {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
}

// An approve with a payload that cannot be read is refused in the events
// and does not open the gate; a good one after it does.
func TestUnseenBadApproveThenGoodOne(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	signalAt(h.env, time.Hour, SignalApprove, map[string]any{"gate": "one"})
	var flippedAfterBad bool
	h.env.RegisterDelayedCallback(func() { flippedAfterBad = h.rec.has("Flip") }, 2*time.Hour)
	signalAt(h.env, 3*time.Hour, SignalApprove, SignalInput{By: "alice"})
	st, err := h.run(t)
	if err != nil || st.Phase != PhaseSucceeded || flippedAfterBad || !strings.Contains(eventsText(st), "approve ignored: its payload") {
		t.Errorf("err %v phase %s flipped after the bad approve %v events %q", err, st.Phase, flippedAfterBad, eventsText(st))
	}
}

// ns1-next's create fails at once while ns2-next's takes an hour; an abort
// sent meanwhile cuts the wait short, but the rollout had already failed:
// the outcome is that failure, named, not "aborted", and the failed
// webhook goes out.
func TestUnseenFailureBeforeAnAbortIsTheOutcome(t *testing.T) {
	for _, order := range []string{"failed first in order", "failed second in order"} {
		t.Run(order, func(t *testing.T) {
			h := newHarnessWith(t, "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'https://h.example.net/x'}]}", "")
			h.rec.failTarget, h.rec.slowTarget = "ns1-next", "ns2-next"
			if order == "failed second in order" {
				h.rec.failTarget, h.rec.slowTarget = "ns2-next", "ns1-next"
			}
			signalAt(h.env, 30*time.Minute, SignalAbort, SignalInput{Reason: "stuck", By: "op"})
			st := h.runFails(t, ErrTypeFailed, "EnsureServer "+h.rec.failTarget+" failed: "+h.rec.failTarget+" exploded")
			if st.Phase != PhaseFailed || st.StoppedBy != "" || !h.rec.has("DeleteGreen") {
				t.Errorf("phase %s stopped by %q calls %v", st.Phase, st.StoppedBy, h.rec.calls)
			}
			if n := h.notified(); !slices.Contains(n, "failed") || slices.Contains(n, "aborted") {
				t.Errorf("notified %v", n)
			}
			if !strings.Contains(eventsText(st), "abort requested by op: stuck") {
				t.Errorf("events %q lack the abort", eventsText(st))
			}
		})
	}
}

// An abort while lb2's stage runs (lb1's done): both released back to
// blue alone, green deleted, aborted, nothing flipped.
func TestUnseenAbortDuringTheStage(t *testing.T) {
	h := newHarness(t, "")
	h.rec.slowTarget = "lb2"
	signalAt(h.env, 30*time.Minute, SignalAbort, SignalInput{Reason: "r", By: "op"})
	st := h.runFails(t, ErrTypeAborted, "aborted by op: r")
	if h.rec.has("Flip") || !h.rec.has("Switch lb1 ns1") || !h.rec.has("Switch lb2 ns2") || !h.rec.has("DeleteGreen") || st.Phase != PhaseAborted {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
	h.wantInOrder(t, "Switch lb2 ns2", "DeleteGreen")
}

// An abort at a canary step's hold, green at 10%: rolled back by the
// abort, one flip back, green deleted.
func TestUnseenAbortAtTheCanaryHold(t *testing.T) {
	h := newCanaryHarnessWith(t, "rollout: {strategy: canary, approval_timeout: 24h, canary: {steps: [{weight: 10, duration: 5m, approve: true}, {weight: 50, duration: 5m}]}, bake: 2m, bake_interval: 1m}")
	c := &canaryCounters{h: h}
	c.install(t)
	signalAt(h.env, time.Hour, SignalAbort, SignalInput{Reason: "r", By: "op"})
	st := h.runFails(t, ErrTypeRolledBack, "rolled back by op: r (an abort asked after the switch)")
	if st.StoppedBy != SignalAbort || h.rec.has("Flip lb1 ns1-next:50") || h.rec.count("Flip lb1 ns1-next:0,ns1:100") != 1 || !h.rec.has("DeleteGreen") {
		t.Errorf("stopped by %q calls %v", st.StoppedBy, h.rec.calls)
	}
	if h.lbsOn("lb1", "lb2") != "lb1=ns1,lb2=ns2" || st.GreenShare != 0 {
		t.Errorf("lbs %s share %d", h.lbsOn("lb1", "lb2"), st.GreenShare)
	}
}

// An abort and then an approve, together at the gate: aborted, and the
// approve is not recorded as taken.
func TestUnseenAbortThenApproveTogether(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalAbort, SignalInput{By: "b", Reason: "no"})
		h.env.SignalWorkflow(SignalApprove, SignalInput{By: "a"})
	}, time.Hour)
	st := h.runFails(t, ErrTypeAborted, "aborted by b: no")
	if h.rec.has("Flip") || st.Phase != PhaseAborted {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
	if strings.Contains(eventsText(st), "approved by a") {
		t.Errorf("events %q record an approve taken after the abort", eventsText(st))
	}
}

// The workflow cancelled together with the approve: no flip was sent, so
// aborted, not rolled back.
func TestUnseenCancelWithTheApprove(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalApprove, SignalInput{By: "a"})
		h.env.CancelWorkflow()
	}, time.Hour)
	st := h.runFails(t, ErrTypeAborted, "aborted: the workflow was cancelled")
	if h.rec.has("Flip") || st.Phase != PhaseAborted || !h.rec.has("DeleteGreen") {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
}

// Runs from before versionUnsentFlipMovedNothing and versionFailedBeforeStop
// keep their outcomes (and so the webhooks they send): rolled back, and
// aborted.
func TestUnseenRunsFromBeforeKeepTheirOutcomes(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	h.env.OnGetVersion(versionUnsentFlipMovedNothing, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalApprove, SignalInput{By: "a"})
		h.env.SignalWorkflow(SignalAbort, SignalInput{By: "b", Reason: "no"})
	}, time.Hour)
	h.runFails(t, ErrTypeRolledBack, "rolled back by b: no")

	h = newHarness(t, "")
	h.env.OnGetVersion(versionFailedBeforeStop, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.rec.failTarget, h.rec.slowTarget = "ns1-next", "ns2-next"
	signalAt(h.env, 30*time.Minute, SignalAbort, SignalInput{Reason: "stuck", By: "op"})
	h.runFails(t, ErrTypeAborted, "aborted by op: stuck")
}

// An abort while every load balancer's first flip runs: those flips were
// sent, and may have moved a load balancer, however the cancel settles
// them, so they are flipped back and the outcome is rolled back.
func TestUnseenAbortWhileEveryFirstFlipRuns(t *testing.T) {
	h := newHarness(t, "", "FlipLoadBalancer")
	signalAt(h.env, 30*time.Minute, SignalAbort, SignalInput{Reason: "r", By: "op"})
	st := h.runFails(t, ErrTypeRolledBack, "rolled back by op: r")
	if h.rec.count("Flip lb1 ns1-next:0,ns1:100") != 1 || h.rec.count("Flip lb2 ns2-next:0,ns2:100") != 1 || st.Phase != PhaseRolledBack {
		t.Errorf("phase %s calls %v", st.Phase, h.rec.calls)
	}
}
