package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/lb"
)

// lbUpdateRun runs LoadBalancerUpdateWorkflow on the test fleet's two load
// balancers with mocked activities, recording each call as "Step lb";
// failAt ("Update lb2", or several, comma-separated) fails those calls,
// "Unchanged lb2" makes lb2's restore find nothing to restore and "Retry2
// lb1" makes the second check of lb1's bake pass at its third attempt; slowAt
// makes the update take an hour ("Restore": the restore; "Check": each DNS
// check takes 15.4s, the update none). The fleet bakes as lb_update's
// defaults have it: "Bake lb1" is each check of its bake, and "Bake3 lb1"
// fails its third.
func lbUpdateRun(t *testing.T, failAt, slowAt string, during func(env *testsuite.TestWorkflowEnvironment)) ([]string, Status, error) {
	t.Helper()
	return lbUpdateRunIn(t, labFleet, failAt, slowAt, during)
}

// lbUpdateRunIn is lbUpdateRun on the fleet fleetYAML.
func lbUpdateRunIn(t *testing.T, fleetYAML, failAt, slowAt string, during func(env *testsuite.TestWorkflowEnvironment)) ([]string, Status, error) {
	t.Helper()
	return lbUpdateRunOn(t, fleetYAML, nil, failAt, slowAt, during)
}

// lbUpdateRunOn is lbUpdateRunIn updating the load balancers lbs (nil: all).
func lbUpdateRunOn(t *testing.T, fleetYAML string, lbs []string, failAt, slowAt string, during func(env *testsuite.TestWorkflowEnvironment)) ([]string, Status, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	fleet, env := testEnv(t, &s, fleetYAML)
	var mu sync.Mutex
	var calls []string
	record := func(step, name string) error {
		mu.Lock()
		calls = append(calls, step+" "+name)
		mu.Unlock()
		if strings.Contains(","+failAt+",", ","+step+" "+name+",") {
			return temporal.NewNonRetryableApplicationError(step+" "+name+" exploded", activities.ErrStep, nil)
		}
		return nil
	}
	var a *activities.Activities
	// A load balancer's checks are, in turn, before its update, after it
	// and its bake's.
	checks := map[string]int{}
	chk := env.OnActivity(a.CheckLoadBalancerDNS, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckLBInput) (activities.StepResult, error) {
		mu.Lock()
		checks[in.LB.Name]++
		n := checks[in.LB.Name]
		mu.Unlock()
		step, attempt := map[int]string{1: "CheckBefore", 2: "CheckAfter"}[n], int32(1)
		if step == "" {
			step = "Bake"
			if strings.Contains(","+failAt+",", fmt.Sprintf(",Bake%d %s,", n-2, in.LB.Name)) {
				record(step, in.LB.Name)
				return activities.StepResult{}, temporal.NewNonRetryableApplicationError(in.LB.Name+" answers nothing", activities.ErrStep, nil)
			}
			if strings.Contains(","+failAt+",", fmt.Sprintf(",Retry%d %s,", n-2, in.LB.Name)) {
				attempt = 3
			}
		}
		return activities.StepResult{Attempt: attempt, Note: in.LB.Name + ": 4 answers"}, record(step, in.LB.Name)
	})
	if slowAt == "Check" {
		chk.After(15400 * time.Millisecond)
	}
	// The update and its restore name the run as a reset keeps it.
	wantRun := func(in activities.UpdateLBInput) {
		if want := "default-test-workflow-id/default-test-run-id"; in.Run != want {
			t.Errorf("%s's update names run %q, want %q", in.LB.Name, in.Run, want)
		}
	}
	upd := env.OnActivity(a.UpdateLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateLBInput) (activities.StepResult, error) {
		wantRun(in)
		if in.Update.Kind != lb.UpdateBinary {
			t.Errorf("update kind %q reached the activity, want %q", in.Update.Kind, lb.UpdateBinary)
		}
		return activities.StepResult{Attempt: 1}, record("Update", in.LB.Name)
	})
	if slowAt != "" && slowAt != "Restore" && slowAt != "Check" {
		upd.After(time.Hour)
	}
	rst := env.OnActivity(a.RestoreLoadBalancer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateLBInput) (activities.RestoreResult, error) {
		wantRun(in)
		res := activities.RestoreResult{StepResult: activities.StepResult{Attempt: 1}}
		if strings.Contains(","+failAt+",", ",Unchanged "+in.LB.Name+",") {
			res.NothingRestored = true
			res.Note = in.LB.Name + ": nothing to restore: this update never replaced the config"
		}
		return res, record("Restore", in.LB.Name)
	})
	if slowAt == "Restore" {
		rst.After(time.Hour)
	}
	if during != nil {
		during(env)
	}
	env.ExecuteWorkflow(LoadBalancerUpdateWorkflow, LBUpdateInput{Fleet: fleet, LoadBalancers: lbs, Update: lb.Update{Kind: lb.UpdateBinary}})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	v, err := env.QueryWorkflow(QueryStatus)
	return calls, temporaltest.Value[Status](t, v, err), env.GetWorkflowError()
}

// statusAt queries the status d into the run, into st.
func statusAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, d time.Duration, st *Status) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		*st = temporaltest.Value[Status](t, v, err)
	}, d)
}

// lb1Baked is lb1's bake, as lb_update's defaults have it: a minute, a
// check every 10s.
var lb1Baked = strings.Repeat(",Bake lb1", 6)

// TestLBUpdateOneAtATime: each load balancer is checked, updated and
// checked again, and each but the last bakes, before the next is touched;
// none is restored.
func TestLBUpdateOneAtATime(t *testing.T) {
	calls, st, err := lbUpdateRun(t, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "CheckBefore lb1,Update lb1,CheckAfter lb1" + lb1Baked + ",CheckBefore lb2,Update lb2,CheckAfter lb2"
	if got := strings.Join(calls, ","); got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if st.Phase != PhaseSucceeded || len(st.Steps) != 7 {
		t.Errorf("status phase %s with %d steps, want succeeded with 7", st.Phase, len(st.Steps))
	}
	// The bake is one step, lb1's, whose note counts its rounds.
	if b := st.Steps[3]; b.label() != "Bake lb1" || b.Phase != PhaseBaking || !strings.HasPrefix(b.Note, "6 round(s) passed, lb1: 4 answers") ||
		b.EndedAt.Sub(b.StartedAt) != time.Minute {
		t.Errorf("step 4 is %s (phase %s, note %q, %s long), want lb1's bake of a minute, its 6 rounds passed",
			b.label(), b.Phase, b.Note, b.EndedAt.Sub(b.StartedAt))
	}
	for _, s := range st.Steps {
		if s.State != StepSucceeded {
			t.Errorf("step %s %s is %s", s.Name, s.Target, s.State)
		}
	}
}

// TestLBUpdateFailureRestoresThatLB: lb2's update fails after lb1's went
// through: the workflow stops, restores lb2 alone, and lb1 keeps its
// update. A failed check after the update restores too.
func TestLBUpdateFailureRestoresThatLB(t *testing.T) {
	for failAt, want := range map[string]struct {
		calls string
		phase Phase
	}{
		"Update lb2":     {"CheckBefore lb1,Update lb1,CheckAfter lb1" + lb1Baked + ",CheckBefore lb2,Update lb2,Restore lb2", PhaseRolledBack},
		"CheckAfter lb1": {"CheckBefore lb1,Update lb1,CheckAfter lb1,Restore lb1", PhaseRolledBack},
		// Nothing changed yet: nothing to restore, and nothing rolled back.
		"CheckBefore lb1": {"CheckBefore lb1", PhaseFailed},
		// lb1 keeps its update; lb2 was not touched.
		"CheckBefore lb2": {"CheckBefore lb1,Update lb1,CheckAfter lb1" + lb1Baked + ",CheckBefore lb2", PhaseFailed},
	} {
		t.Run(failAt, func(t *testing.T) {
			calls, st, err := lbUpdateRun(t, failAt, "", nil)
			if err == nil || !strings.Contains(err.Error(), failAt+" exploded") {
				t.Errorf("workflow error %v, want %q", err, failAt+" exploded")
			}
			if got := strings.Join(calls, ","); got != want.calls {
				t.Errorf("calls\n %s\nwant\n %s", got, want.calls)
			}
			if st.Phase != want.phase || !strings.Contains(st.Failure, failAt) {
				t.Errorf("phase %s failure %q, want %s naming %s", st.Phase, st.Failure, want.phase, failAt)
			}
			// The failure carries the status, for readers without a worker.
			if got := failureStatus[Status](t, err); got.Phase != st.Phase || got.Failure != st.Failure || len(got.Steps) != len(st.Steps) {
				t.Errorf("the failure's status: phase %s, failure %q, %d steps; want the queried %s, %q, %d steps",
					got.Phase, got.Failure, len(got.Steps), st.Phase, st.Failure, len(st.Steps))
			}
		})
	}
}

// TestLBUpdateFailureSaysTheStepsError: the failure the operator reads
// (status, `lb status`, --wait's last line) is the step and its error, as a
// rollout's is, not Temporal's wrapping of it ("activity error (type: ...,
// scheduledEventID: ...)").
func TestLBUpdateFailureSaysTheStepsError(t *testing.T) {
	_, st, _ := lbUpdateRun(t, "Update lb2", "", nil)
	if want := "Update lb2: Update lb2 exploded"; st.Failure != want {
		t.Errorf("failure %q, want %q", st.Failure, want)
	}
}

// A restore that finds nothing to undo (nginx -t refused the config, so it
// never went in) ends the run failed, not rolled-back, which says that a
// load balancer was changed and put back.
func TestLBUpdateWithNothingToRestoreEndsFailed(t *testing.T) {
	calls, st, err := lbUpdateRun(t, "Update lb2,Unchanged lb2", "", nil)
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Update lb1,CheckAfter lb1"+lb1Baked+",CheckBefore lb2,Update lb2,Restore lb2"; got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if err == nil || st.Phase != PhaseFailed {
		t.Fatalf("phase %s (%v), want failed", st.Phase, err)
	}
	if !strings.Contains(st.Failure, "Update lb2 exploded") || !strings.Contains(st.Failure, "lb2: nothing to restore: this update never replaced the config") {
		t.Errorf("failure %q, want the update's error and the restore's word", st.Failure)
	}
	if last := st.Steps[len(st.Steps)-1]; last.Name != "Restore" || !strings.HasPrefix(last.Note, "lb2: nothing to restore") {
		t.Errorf("last step %s, note %q; want the Restore, noting what it did", last.Name, last.Note)
	}
}

// TestLBUpdateRestoreFails ends cleanup-failed, saying both failures.
func TestLBUpdateRestoreFails(t *testing.T) {
	calls, st, err := lbUpdateRun(t, "Update lb1,Restore lb1", "", nil)
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Update lb1,Restore lb1"; got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if err == nil || st.Phase != PhaseCleanupFailed || !strings.Contains(st.Failure, "Update lb1 exploded") || !strings.Contains(st.Failure, "restore failed: Restore lb1") {
		t.Errorf("phase %s failure %q (err %v), want cleanup-failed naming the update and the restore", st.Phase, st.Failure, err)
	}
}

// TestLBUpdateAbortRestores: an abort during lb1's update cancels it and
// restores lb1; lb2 is never touched.
func TestLBUpdateAbortRestores(t *testing.T) {
	calls, st, err := lbUpdateRun(t, "", "slow", func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalAbort, SignalInput{Reason: "wrong version", By: "ops"})
		}, time.Minute)
	})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !strings.Contains(err.Error(), "aborted: wrong version") {
		t.Errorf("workflow error %v, want aborted: wrong version", err)
	}
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Restore lb1"; got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if st.Phase != PhaseAborted {
		t.Errorf("phase %s, want aborted", st.Phase)
	}
}

// A rollback or approve signal sent to an update from Temporal's CLI or
// Web UI (the API refuses them) is recorded as ignored, saying what to
// send instead, and does not stop the update; a second abort is recorded
// too. Before, each was accepted by the server and never read.
func TestLBUpdateRecordsTheSignalsItIgnores(t *testing.T) {
	_, st, err := lbUpdateRun(t, "", "slow", func(env *testsuite.TestWorkflowEnvironment) {
		signalAt(env, 10*time.Second, SignalRollback, SignalInput{Reason: "bad", By: "ops"})
		signalAt(env, 20*time.Second, SignalApprove, SignalInput{By: "ops"})
		signalAt(env, time.Minute, SignalAbort, SignalInput{Reason: "wrong version", By: "ops"})
		signalAt(env, time.Minute, SignalAbort, SignalInput{Reason: "again", By: "ops"})
	})
	if st.Phase != PhaseAborted || err == nil || !strings.Contains(st.Failure, "wrong version") {
		t.Fatalf("phase %s, failure %q (err %v): want aborted by the first abort", st.Phase, st.Failure, err)
	}
	text := eventsText(st)
	for _, want := range []string{"rollback ignored: an in-place update has nothing to roll back to; abort restores", "approve ignored", "abort ignored: already stopping"} {
		if !strings.Contains(text, want) {
			t.Errorf("events %q lack %q", text, want)
		}
	}
}

// An abort that comes while a failed update is being restored does not
// turn the failure into an abort: the run ends rolled back, for the
// update's failure. Before, it ended aborted, for an abort that stopped
// nothing.
func TestLBUpdateAbortDuringTheRestoreOfAFailure(t *testing.T) {
	_, st, err := lbUpdateRun(t, "Update lb2", "Restore", func(env *testsuite.TestWorkflowEnvironment) {
		signalAt(env, 30*time.Minute, SignalAbort, SignalInput{Reason: "stop it", By: "ops"})
	})
	if st.Phase != PhaseRolledBack || !strings.Contains(st.Failure, "Update lb2 exploded") || err == nil {
		t.Errorf("phase %s, failure %q, error %v: want rolled back, for lb2's failed update", st.Phase, st.Failure, err)
	}
}

// An abort whose restore fails closes the run failed, not cancelled:
// Temporal closes a run whose error holds a cancellation (the step the
// abort interrupted) as cancelled, which `--status failed`, the failed-
// workflow alert and the Web UI's failure message all miss.
func TestLBUpdateAbortWhoseRestoreFailsClosesFailed(t *testing.T) {
	_, st, err := lbUpdateRun(t, "Restore lb1", "slow", func(env *testsuite.TestWorkflowEnvironment) {
		signalAt(env, time.Minute, SignalAbort, SignalInput{Reason: "wrong version", By: "ops"})
	})
	if st.Phase != PhaseCleanupFailed {
		t.Errorf("phase %s, want cleanup-failed", st.Phase)
	}
	var canceled *temporal.CanceledError
	if err == nil || errors.As(err, &canceled) || !strings.Contains(err.Error(), "restore failed: Restore lb1") {
		t.Errorf("workflow error %v, want a failure naming the restore and no cancellation in its chain", err)
	}
}

// An update that cannot apply to every chosen load balancer is refused
// before the first is touched: a load balancer named twice (a console
// chunk would run twice), or a kind one's driver does not take (an nginx
// asked for a dnsdist console chunk, in a fleet where others run dnsdist
// and would already have been changed).
func TestLBUpdateRefusedBeforeAnyLBIsTouched(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dnsdist bool
		lbs     []string
		update  lb.Update
		want    []string
	}{
		{"a load balancer twice", false, []string{"lb1", "lb2", "lb1"}, lb.Update{Kind: lb.UpdateBinary}, []string{"load_balancers", `"lb1" is named twice`}},
		{"a kind nginx does not take", false, nil, lb.Update{Kind: lb.UpdateConsole, Lua: "setMaxUDPOutstanding(65535)"},
			[]string{"update.kind", "lb1 runs nginx", `"config" or "binary"`}},
		// Without it a failed check could not be undone, yet would end
		// rolled-back, the load balancer left as the chunk made it.
		{"a console chunk without its undo", true, nil, lb.Update{Kind: lb.UpdateConsole, Lua: `setACL({"10.0.0.0/8"})`},
			[]string{"update.undo_lua", "puts back"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			text := labFleet
			if tt.dnsdist {
				text = strings.ReplaceAll(text, "fronts: ns1}", "fronts: ns1, driver: dnsdist}")
				text = strings.ReplaceAll(text, "fronts: ns2}", "fronts: ns2, driver: dnsdist}")
			}
			fleet, env := testEnv(t, &s, text)
			var a *activities.Activities
			touched := 0
			check := func(context.Context, activities.CheckLBInput) (activities.StepResult, error) {
				touched++
				return activities.StepResult{Attempt: 1}, nil
			}
			update := func(context.Context, activities.UpdateLBInput) (activities.StepResult, error) {
				touched++
				return activities.StepResult{Attempt: 1}, nil
			}
			env.OnActivity(a.CheckLoadBalancerDNS, mock.Anything, mock.Anything).Return(check).Maybe()
			env.OnActivity(a.UpdateLoadBalancer, mock.Anything, mock.Anything).Return(update).Maybe()
			env.OnActivity(a.RestoreLoadBalancer, mock.Anything, mock.Anything).Return(update).Maybe()
			env.ExecuteWorkflow(LoadBalancerUpdateWorkflow, LBUpdateInput{Fleet: fleet, LoadBalancers: tt.lbs, Update: tt.update})
			err := env.GetWorkflowError()
			if err == nil {
				t.Fatal("the update was not refused")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if touched != 0 {
				t.Errorf("%d load balancer steps ran before the refusal", touched)
			}
			// Nothing was changed, so nothing was rolled back: it failed.
			v, qerr := env.QueryWorkflow(QueryStatus)
			if st := temporaltest.Value[Status](t, v, qerr); st.Phase != PhaseFailed {
				t.Errorf("phase %s, want failed", st.Phase)
			}
		})
	}
}

// An abort of a load balancer update with a 1.5 MB reason ends it aborted
// with the reason clipped, like a rollout's (decodeSignal); a payload that
// decodes to neither form is recorded and ignored, not a workflow task that
// fails for ever.
func TestLBUpdateAbortClipsReason(t *testing.T) {
	const n = 1_500_000
	_, st, err := lbUpdateRun(t, "", "slow", func(env *testsuite.TestWorkflowEnvironment) {
		signalAt(env, 30*time.Second, SignalAbort, []int{4, 2})
		signalAt(env, time.Minute, SignalAbort, SignalInput{Reason: strings.Repeat("R", n), By: "ops"})
	})
	if st.Phase != PhaseAborted || err == nil {
		t.Fatalf("phase %s (err %v), want aborted", st.Phase, err)
	}
	wantClippedSignalText(t, "status failure", st.Failure, n)
	wantClippedSignalText(t, "workflow error", err.Error(), n)
	text := eventsText(st)
	if !strings.Contains(text, "abort ignored") || !strings.Contains(text, "[4,2]") {
		t.Errorf("events %.500q do not record the ignored signal", text)
	}
	for _, e := range st.Events {
		if len(e.Message) > maxSignalReason+maxSignalBy+400 {
			t.Errorf("event of %d bytes: %.200q...", len(e.Message), e.Message)
		}
	}
}

// failureStatus is the status a workflow's failure err carries.
func failureStatus[S any](t *testing.T, err error) S {
	t.Helper()
	var st S
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() {
		t.Errorf("the failure %v carries no status", err)
		return st
	}
	if derr := app.Details(&st); derr != nil {
		t.Errorf("the failure's status: %v", derr)
	}
	return st
}

// ChooseLBsToUpdate refuses, naming the field, a fleet with no load
// balancer (an update of nothing would end succeeded, having changed
// nothing) and a console chunk whose undo is blank (a failed check after
// it could not be undone).
func TestChooseLBsToUpdateRefusesWhatCannotBeDoneOrUndone(t *testing.T) {
	dnsdist := []config.LoadBalancer{{Name: "lb1", Address: "192.0.2.1:53", Driver: "dnsdist"}}
	for _, tc := range []struct {
		name   string
		lbs    []config.LoadBalancer
		update lb.Update
		field  string
	}{
		{"no load balancers", nil, lb.Update{Kind: lb.UpdateBinary}, "fleet"},
		{"a blank undo", dnsdist, lb.Update{Kind: lb.UpdateConsole, Lua: `setACL({"10.0.0.0/8"})`, UndoLua: " \n\t"}, "update.undo_lua"},
	} {
		_, err := ChooseLBsToUpdate(&config.Fleet{Name: "t", LoadBalancers: tc.lbs}, nil, tc.update)
		var in *InputError
		if !errors.As(err, &in) || in.Field != tc.field {
			t.Errorf("%s: %v; want it refused at %s", tc.name, err, tc.field)
		}
	}
}

// A check that fails during lb1's bake restores lb1, whose update was not
// yet accepted, before lb2 is touched; the failure names the load
// balancer, the check and when in the bake it failed.
func TestLBUpdateBakeFailureRestoresThatLB(t *testing.T) {
	calls, st, err := lbUpdateRun(t, "Bake3 lb1", "", nil)
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Update lb1,CheckAfter lb1,Bake lb1,Bake lb1,Bake lb1,Restore lb1"; got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if want := "Bake lb1: the DNS check of round 3, 30s into the 1m0s bake: lb1 answers nothing"; st.Phase != PhaseRolledBack || st.Failure != want || err == nil {
		t.Errorf("phase %s, failure %q (err %v); want rolled-back, %q", st.Phase, st.Failure, err, want)
	}
}

// lb_update.bake: 0s goes from one load balancer to the next at once, as
// before the bake.
func TestLBUpdateBakeOfZeroSkipsIt(t *testing.T) {
	calls, st, err := lbUpdateRunIn(t, labFleet+"lb_update: {bake: 0s}\n", "", "", nil)
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Update lb1,CheckAfter lb1,CheckBefore lb2,Update lb2,CheckAfter lb2"; got != want || err != nil {
		t.Errorf("calls (err %v)\n %s\nwant\n %s", err, got, want)
	}
	if st.Phase != PhaseSucceeded || len(st.Steps) != 6 || st.EndedAt.Sub(st.StartedAt) >= time.Minute {
		t.Errorf("phase %s, %d steps in %s; want succeeded, 6 steps, no bake's minute", st.Phase, len(st.Steps), st.EndedAt.Sub(st.StartedAt))
	}
}

// An abort during lb1's bake restores lb1: it has the update and has not
// yet been accepted. lb2 is never touched; the status shows the bake
// cancelled.
func TestLBUpdateAbortDuringTheBakeRestores(t *testing.T) {
	var baking Status
	calls, st, err := lbUpdateRun(t, "", "", func(env *testsuite.TestWorkflowEnvironment) {
		statusAt(t, env, 25*time.Second, &baking)
		signalAt(env, 35*time.Second, SignalAbort, SignalInput{Reason: "latency up", By: "ops"})
	})
	if got, want := strings.Join(calls, ","), "CheckBefore lb1,Update lb1,CheckAfter lb1,Bake lb1,Bake lb1,Bake lb1,Restore lb1"; got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if st.Phase != PhaseAborted || err == nil || !strings.Contains(st.Failure, "aborted: latency up") {
		t.Errorf("phase %s, failure %q (err %v); want aborted", st.Phase, st.Failure, err)
	}
	if b := st.Steps[3]; b.label() != "Bake lb1" || b.State != StepCanceled {
		t.Errorf("step 4 is %s %s, want lb1's bake cancelled", b.label(), b.State)
	}
	// While it bakes, the status says so, and until when.
	last := baking.Steps[len(baking.Steps)-1]
	if baking.Phase != PhaseBaking || last.label() != "Bake lb1" || last.State != StepRunning ||
		!strings.HasPrefix(last.Note, "2 round(s) passed, lb1: 4 answers; until ") {
		t.Errorf("25s into the bake: phase %s, last step %s %s, note %q; want baking, lb1's bake running, its rounds and end",
			baking.Phase, last.label(), last.State, last.Note)
	}
}

// The last of the load balancers chosen does not bake, also when it is not
// the fleet's last; one chosen alone does not bake.
func TestLBUpdateBakesAllButTheLastChosen(t *testing.T) {
	for _, tt := range []struct {
		lbs  []string
		want string
	}{
		{[]string{"lb2", "lb1"}, "CheckBefore lb2,Update lb2,CheckAfter lb2" + strings.Repeat(",Bake lb2", 6) + ",CheckBefore lb1,Update lb1,CheckAfter lb1"},
		{[]string{"lb1"}, "CheckBefore lb1,Update lb1,CheckAfter lb1"},
	} {
		calls, st, err := lbUpdateRunOn(t, labFleet, tt.lbs, "", "", nil)
		if got := strings.Join(calls, ","); got != tt.want || err != nil || st.Phase != PhaseSucceeded {
			t.Errorf("%v: phase %s (err %v), calls\n %s\nwant succeeded,\n %s", tt.lbs, st.Phase, err, got, tt.want)
		}
	}
}

// Once lb1's bake has passed, the update of lb2 shows as updating the
// load balancers again, not baking.
func TestLBUpdateAfterTheBakeIsUpdatingAgain(t *testing.T) {
	var during Status
	_, st, err := lbUpdateRun(t, "", "slow", func(env *testsuite.TestWorkflowEnvironment) {
		// lb1's update takes an hour, its bake a minute, lb2's update an hour.
		statusAt(t, env, 90*time.Minute, &during)
	})
	if err != nil || st.Phase != PhaseSucceeded {
		t.Fatalf("phase %s (err %v), want succeeded", st.Phase, err)
	}
	if last := during.Steps[len(during.Steps)-1]; during.Phase != PhaseUpdatingLBs || last.label() != "Update lb2" {
		t.Errorf("during lb2's update: phase %s, last step %s; want %s", during.Phase, last.label(), PhaseUpdatingLBs)
	}
}

// A bake that the interval does not divide has its last round at its end,
// not past it.
func TestLBUpdateBakesItsLastRoundAtItsEnd(t *testing.T) {
	calls, st, err := lbUpdateRunIn(t, labFleet+"lb_update: {bake: 25s, bake_interval: 10s}\n", "", "", nil)
	if got, want := strings.Count(strings.Join(calls, ","), "Bake lb1"), 3; got != want || err != nil {
		t.Errorf("%d bake checks (err %v), want %d: at 10s, 20s and 25s", got, err, want)
	}
	if b := st.Steps[3]; b.label() != "Bake lb1" || b.EndedAt.Sub(b.StartedAt) != 25*time.Second {
		t.Errorf("step 4 is %s, %s long; want lb1's bake of 25s", b.label(), b.EndedAt.Sub(b.StartedAt))
	}
}

// A bake's failure says when its round's check began, to the second, also
// when the checks before it took a while: each check here takes 15.4s, so
// the rounds begin 10s, 35.4s and 60s into the bake, not 10s, 20s, 30s.
func TestLBUpdateBakeFailureSaysWhenItsCheckBegan(t *testing.T) {
	for failAt, want := range map[string]string{
		"Bake2 lb1": "Bake lb1: the DNS check of round 2, 35s into the 1m0s bake: lb1 answers nothing",
		"Bake3 lb1": "Bake lb1: the DNS check of round 3, 1m0s into the 1m0s bake: lb1 answers nothing",
	} {
		if _, st, _ := lbUpdateRun(t, failAt, "Check", nil); st.Failure != want {
			t.Errorf("failure %q, want %q", st.Failure, want)
		}
	}
}

// A bake's attempts are the most any of its rounds' checks took, also when
// a later round passed at once or failed.
func TestLBUpdateBakeAttemptsAreItsRoundsMost(t *testing.T) {
	for _, failAt := range []string{"Retry2 lb1", "Retry2 lb1,Bake3 lb1"} {
		_, st, _ := lbUpdateRun(t, failAt, "", nil)
		if b := st.Steps[3]; b.label() != "Bake lb1" || b.Attempts != 3 {
			t.Errorf("%s: step 4 is %s with %d attempts, want lb1's bake with 3", failAt, b.label(), b.Attempts)
		}
	}
}

// Of three load balancers, an abort during the second's bake restores the
// second alone: the first's bake passed, so it keeps its update.
func TestLBUpdateAbortDuringALaterBakeRestoresThatLB(t *testing.T) {
	lb2 := "  - {name: lb2, address: \"127.0.0.1:5302\", fronts: ns2}\n"
	if !strings.Contains(labFleet, lb2) {
		t.Fatalf("the test fleet has no %q", lb2)
	}
	three := strings.Replace(labFleet, lb2, lb2+"  - {name: lb3, address: \"127.0.0.1:5303\", fronts: ns2}\n", 1)
	calls, st, err := lbUpdateRunIn(t, three, "", "", func(env *testsuite.TestWorkflowEnvironment) {
		signalAt(env, 95*time.Second, SignalAbort, SignalInput{Reason: "latency up", By: "ops"})
	})
	want := "CheckBefore lb1,Update lb1,CheckAfter lb1" + lb1Baked + ",CheckBefore lb2,Update lb2,CheckAfter lb2" + strings.Repeat(",Bake lb2", 3) + ",Restore lb2"
	if got := strings.Join(calls, ","); got != want || st.Phase != PhaseAborted || err == nil {
		t.Errorf("phase %s (err %v), calls\n %s\nwant aborted,\n %s", st.Phase, err, got, want)
	}
}
