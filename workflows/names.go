// Package workflows holds dnsroll's deterministic workflow code. It does no
// I/O: every side effect is an activity in package activities. The names
// here (task queue, signals, query, workflow IDs) are shared with the API
// and the CLI.
package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// TaskQueue is where workers poll for rollout work.
const TaskQueue = "dnsroll"

// UndoTaskQueue is the task queue of the undo steps of workflows that run
// on queue: switching and flipping load balancers back to blue, deleting
// green, restoring an updated load balancer, putting a replacement's old
// glue back and deleting its new load balancers. Workers poll it with
// slots of its own, so that a failed rollout's undo never waits for a
// free slot behind other fleets' forward steps, some of which run for
// twenty minutes, while its load balancers stay on a green that failed.
// It is derived from the workflow's own queue so that a worker on a queue
// of its own, such as a test's, has an undo queue of its own too.
func UndoTaskQueue(queue string) string { return queue + "-undo" }

// StickyScheduleToStartTimeout is how long Temporal holds a workflow task
// or status query on the sticky queue of the worker that last ran the
// workflow before sending it to TaskQueue. A worker polls its sticky queue
// with one poller at a time, and a query that arrives between two polls
// waits this long: the SDK's 5 s made one status query in 500 take 5 s
// during a lab rollout (make bench-query), and the API's, then 5 s too,
// show the rollout as if no worker ran. A task sent on to TaskQueue costs
// the worker a replay of the history, milliseconds. Those who query wait
// longer than this.
const StickyScheduleToStartTimeout = 2 * time.Second

// Signals and queries an operator can send with `temporal workflow signal`.
const (
	// SignalAbort stops a rollout before the switch: green is deleted, blue untouched.
	// After the switch it behaves like SignalRollback.
	SignalAbort = "abort"
	// SignalRollback points the load balancers back at blue and deletes green.
	// It is rejected once blue has been deleted.
	SignalRollback = "rollback"
	// SignalApprove lets a rollout waiting at the approval gate switch.
	SignalApprove = "approve"
	// QueryStatus returns the rollout's Status.
	QueryStatus = "status"
)

// WorkflowID is the ID of a fleet's rollout. One ID per fleet makes Temporal
// refuse a second concurrent rollout of the same fleet.
func WorkflowID(fleet string) string { return fmt.Sprintf("rollout-%s", fleet) }

// LBUpdateWorkflowID is the ID of a fleet's in-place load balancer update:
// one at a time per fleet, as for rollouts.
func LBUpdateWorkflowID(fleet string) string { return "lbupdate-" + fleet }

// Registry is where a worker, a replayer or a test environment registers
// workflows.
type Registry interface{ RegisterWorkflow(w any) }

// Register registers every workflow a worker runs: those that dnsroll
// starts, and the fleet hold that they start as children.
func Register(r Registry) {
	for _, w := range []any{RolloutWorkflow, LoadBalancerUpdateWorkflow, LoadBalancerReplaceWorkflow, PlanWorkflow, FleetLockWorkflow} {
		r.RegisterWorkflow(w)
	}
}

// RolloutInput starts a rollout.
type RolloutInput struct {
	Fleet string `json:"fleet"`
	// Revision selects the zone files ("{revision}" in their paths) and is
	// recorded for the operator; it may be a git commit.
	Revision    string `json:"revision,omitempty"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// ExpectChanges overrides the fleet's probe.expect_changes: false for
	// an infrastructure-only rollout, where green must answer exactly as
	// blue does.
	ExpectChanges *bool `json:"expect_changes,omitempty"`
	// AllowSerialDecrease lets green's SOA serials be behind blue's: the way
	// back to an older revision once blue is gone.
	AllowSerialDecrease bool `json:"allow_serial_decrease,omitempty"`
	// AllowNewKSK accepts green's DNSKEY set signed by none of blue's
	// key-signing keys: the parent's DS already names green's.
	AllowNewKSK bool `json:"allow_new_ksk,omitempty"`
	// LiveBundle is the bundle of the fleet's last rollout that succeeded,
	// which the starter looks up (rollouts.Start; a load balancer
	// replacement's zone rollout takes it from the zone-revision signal):
	// the status at the approval gate says what changes against it
	// (Status.Changes).
	// LiveUnknown, when set, is why the starter could not tell; a rollout
	// goes on without it. The API sets them, and refuses them in a request
	// (api:"refused" leaves them out of the fields its errors list).
	LiveBundle  string `json:"live_bundle,omitempty" api:"refused"`
	LiveUnknown string `json:"live_unknown,omitempty" api:"refused"`
	// CleanUp, when set, makes the run only finish an earlier run's
	// cleanup (see CleanupRequest); POST /rollouts/{id}/cleanup sets it.
	CleanUp *CleanupRequest `json:"clean_up,omitempty" api:"refused"`
	// ExtraLoadBalancers and HeldBy are set by a load balancer replacement
	// that rolls out a revision naming its new load balancers (zone
	// records): they are switched with the fleet's own, and the rollout
	// runs under the replacement's hold of the fleet, HeldBy's ID.
	ExtraLoadBalancers []config.LoadBalancer `json:"extra_load_balancers,omitempty" api:"refused"`
	HeldBy             string                `json:"held_by,omitempty" api:"refused"`
}

// overrides are in's settings over the fleet's config, as its plan takes
// them.
func (in RolloutInput) overrides() activities.Overrides {
	return activities.Overrides{ExpectChanges: in.ExpectChanges, AllowSerialDecrease: in.AllowSerialDecrease, AllowNewKSK: in.AllowNewKSK,
		ExtraLoadBalancers: in.ExtraLoadBalancers}
}

// SignalInput is the payload of a signal; every field is optional.
type SignalInput struct {
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
	// Revision is zone-revision's alone (signalFields): the revision a
	// load balancer replacement rolls out.
	Revision string `json:"revision,omitempty"`
	// LiveBundle and LiveUnknown are zone-revision's too: the fleet's live
	// revision for that rollout to compare with (RolloutInput.LiveBundle),
	// or why it is unknown. A workflow cannot read visibility, so the
	// sender looks it up: the API does, and refuses them in a request.
	LiveBundle  string `json:"live_bundle,omitempty" api:"refused"`
	LiveUnknown string `json:"live_unknown,omitempty" api:"refused"`
	// Gate is approve's alone: the approval gate it is for
	// (Status.ApprovalGate), or 0 for whichever is open.
	Gate int `json:"gate,omitempty"`
}

// Custom search attributes, so the Web UI and `temporal workflow list
// --query 'Fleet="lab"'` can filter rollouts and show them as columns. The
// lab registers them; on a real cluster, `temporal operator
// search-attribute create` does (README).
var (
	FleetAttr = temporal.NewSearchAttributeKeyKeyword("Fleet")
	PhaseAttr = temporal.NewSearchAttributeKeyKeyword("Phase")
	// RevisionAttr is set at start, when the revision is known.
	RevisionAttr = temporal.NewSearchAttributeKeyKeyword("Revision")
)

// SearchAttributes are all the custom search attributes rollouts set, each
// a Keyword. A namespace without one of them refuses to start a rollout (or
// fails its workflow tasks), so the lab registers exactly these and the
// worker and API check for them at startup.
var SearchAttributes = []temporal.SearchAttributeKeyKeyword{FleetAttr, PhaseAttr, RevisionAttr}

// RolloutAttributes are a rollout's search attributes at start: Fleet
// and, when in names one, Revision.
func RolloutAttributes(in RolloutInput) temporal.SearchAttributes {
	attrs := []temporal.SearchAttributeUpdate{FleetAttr.ValueSet(in.Fleet)}
	if in.Revision != "" {
		attrs = append(attrs, RevisionAttr.ValueSet(in.Revision))
	}
	return temporal.NewSearchAttributes(attrs...)
}

// RolloutSummary is a rollout's one line for the Web UI: fleet,
// revision, who and why.
func RolloutSummary(in RolloutInput) string {
	s := "roll out " + in.Fleet
	if in.Revision != "" {
		s += " to revision " + in.Revision
	}
	if in.RequestedBy != "" {
		s += ", by " + in.RequestedBy
	}
	if in.Reason != "" {
		s += ": " + in.Reason
	}
	return s
}
