package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/config"
)

func wantErrType(t *testing.T, err error, typ string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != typ {
		t.Fatalf("err = %v, want %s", err, typ)
	}
}

// runFails runs the rollout and checks that it fails with an error of
// type typ whose failure says failure.
func (h *harness) runFails(t *testing.T, typ, failure string) Status {
	t.Helper()
	st, err := h.run(t)
	wantErrType(t, err, typ)
	if !strings.Contains(st.Failure, failure) {
		t.Errorf("failure = %q, want it to say %q", st.Failure, failure)
	}
	return st
}

// wantInOrder fails the test unless each call was made, in this order.
func (h *harness) wantInOrder(t *testing.T, calls ...string) {
	t.Helper()
	last := -1
	for _, c := range calls {
		i := h.callIndex(c)
		if i <= last {
			t.Fatalf("want %v in that order; calls %v", calls, h.rec.calls)
		}
		last = i
	}
}

func (h *harness) callIndex(prefix string) int {
	for i, c := range h.rec.calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

// At the approval gate the status says what changes against the live
// revision, the one the starter named (Plan.Changes); approval switches.
func TestApprovalArrives(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	const live = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	var phaseAtSignal Phase
	h.env.RegisterDelayedCallback(func() {
		v, _ := h.env.QueryWorkflow(QueryStatus)
		var st Status
		_ = v.Get(&st)
		phaseAtSignal = st.Phase
		if c := st.Changes; c == nil || c.Live != live || c.ZonesChanged.String() != "example.com" {
			t.Errorf("changes at the gate: %+v, want example.com changed against %s", c, live)
		}
		if h.rec.has("Flip") || h.rec.has("Switch") {
			t.Error("switched before approval")
		}
		if !h.rec.has("Stage lb1 ns1-next") || !h.rec.has("Stage lb2 ns2-next") {
			t.Errorf("green not staged before the approval gate: %v", h.rec.calls)
		}
		h.env.SignalWorkflow(SignalApprove, SignalInput{By: "alice"})
	}, 3*time.Hour)
	st, err := h.runInput(t, RolloutInput{Fleet: "test", Revision: "B", LiveBundle: live})
	if err != nil {
		t.Fatalf("approved rollout failed: %v", err)
	}
	if phaseAtSignal != PhaseAwaitingApproval {
		t.Errorf("phase while waiting = %s, want %s", phaseAtSignal, PhaseAwaitingApproval)
	}
	if !h.rec.has("Flip lb1 ns1-next:100,ns1:0") || st.Phase != PhaseSucceeded {
		t.Errorf("after approval: phase %s, calls %v", st.Phase, h.rec.calls)
	}
	if !strings.Contains(eventsText(st), "approved by alice") {
		t.Errorf("events %v lack the approval", st.Events)
	}
}

func TestApprovalTimesOut(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 2h, bake: 0s}", "")
	h.runFails(t, ErrTypeAborted, "not approved within 2h0m0s")
	// Green was staged, never given traffic, and is released before it
	// is deleted.
	if h.rec.has("Flip") || h.rec.has("Switch lb1 ns1-next") || !h.rec.has("Switch lb1 ns1") || !h.rec.has("DeleteGreen") || h.rec.has("DeleteServer") {
		t.Errorf("approval timeout: calls %v", h.rec.calls)
	}
}

func TestRollbackDuringBake(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
	signalAt(h.env, 10*time.Minute, SignalRollback, SignalInput{Reason: "users report errors", By: "bob"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" {
		t.Errorf("load balancers on %s after rollback, want blue", got)
	}
	if !h.rec.has("DeleteGreen") || h.rec.has("DeleteServer") {
		t.Errorf("rollback during bake: calls %v", h.rec.calls)
	}
	if st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "users report errors") || st.StoppedBy != SignalRollback {
		t.Errorf("phase %s failure %q stopped by %q; want rolled back by the rollback signal", st.Phase, st.Failure, st.StoppedBy)
	}
}

// A bake of five rounds whose checks each pass at the first attempt shows
// one attempt, not five: attempts are retries, and the rounds are in the
// note. (The operator reading "5 attempts" looks for failures.)
func TestBakeRoundsAreNotAttempts(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 5m, bake_interval: 1m}", "")
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Steps {
		if s.Name == "Bake" && (s.Attempts != 1 || !strings.Contains(s.Note, "5 round(s) passed")) {
			t.Errorf("Bake step: %d attempts, note %q; want 1 attempt and 5 rounds", s.Attempts, s.Note)
		}
	}
}

// While a bake runs, its note says when it ends, which the status and
// the CLI's progress show; the note of the bake that ended says what
// passed, without the deadline.
func TestBakeSaysWhenItEnds(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
	var during string
	h.env.RegisterDelayedCallback(func() {
		v, _ := h.env.QueryWorkflow(QueryStatus)
		var st Status
		_ = v.Get(&st)
		for _, s := range st.Steps {
			if s.Name == "Bake" {
				during = s.Note + " | want until " + s.StartedAt.Add(30*time.Minute).UTC().Format("2006-01-02 15:04:05 MST")
			}
		}
	}, 20*time.Minute)
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	note, want, _ := strings.Cut(during, " | want ")
	if !strings.Contains(note, "round(s) passed") || !strings.HasSuffix(note, "; "+want) {
		t.Errorf("the running bake's note %q, want its rounds and %q", note, want)
	}
	for _, s := range st.Steps {
		if s.Name == "Bake" && strings.Contains(s.Note, "until") {
			t.Errorf("the ended bake's note %q still gives its deadline", s.Note)
		}
	}
}

func TestPostSwitchFailureRollsBackAutomatically(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}", "VerifyLoadBalancers")
	if st := h.runFails(t, ErrTypeRolledBack, "rolled back automatically"); st.StoppedBy != "" {
		t.Errorf("stopped by %q: no signal stopped it", st.StoppedBy)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" || h.rec.has("DeleteServer") {
		t.Errorf("lbs %s, calls %v", got, h.rec.calls)
	}
}

func TestOneAtATimeOrder(t *testing.T) {
	h := newHarnessWith(t, "rollout: {strategy: one-at-a-time, bake: 5m, bake_interval: 1m}", "")
	if _, err := h.run(t); err != nil {
		t.Fatal(err)
	}
	s1, s2 := h.callIndex("Flip lb1"), h.callIndex("Flip lb2")
	v, b := h.callIndex("VerifyLoadBalancers"), h.callIndex("BakeCheck")
	// lb1 bakes alone before lb2 switches: a bake only after both would
	// put the second load balancer on an unproven green.
	if s1 < 0 || s2 < 0 || b < 0 || !(s1 < v && v < b && b < s2) {
		t.Errorf("one-at-a-time: want Flip lb1, verify, bake, then Flip lb2; calls %v", h.rec.calls)
	}
}

// With approval: each, a one-at-a-time rollout waits for approve before
// its switch and again before each load balancer after the first, once
// the one before has baked: the operator moves the fleet one load
// balancer at a time, as DigitalOcean moved its nameservers (seed 002).
func TestApprovalEachGatesEveryLoadBalancer(t *testing.T) {
	const each = "rollout: {strategy: one-at-a-time, approval: each, approval_timeout: 2h, bake: 5m, bake_interval: 1m}"
	t.Run("approved twice", func(t *testing.T) {
		h := newHarnessWith(t, each, "")
		var atSecondGate []string
		approve := func(at time.Duration, check bool) {
			h.env.RegisterDelayedCallback(func() {
				if check {
					atSecondGate = append(atSecondGate, h.rec.lbs["lb1"], h.rec.lbs["lb2"])
				}
				h.env.SignalWorkflow(SignalApprove, SignalInput{By: "alice"})
			}, at)
		}
		approve(time.Hour, false)  // before the switch
		approve(3*time.Hour, true) // lb1 switched and baked; lb2 waits
		st, err := h.run(t)
		if err != nil || st.Phase != PhaseSucceeded {
			t.Fatalf("phase %s (%v), want succeeded", st.Phase, err)
		}
		if strings.Join(atSecondGate, ",") != "ns1-next,ns2" {
			t.Errorf("at the second gate lb1,lb2 = %v, want lb1 on green and lb2 on blue", atSecondGate)
		}
		gates := 0
		for _, s := range st.Steps {
			if s.Name == "AwaitApproval" {
				gates++
				if gates == 2 && s.Target != "lb2" {
					t.Errorf("the second gate is for %q, want lb2", s.Target)
				}
			}
		}
		if gates != 2 || strings.Count(eventsText(st), "approved by alice") != 2 {
			t.Errorf("%d approval gates, events %v; want two, each approved", gates, st.Events)
		}
	})
	// Not approved at the second gate: lb1 went to green and comes back.
	t.Run("timed out at the second gate", func(t *testing.T) {
		h := newHarnessWith(t, each, "")
		h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(SignalApprove, SignalInput{By: "alice"}) }, time.Hour)
		st, err := h.run(t)
		wantErrType(t, err, ErrTypeRolledBack)
		if st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "not approved within 2h0m0s") {
			t.Errorf("phase %s, failure %q; want rolled-back, saying approval timed out", st.Phase, st.Failure)
		}
		if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" || !h.rec.has("DeleteGreen") {
			t.Errorf("load balancers on %s, calls %v; want both on blue, green deleted", got, h.rec.calls)
		}
	})
}

func TestStepDeadlineFailsWithReason(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 0s}\nsteps: {provision_timeout: 2s, heartbeat_timeout: 1s, max_attempts: 2}", "Hang")
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	t.Logf("failure: %s", st.Failure)
	if !strings.Contains(st.Failure, "ProvisionNameservers") || !strings.Contains(st.Failure, "timed out") {
		t.Errorf("failure = %q, want the step and its timeout", st.Failure)
	}
	if !h.rec.has("DeleteGreen") {
		t.Errorf("green not cleaned up: %v", h.rec.calls)
	}
}

// An approve names the gate it is for (SignalInput.Gate, the number the
// status shows): one sent for a gate that has closed, by an operator who
// read the status before another approved, does not open the next gate,
// so no load balancer switches on an approval given for another. An
// approve naming no gate takes whichever is open, as before.
func TestApproveForAnotherGateIsIgnored(t *testing.T) {
	const each = "rollout: {strategy: one-at-a-time, approval: each, approval_timeout: 6h, bake: 5m, bake_interval: 1m}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}"
	h := newHarnessWith(t, each, "")
	var gates []int
	approve := func(at time.Duration, in SignalInput) {
		h.env.RegisterDelayedCallback(func() {
			v, _ := h.env.QueryWorkflow(QueryStatus)
			var st Status
			_ = v.Get(&st)
			gates = append(gates, st.ApprovalGate)
			h.env.SignalWorkflow(SignalApprove, in)
		}, at)
	}
	approve(time.Hour, SignalInput{By: "alice", Gate: 1})   // before the switch
	approve(3*time.Hour, SignalInput{By: "bob", Gate: 1})   // late: gate 2 is open
	approve(4*time.Hour, SignalInput{By: "carol", Gate: 2}) // for lb2's gate
	st, err := h.run(t)
	if err != nil || st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s (%v), want succeeded", st.Phase, err)
	}
	if fmt.Sprint(gates) != "[1 2 2]" {
		t.Errorf("open gates at the approvals = %v, want [1 2 2]", gates)
	}
	// The webhooks name each gate, for a bot that approves to name it.
	if !h.rec.has("Notify awaiting_approval gate 1") || !h.rec.has("Notify awaiting_approval gate 2") {
		t.Errorf("calls %v; want each awaiting_approval event to name its gate", h.rec.calls)
	}
	ev := eventsText(st)
	if strings.Contains(ev, "approved by bob") || !strings.Contains(ev, "approve ignored: it is for approval gate 1, but gate 2 is open") ||
		!strings.Contains(ev, "approved by carol") {
		t.Errorf("events %v; want bob's approve for gate 1 ignored at gate 2, carol's taken", st.Events)
	}
	// lb2 switched only after carol's approval, an hour after bob's.
	for _, s := range st.Steps {
		if s.Name == "AwaitApproval" && s.Target == "lb2" && s.EndedAt.Sub(s.StartedAt) < 2*time.Hour-time.Minute {
			t.Errorf("lb2's gate held %s, want it open until carol's approval", s.EndedAt.Sub(s.StartedAt))
		}
	}
}

// Runs from before versionApproveGate read an approve naming a gate as one
// with an unknown field: ignored it, or, from before versionStrictSignals
// too, approved whichever gate was open.
func TestApproveGateInARunFromBefore(t *testing.T) {
	const manual = "rollout: {approval: manual, approval_timeout: 2h, bake: 0s}"
	t.Run("ignored as an unknown field", func(t *testing.T) {
		h := newHarnessWith(t, manual, "")
		h.env.OnGetVersion(versionApproveGate, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		signalAt(h.env, time.Hour, SignalApprove, SignalInput{By: "alice", Gate: 1})
		st := h.runFails(t, ErrTypeAborted, "not approved within 2h0m0s")
		if !strings.Contains(eventsText(st), `approve ignored: its payload has the unknown field "gate"`) {
			t.Errorf("events %v; want the approve ignored for its unknown field", st.Events)
		}
		// Nor does its status number the gate: the printer and the Web UI
		// would ask for a gate it ignores.
		if st.ApprovalGate != 0 {
			t.Errorf("approval_gate = %d in a run that takes no gate, want 0", st.ApprovalGate)
		}
	})
	t.Run("before strict signals, any gate approves", func(t *testing.T) {
		h := newHarnessWith(t, manual, "")
		h.env.OnGetVersion(versionApproveGate, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		h.env.OnGetVersion(versionStrictSignals, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		signalAt(h.env, time.Hour, SignalApprove, SignalInput{By: "alice", Gate: 7})
		if st, err := h.run(t); err != nil || st.Phase != PhaseSucceeded {
			t.Fatalf("phase %s (%v), want succeeded", st.Phase, err)
		}
	})
}

func TestFailingWebhookDoesNotFailRollout(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}", "Notify")
	st, err := h.run(t)
	if err != nil {
		t.Fatalf("a failing webhook failed the rollout: %v", err)
	}
	if st.Phase != PhaseSucceeded || !strings.Contains(eventsText(st), "not delivered") {
		t.Errorf("phase %s events %v", st.Phase, st.Events)
	}
}

// A webhook that is down holds up neither the rollout nor its end: once an
// event to it was given up on after its retries, each later event gets one
// attempt, and a rollout that has its outcome waits at most notifyDrainWait
// for deliveries still pending. Its workflow ID, and so the fleet, stays
// taken until it closes.
func TestDeadWebhookDoesNotHoldTheFleet(t *testing.T) {
	const hook = "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}"
	t.Run("refusing: one attempt per event after the first gave up", func(t *testing.T) {
		h := newHarnessWith(t, hook, "WebhookDown")
		st, err := h.run(t)
		if err != nil || st.Phase != PhaseSucceeded {
			t.Fatalf("phase %s, err %v; a dead webhook must not fail the rollout", st.Phase, err)
		}
		attempts := map[string]int{}
		for _, c := range h.rec.calls {
			if e, ok := strings.CutPrefix(c, "Notify "); ok {
				attempts[e]++
			}
		}
		want := map[string]int{"started": int(notifyOptions.RetryPolicy.MaximumAttempts), "switched": 1, "succeeded": 1}
		if !maps.Equal(attempts, want) {
			t.Errorf("attempts per event = %v, want %v", attempts, want)
		}
		if n := strings.Count(eventsText(st), "not delivered"); n != 3 {
			t.Errorf("%d events say a notification was not delivered, want 3: %v", n, st.Events)
		}
	})
	t.Run("hanging: the end waits notifyDrainWait at most", func(t *testing.T) {
		h := newHarnessWith(t, hook, "", "Notify")
		st, err := h.run(t)
		if err != nil || st.Phase != PhaseSucceeded {
			t.Fatalf("phase %s, err %v", st.Phase, err)
		}
		held := h.env.Now().Sub(st.EndedAt)
		if held > notifyDrainWait+time.Second {
			t.Errorf("the workflow closed %s after the rollout ended, want at most %s", held, notifyDrainWait)
		}
		if !strings.Contains(eventsText(st), "still pending at the end") {
			t.Errorf("no event says which notifications were left pending: %v", st.Events)
		}
	})
}

// A fleet's first rollout has no blue: before it, the load balancers had
// no nameserver to send queries to. Once its switch has begun there is
// nothing to go back to, so a rollback or abort is rejected and the rollout
// carries on, and a failure after the switch ends it failed with green
// serving, rather than retry a flip back to nothing until cleanup_timeout.
func TestFirstRolloutHasNoWayBackAfterTheSwitch(t *testing.T) {
	flippedBack := func(st Status) bool {
		for _, s := range st.Steps {
			if s.Name == "FlipBackToBlue" {
				return true
			}
		}
		return false
	}
	for _, signal := range []string{SignalRollback, SignalAbort} {
		t.Run(signal+" during the bake is rejected", func(t *testing.T) {
			h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}", "")
			clear(h.blue)
			signalAt(h.env, 3*time.Minute, signal, SignalInput{By: "ops", Reason: "green looks odd"})
			st, err := h.run(t)
			if err != nil || st.Phase != PhaseSucceeded {
				t.Fatalf("phase %s (%v), want succeeded: the rollout carries on", st.Phase, err)
			}
			if !strings.Contains(eventsText(st), signal+" rejected: the fleet's first rollout has no blue") {
				t.Errorf("no event says why the %s was rejected: %v", signal, st.Events)
			}
			// The status says so too, for the API to refuse the signal.
			if !strings.Contains(st.NoWayBack, "the fleet's first rollout has no blue") {
				t.Errorf("status no_way_back = %q, want why abort and rollback are refused", st.NoWayBack)
			}
			if flippedBack(st) || h.rec.has("DeleteGreen") {
				t.Errorf("a load balancer was flipped back to nothing, or green deleted: %v", h.rec.calls)
			}
		})
	}
	t.Run("a failed bake ends failed, green serving", func(t *testing.T) {
		h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}", "BakeCheck")
		clear(h.blue)
		st, err := h.run(t)
		wantErrType(t, err, ErrTypeFailed)
		if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "no blue to go back to") || !strings.Contains(st.Failure, "rename each <label>-next to <label>") {
			t.Errorf("phase %s, failure %q; want failed, saying there is no blue and how to finish", st.Phase, st.Failure)
		}
		if flippedBack(st) || h.rec.has("DeleteGreen") {
			t.Errorf("a load balancer was flipped back to nothing, or green deleted: %v", h.rec.calls)
		}
		if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1-next,ns2-next" {
			t.Errorf("load balancers point at %s, want green", got)
		}
	})
}

// steps.cleanup_timeout bounds the cleanup, its steps included: a step
// retrying an error a retry may fix gets no more than the time left.
// Before, one round's step had three switch timeouts whatever the
// cleanup_timeout (6 min of a 40 s one here). The run that gave up left
// green, and its webhook says failed, never rolled-back, which would tell
// the receiver that blue alone is serving.
func TestCleanupTimeoutBoundsTheCleanup(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 0s}\nsteps: {switch_timeout: 2m, cleanup_timeout: 40s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}", "VerifyGreen")
	h.rec.deleteGreenDown = true
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseCleanupFailed {
		t.Fatalf("phase %s, want cleanup-failed", st.Phase)
	}
	var stopped time.Time
	for _, s := range st.Steps {
		if s.Name == "VerifyGreen" {
			stopped = s.EndedAt
		}
	}
	if took := st.EndedAt.Sub(stopped); took > 40*time.Second+cleanupStepFloor {
		t.Errorf("the cleanup took %s, want at most steps.cleanup_timeout (40s) and a last step's %s", took, cleanupStepFloor)
	}
	if got := h.notified(); len(got) == 0 || got[len(got)-1] != config.EventFailed || slices.Contains(got, config.EventRolledBack) {
		t.Errorf("events = %v, want the last %s and none %s", got, config.EventFailed, config.EventRolledBack)
	}
}

func TestWebhookEventsInOrder(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}", "")
	if _, err := h.run(t); err != nil {
		t.Fatal(err)
	}
	got := h.notified()
	if want := "started,switched,succeeded"; strings.Join(got, ",") != want {
		t.Errorf("events = %v, want %s", got, want)
	}
}

// notified are the events the webhooks were sent, in order.
func (h *harness) notified() []string {
	var got []string
	for _, c := range h.rec.calls {
		if strings.HasPrefix(c, "Notify ") {
			got = append(got, strings.TrimPrefix(c, "Notify "))
		}
	}
	return got
}

func eventsText(st Status) string {
	var b strings.Builder
	for _, e := range st.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// A failed analysis round during the bake rolls back on its own.
func TestBakeFailureRollsBackAutomatically(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}", "BakeCheck")
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if !strings.Contains(st.Failure, "Bake") || !strings.Contains(st.Failure, "rolled back automatically") {
		t.Errorf("failure = %q", st.Failure)
	}
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" || !h.rec.has("DeleteGreen") || h.rec.has("DeleteServer") {
		t.Errorf("lbs %s, calls %v", got, h.rec.calls)
	}
}

// Signals that cannot be lost: a plain string is taken as the reason, and
// a payload that decodes to neither form is recorded, with its raw text,
// in the events instead of vanishing into the worker's log.
func TestSignalPayloads(t *testing.T) {
	t.Run("plain string aborts with that reason", func(t *testing.T) {
		h := newHarness(t, "", "ProvisionNameservers")
		signalAt(h.env, time.Minute, SignalAbort, "wrong zone")
		st, err := h.run(t)
		wantErrType(t, err, ErrTypeAborted)
		if !strings.Contains(st.Failure, "wrong zone") {
			t.Errorf("failure %q lacks the reason", st.Failure)
		}
	})
	t.Run("malformed payload is recorded and ignored", func(t *testing.T) {
		h := newHarness(t, "", "ProvisionNameservers")
		signalAt(h.env, time.Minute, SignalAbort, []int{4, 2})
		st, err := h.run(t)
		if err != nil {
			t.Fatalf("a malformed abort stopped the rollout: %v", err)
		}
		if got := eventsText(st); !strings.Contains(got, "abort ignored") || !strings.Contains(got, "[4,2]") {
			t.Errorf("events %q do not record the ignored signal with its payload", got)
		}
	})
	// As the API refuses them: {"reson": ...} is a typo, and an abort
	// taken without its reason would hide what the operator meant.
	t.Run("unknown field is recorded and ignored", func(t *testing.T) {
		h := newHarness(t, "", "ProvisionNameservers")
		signalAt(h.env, time.Minute, SignalAbort, map[string]string{"reson": "wrong zone"})
		st, err := h.run(t)
		if err != nil {
			t.Fatalf("an abort with an unknown field stopped the rollout: %v", err)
		}
		if got := eventsText(st); !strings.Contains(got, "abort ignored") || !strings.Contains(got, `unknown field "reson"`) {
			t.Errorf("events %q do not record the ignored signal and its unknown field", got)
		}
	})
	t.Run("unknown field in a run from before still aborts", func(t *testing.T) {
		h := newHarness(t, "", "ProvisionNameservers")
		h.env.OnGetVersion(versionStrictSignals, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		signalAt(h.env, time.Minute, SignalAbort, map[string]string{"reson": "wrong zone"})
		_, err := h.run(t)
		wantErrType(t, err, ErrTypeAborted)
	})
	t.Run("no payload aborts", func(t *testing.T) {
		h := newHarness(t, "", "ProvisionNameservers")
		signalAt(h.env, time.Minute, SignalAbort, nil)
		_, err := h.run(t)
		wantErrType(t, err, ErrTypeAborted)
	})
}

// Every workflow takes abort and rollback one way (stopping.requestStop):
// the first is the stop and stops the forward steps; a second is ignored,
// naming the first; past the point of no return each is rejected with the
// workflow's reason, and nothing is recorded.
func TestRequestStop(t *testing.T) {
	var events []string
	event := func(_ workflow.Context, msg string) { events = append(events, msg) }
	var s stopping
	if !s.requestStop(nil, event, SignalAbort, SignalInput{By: "ci", Reason: "bad zone"}, "why") || s.stop == nil || s.stop.signal != SignalAbort {
		t.Fatalf("the first abort is not the stop: %+v", s.stop)
	}
	if s.requestStop(nil, event, SignalRollback, SignalInput{}, "why") || s.stop.signal != SignalAbort {
		t.Errorf("a second signal replaced the stop: %+v", s.stop)
	}
	committed := stopping{committed: true}
	if committed.requestStop(nil, event, SignalRollback, SignalInput{}, "the old ones are being deleted") || committed.stop != nil {
		t.Errorf("a rollback after the point of no return was recorded: %+v", committed.stop)
	}
	want := []string{"abort requested by ci: bad zone", "rollback ignored: already stopping (abort)", "rollback rejected: the old ones are being deleted"}
	if !slices.Equal(events, want) {
		t.Errorf("events\n%q\nwant\n%q", events, want)
	}
}

// wantClippedSignalText fails the test unless text (a failure, or an
// event) is within the bound a clipped signal allows and says how long the
// reason was: a reason copied whole into the status, the failure and its
// details made Temporal terminate the run (700 KB) or fail every workflow
// task, leaving the fleet locked (1.5 MB). The bound leaves room for the
// text around them, such as the workflow error's type and ids.
func wantClippedSignalText(t *testing.T, what, text string, reasonLen int) {
	t.Helper()
	const bound = maxSignalReason + maxSignalBy + 400
	if len(text) > bound {
		t.Errorf("%s is %d bytes, want at most %d: the signal's reason was not clipped", what, len(text), bound)
	}
	if want := fmt.Sprintf("(clipped, %d bytes)", reasonLen); !strings.Contains(text, want) {
		t.Errorf("%s %.300q... does not say %q", what, text, want)
	}
}

// An abort whose reason is 1.5 MB (sendable with `temporal workflow signal
// --input-file`) still ends the rollout aborted; the reason is clipped in
// the event, the status failure and the workflow's failure message.
func TestHugeSignalReasonIsClipped(t *testing.T) {
	const n = 1_500_000
	h := newHarness(t, "", "ProvisionNameservers")
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: strings.Repeat("R", n), By: strings.Repeat("b", 5000)})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeAborted)
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s, want aborted", st.Phase)
	}
	wantClippedSignalText(t, "status failure", st.Failure, n)
	wantClippedSignalText(t, "workflow error", err.Error(), n)
	var requested bool
	for _, e := range st.Events {
		if len(e.Message) > maxSignalReason+maxSignalBy+400 {
			t.Errorf("event of %d bytes: %.200q...", len(e.Message), e.Message)
		}
		if strings.HasPrefix(e.Message, "abort requested") {
			requested = true
			wantClippedSignalText(t, "abort event", e.Message, n)
			if !strings.Contains(e.Message, "(clipped, 5000 bytes)") {
				t.Errorf("abort event %.300q... does not say the by was clipped", e.Message)
			}
		}
	}
	if !requested {
		t.Errorf("no abort event in %d events", len(st.Events))
	}
}

// rawPayload is v as a signal's payload reaches decodeSignal.
func rawPayload(t *testing.T, v any) converter.RawValue {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return converter.NewRawValue(p)
}

// decodeSignal clips reason and by on a UTF-8 boundary, in both payload
// forms, and leaves short ones alone.
func TestDecodeSignalClips(t *testing.T) {
	long := strings.Repeat("é", maxSignalReason) // 2 bytes each: the bound falls inside none
	odd := "x" + long                            // the bound falls inside an é
	for _, tt := range []struct {
		name string
		in   any
	}{
		{"object", SignalInput{Reason: odd, By: "y" + long}},
		{"plain string", odd},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeSignal(rawPayload(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(got.Reason) || !utf8.ValidString(got.By) {
				t.Errorf("clipped inside a rune: %q / %q", got.Reason, got.By)
			}
			want := fmt.Sprintf("…(clipped, %d bytes)", len(odd))
			if !strings.HasSuffix(got.Reason, want) || len(got.Reason) > maxSignalReason+len(want) || !strings.HasPrefix(got.Reason, "xé") {
				t.Errorf("reason %d bytes, ends %q, want at most %d bytes ending %q", len(got.Reason), got.Reason[max(0, len(got.Reason)-40):], maxSignalReason+len(want), want)
			}
			if tt.name == "object" {
				want := fmt.Sprintf("…(clipped, %d bytes)", len(odd))
				if !strings.HasSuffix(got.By, want) || len(got.By) > maxSignalBy+len(want) {
					t.Errorf("by %d bytes %q", len(got.By), got.By)
				}
			}
		})
	}
	got, err := decodeSignal(rawPayload(t, SignalInput{Reason: "wrong zone", By: "ops"}))
	if err != nil || got != (SignalInput{Reason: "wrong zone", By: "ops"}) {
		t.Errorf("short signal decoded as %+v, %v", got, err)
	}
}

// A rollout cancelled past its point of no return says it was aborted
// there, not rolled back: blue is being deleted, green serves, and
// nothing was or will be put back.
func TestCancelPastThePointOfNoReturnIsNotARollback(t *testing.T) {
	for _, tc := range []struct {
		name, controls, slowAt string
		noBlue                 bool
	}{
		{"deleting blue", "rollout: {bake: 0s}", "DeleteServer", false},
		// A fleet's first rollout commits at its switch.
		{"first rollout baking", "rollout: {bake: 3h, bake_interval: 1h}", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessWith(t, tc.controls, "", tc.slowAt)
			if tc.noBlue {
				clear(h.blue)
			}
			h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 30*time.Minute)
			st, err := h.run(t)
			wantErrType(t, err, ErrTypeFailed)
			if st.Phase != PhaseFailed || strings.Contains(st.Failure, "rolled back") || !strings.Contains(st.Failure, "point of no return") {
				t.Errorf("phase %s, failure %q; want failed past the point of no return, not rolled back", st.Phase, st.Failure)
			}
			if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1-next,ns2-next" || h.rec.has("DeleteGreen") {
				t.Errorf("load balancers on %s, calls %v; want green kept", got, h.rec.calls)
			}
		})
	}
}

// bake: 0s is no bake: no Bake step, no bake check.
func TestZeroBakeDoesNotBake(t *testing.T) {
	h := newHarness(t, "")
	st, err := h.run(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Steps {
		if s.Name == "Bake" {
			t.Errorf("a Bake step with bake: 0s: %+v", s)
		}
	}
	if h.rec.has("BakeCheck") {
		t.Errorf("bake checked with bake: 0s: %v", h.rec.calls)
	}
}

// approval: each holds nothing between the load balancers of a fleet's
// first rollout: past the switch there is no way back, so nothing to
// decide; a gate there would wait for an approve and then fail.
func TestFirstRolloutWithApprovalEachHoldsOnce(t *testing.T) {
	h := newHarnessWith(t, "rollout: {strategy: one-at-a-time, approval: each, approval_timeout: 2h, bake: 5m, bake_interval: 1m}", "")
	clear(h.blue)
	signalAt(h.env, time.Hour, SignalApprove, SignalInput{By: "alice"})
	st, err := h.run(t)
	if err != nil || st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s (%v), want succeeded on one approve", st.Phase, err)
	}
	if gates := countSteps(st, "AwaitApproval"); gates != 1 {
		t.Errorf("%d approval gates, want the one before the switch", gates)
	}
}

// A cancel that interrupts the release of blue, past the point of no
// return, ends the run there: it is not the failed release that the
// rollout carries on past with a warning.
func TestCancelDuringTheReleaseOfBlueIsNoWarning(t *testing.T) {
	h := newHarness(t, "", "SwitchLoadBalancer")
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 30*time.Minute)
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseFailed || len(st.Warnings) != 0 {
		t.Errorf("phase %s, warnings %q; want failed, with no warning of a failed release", st.Phase, st.Warnings)
	}
	if h.rec.has("DeleteServer") {
		t.Errorf("blue deleted after the cancel: %v", h.rec.calls)
	}
}

// An abort at the approval gate is the operator's abort, not an approval
// that timed out: the status names who stopped it, and why.
func TestAbortAtTheGateIsNotATimeout(t *testing.T) {
	h := newHarnessWith(t, "rollout: {approval: manual, approval_timeout: 24h, bake: 0s}", "")
	signalAt(h.env, time.Hour, SignalAbort, SignalInput{Reason: "wrong revision", By: "bob"})
	st := h.runFails(t, ErrTypeAborted, "aborted by bob: wrong revision")
	if st.StoppedBy != SignalAbort || strings.Contains(st.Failure, "not approved") || strings.Contains(eventsText(st), "approval timed out") {
		t.Errorf("stopped by %q, failure %q, events %q; want the abort, not a timeout", st.StoppedBy, st.Failure, eventsText(st))
	}
}

// countSteps counts st's steps named name.
func countSteps(st Status, name string) int {
	n := 0
	for _, s := range st.Steps {
		if s.Name == name {
			n++
		}
	}
	return n
}

// A payload that decodeSignal cannot act on is refused with the shape the
// signal takes, its own fields included: an operator who sent approve's
// gate or zone-revision's revision misspelled, or as the wrong type, with
// the temporal CLI must not be told that only reason and by exist.
func TestDecodeSignalRefusalNamesTheSignalsFields(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     any
		fields []string
		want   []string
	}{
		{"abort, misspelt reason", map[string]any{"reson": "wrong zone"}, nil,
			[]string{`unknown field "reson"`, `want {"reason": "...", "by": "..."} or a string`}},
		{"approve, misspelt gate", map[string]any{"gat": 2}, signalFields[SignalApprove],
			[]string{`unknown field "gat"`, `"gate": 1`}},
		{"approve, gate as a string", map[string]any{"gate": "2"}, signalFields[SignalApprove],
			[]string{`"gate"`, "number", `"gate": 1`}},
		{"zone-revision, misspelt revision", map[string]any{"revison": "8f3c2e1"}, signalFields[SignalZoneRevision],
			[]string{`unknown field "revison"`, `"revision": "..."`}},
		// Neither an object nor a string: no field to name.
		{"abort, a list", []int{4, 2}, nil,
			[]string{`its payload [4,2] is neither {"reason": "...", "by": "..."} nor a string`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeSignal(rawPayload(t, tt.in), tt.fields...)
			if err == nil {
				t.Fatal("decoded; want it refused")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to contain %q", err, w)
				}
			}
		})
	}
}
