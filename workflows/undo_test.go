package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/registrar"
)

// fourByTwo is the test fleet with four nameservers behind two load
// balancers, two each.
var fourByTwo = strings.NewReplacer(
	"  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n",
	"  - {label: ns2, region: eu-west, type: g6-nanode-1, image: linode/debian12}\n"+
		"  - {label: ns3, region: us-west, type: g6-nanode-1, image: linode/debian12}\n"+
		"  - {label: ns4, region: ap-south, type: g6-nanode-1, image: linode/debian12}\n",
	"fronts: ns1}", "fronts: [ns1, ns3]}",
	"fronts: ns2}", "fronts: [ns2, ns4]}",
	"rollout: {bake: 0s}", "rollout: {bake: 2m, bake_interval: 1m}",
).Replace(labFleet)

// A failure after each step in turn runs exactly the undos of the steps
// done, in reverse order: nothing for a step that changed nothing or past
// the point of no return, and never an undo of a step that did not start.
func TestUndoesExactlyTheStepsDone(t *testing.T) {
	const (
		deleteGreen = UndoDeleteGreen
		release     = UndoReleaseGreen
		flipBack    = UndoFlipBackToBlue
	)
	for _, tt := range []struct {
		failAt string
		undos  []string
	}{
		{"Plan", nil},
		{"EnsureServer", []string{deleteGreen}},
		{"ProvisionNameservers", []string{deleteGreen}},
		{"VerifyGreen", []string{deleteGreen}},
		{"StageLoadBalancer", []string{release, deleteGreen}},
		{"FlipLoadBalancer", []string{flipBack, release, deleteGreen}},
		{"VerifyLoadBalancers", []string{flipBack, release, deleteGreen}},
		{"BakeCheck", []string{flipBack, release, deleteGreen}},
		// DeleteServer, RenameServer: past the point of no return.
		{"DeleteServer", nil},
		{"RenameServer", nil},
	} {
		t.Run(tt.failAt, func(t *testing.T) {
			h := newHarnessFleet(t, fourByTwo, tt.failAt)
			if !strings.Contains(fourByTwo, "ns4") {
				t.Fatal("fourByTwo has no ns4: labFleet changed")
			}
			_, err := h.run(t)
			if err == nil {
				t.Fatal("the rollout succeeded")
			}
			if got := undosRun(h.rec.calls); !slices.Equal(got, tt.undos) {
				t.Errorf("undos run %v, want %v; calls %v", got, tt.undos, h.rec.calls)
			}
			if len(tt.undos) > 0 && !h.rec.has("DeleteGreen ns1-next,ns2-next,ns3-next,ns4-next") {
				t.Errorf("green's four servers not deleted: %v", h.rec.calls)
			}
			if slices.Contains(tt.undos, flipBack) {
				for _, lb := range []string{"lb1", "lb2"} {
					if h.rec.lbs[lb] != map[string]string{"lb1": "ns1+ns3", "lb2": "ns2+ns4"}[lb] {
						t.Errorf("%s points at %s after the undo, want blue", lb, h.rec.lbs[lb])
					}
				}
			}
		})
	}
}

// undosRun reads the undo actions from the fake activities' calls, in the
// order they ran: a flip of green to 0%, a switch to a blue server (the
// release of green), the deletion of green.
func undosRun(calls []string) []string {
	var out []string
	add := func(u string) {
		if len(out) == 0 || out[len(out)-1] != u {
			out = append(out, u)
		}
	}
	for _, c := range calls {
		f := strings.Fields(c)
		switch {
		case f[0] == "Flip" && strings.Contains(c, "-next:0,"):
			add(UndoFlipBackToBlue)
		case f[0] == "Switch" && len(f) == 3 && !strings.HasSuffix(f[2], "-next"):
			add(UndoReleaseGreen)
		case f[0] == "DeleteGreen":
			add(UndoDeleteGreen)
		}
	}
	return out
}

// A release of blue that fails after the commit does not fail the rollout:
// every load balancer was flipped to green and confirmed, so blue is
// deleted and green renamed, and the status warns that blue stays staged.
func TestFailedReleaseOfBlueIsAWarning(t *testing.T) {
	h := newHarnessFleet(t, fourByTwo, "SwitchLoadBalancer")
	st, err := h.run(t)
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if !h.rec.has("DeleteServer ns1") || !h.rec.has("RenameServer ns1-next ns1") {
		t.Errorf("blue not deleted or green not renamed: %v", h.rec.calls)
	}
	if undos := undosRun(h.rec.calls); len(undos) != 0 {
		t.Errorf("undos run after the commit: %v", undos)
	}
	found := false
	for _, w := range st.Warnings {
		found = found || (strings.Contains(w, "ReleaseBlue") && strings.Contains(w, "blue stays staged"))
	}
	if !found {
		t.Errorf("warnings %q do not say that blue stays staged", st.Warnings)
	}
}

// queueLog records the task queue of each step as it starts, and whether
// the test takes it for an undo step.
type queueLog struct {
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	steps []queuedStep
}

type queuedStep struct {
	name, queue string
	undo        bool
}

// testQueue is the task queue of the workflows whose steps a queueLog
// records, not TaskQueue: the undo queue must be derived from the
// workflow's own, as a test's worker polls a queue of its own.
const testQueue = "undo-queue-test"

// listen runs the workflow in q's environment on testQueue, and records
// every step that starts, undo telling which are undo steps.
func (q *queueLog) listen(undo func(info *activity.Info, at time.Time, args converter.EncodedValues) bool) {
	q.env.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: testQueue})
	q.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		s := queuedStep{name: info.ActivityType.Name, queue: info.TaskQueue, undo: undo(info, q.env.Now(), args)}
		q.mu.Lock()
		defer q.mu.Unlock()
		q.steps = append(q.steps, s)
	})
}

// check fails t unless undo steps ran, all on testQueue's undo queue, and
// every other step on testQueue.
func (q *queueLog) check(t *testing.T) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	queue, undos := testQueue, 0
	for _, s := range q.steps {
		want := queue
		if s.undo {
			want, undos = UndoTaskQueue(queue), undos+1
		}
		if s.queue != want {
			t.Errorf("%s (undo: %t) ran on task queue %q, want %q", s.name, s.undo, s.queue, want)
		}
	}
	if undos == 0 {
		t.Errorf("no undo step among %d", len(q.steps))
	}
}

// rolloutUndo tells a rollout's undo steps: deleting green, and switching
// or flipping a load balancer to blue alone.
func rolloutUndo(info *activity.Info, _ time.Time, args converter.EncodedValues) bool {
	switch info.ActivityType.Name {
	case "DeleteGreen":
		return true
	case "SwitchLoadBalancer":
		var in activities.SwitchInput
		_ = args.Get(&in)
		for _, b := range in.Backends {
			if strings.HasSuffix(b.Label, "-next") {
				return false
			}
		}
		return true
	case "FlipLoadBalancer":
		var in activities.FlipInput
		_ = args.Get(&in)
		for _, s := range in.Shares {
			if s.Weight > 0 && strings.HasSuffix(s.Server.Label, "-next") {
				return false
			}
		}
		return true
	}
	return false
}

// Undo steps run on the workflow's undo task queue, where workers keep
// slots for them, and forward steps on its own: the switch back and the
// deletion of green after a failure past the switch; the flip back, the
// release and the deletion of green after a rollback during a bake; all a
// cleanup-only run does but its notification; an
// updated load balancer's restore; a stopped replacement's restore of the
// old glue (its checks of the parent among it) and deletion of the new
// load balancers.
func TestUndoStepsRunOnTheUndoQueue(t *testing.T) {
	t.Run("rollout failed after the switch", func(t *testing.T) {
		h := newHarness(t, "VerifyLoadBalancers")
		q := &queueLog{env: h.env}
		q.listen(rolloutUndo)
		if _, err := h.run(t); err == nil {
			t.Fatal("the rollout succeeded")
		}
		q.check(t)
	})
	// The notifications of the undo and the outcome go with the undo: a
	// run whose forward slots are full would lose them at its drain.
	t.Run("rollout rolled back, with webhooks", func(t *testing.T) {
		h := newHarnessWith(t, "rollout: {bake: 0s}\nnotifications: {webhooks: [{url: 'http://127.0.0.1:9/hook'}]}", "VerifyLoadBalancers")
		q := &queueLog{env: h.env}
		q.listen(func(info *activity.Info, at time.Time, args converter.EncodedValues) bool {
			if info.ActivityType.Name == "Notify" {
				var in activities.NotifyInput
				_ = args.Get(&in)
				return in.Event == config.EventRolledBack || in.Event == config.EventFailed
			}
			return rolloutUndo(info, at, args)
		})
		if _, err := h.run(t); err == nil {
			t.Fatal("the rollout succeeded")
		}
		if !h.rec.has("Notify rolled_back") && !h.rec.has("Notify failed") {
			t.Fatalf("calls %v: no notification of the outcome", h.rec.calls)
		}
		q.check(t)
	})
	t.Run("rollback during the bake", func(t *testing.T) {
		h := newHarnessWith(t, "rollout: {bake: 30m, bake_interval: 1m}", "")
		q := &queueLog{env: h.env}
		q.listen(rolloutUndo)
		signalAt(h.env, 10*time.Minute+30*time.Second, SignalRollback, SignalInput{Reason: "errors", By: "bob"})
		_, err := h.run(t)
		wantErrType(t, err, ErrTypeRolledBack)
		q.check(t)
	})
	t.Run("cleanup-only run", func(t *testing.T) {
		h := newHarness(t, "")
		q := &queueLog{env: h.env}
		// Loading the fleet is the first step of its undo.
		q.listen(func(info *activity.Info, at time.Time, args converter.EncodedValues) bool {
			return info.ActivityType.Name == "LoadFleet" || rolloutUndo(info, at, args)
		})
		if _, err := h.runInput(t, RolloutInput{Fleet: "test", CleanUp: &CleanupRequest{From: "rollout-test/r1", Blue: cleanupBlue}}); err != nil {
			t.Fatal(err)
		}
		q.check(t)
	})
	t.Run("load balancer update restored", func(t *testing.T) {
		var q *queueLog
		_, _, err := lbUpdateRun(t, "Update lb2", "", func(env *testsuite.TestWorkflowEnvironment) {
			q = &queueLog{env: env}
			q.listen(func(info *activity.Info, _ time.Time, _ converter.EncodedValues) bool {
				return info.ActivityType.Name == "RestoreLoadBalancer"
			})
		})
		if err == nil {
			t.Fatal("the update succeeded")
		}
		q.check(t)
	})
	t.Run("load balancer replacement aborted", func(t *testing.T) {
		env, w := newLBReplaceEnv(t, false)
		w.busyFor = -1
		// Everything after the abort but its notification undoes.
		abort := env.Now().Add(2 * time.Minute)
		q := &queueLog{env: env}
		q.listen(func(info *activity.Info, at time.Time, _ converter.EncodedValues) bool {
			return !at.Before(abort) && info.ActivityType.Name != "Notify"
		})
		signalAt(env, 2*time.Minute, SignalAbort, SignalInput{Reason: "kernel regression", By: "bob"})
		runLBReplace(t, env, lbInput(), PhaseAborted)
		if w.at["SetGlue old"].IsZero() || w.at["Delete lb1-next"].IsZero() {
			t.Fatalf("the abort did not restore the glue and delete the new load balancers: %v", w.calls)
		}
		q.check(t)
	})
}

// A replacement that rolls out its zone and succeeds undoes nothing: none
// of its steps takes an undo slot, the checks of what the zone names after
// the zone rollout included (before, they ran on the undo queue).
func TestASucceededZoneReplacementTakesNoUndoSlot(t *testing.T) {
	env, w := newLBReplaceEnv(t, false)
	w.zoneAddrs = oldGlue
	mockZoneRollouts(env, w, [][]registrar.NameServer{newGlue})
	q := &queueLog{env: env}
	q.listen(func(*activity.Info, time.Time, converter.EncodedValues) bool { return false })
	signalAt(env, time.Hour, SignalZoneRevision, SignalInput{Revision: "r2", By: "ana"})
	runLBReplace(t, env, lbInput(), PhaseSucceeded)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.steps {
		if s.queue != testQueue {
			t.Errorf("%s ran on task queue %q in a replacement that undid nothing, want %q", s.name, s.queue, testQueue)
		}
	}
}
