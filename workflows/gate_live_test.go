package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// An approve sent while no worker runs waits in Temporal, and the
// replacement checks its gate when a worker takes it: one for another
// gate than the open one is ignored, one for the open gate moves the
// glue. The API, which cannot read the open gate with no worker to answer
// its status query, sends both and leaves that check to the workflow.
func TestApproveSentWithNoWorkerIsCheckedAgainstTheOpenGate(t *testing.T) {
	c, steps, in := liveLBReplace(t, strings.Replace(lbFleet, "rollout: {bake: 0s}", "rollout: {bake: 0s, approval: manual, approval_timeout: 1h}", 1), 200*time.Millisecond)
	id := LBReplaceWorkflowID(in.Fleet)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	stop := startStoppableWorker(t, c, id, steps)
	run := executeOnQueueID(ctx, t, c, id, LoadBalancerReplaceWorkflow, in)
	waitLBPhase(ctx, t, c, id, PhaseAwaitingApproval)
	stop()

	// No worker: both wait in Temporal, in this order.
	for _, s := range []SignalInput{{By: "stale", Gate: 2}, {By: "alice", Gate: 1}} {
		if err := c.SignalWorkflow(ctx, id, run.GetRunID(), SignalApprove, s); err != nil {
			t.Fatal(err)
		}
	}
	startStoppableWorker(t, c, id, steps)
	steps.gate.open() // the drain's reads
	var st LBReplaceStatus
	if err := run.Get(ctx, &st); err != nil {
		t.Fatalf("the replacement ended with %v", err)
	}
	var events string
	for _, e := range st.Events {
		events += e.Message + "\n"
	}
	for _, want := range []string{
		"approve ignored: it is for approval gate 2, but gate 1 is open",
		"approved by alice",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	if st.Phase != PhaseSucceeded {
		t.Errorf("phase %s (%s), want succeeded: the approve for gate 1 moves the glue", st.Phase, st.Failure)
	}
}

// startStoppableWorker starts startLiveWorker's workers, which the
// returned function stops, for a test that runs without a worker for a
// while; they stop when the test ends at the latest.
func startStoppableWorker(t *testing.T, c client.Client, queue string, steps any, more ...func(worker.Worker)) (stop func()) {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	Register(w)
	w.RegisterActivity(steps)
	for _, register := range more {
		register(w)
	}
	undo := worker.New(c, UndoTaskQueue(queue), worker.Options{DisableWorkflowWorker: true})
	undo.RegisterActivity(steps)
	for _, sw := range []worker.Worker{w, undo} {
		if err := sw.Start(); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			w.Stop()
			undo.Stop()
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitLBPhase waits until the replacement id reports phase p.
func waitLBPhase(ctx context.Context, t *testing.T, c client.Client, id string, p Phase) {
	t.Helper()
	for {
		v, err := c.QueryWorkflow(ctx, id, "", QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var st LBReplaceStatus
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		if st.Phase == p {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
