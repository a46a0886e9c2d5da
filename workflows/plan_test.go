package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
)

// A plan is the rollout's Plan step alone, with the rollout's input, and
// reports what it found; a refusal fails the plan with Plan's own error.
func TestPlanWorkflowRunsPlanAlone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var got activities.PlanInput
	blue := map[string]dnsroll.Server{"ns1": {ID: 7, Label: "ns1", IPv4: "192.0.2.1"}}
	env.OnActivity(a.Plan, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
		got = in
		return activities.Plan{Revision: in.Revision, Blue: blue, ZoneCount: 3, Bundle: testBundle, Warnings: []string{"w"},
			Diffs: []activities.ZoneChange{{Zone: "example.com"}}, MoreDiffs: 2,
			Changes: &activities.Changes{Live: in.LiveBundle, ZonesChanged: activities.Names{Count: 1, Names: []string{"example.com"}}}}, nil
	})
	no := false
	env.ExecuteWorkflow(PlanWorkflow, RolloutInput{Fleet: "lab", Revision: "B", ExpectChanges: &no, LiveBundle: "sha256:live"})
	var rep PlanReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if got.Fleet != "lab" || got.Revision != "B" || got.ExpectChanges == nil || *got.ExpectChanges || got.LiveBundle != "sha256:live" || !got.SmallHistory || got.Diff == 0 {
		t.Errorf("Plan's input %+v does not carry the rollout's", got)
	}
	if rep.Fleet != "lab" || rep.Revision != "B" || rep.Blue["ns1"].ID != 7 || rep.Zones != 3 || rep.Bundle != testBundle ||
		rep.Changes == nil || rep.Changes.Live != "sha256:live" || len(rep.Warnings) != 1 || len(rep.Diffs) != 1 || rep.MoreDiffs != 2 {
		t.Errorf("report %+v", rep)
	}

	env = s.NewTestWorkflowEnvironment()
	env.OnActivity(a.Plan, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("zones[0].file: serial 6 is behind blue's 7", activities.ErrInvalid, nil))
	env.ExecuteWorkflow(PlanWorkflow, RolloutInput{Fleet: "lab", Revision: "old"})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "serial 6 is behind blue's 7") || !errors.As(err, &app) || app.Type() != activities.ErrInvalid {
		t.Errorf("a refused plan: %v, want Plan's InvalidInput error", err)
	}
}
