package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// startLBUpdate starts an update of every load balancer of the lab's fleet
// straight through Temporal, past the API's look at the fleet's other runs.
func (tl *testLab) startLBUpdate(t *testing.T) rollouts.Run {
	t.Helper()
	run, err := tl.tryLBUpdate()
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func (tl *testLab) tryLBUpdate() (rollouts.Run, error) {
	// A validated reload of nginx as it stands, or a console change of
	// dnsdist that changes nothing.
	u := lb.Update{Kind: lb.UpdateConfig}
	if tl.fleet.LoadBalancers[0].Driver == "dnsdist" {
		u = lb.Update{Kind: lb.UpdateConsole, Lua: "setServerPolicy(wrandom)", UndoLua: "setServerPolicy(wrandom)"} // the role's policy
	}
	opts := client.StartWorkflowOptions{ID: workflows.LBUpdateWorkflowID(tl.fleet.Name), TaskQueue: workflows.TaskQueue, WorkflowExecutionErrorWhenAlreadyStarted: true}
	run, err := tl.client.ExecuteWorkflow(context.Background(), opts, workflows.LoadBalancerUpdateWorkflow,
		workflows.LBUpdateInput{FleetName: tl.fleet.Name, Update: u, Reason: "e2e", RequestedBy: "e2e"})
	if err != nil {
		return rollouts.Run{}, err
	}
	return rollouts.Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// wantRefused checks that run ended refused because the fleet was busy,
// having taken no step.
func wantRefused(t *testing.T, what string, st workflows.Status, err error) {
	t.Helper()
	if err == nil || st.Phase != workflows.PhaseFailed || !strings.Contains(st.Failure, "fleet lab is busy") {
		t.Fatalf("%s: %s (%v), failure %q; want it refused because fleet lab is busy", what, st.Phase, err, st.Failure)
	}
	if len(st.Steps) != 0 {
		t.Fatalf("%s took steps though the fleet was busy: %+v", what, st.Steps)
	}
}

// A rollout and a load balancer update of one fleet never run at once,
// against the real Temporal, even when both are started straight through
// it: the one that finds the fleet held changes nothing, whether the other
// started long before or at the same moment, and a run started just after
// the other ended goes ahead.
func TestRunsOfEveryKindTakeTurnsOnAFleet(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	tl.editFleet(t, "approval: auto", "approval: manual")

	rollout := tl.start(t, workflows.RolloutInput{Revision: "B"})
	tl.waitForPhase(t, rollout, workflows.PhaseAwaitingApproval)
	st, err := tl.wait(t, tl.startLBUpdate(t))
	wantRefused(t, "an update while a rollout awaits approval", st, err)

	tl.signal(t, rollout, workflows.SignalApprove, workflows.SignalInput{By: "e2e"})
	if st, err := tl.wait(t, rollout); err != nil {
		t.Fatalf("the rollout after the refused update: %s: %v", st.Phase, err)
	}
	if st, err := tl.wait(t, tl.startLBUpdate(t)); err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("an update started as the rollout ended: %s (%v) %q", st.Phase, err, st.Failure)
	}

	// Started at the same moment, they take turns: the second waits out a
	// first that ends within moments, or is refused; they never overlap.
	tl.editFleet(t, "approval: manual", "approval: auto")
	var update rollouts.Run
	var errs [2]error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); update, errs[0] = tl.tryLBUpdate() }()
	go func() {
		defer wg.Done()
		rollout, errs[1] = rollouts.Start(context.Background(), tl.client, workflows.RolloutInput{Fleet: tl.fleet.Name, Revision: "A", AllowSerialDecrease: true})
	}()
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("starting both at once: %v", errs)
	}
	updated, updateErr := tl.wait(t, update)
	rolled, rolloutErr := tl.wait(t, rollout)
	t.Logf("started at once: the update ended %s (%q), the rollout %s (%q)", updated.Phase, updated.Failure, rolled.Phase, rolled.Failure)
	switch {
	case refused(updated, updateErr) && refused(rolled, rolloutErr):
		t.Fatal("both were refused")
	case refused(updated, updateErr):
		wantRefused(t, "the update", updated, updateErr)
	case refused(rolled, rolloutErr):
		wantRefused(t, "the rollout", rolled, rolloutErr)
	default:
		if !before(updated.Steps, rolled.Steps) && !before(rolled.Steps, updated.Steps) {
			t.Errorf("the update's steps %s and the rollout's %s overlap", span(updated.Steps), span(rolled.Steps))
		}
	}
	for _, r := range []struct {
		what string
		st   workflows.Status
		err  error
	}{{"the update", updated, updateErr}, {"the rollout", rolled, rolloutErr}} {
		if !refused(r.st, r.err) && (r.err != nil || r.st.Phase != workflows.PhaseSucceeded) {
			t.Errorf("%s, which held the fleet, ended %s: %v", r.what, r.st.Phase, r.err)
		}
	}
}

// refused tells whether a run ended refused because its fleet was busy.
func refused(st workflows.Status, err error) bool {
	return err != nil && strings.Contains(st.Failure, "is busy")
}

// before tells whether steps a all ended before steps b began.
func before(a, b []*workflows.Step) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		for _, y := range b {
			if !x.EndedAt.Before(y.StartedAt) {
				return false
			}
		}
	}
	return true
}

func span(steps []*workflows.Step) string {
	if len(steps) == 0 {
		return "(none)"
	}
	first, last := steps[0].StartedAt, steps[0].EndedAt
	for _, s := range steps {
		if s.StartedAt.Before(first) {
			first = s.StartedAt
		}
		if s.EndedAt.After(last) {
			last = s.EndedAt
		}
	}
	return first.Format("15:04:05.000") + "–" + last.Format("15:04:05.000")
}
