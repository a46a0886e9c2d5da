package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
)

// PlanReport is what a rollout of a revision would start from: its
// Plan step's findings, for a dry run.
type PlanReport struct {
	Fleet    string `json:"fleet"`
	Revision string `json:"revision"`
	// Blue maps each nameserver label to the server serving it now; a
	// label without one has no blue yet (the fleet's first rollout).
	Blue map[string]dnsroll.Server `json:"blue"`
	// Zones is how many zones the revision deploys, and Bundle its
	// content address.
	Zones  int    `json:"zones"`
	Bundle string `json:"bundle,omitempty"`
	// Changes is what the revision changes against the live one, and
	// Diffs, for the zones whose files differ from the live revision's,
	// which RRsets (at most MaxZoneDiffs zones; MoreDiffs counts the rest).
	Changes   *activities.Changes     `json:"changes,omitempty"`
	Diffs     []activities.ZoneChange `json:"diffs,omitempty"`
	MoreDiffs int                     `json:"more_diffs,omitempty"`
	Warnings  []string                `json:"warnings,omitempty"`
}

// planDiff is how many RRsets of each kind (added, removed, changed) a
// plan shows of one zone.
const planDiff = 20

// PlanWorkflow is a dry run of a rollout: the rollout's Plan step alone.
// It reads the revision's zone files, asks the cloud whether it offers
// what the fleet names and which servers are blue, compares the new SOA
// serials with blue's, and says what the rollout would change. A plan
// that a rollout's Plan step would refuse fails with the same error, but
// for the load balancers' SSH, which only the rollout checks. It creates,
// changes and signals nothing, so it takes no fleet lock and may run
// beside a rollout.
func PlanWorkflow(ctx workflow.Context, in RolloutInput) (PlanReport, error) {
	var plan activities.Plan
	planIn := activities.PlanInput{Fleet: in.Fleet, Revision: in.Revision, Overrides: in.overrides(), SmallHistory: true, LiveBundle: in.LiveBundle, LiveUnknown: in.LiveUnknown, Diff: planDiff, DryRun: true}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, planOptions), a.Plan, planIn).Get(ctx, &plan); err != nil {
		return PlanReport{}, err
	}
	return PlanReport{Fleet: in.Fleet, Revision: in.Revision, Blue: plan.Blue, Zones: max(plan.ZoneCount, len(plan.Zones)),
		Bundle: plan.Bundle, Changes: plan.Changes, Diffs: plan.Diffs, MoreDiffs: plan.MoreDiffs, Warnings: plan.Warnings}, nil
}

// PlanWorkflowID is the ID of one dry run of a fleet's rollout; suffix
// tells runs apart, since plans do not exclude each other.
func PlanWorkflowID(fleet, suffix string) string { return "plan-" + fleet + "-" + suffix }
