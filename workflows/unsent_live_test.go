package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// An approve and an abort that reach a real server's run in one workflow
// task (no worker polled while they came): the abort cancels the first
// flips in the task that started them, so they never reach a load
// balancer, and the run is aborted, with no flip back. The test
// environment settles every cancelled activity alike, so only a real
// server tells a flip never sent from one cancelled while it ran.
func TestApproveAndAbortInOneTaskSendNoFlip(t *testing.T) {
	c, fleet := liveFleet(t, fleettest.YAML("test", "127.0.0.1:5301", "127.0.0.1:5302")+
		"ansible: {connection: local}\nrollout: {approval: manual, approval_timeout: 24h, bake: 0s}\n")
	steps := &liveFlipSteps{liveRolloutSteps{fleet: fleet, gate: newGate(t)}}
	const id = "approve-and-abort-in-one-task"
	stop := startStoppableWorker(t, c, id, steps)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := executeOnQueueID(ctx, t, c, id, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B"})
	for {
		v, err := c.QueryWorkflow(ctx, id, "", QueryStatus)
		var st Status
		if err != nil || v.Get(&st) != nil {
			t.Fatalf("query: %v", err)
		}
		if st.Phase == PhaseAwaitingApproval {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	for _, s := range []sent{{SignalApprove, SignalInput{By: "a"}}, {SignalAbort, SignalInput{By: "b", Reason: "no"}}} {
		if err := c.SignalWorkflow(ctx, id, "", s.name, s.in); err != nil {
			t.Fatal(err)
		}
	}
	startStoppableWorker(t, c, id, steps)
	st := failedRollout(ctx, t, c, run, "approve-and-abort-in-one-task")
	if st.Phase != PhaseAborted || !strings.Contains(st.Failure, "aborted by b: no") {
		t.Errorf("phase %s (%s), want aborted by b", st.Phase, st.Failure)
	}
	for _, call := range steps.done() {
		if strings.HasPrefix(call, "Flip") {
			t.Errorf("a flip was sent: calls %v", steps.done())
			break
		}
	}
}
