package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/lb"
)

// watchHold logs the fleet holds that env's runs start and end through
// add, and, when steps is set, each step they start.
func watchHold(env *testsuite.TestWorkflowEnvironment, add func(string), steps bool) {
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		add("hold " + info.WorkflowExecution.ID)
	})
	env.SetOnChildWorkflowCompletedListener(func(info *workflow.Info, _ converter.EncodedValue, err error) {
		add(fmt.Sprintf("end %s: %v", info.WorkflowExecution.ID, err))
	})
	if steps {
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			add(info.ActivityType.Name)
		})
	}
}

// wantHeldThroughout checks that a run held fleet test before its first
// step and released it (rather than left it for Temporal to end) after
// its last.
func wantHeldThroughout(t *testing.T, log []string) {
	t.Helper()
	const id = "fleet-lock-test"
	if len(log) < 3 || log[0] != "hold "+id || log[len(log)-1] != "end "+id+": <nil>" {
		t.Fatalf("the run's log is %q, want it to hold %s first, then run its steps, then release it", log, id)
	}
	for _, s := range log[1 : len(log)-1] {
		if strings.Contains(s, id) {
			t.Fatalf("the run's log is %q: %s held or ended twice", log, id)
		}
	}
}

// Each kind of run holds its fleet from before its first step until after
// its last, undo included, and frees it before it ends.
func TestRunsHoldTheirFleetThroughout(t *testing.T) {
	t.Run("rollout", func(t *testing.T) {
		h := newHarness(t, "")
		watchHold(h.env, h.rec.add, false)
		if _, err := h.run(t); err != nil {
			t.Fatal(err)
		}
		wantHeldThroughout(t, h.rec.calls)
	})
	t.Run("rollout that fails and is undone", func(t *testing.T) {
		h := newHarness(t, "VerifyGreen")
		watchHold(h.env, h.rec.add, false)
		if _, err := h.run(t); err == nil {
			t.Fatal("the rollout succeeded, want it to fail at VerifyGreen")
		}
		wantHeldThroughout(t, h.rec.calls)
		if h.callIndex("DeleteGreen") < 0 {
			t.Fatalf("calls %q: green was not deleted", h.rec.calls)
		}
	})
	t.Run("load balancer update", func(t *testing.T) {
		var l callLog
		if _, _, err := lbUpdateRun(t, "", "", func(env *testsuite.TestWorkflowEnvironment) { watchHold(env, l.add, true) }); err != nil {
			t.Fatal(err)
		}
		wantHeldThroughout(t, l.done())
	})
	t.Run("load balancer replacement", func(t *testing.T) {
		env, _ := newLBReplaceEnv(t, false)
		var l callLog
		watchHold(env, l.add, true)
		runLBReplace(t, env, lbInput(), PhaseSucceeded)
		wantHeldThroughout(t, l.done())
	})
}

// A run of any kind whose fleet another run holds is refused without
// a step, after waiting out a hold that is about to end; once the fleet
// is free, the same run goes ahead.
func TestABusyFleetRefusesEveryKindOfRun(t *testing.T) {
	for _, k := range []struct {
		name string
		env  func(t *testing.T) *testsuite.TestWorkflowEnvironment
		wf   any
		in   any
	}{
		{"rollout", func(t *testing.T) *testsuite.TestWorkflowEnvironment { return newHarness(t, "").env },
			RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B"}},
		{"load balancer update", func(t *testing.T) *testsuite.TestWorkflowEnvironment {
			var s testsuite.WorkflowTestSuite
			fleet, env := testEnv(t, &s, labFleet)
			env.OnActivity(a.LoadFleet, mock.Anything, mock.Anything).Return(fleet, nil)
			env.OnActivity(a.CheckLoadBalancerDNS, mock.Anything, mock.Anything).Return(activities.StepResult{Attempt: 1}, nil)
			env.OnActivity(a.UpdateLoadBalancer, mock.Anything, mock.Anything).Return(activities.StepResult{Attempt: 1}, nil)
			return env
		}, LoadBalancerUpdateWorkflow, LBUpdateInput{FleetName: "test", Update: lb.Update{Kind: lb.UpdateConfig}}},
		{"load balancer replacement", func(t *testing.T) *testsuite.TestWorkflowEnvironment {
			env, _ := newLBReplaceEnv(t, false)
			return env
		}, LoadBalancerReplaceWorkflow, lbInput()},
	} {
		t.Run(k.name, func(t *testing.T) {
			env := k.env(t)
			var l callLog
			env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				l.add(info.ActivityType.Name)
			})
			var refusedAfter time.Duration
			// The other run holds the fleet while this one starts, then
			// ends; this run is started again once it has.
			env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (string, error) {
				hold, err := holdFleet(ctx, "test")
				if err != nil || hold == nil {
					return "", fmt.Errorf("the other run could not hold the fleet: %v", err)
				}
				start := workflow.Now(ctx)
				first := workflow.ExecuteChildWorkflow(ctx, k.wf, k.in).Get(ctx, nil)
				refusedAfter = workflow.Now(ctx).Sub(start)
				l.add("refused")
				hold.release(ctx)
				if first == nil {
					return "", fmt.Errorf("the run went ahead while the fleet was held")
				}
				var app *temporal.ApplicationError
				if !errors.As(first, &app) || app.Type() != ErrTypeFleetBusy {
					return "", fmt.Errorf("refused with %v, want an error of type %s", first, ErrTypeFleetBusy)
				}
				return first.Error(), workflow.ExecuteChildWorkflow(ctx, k.wf, k.in).Get(ctx, nil)
			}, workflow.RegisterOptions{Name: "otherRun"})
			env.ExecuteWorkflow("otherRun")
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("%v; steps %q", err, l.done())
			}
			var refusal string
			if err := env.GetWorkflowResult(&refusal); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(refusal, "fleet test is busy") || !strings.Contains(refusal, "fleet-lock-test") {
				t.Errorf("the refusal says %q, want it to say that fleet test is busy and which workflow holds it", refusal)
			}
			// A hold that outlived its run (a reset one's, before release
			// cancelled such holds) is freed by hand, and only then.
			// The parent named may be a run reset while it ran, whose reset
			// run still uses the hold: that one must be ended first.
			if !strings.Contains(refusal, "if that parent has ended, and no run of its workflow ID is open") || !strings.Contains(refusal, "temporal workflow cancel --workflow-id fleet-lock-test") {
				t.Errorf("the refusal says %q, want it to say how to free a hold whose run has ended", refusal)
			}
			if want := 7 * time.Second; refusedAfter < want {
				t.Errorf("refused after %s, want it to wait %s for a hold that is about to end", refusedAfter, want)
			}
			if len(l.done()) < 2 || l.done()[0] != "refused" {
				t.Errorf("steps %q: want the refused run to take none, and the run once the fleet was free to take its steps", l.done())
			}
		})
	}
}

// A rollout run under another run's hold (a replacement's zone rollout)
// that is cancelled, as Temporal does when that run is terminated, holds
// the fleet itself before it undoes anything: the terminated run's hold
// has ended, and another run started meanwhile would change the load
// balancers while this one puts them back on blue.
func TestACancelledHeldRolloutHoldsTheFleetWhileItUndoes(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	watchHold(h.env, h.rec.add, false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
	st, err := h.runInput(t, RolloutInput{Fleet: "test", Revision: "B", HeldBy: LBReplaceWorkflowID("test")})
	if err == nil {
		t.Fatal("the cancelled rollout succeeded")
	}
	hold, undo, end := h.callIndex("hold fleet-lock-test"), h.callIndex("DeleteGreen"), h.callIndex("end fleet-lock-test: <nil>")
	if hold < 0 || undo < 0 || end < 0 || !(hold < undo && undo < end) {
		t.Fatalf("calls %q: want the fleet held, then green deleted, then the hold released", h.rec.calls)
	}
	if hold < h.callIndex("EnsureServer") {
		t.Errorf("calls %q: a held rollout held the fleet before it was cancelled", h.rec.calls)
	}
	if !strings.Contains(eventsText(st), "cancelled: holds fleet test for the undo") {
		t.Errorf("events %+v do not say that the rollout held the fleet", st.Events)
	}
}

// A held rollout cancelled while its holder lives (an operator cancelled
// the zone rollout alone) finds the fleet taken by that holder, and undoes
// under its hold rather than leave green serving.
func TestACancelledHeldRolloutUndoesUnderItsHoldersHold(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	h.env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (Status, error) {
		hold, err := holdFleet(ctx, "test")
		if err != nil || hold == nil {
			return Status{}, fmt.Errorf("the holder could not hold the fleet: %v", err)
		}
		defer hold.release(ctx)
		childCtx, cancel := workflow.WithCancel(ctx)
		child := workflow.ExecuteChildWorkflow(childCtx, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B", HeldBy: "holder"})
		_ = workflow.Sleep(ctx, time.Minute)
		cancel()
		var st Status
		err = child.Get(ctx, &st)
		return st, err
	}, workflow.RegisterOptions{Name: "holder"})
	h.env.ExecuteWorkflow("holder")
	err := h.env.GetWorkflowError()
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == ErrTypeFleetBusy {
		t.Fatalf("the cancelled rollout was refused as busy: %v", err)
	}
	if h.callIndex("DeleteGreen") < 0 {
		t.Fatalf("calls %q: the cancelled rollout did not delete green", h.rec.calls)
	}
	var app2 *temporal.ApplicationError
	var st Status
	if !errors.As(err, &app2) || !app2.HasDetails() || app2.Details(&st) != nil || !strings.Contains(eventsText(st), "cancelled: could not hold fleet test for the undo (fleet test is busy") {
		t.Errorf("the rollout's end (%v) does not say it undid under its holder's hold: %+v", err, st.Events)
	}
}

// A held rollout cancelled while it undoes (its holder, which sent it the
// stop, was terminated meanwhile) holds the fleet for the rest of its undo.
func TestAHeldRolloutCancelledDuringItsUndoHoldsTheFleet(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	watchHold(h.env, h.rec.add, false)
	h.rec.deleteGreenDown = true
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "wrong revision"})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		h.rec.deleteGreenDown = false
	}, 3*time.Minute)
	st, err := h.runInput(t, RolloutInput{Fleet: "test", Revision: "B", HeldBy: LBReplaceWorkflowID("test")})
	wantErrType(t, err, ErrTypeAborted)
	hold, end := h.callIndex("hold fleet-lock-test"), h.callIndex("end fleet-lock-test: <nil>")
	lastUndo := -1
	for i, c := range h.rec.calls {
		if strings.HasPrefix(c, "DeleteGreen") {
			lastUndo = i
		}
	}
	if hold < 0 || hold < h.callIndex("DeleteGreen") || end < lastUndo {
		t.Fatalf("calls %q: want the fleet held from the cancellation, during the undo, to its end", h.rec.calls)
	}
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s (%s), want aborted", st.Phase, st.Failure)
	}
}

// A held rollout cancelled once it has nothing to undo takes no hold: one
// that succeeded and is sending its last notifications, and one past its
// point of no return. Before, each took the fleet's hold after deciding
// its outcome, and the first never released it.
func TestAHeldRolloutWithNothingToUndoTakesNoHold(t *testing.T) {
	const ctl = "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: \"https://hooks.example/x\"}]}"
	in := RolloutInput{Fleet: "test", Revision: "B", HeldBy: LBReplaceWorkflowID("test")}
	probe := newHarnessWith(t, ctl, "", "Notify")
	done, err := probe.runInput(t, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		slowAt string
		at     time.Duration
	}{
		{"succeeded, sending its notifications", "Notify", done.EndedAt.Sub(done.StartedAt) + 10*time.Second},
		{"deleting blue", "DeleteServer", 30 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarnessWith(t, ctl, "", c.slowAt)
			watchHold(h.env, h.rec.add, false)
			h.env.RegisterDelayedCallback(h.env.CancelWorkflow, c.at)
			st, _ := h.runInput(t, in)
			if h.callIndex("hold fleet-lock-test") >= 0 || strings.Contains(eventsText(st), "holds fleet test") {
				t.Errorf("the rollout (%s) held the fleet with nothing to undo: calls %q, events %q", st.Phase, h.rec.calls, eventsText(st))
			}
		})
	}
}

// A held rollout cancelled while the fleet is still held by another (its
// holder's hold ends a moment after the cancellation) waits for its own
// hold before it undoes anything: no undo step starts while the fleet is
// held by a run that may no longer be watching it.
func TestACancelledHeldRolloutUndoesOnlyOnceItHoldsTheFleet(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	watchHold(h.env, h.rec.add, false)
	h.env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (Status, error) {
		hold, err := holdFleet(ctx, "test")
		if err != nil || hold == nil {
			return Status{}, fmt.Errorf("the holder could not hold the fleet: %v", err)
		}
		childCtx, cancel := workflow.WithCancel(ctx)
		child := workflow.ExecuteChildWorkflow(childCtx, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B", HeldBy: "holder"})
		_ = workflow.Sleep(ctx, time.Minute)
		cancel()
		// The holder's hold ends a moment after: within the held
		// rollout's retries of its own.
		_ = workflow.Sleep(ctx, 2*time.Second)
		hold.release(ctx)
		var st Status
		err = child.Get(ctx, &st)
		return st, err
	}, workflow.RegisterOptions{Name: "holder"})
	h.env.ExecuteWorkflow("holder")
	var holds []int
	for i, c := range h.rec.calls {
		if c == "hold fleet-lock-test" {
			holds = append(holds, i)
		}
	}
	undo, released := h.callIndex("DeleteGreen"), h.callIndex("end fleet-lock-test: <nil>")
	if len(holds) != 2 || undo < 0 || released < 0 || !(released < holds[1] && holds[1] < undo) {
		t.Fatalf("calls %q: want the holder's hold released, then the fleet held by the cancelled rollout, then green deleted", h.rec.calls)
	}
}

// A rollout cancelled by hand (the Web UI's cancel) keeps its hold until
// its undo has ended: the hold is not cancelled with it.
func TestACancelledRolloutHoldsTheFleetUntilItsUndoEnds(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	watchHold(h.env, h.rec.add, false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
	if _, err := h.runInput(t, RolloutInput{Fleet: "test", Revision: "B"}); err == nil {
		t.Fatal("the cancelled rollout succeeded")
	}
	wantHeldThroughout(t, h.rec.calls)
	if h.callIndex("DeleteGreen") < 0 {
		t.Fatalf("calls %q: green was not deleted", h.rec.calls)
	}
}
