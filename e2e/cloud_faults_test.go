package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dnsroll/dnsroll/lab/linodesim"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// The cloud answers HTTP 500 three times in a row during Plan, six times
// during the deletion of blue and six more during the rename: every step
// retries until its deadline, and the rollout succeeds, with no duplicate
// and no instance left half-done.
func TestCloud500sAreRetried(t *testing.T) {
	tl := startBlue(t, "nginx", nil)
	sim := tl.Sim()
	// GETs of instances come first from Plan; DELETEs and PUTs only from
	// the deletion of blue and the rename of green.
	sim.InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", Status: 500, Count: 3})
	sim.InjectFault(linodesim.Fault{Method: "DELETE", PathPrefix: "/v4/linode/instances", Status: 500, Count: 6})
	sim.InjectFault(linodesim.Fault{Method: "PUT", PathPrefix: "/v4/linode/instances", Status: 500, Count: 6})

	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	// While a step retries, the status says so, with its last error.
	var retries []workflows.Retry
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := rollouts.Wait(ctx, tl.client, run, 100*time.Millisecond, func(st workflows.Status) {
		retries = append(retries, st.Retrying...)
	})
	if err != nil {
		t.Fatalf("rollout B through 500s: %v", err)
	}
	shown := map[string]bool{}
	for _, r := range retries {
		if r.Attempt >= 2 && strings.Contains(r.LastError, "500") {
			shown[r.Activity] = true
		}
	}
	for _, step := range []string{"DeleteServer", "RenameServer"} {
		if !shown[step] {
			t.Errorf("the status never showed %s retrying after a 500 (saw %+v)", step, retries)
		}
	}
	if left := sim.Faults(); len(left) != 0 {
		t.Errorf("faults never hit: %+v", left)
	}
	tl.assertOnly(t, "ns1", "ns2")
	if got := tl.answers(t); got[0] != "revision B" || got[1] != "revision B" {
		t.Errorf("answers = %v, want revision B on both", got)
	}
	attempts := map[string]int32{}
	for _, s := range st.Steps {
		attempts[s.Name] = max(attempts[s.Name], s.Attempts)
	}
	for _, step := range []string{"Plan", "DeleteServer", "RenameServer"} {
		if attempts[step] < 2 {
			t.Errorf("%s: %d attempt(s), want retries after the 500s", step, attempts[step])
		}
	}
}

// A worker killed while Plan waits on a slow cloud API: the next worker
// takes Plan over once its heartbeats stop, not at its deadline.
func TestWorkerKilledDuringPlanIsReplacedAtHeartbeatTimeout(t *testing.T) {
	tl := startLab(t, nil)
	w := tl.startWorkerProcess(t)
	// The first listing stalls, so Plan is still running when the worker dies.
	tl.Sim().InjectFault(linodesim.Fault{Method: "GET", PathPrefix: "/v4/linode/instances", Delay: 2 * time.Minute})
	run := tl.start(t, workflows.RolloutInput{Revision: "A"})
	tl.waitForActivity(t, run, "Plan")
	time.Sleep(time.Second)
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	tl.startWorkerProcess(t)
	if _, err := tl.wait(t, run); err != nil {
		t.Fatalf("rollout after the kill: %v", err)
	}

	// The history says why Plan's second attempt started: its heartbeats
	// stopped. A start-to-close timeout would have kept the rollout waiting
	// for Plan's whole deadline.
	it := tl.client.GetWorkflowHistory(context.Background(), run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	found := false
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		a := ev.GetActivityTaskStartedEventAttributes()
		if a == nil || scheduled[a.GetScheduledEventId()] != "Plan" {
			continue
		}
		found = true
		if a.GetAttempt() < 2 {
			t.Errorf("Plan ran once; the kill did not land in it")
			continue
		}
		timeout := a.GetLastFailure().GetTimeoutFailureInfo()
		if got := timeout.GetTimeoutType(); got != enumspb.TIMEOUT_TYPE_HEARTBEAT {
			t.Errorf("Plan attempt %d started after %v (%s), want a heartbeat timeout", a.GetAttempt(), got, a.GetLastFailure().GetMessage())
		}
	}
	if !found {
		t.Error("no Plan in the history")
	}
}
