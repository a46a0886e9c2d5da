package workflows

import (
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// Phase is where a rollout is. Phases after PhaseSucceeded are terminal.
type Phase string

// Phases in the order a successful rollout passes them, then the outcomes.
const (
	PhasePlanning     Phase = "planning"
	PhaseCreating     Phase = "creating"
	PhaseProvisioning Phase = "provisioning"
	PhaseVerifyGreen  Phase = "verifying-green"
	// PhaseAwaitingApproval waits for the approve signal (approval: manual).
	// PhaseStaging adds green to every load balancer beside blue, with no
	// traffic, so that the switch is a flip.
	PhaseStaging          Phase = "staging"
	PhaseAwaitingApproval Phase = "awaiting-approval"
	PhaseSwitching        Phase = "switching"
	// PhaseCanary holds a share of the queries on green (strategy canary)
	// while it is analysed.
	PhaseCanary    Phase = "canary"
	PhaseVerifyLBs Phase = "verifying-load-balancers"
	// PhaseBaking keeps blue alive while the load balancers are analysed.
	PhaseBaking        Phase = "baking"
	PhaseDeletingBlue  Phase = "deleting-blue"
	PhaseRenaming      Phase = "renaming"
	PhaseRollingBack   Phase = "rolling-back"
	PhaseSucceeded     Phase = "succeeded"
	PhaseFailed        Phase = "failed"
	PhaseAborted       Phase = "aborted"
	PhaseRolledBack    Phase = "rolled-back"
	PhaseCleanupFailed Phase = "cleanup-failed"
	// PhaseCleanedUp ends a run that finished an earlier run's cleanup.
	PhaseCleanedUp Phase = "cleaned-up"
)

// Phases lists every phase of every workflow here (rollouts, then the load
// balancer update's and replacement's own), then the outcomes: the one list
// the API's filter and api/openapi.yaml's enum are checked against.
var Phases = []Phase{
	PhasePlanning, PhaseCreating, PhaseProvisioning, PhaseVerifyGreen, PhaseStaging, PhaseAwaitingApproval, PhaseSwitching,
	PhaseCanary, PhaseVerifyLBs, PhaseBaking, PhaseDeletingBlue, PhaseRenaming, PhaseRollingBack,
	PhaseUpdatingLBs, PhaseRestoringLB,
	PhaseCheckingParent, PhaseCreatingNewLBs, PhaseVerifyNewLBs, PhaseAwaitingZoneRevision, PhaseRollingOutZone, PhaseUpdatingGlue, PhaseAwaitingGlue, PhaseDraining, PhaseDeletingOldLBs, PhaseRestoringGlue,
	PhaseSucceeded, PhaseFailed, PhaseAborted, PhaseRolledBack, PhaseCleanupFailed, PhaseCleanedUp,
}

// RolloutPhases are the phases a rollout can be in, in Phases' order:
// what `rollout list --phase` offers, without the load balancer
// workflows' own, which no rollout reports.
var RolloutPhases = []Phase{
	PhasePlanning, PhaseCreating, PhaseProvisioning, PhaseVerifyGreen, PhaseStaging, PhaseAwaitingApproval, PhaseSwitching,
	PhaseCanary, PhaseVerifyLBs, PhaseBaking, PhaseDeletingBlue, PhaseRenaming, PhaseRollingBack,
	PhaseSucceeded, PhaseFailed, PhaseAborted, PhaseRolledBack, PhaseCleanupFailed, PhaseCleanedUp,
}

// Done reports whether the phase is terminal.
func (p Phase) Done() bool {
	switch p {
	case PhaseSucceeded, PhaseFailed, PhaseAborted, PhaseRolledBack, PhaseCleanupFailed, PhaseCleanedUp:
		return true
	}
	return false
}

// Run is how far a workflow has come: the part of its status that every
// dnsroll workflow has (Status, LBReplaceStatus), embedded where the
// fields stood so that the JSON is as before. Steps are recorded in it one
// way, by begin, start and exec (steps.go).
type Run struct {
	Phase     Phase     `json:"phase"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Steps     []*Step   `json:"steps"`
	// Retrying lists the steps that failed an attempt and will be tried
	// again. The workflow cannot see retries in progress; readers of the
	// status (the API, the CLI) fill this in from Temporal.
	Retrying []Retry `json:"retrying,omitempty"`
	// Working lists the latest progress of the steps on their first
	// attempt that report it, such as the Ansible task a provisioning
	// runs: a long step is not silent. Readers fill it in as Retrying.
	Working []Working `json:"working,omitempty"`
	// started are the activities begun as steps (start), for a stop
	// signal to find a failure not yet acted on (alreadyFailed).
	started []*call
}

// Common is the part of a status that every workflow here shares, for a
// reader that fills in Retrying and Working whatever the workflow.
func (r *Run) Common() *Run { return r }

// Status is what the status query returns and what the workflow returns on success.
type Status struct {
	Fleet    string `json:"fleet"`
	Revision string `json:"revision,omitempty"`
	// Bundle is the revision's content address, sha256 over its zone
	// files and Ansible files, that Plan fixed (activities.Plan.Bundle).
	Bundle      string `json:"bundle,omitempty"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// ExtraLoadBalancers are a load balancer replacement's new ones, which
	// this rollout of its zone records switched with the fleet's own
	// (RolloutInput): a cleanup of it switches them back too.
	ExtraLoadBalancers []config.LoadBalancer `json:"extra_load_balancers,omitempty"`
	Run
	// Blue are the servers serving before the rollout, by label.
	Blue map[string]dnsroll.Server `json:"blue"`
	// Green are the replacement servers, by final label.
	Green map[string]dnsroll.Server `json:"green"`
	// ApproveBy is the approval gate's deadline (approval: manual): without
	// the approve signal by then, the rollout is aborted.
	ApproveBy time.Time `json:"approve_by,omitzero"`
	// ApprovalGate numbers the approval gate open now, or the last one, from
	// 1 in each run. An approve that names a gate (SignalInput.Gate) opens
	// only that one: sent on a status read before another operator
	// approved, it does not open the next.
	ApprovalGate int `json:"approval_gate,omitempty"`
	// OnGreen lists the load balancers currently pointed at green; in a
	// cleanup-only run, those not yet confirmed back on blue.
	OnGreen []string `json:"on_green"`
	// GreenShare is the percentage of the load balancers' queries that go
	// to green: 0 before the switch, 100 after it, and each step's weight
	// during a canary.
	GreenShare int `json:"green_share"`
	// Backends are the servers each load balancer points at, by load
	// balancer, as the last switch, stage or flip of it that succeeded
	// set them; a load balancer no step has changed yet is absent.
	Backends map[string][]Backend `json:"backends,omitempty"`
	// Canary records what each canary step measured.
	Canary []CanaryResult `json:"canary,omitempty"`
	// StoppedBy is the signal (abort or rollback) that stopped the
	// rollout, when one did: an operator's decision, which a retry does
	// not undo without being told to.
	StoppedBy string `json:"stopped_by,omitempty"`
	// NoWayBack, once set, says why abort and rollback are refused: the
	// rollout has passed its point of no return (blue's deletion began,
	// or, on a fleet's first rollout, the switch).
	NoWayBack string `json:"no_way_back,omitempty"`
	// Failure says why the rollout did not succeed, for the operator.
	Failure  string   `json:"failure,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Analysis holds the DNS verification results of each verify step.
	Analysis []Analysis `json:"analysis,omitempty"`
	// Changes is what the revision changes against the live one (the
	// fleet's last successful rollout), from the plan: for the approval
	// gate.
	Changes *activities.Changes `json:"changes,omitempty"`
	// Cleanup says how putting things back goes after a stopped rollout,
	// and, once it ended cleanup-failed, what is left to undo.
	Cleanup *Cleanup `json:"cleanup,omitempty"`
	// Events records signals and decisions, such as a rejected rollback.
	Events []Event `json:"events,omitempty"`
}

// Backend is one server a load balancer points at.
type Backend struct {
	Server string `json:"server"`
	// Weight is the server's relative share of the load balancer's
	// queries; 0 is staged: health-checked, with no traffic.
	Weight int `json:"weight"`
}

// Working is the latest progress of a step on its first attempt.
type Working struct {
	// Activity is the step's activity type, such as ProvisionNameservers.
	Activity string `json:"activity"`
	// Progress is what the step last reported, such as "ansible-playbook
	// nameserver.yml: nameserver : Install BIND packages".
	Progress string `json:"progress"`
	// At is when it reported it.
	At time.Time `json:"at,omitzero"`
}

// Retry is a step between a failed attempt and its next one.
type Retry struct {
	// Activity is the step's activity type, such as DeleteServer.
	Activity string `json:"activity"`
	// Attempt is the attempt now running or next to run.
	Attempt int32 `json:"attempt"`
	// LastError is why the previous attempt failed.
	LastError string `json:"last_error"`
	// Progress is the latest progress the step reported, such as
	// "deleting ns1"; it tells parallel steps of one activity apart.
	Progress string `json:"progress,omitempty"`
	// NextAttemptAt is when the next attempt starts, when it waits.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
}

// Step is one activity execution as the operator sees it.
type Step struct {
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	// Phase is the run's phase when the step began, so that a reader who
	// polls can tell which phase a step it saw only at its end was in.
	Phase     Phase     `json:"phase,omitempty"`
	State     string    `json:"state"` // running, succeeded, failed, canceled
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Attempts  int32     `json:"attempts"`
	Error     string    `json:"error,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// Step states.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepCanceled  = "canceled"
)

// Event is a timestamped note in the rollout's status.
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Analysis is one verify step's result, kept small by the activity.
type Analysis struct {
	Step   string                  `json:"step"`
	Result activities.VerifyResult `json:"result"`
}
