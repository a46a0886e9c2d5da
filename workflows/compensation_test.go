package workflows

import (
	"cmp"
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/activities"
)

// A step that an abort interrupted is recorded as canceled, with no
// error: it did not fail, and the operator reading the steps should not
// look for why.
func TestStepInterruptedByAbortIsCanceled(t *testing.T) {
	h := newHarness(t, "", "ProvisionNameservers")
	signalAt(h.env, time.Minute, SignalAbort, SignalInput{Reason: "wrong zone"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeAborted)
	s, ok := stepsByTarget(st, "ProvisionNameservers")["green"]
	if !ok || s.State != StepCanceled || s.Error != "" {
		t.Errorf("ProvisionNameservers step %+v, want canceled with no error", s)
	}
}

// A bake that fails says in its step which round failed: the rounds
// before it passed, which the operator needs to judge the revision.
func TestFailedBakeNamesItsRound(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 10m, bake_interval: 1m}", "BakeCheck")
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	var bake *Step
	for _, s := range st.Steps {
		if s.Name == "Bake" {
			bake = s
		}
	}
	if bake == nil || bake.State != StepFailed || !strings.HasPrefix(bake.Error, "round 1: ") || !strings.Contains(bake.Error, "BakeCheck exploded") {
		t.Errorf("Bake step %+v, want failed in round 1 with the check's error", bake)
	}
}

// The analysis that failed a verify step stays in the status, with its
// summary, beside the failure's message.
func TestFailedVerifyKeepsItsAnalysis(t *testing.T) {
	h := newHarness(t, "VerifyGreenAnalysis")
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if len(st.Analysis) != 1 || st.Analysis[0].Step != "VerifyGreen" || st.Analysis[0].Result.Summary != failedAnalysisSummary {
		t.Errorf("analysis %+v, want VerifyGreen's: %q", st.Analysis, failedAnalysisSummary)
	}
}

// A flip back to blue that the rollback started at once, and that failed,
// is made again in the next cleanup round, not waited for again: the round
// after lb2 refused it puts lb2 back on blue.
func TestFailedFlipBackIsRetriedInTheNextRound(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
	refused := false
	h.rec.onFlip = func(in activities.FlipInput) error {
		for _, sh := range in.Shares {
			if in.LB.Name == "lb2" && strings.HasSuffix(sh.Server.Label, "-next") && sh.Weight == 0 && !refused {
				refused = true
				return temporal.NewNonRetryableApplicationError("dnsdist console: connection refused", activities.ErrStep, nil)
			}
		}
		return nil
	}
	signalAt(h.env, 10*time.Minute, SignalRollback, SignalInput{Reason: "latency"})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeRolledBack)
	if got := h.rec.lbs["lb1"] + "," + h.rec.lbs["lb2"]; got != "ns1,ns2" || !refused {
		t.Errorf("load balancers on %s (lb2 refused once: %v), want blue", got, refused)
	}
	if st.Phase != PhaseRolledBack || len(st.OnGreen) != 0 || !h.rec.has("DeleteGreen") {
		t.Errorf("phase %s, on green %v, calls %v; want rolled back with green deleted", st.Phase, st.OnGreen, h.rec.calls)
	}
}

// Every phase after PhaseSucceeded in Phases is an outcome, and only
// they: the API refuses signals to a rollout that has ended, and the CLI
// waits for one that has not, by Done.
func TestOnlyOutcomesAreDone(t *testing.T) {
	outcomes := false
	for _, p := range Phases {
		outcomes = outcomes || p == PhaseSucceeded
		if p.Done() != outcomes {
			t.Errorf("%s: Done() = %v, want %v", p, p.Done(), outcomes)
		}
	}
}

// undoAfterEveryStepEnded checks that no step of st is left running, and
// that the first step called undo began once the step called step of
// target had ended: the undo of a fanned-out step must not run beside the
// ones still running, which may yet change what it undoes.
func undoAfterEveryStepEnded(t *testing.T, st Status, step, target, undo string) {
	t.Helper()
	for _, s := range st.Steps {
		if s.State == StepRunning {
			t.Errorf("step %s still running in the final status", s.label())
		}
	}
	slow, ok := stepsByTarget(st, step)[target]
	var first *Step
	for _, s := range st.Steps {
		if s.Name == undo && first == nil {
			first = s
		}
	}
	if !ok || first == nil || first.StartedAt.Before(slow.EndedAt) {
		t.Errorf("%s %s %+v, first %s %+v: want the undo to begin once the step ended", step, target, slow, undo, first)
	}
}

// A create that fails does not start the undo while the other creates
// still run: green is deleted once every create has reported back, and
// the status shows no create still running.
func TestFailedCreateWaitsForTheOthersBeforeTheUndo(t *testing.T) {
	h := newHarness(t, "")
	h.rec.failTarget, h.rec.slowTarget = "ns1-next", "ns2-next"
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	undoAfterEveryStepEnded(t, st, "EnsureServer", "ns2-next", "DeleteGreen")
}

// A load balancer staged in turn that fails does not start the undo
// while the others, staged at once, still run: the release of green from
// a load balancer must not race its stage.
func TestFailedStageInTurnWaitsForTheOthersBeforeTheUndo(t *testing.T) {
	mixed := strings.Replace(lbFleet, `fronts: ns2, driver: dnsdist}`, `fronts: ns2, driver: nginx}`, 1)
	h := newHarnessFleet(t, mixed, "")
	h.rec.failTarget, h.rec.slowTarget = "lb1", "lb2"
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	undoAfterEveryStepEnded(t, st, "StageLoadBalancer", "lb2", "ReleaseGreen")
}

// Cleanup steps try harder than forward steps, since giving up leaves
// green, or a load balancer on it: three times steps.switch_timeout and
// three times steps.max_attempts, within steps.cleanup_timeout.
func TestCleanupStepsTryHarderThanForwardSteps(t *testing.T) {
	h := newHarnessWith(t, "rollout: {bake: 0s}\nsteps: {switch_timeout: 1m, max_attempts: 2, cleanup_timeout: 30m}", "VerifyGreen")
	h.rec.deleteGreenDown = true
	var budget time.Duration
	var attempts int32
	h.env.SetOnActivityStartedListener(func(info *activity.Info, ctx context.Context, args converter.EncodedValues) {
		h.rec.checkFleetArg(info, ctx, args)
		if info.ActivityType.Name == "DeleteGreen" {
			budget = cmp.Or(budget, info.ScheduleToCloseTimeout)
			attempts = max(attempts, info.Attempt)
		}
	})
	st, err := h.run(t)
	wantErrType(t, err, ErrTypeFailed)
	if st.Phase != PhaseCleanupFailed || budget != 3*time.Minute || attempts != 6 {
		t.Errorf("phase %s; DeleteGreen had %s and %d attempts, want 3m and 6", st.Phase, budget, attempts)
	}
}
