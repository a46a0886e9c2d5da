package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/internal/temporaltest"
)

// lockHolder stands for any run of fleet test: it holds the fleet, takes
// a workflow task after its hold (a point a reset in the Web UI can go
// back to), then waits. Its first run fails on "fail"; a run reset from
// it releases on "finish".
func lockHolder(ctx workflow.Context) error {
	hold, err := holdFleet(ctx, "test")
	if err != nil {
		return err
	}
	_ = workflow.Sleep(ctx, time.Millisecond)
	if info := workflow.GetInfo(ctx); info.OriginalRunID == info.WorkflowExecution.RunID {
		workflow.GetSignalChannel(ctx, "fail").Receive(ctx, nil)
		return temporal.NewNonRetryableApplicationError("the check failed", "CheckFailed", nil)
	}
	workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	hold.release(ctx)
	return nil
}

// lockTaker holds fleet test and releases it at once: another run.
func lockTaker(ctx workflow.Context) error {
	hold, err := holdFleet(ctx, "test")
	if err != nil {
		return err
	}
	hold.release(ctx)
	return nil
}

// lockLab runs lockHolder and lockTaker on a dev server.
type lockLab struct {
	t     *testing.T
	ctx   context.Context
	c     client.Client
	queue string
	n     int
}

func newLockLab(t *testing.T) *lockLab {
	c := temporaltest.DevServer(t)
	const queue = "fleet-lock-live"
	startLiveWorker(t, c, queue, func(context.Context) error { return nil }, func(w worker.Worker) {
		w.RegisterWorkflowWithOptions(lockHolder, workflow.RegisterOptions{Name: "lockHolder"})
		w.RegisterWorkflowWithOptions(lockTaker, workflow.RegisterOptions{Name: "lockTaker"})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return &lockLab{t: t, ctx: ctx, c: c, queue: queue}
}

// holder starts a lockHolder with opts and waits until it holds the fleet.
func (l *lockLab) holder(opts client.StartWorkflowOptions) client.WorkflowRun {
	l.t.Helper()
	opts.TaskQueue = l.queue
	run, err := l.c.ExecuteWorkflow(l.ctx, opts, "lockHolder")
	if err != nil {
		l.t.Fatal(err)
	}
	for !l.heldBy(run.GetRunID()) {
		if l.ctx.Err() != nil {
			l.t.Fatalf("%s never held the fleet", opts.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return run
}

// heldBy tells whether the fleet's hold runs, as a child of run runID
// ("" for any run).
func (l *lockLab) heldBy(runID string) bool {
	d, err := l.c.DescribeWorkflowExecution(l.ctx, FleetLockWorkflowID("test"), "")
	if err != nil {
		return false
	}
	info := d.GetWorkflowExecutionInfo()
	return info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && (runID == "" || info.GetParentExecution().GetRunId() == runID)
}

// take runs another run of the fleet and returns how it ended.
func (l *lockLab) take() error {
	l.t.Helper()
	l.n++
	run, err := l.c.ExecuteWorkflow(l.ctx, client.StartWorkflowOptions{ID: "taker-" + string(rune('a'+l.n)), TaskQueue: l.queue}, "lockTaker")
	if err != nil {
		l.t.Fatal(err)
	}
	return run.Get(l.ctx, nil)
}

// wantRefused fails the test unless another run of the fleet is refused
// it while the fleet is held, as while says.
func (l *lockLab) wantRefused(while string) {
	l.t.Helper()
	if err := l.take(); err == nil {
		l.t.Errorf("another run held the fleet while %s", while)
	}
}

// wantTaken stops the test unless another run of the fleet holds it once
// it was freed, as once says.
func (l *lockLab) wantTaken(once string) {
	l.t.Helper()
	if err := l.take(); err != nil {
		l.t.Fatalf("a run started once %s: %v", once, err)
	}
}

// resetAfterHold resets run to the workflow task after its hold, as the
// Web UI's reset to "last workflow task" does, and returns the new run.
func (l *lockLab) resetAfterHold(run client.WorkflowRun) string {
	l.t.Helper()
	var point int64
	for point == 0 {
		if l.ctx.Err() != nil {
			l.t.Fatalf("%s has no workflow task after its hold", run.GetID())
		}
		time.Sleep(50 * time.Millisecond)
		it := l.c.GetWorkflowHistory(l.ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for held := false; it.HasNext(); {
			e, err := it.Next()
			if err != nil {
				l.t.Fatal(err)
			}
			switch {
			case e.GetEventType() == enumspb.EVENT_TYPE_TIMER_FIRED:
				held = true
			case held && point == 0 && e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				point = e.GetEventId()
			}
		}
	}
	reset, err := l.c.ResetWorkflowExecution(l.ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Reason: "the test's", WorkflowTaskFinishEventId: point, RequestId: run.GetRunID(),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return reset.GetRunId()
}

// finish tells run runID of id to release and end, and waits until it
// has, for a little while.
func (l *lockLab) finish(id, runID string) error {
	l.t.Helper()
	if err := l.c.SignalWorkflow(l.ctx, id, runID, "finish", nil); err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(l.ctx, 20*time.Second)
	defer cancel()
	return l.c.GetWorkflow(ctx, id, runID).Get(ctx, nil)
}

// A fleet's hold ends with its run however the run ends on the real
// server: terminated by hand or timed out (Temporal applies the parent
// close policy), and a run started just after holds the fleet.
func TestAFleetsHoldEndsWithATerminatedOrTimedOutRun(t *testing.T) {
	l := newLockLab(t)
	l.holder(client.StartWorkflowOptions{ID: "terminated"})
	l.wantRefused("it was held")
	if err := l.c.TerminateWorkflow(l.ctx, "terminated", "", "by hand, in the Web UI"); err != nil {
		t.Fatal(err)
	}
	l.wantTaken("the holder was terminated")
	timedOut := l.holder(client.StartWorkflowOptions{ID: "timed-out", WorkflowExecutionTimeout: 2 * time.Second})
	var timeout *temporal.TimeoutError
	if err := timedOut.Get(l.ctx, nil); !errors.As(err, &timeout) {
		t.Fatalf("the holder ended %v, want it timed out", err)
	}
	l.wantTaken("the holder timed out")
}

// A run reset in the Web UI to a workflow task after its hold, while it
// ran, keeps the fleet held (Temporal keeps the hold running, though the
// hold's parent is the run the reset ended), and frees it when it ends.
// Before, its release waited forever for the end of a hold that no
// longer answered it: the run never ended, and the hold outlived it, so
// the fleet stayed busy even once the run was terminated.
func TestARunResetWhileItRanReleasesItsHold(t *testing.T) {
	l := newLockLab(t)
	run := l.holder(client.StartWorkflowOptions{ID: "reset-running"})
	reset := l.resetAfterHold(run)
	l.wantRefused("the reset run ran")
	if err := l.finish(run.GetID(), reset); err != nil {
		t.Fatalf("the reset run did not end: %v", err)
	}
	l.wantTaken("the reset run ended")
}

// A run reset in the Web UI to a workflow task after its hold, once it
// had ended, ends: its release does not wait for the hold, which Temporal
// ended with the run it was reset from. (Such a run does not hold the
// fleet: README, Retry and reset.)
func TestARunResetAfterItEndedEnds(t *testing.T) {
	l := newLockLab(t)
	run := l.holder(client.StartWorkflowOptions{ID: "reset-ended"})
	if err := l.c.SignalWorkflow(l.ctx, run.GetID(), run.GetRunID(), "fail", nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(l.ctx, nil); err == nil {
		t.Fatal("the first run succeeded, want it failed")
	}
	reset := l.resetAfterHold(run)
	if err := l.finish(run.GetID(), reset); err != nil {
		t.Fatalf("the reset run did not end: %v", err)
	}
	if l.heldBy("") {
		t.Error("the fleet is held once every run has ended")
	}
}
