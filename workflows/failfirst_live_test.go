package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/activities"
)

// On a real server, ns1-next's create fails at once while ns2-next's is
// held; an abort sent once the failure is in the history ends the run
// with that failure, not the abort.
func TestFailureBeforeAnAbortIsTheOutcomeLive(t *testing.T) {
	c, fleet := liveFleet(t, labFleet)
	steps := &failFirstSteps{liveRolloutSteps{fleet: fleet, gate: newGate(t)}}
	const id = "failure-before-an-abort"
	startLiveWorker(t, c, id, steps)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := executeOnQueueID(ctx, t, c, id, RolloutWorkflow, RolloutInput{Fleet: "test", Revision: "B"})
	steps.gate.reached(ctx, t, "ns2-next's create held")
	for !historyHas(ctx, t, c, id, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.SignalWorkflow(ctx, id, "", SignalAbort, SignalInput{Reason: "stuck", By: "op"}); err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, c, id, "abort requested")
	steps.gate.open()
	st := failedRollout(ctx, t, c, run, "failure-before-an-abort")
	if st.Phase != PhaseFailed || !strings.Contains(st.Failure, "EnsureServer ns1-next failed: ns1-next exploded") {
		t.Errorf("phase %s (%s), want failed with ns1-next's create", st.Phase, st.Failure)
	}
}

// failFirstSteps fail ns1-next's create at once and hold ns2-next's.
type failFirstSteps struct{ liveRolloutSteps }

func (s *failFirstSteps) EnsureServer(ctx context.Context, in activities.EnsureServerInput) (activities.ServerResult, error) {
	if strings.HasPrefix(in.Spec.Label, "ns1") {
		s.add("EnsureServer " + in.Spec.Label)
		return activities.ServerResult{}, temporal.NewNonRetryableApplicationError(in.Spec.Label+" exploded", activities.ErrStep, nil)
	}
	s.gate.hold()
	return s.liveRolloutSteps.EnsureServer(ctx, in)
}
