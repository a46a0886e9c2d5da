package rollouts

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/workflows"
)

// Start tells each rollout the bundle of its fleet's last rollout that
// succeeded, read from Temporal's visibility store as the dev server
// keeps it: the latest of several, not a failed one since, not another
// fleet's, and none for a fleet's first rollout; a retry is told what is
// live when it starts, not what was when the run it retries started. The
// rollouts here are a stand-in RolloutWorkflow that returns its Reason as
// its bundle (or fails when the reason is "fail") and the live bundle it
// was given as its revision.
func TestStartLooksUpTheLiveBundle(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	fakeRollouts(t, c, func(_ workflow.Context, in workflows.RolloutInput) (workflows.Status, error) {
		if in.Reason == "fail" {
			return workflows.Status{}, temporal.NewNonRetryableApplicationError("failed", "test", nil)
		}
		if in.Reason == "busy" {
			// Refused: another kind of run held the fleet.
			return workflows.Status{}, temporal.NewNonRetryableApplicationError("fleet lab is busy", workflows.ErrTypeFleetBusy, nil)
		}
		if in.Reason == "cleanup" {
			// A cleanup-only run completes too, with no bundle.
			return workflows.Status{Fleet: in.Fleet, Run: workflows.Run{Phase: workflows.PhaseCleanedUp}}, nil
		}
		return workflows.Status{Fleet: in.Fleet, Bundle: in.Reason, Revision: in.LiveBundle}, nil
	})

	// roll starts a rollout of fleet whose bundle is reason, waits for it
	// to end, and returns the live bundle it was given; failed is the
	// last rollout that failed.
	var failed Run
	roll := func(fleet, reason string) string {
		t.Helper()
		run, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: fleet, Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
		if reason == "fail" {
			failed = run
		}
		var st workflows.Status
		if err := c.GetWorkflow(t.Context(), run.WorkflowID, run.RunID).Get(t.Context(), &st); err != nil && reason != "fail" {
			t.Fatal(err)
		}
		if reason == "fail" {
			return st.Revision
		}
		// Visibility records a run's end a moment after it ends.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			live, ok, err := LastSucceeded(t.Context(), c, fleet)
			if err != nil {
				t.Fatal(err)
			}
			if ok && live.Bundle == reason {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after rollout %s of %s succeeded, the live bundle is still %q", reason, fleet, live.Bundle)
			}
		}
		return st.Revision
	}
	// Each rollout of lab is told the bundle of the last one that
	// succeeded before it.
	live := ""
	for _, bundle := range []string{"sha256:aa", "sha256:bb", "sha256:cc", "fail", "sha256:dd"} {
		got := roll("lab", bundle)
		if bundle == "fail" {
			continue
		}
		if got != live {
			t.Errorf("rollout of lab to %s was told the live bundle is %q, want %q", bundle, got, live)
		}
		live = bundle
	}
	// A cleanup-only run that completed is not what is live: the bundle
	// of the last rollout that succeeded still is.
	cleanup, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Reason: "cleanup", CleanUp: &workflows.CleanupRequest{From: "rollout-lab:earlier"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.GetWorkflow(t.Context(), cleanup.WorkflowID, cleanup.RunID).Get(t.Context(), nil)
	waitListed(t, c, fmt.Sprintf("RunId = '%s' AND ExecutionStatus = 'Completed'", cleanup.RunID))
	if st, ok, err := LastSucceeded(t.Context(), c, "lab"); err != nil || !ok || st.Bundle != live {
		t.Errorf("after a cleanup-only run, the live bundle is %q (%v, %v), want %q", st.Bundle, ok, err, live)
	}
	// A cleanup-only run is retried while it is the fleet's latest run:
	// the blue servers it points the load balancers at are still there.
	// Named by its workflow ID alone, the latest run is the one retried.
	again, in, err := Retry(t.Context(), c, Run{WorkflowID: cleanup.WorkflowID})
	if err != nil || in.CleanUp == nil || in.CleanUp.From != "rollout-lab:earlier" {
		t.Fatalf("retry of the latest run, a cleanup: input %+v, %v; want the same cleanup", in, err)
	}
	_ = c.GetWorkflow(t.Context(), again.WorkflowID, again.RunID).Get(t.Context(), nil)
	// Runs refused because the fleet was busy changed nothing: the
	// cleanup before them is still retried.
	for range 2 {
		busy, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Reason: "busy"})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.GetWorkflow(t.Context(), busy.WorkflowID, busy.RunID).Get(t.Context(), nil)
	}
	again, in, err = Retry(t.Context(), c, again)
	if err != nil || in.CleanUp == nil {
		t.Fatalf("retry of a cleanup that only refused runs followed: input %+v, %v; want the same cleanup", in, err)
	}
	_ = c.GetWorkflow(t.Context(), again.WorkflowID, again.RunID).Get(t.Context(), nil)
	// A retry of the rollout that failed while cc was live compares with
	// dd, live now, not with the bundle that was live when it first ran.
	run, _, err := Retry(t.Context(), c, failed)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.GetWorkflow(t.Context(), run.WorkflowID, run.RunID).Get(t.Context(), nil)
	// A refused run after it does not hide it: the rollout before is found
	// in the visibility store, once that lists it.
	waitListed(t, c, fmt.Sprintf("RunId = '%s'", run.RunID))
	busy, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Reason: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.GetWorkflow(t.Context(), busy.WorkflowID, busy.RunID).Get(t.Context(), nil)
	// Once a later rollout has run, which may have deleted those blue
	// servers, a cleanup is not retried: it would point the load balancers
	// at servers that may be gone.
	for _, old := range []Run{cleanup, again} {
		_, _, err := Retry(t.Context(), c, old)
		if dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.Contains(err.Error(), run.RunID) {
			t.Errorf("retry of cleanup run %s after the later rollout %s: %v (code %q); want a conflict naming the later run",
				old.RunID, run.RunID, err, dnsroll.ErrorCode(err))
		}
	}
	if in, err := Input(t.Context(), c, run); err != nil || in.LiveBundle != live || in.LiveUnknown != "" {
		t.Errorf("retry of the failed rollout was told the live bundle is %q (unknown: %q), %v; want %q", in.LiveBundle, in.LiveUnknown, err, live)
	}
	if got := roll("other", "sha256:ee"); got != "" {
		t.Errorf("the first rollout of another fleet was told the live bundle is %q, want none", got)
	}
	if st, ok, err := LastSucceeded(t.Context(), c, "nobody"); err != nil || ok {
		t.Errorf("a fleet with no rollouts: %+v, %v, %v; want none", st, ok, err)
	}
	// Live says nothing of one either: no live revision, and no reason it
	// is unknown, such as a successful rollout that recorded no bundle.
	if bundle, why := Live(t.Context(), c, "nobody"); bundle != "" || why != "" {
		t.Errorf("the live revision of a fleet with no rollouts: %q (unknown: %q), want none", bundle, why)
	}
	// A load balancer replacement's rollout of its zone records switched
	// its new load balancers too, under its hold of the fleet: run again
	// on its own it would skip the hold, and name machines that may be
	// gone. It is refused, naming the replacement.
	zone, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "zone", Reason: "fail", HeldBy: "lbreplace-zone"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.GetWorkflow(t.Context(), zone.WorkflowID, zone.RunID).Get(t.Context(), nil)
	if _, _, err := Retry(t.Context(), c, zone); dnsroll.ErrorCode(err) != dnsroll.ECONFLICT || !strings.Contains(err.Error(), "lbreplace-zone") {
		t.Errorf("retry of a replacement's zone rollout: %v (code %q); want it refused, naming the replacement", err, dnsroll.ErrorCode(err))
	}
}

// waitListed waits until the visibility store, which records a run a
// moment after the run starts or ends, lists one run for query.
func waitListed(t *testing.T, c client.Client, query string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the visibility store never listed a run for %s", query)
		}
	}
}

// fakeRollouts runs fn as RolloutWorkflow on a worker of c until the test
// ends.
func fakeRollouts(t *testing.T, c client.Client, fn func(workflow.Context, workflows.RolloutInput) (workflows.Status, error)) {
	t.Helper()
	w := worker.New(c, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: "RolloutWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// A CI job that retries its start (its first answer was lost) gets the
// rollout its first start began, running or ended, and never a second
// one or a 409 about its own rollout; the same key with another request
// is refused; another key is a new start, refused while one runs.
func TestStartOnceStartsOneRolloutAKey(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	fakeRollouts(t, c, func(ctx workflow.Context, in workflows.RolloutInput) (workflows.Status, error) {
		if in.Reason == "hold" {
			_ = workflow.GetSignalChannel(ctx, "release").Receive(ctx, nil)
		}
		return workflows.Status{Fleet: in.Fleet}, nil
	})

	in := workflows.RolloutInput{Fleet: "lab", Revision: "B", Reason: "hold"}
	first, replayed, err := StartOnce(t.Context(), c, in, "ci-job-1")
	if err != nil || replayed {
		t.Fatalf("first start: %v, replayed %v", err, replayed)
	}
	again, replayed, err := StartOnce(t.Context(), c, in, "ci-job-1")
	if err != nil || !replayed || again != first {
		t.Errorf("the same start again: %+v, replayed %v, %v; want %+v, replayed", again, replayed, err, first)
	}
	other := in
	other.Revision = "C"
	if _, _, err := StartOnce(t.Context(), c, other, "ci-job-1"); dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Errorf("the key with another request: %v, want an invalid-request error", err)
	}
	if _, _, err := StartOnce(t.Context(), c, in, "ci-job-2"); dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
		t.Errorf("another key while it runs: %v, want a conflict", err)
	}

	// Once it has ended, the same key still names it: no second rollout.
	if err := c.SignalWorkflow(t.Context(), first.WorkflowID, first.RunID, "release", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.GetWorkflow(t.Context(), first.WorkflowID, first.RunID).Get(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	again, replayed, err = StartOnce(t.Context(), c, in, "ci-job-1")
	if err != nil || !replayed || again != first {
		t.Errorf("the same start after it ended: %+v, replayed %v, %v; want %+v, replayed", again, replayed, err, first)
	}
	// Without a key, and with a new one, a start is a new rollout.
	next, replayed, err := StartOnce(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Revision: "C"}, "ci-job-2")
	if err != nil || replayed || next.RunID == first.RunID {
		t.Errorf("a new key after it ended: %+v, replayed %v, %v; want a new rollout", next, replayed, err)
	}
	waitEnded(t, c, next)
}

// waitEnded waits for run to end.
func waitEnded(t *testing.T, c client.Client, run Run) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := c.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// Starts of one fleet at the same moment start one rollout: with one
// Idempotency-Key, every start gets that rollout, all but one replayed;
// without keys, every other start is a conflict naming it.
func TestStartsAtOnceStartOneRollout(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	fakeRollouts(t, c, func(ctx workflow.Context, in workflows.RolloutInput) (workflows.Status, error) {
		_ = workflow.GetSignalChannel(ctx, "release").Receive(ctx, nil)
		return workflows.Status{Fleet: in.Fleet}, nil
	})
	const n = 6
	for _, key := range []string{"ci-job-7", ""} {
		in := workflows.RolloutInput{Fleet: "lab", Revision: "B", Reason: "at once " + key}
		var runs [n]Run
		var replayed [n]bool
		var errs [n]error
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); runs[i], replayed[i], errs[i] = StartOnce(t.Context(), c, in, key) }()
		}
		wg.Wait()
		var started []Run
		for i := range n {
			switch {
			case errs[i] == nil && !replayed[i]:
				started = append(started, runs[i])
			case key != "" && (errs[i] != nil || runs[i].RunID == ""):
				t.Errorf("key %q: start %d: %v, want the rollout the key started", key, i, errs[i])
			case key == "" && dnsroll.ErrorCode(errs[i]) != dnsroll.ECONFLICT:
				t.Errorf("no key: start %d: %v (replayed %v), want a conflict", i, errs[i], replayed[i])
			}
		}
		if len(started) != 1 {
			t.Fatalf("key %q: %d starts at once started %v, want one rollout", key, n, started)
		}
		for i := range n {
			if key != "" && runs[i] != started[0] {
				t.Errorf("key %q: start %d got %+v, want %+v", key, i, runs[i], started[0])
			}
		}
		if err := c.SignalWorkflow(t.Context(), started[0].WorkflowID, started[0].RunID, "release", nil); err != nil {
			t.Fatal(err)
		}
		waitEnded(t, c, started[0])
	}
}

// A plan that the Plan step refuses comes back as the refusal alone, as
// the CLI and POST /plans show it: not with the SDK's "(type: ...,
// retryable: ...)" suffix, which says nothing to an operator.
func TestPlanRefusalIsTheMessageAlone(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	w := worker.New(c, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.RolloutInput) (workflows.PlanReport, error) {
		return workflows.PlanReport{}, temporal.NewNonRetryableApplicationError("zone example.com: serial behind blue's", activities.ErrInvalid, nil)
	}, workflow.RegisterOptions{Name: "PlanWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	_, _, err := Plan(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Revision: "A"})
	if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
		t.Fatalf("plan error %v: want an EINVALID refusal", err)
	}
	if got, want := err.Error(), "zone example.com: serial behind blue's"; got != want {
		t.Errorf("plan refusal %q, want %q", got, want)
	}
}

// A rollout that Plan refused changed nothing, as one refused because the
// fleet was busy: the cleanup-failed run before it can still be cleaned up
// after, and a cleanup-only run retried. Plan refuses every rollout while a
// load balancer answers from the green a cleanup-failed run left, and its
// refusal says to run `dnsroll rollout cleanup`, which must not then be
// refused because of it. A run that failed past its plan may have changed
// the fleet, and still counts.
func TestLaterChangePassesOverRunsRefusedAtPlan(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	fakeRollouts(t, c, func(_ workflow.Context, in workflows.RolloutInput) (workflows.Status, error) {
		st := workflows.Status{Fleet: in.Fleet, Run: workflows.Run{Phase: workflows.PhaseFailed}}
		switch in.Reason {
		case "cleanup-failed":
			st.Phase = workflows.PhaseCleanupFailed
		case "refused at plan":
			st.Steps = []*workflows.Step{{Name: "Plan", Target: in.Fleet, Phase: workflows.PhasePlanning, State: workflows.StepFailed}}
		case "busy":
			return st, temporal.NewNonRetryableApplicationError("fleet lab is busy", workflows.ErrTypeFleetBusy, nil)
		case "unfinished status":
			// A status that is not final says nothing of what came after.
			st.Phase = workflows.PhaseCreating
			st.Steps = []*workflows.Step{{Name: "Plan", Target: in.Fleet, Phase: workflows.PhasePlanning, State: workflows.StepSucceeded}}
		case "no status":
			return st, temporal.NewNonRetryableApplicationError(in.Reason, workflows.ErrTypeFailed, nil)
		case "failed creating":
			st.Steps = []*workflows.Step{
				{Name: "Plan", Target: in.Fleet, Phase: workflows.PhasePlanning, State: workflows.StepSucceeded},
				{Name: "CreateServer", Target: "ns1", Phase: workflows.PhaseCreating, State: workflows.StepFailed},
			}
		}
		return st, temporal.NewNonRetryableApplicationError(in.Reason, workflows.ErrTypeFailed, nil, st)
	})
	roll := func(reason string) Run {
		t.Helper()
		run, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab", Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.GetWorkflow(t.Context(), run.WorkflowID, run.RunID).Get(t.Context(), nil)
		waitListed(t, c, fmt.Sprintf("RunId = '%s' AND ExecutionStatus = 'Failed'", run.RunID))
		return run
	}
	failed := roll("cleanup-failed")
	roll("refused at plan")
	roll("busy")
	roll("refused at plan")
	if later, _, err := LaterChange(t.Context(), c, failed); err != nil || later.RunID != "" {
		t.Errorf("after runs refused at Plan or busy, the later change is %+v, %v; want none", later, err)
	}
	// A failure without a status is not known to have changed nothing.
	unknown := roll("no status")
	if later, _, err := LaterChange(t.Context(), c, failed); err != nil || later.RunID != unknown.RunID {
		t.Errorf("after a run that failed without a status, the later change is %+v, %v; want %s", later, err, unknown.RunID)
	}
	changed := roll("failed creating")
	roll("refused at plan")
	if later, _, err := LaterChange(t.Context(), c, failed); err != nil || later.RunID != changed.RunID {
		t.Errorf("after a run that failed creating a server, the later change is %+v, %v; want %s", later, err, changed.RunID)
	}
	unfinished := roll("unfinished status")
	if later, _, err := LaterChange(t.Context(), c, failed); err != nil || later.RunID != unfinished.RunID {
		t.Errorf("after a run that failed with a status not final, the later change is %+v, %v; want %s", later, err, unfinished.RunID)
	}
}

// A plan whose caller goes away (the CLI's Ctrl-C, which hangs up on
// POST /plans) is ended at once: it creates nothing, and no one will read
// its report, so it should not run on until its expiry. A plan whose wait
// ran out is left to finish, as the API's 504 points at it in the Web UI.
func TestPlanEndsWhenItsCallerGoesAway(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	// No worker: the plan waits as it would on a worker too busy to
	// take it.
	plan := func(ctx context.Context, cancel context.CancelFunc) Run {
		t.Helper()
		// Long enough for the start to land on a loaded machine.
		time.AfterFunc(2*time.Second, cancel)
		_, run, err := Plan(ctx, c, workflows.RolloutInput{Fleet: "lab", Revision: "B"})
		if err == nil || run.WorkflowID == "" {
			t.Fatalf("plan: run %+v, %v; want it started and its wait ended", run, err)
		}
		return run
	}
	status := func(run Run) enumspb.WorkflowExecutionStatus {
		t.Helper()
		d, err := c.DescribeWorkflowExecution(t.Context(), run.WorkflowID, run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		return d.GetWorkflowExecutionInfo().GetStatus()
	}

	ctx, cancel := context.WithCancel(t.Context())
	if got := status(plan(ctx, cancel)); got == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("a plan whose caller went away is %s, want it ended", got)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if got := status(plan(ctx, func() {})); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("a plan whose wait ran out is %s, want it left running", got)
	}
}

// A fleet whose last successful rollout recorded no bundle (one from
// before rollouts recorded theirs) has a live revision that is unknown,
// and Live says so: read as no bundle at all, the next rollout would be
// told that nothing is live, as for a fleet's first rollout, and compare
// with nothing.
func TestLiveSaysWhenTheLastSuccessRecordedNoBundle(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	fakeRollouts(t, c, func(_ workflow.Context, in workflows.RolloutInput) (workflows.Status, error) {
		return workflows.Status{Fleet: in.Fleet}, nil
	})
	if bundle, why := Live(t.Context(), c, "lab"); bundle != "" || why != "" {
		t.Errorf("before any rollout: Live = %q, %q; want nothing live", bundle, why)
	}
	run, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GetWorkflow(t.Context(), run.WorkflowID, run.RunID).Get(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	waitListed(t, c, fmt.Sprintf("RunId = '%s' AND ExecutionStatus = 'Completed'", run.RunID))
	if bundle, why := Live(t.Context(), c, "lab"); bundle != "" || !strings.Contains(why, "recorded no bundle") {
		t.Errorf("after a success without a bundle: Live = %q, %q; want it unknown, saying the rollout recorded no bundle", bundle, why)
	}
	// A start that names the live bundle keeps it: it is not looked up.
	given, err := Start(t.Context(), c, workflows.RolloutInput{Fleet: "lab", LiveBundle: "sha256:given"})
	if err != nil {
		t.Fatal(err)
	}
	if in, err := Input(t.Context(), c, given); err != nil || in.LiveBundle != "sha256:given" || in.LiveUnknown != "" {
		t.Errorf("a start naming the live bundle: input live %q (unknown %q), %v; want sha256:given", in.LiveBundle, in.LiveUnknown, err)
	}
	waitEnded(t, c, given)
}
