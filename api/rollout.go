package api

import (
	"fmt"
	"regexp"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// Rollout is one rollout with its full status.
type Rollout struct {
	// ID is "<workflow id>:<run id>", for example
	// "rollout-lab:0199c2d4-…". The workflow ID alone names the fleet's
	// latest rollout.
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// State is Temporal's view: running, completed, failed, canceled,
	// terminated, timed-out or continued-as-new. Phase says more.
	State string `json:"state"`
	workflows.Status
	Links Links `json:"links"`
	// Warning says, for GET of a running rollout, that no worker answered
	// its status query: the status is what Temporal recorded (the phase,
	// no steps), and nothing moves until a worker runs.
	Warning string `json:"warning,omitempty"`
	// unanswered is set when no worker answered the status query of an
	// open run: Status is then what Temporal recorded, which says the
	// phase but not the approval gate.
	unanswered error
}

// Summary is a rollout in a list: what Temporal's visibility store knows
// without asking the workflow. Revision is empty for a rollout started
// without one, or before dnsroll recorded it as a search attribute.
type Summary struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Fleet      string          `json:"fleet"`
	Revision   string          `json:"revision,omitempty"`
	Phase      workflows.Phase `json:"phase"`
	State      string          `json:"state"`
	StartedAt  time.Time       `json:"started_at"`
	EndedAt    time.Time       `json:"ended_at,omitzero"`
	Links      Links           `json:"links"`
}

// Links are where a client goes next.
type Links struct {
	Self     string `json:"self"`
	Abort    string `json:"abort"`
	Rollback string `json:"rollback"`
	Approve  string `json:"approve"`
	// WebUI is the run in the Temporal Web UI, when the API knows its URL.
	WebUI string `json:"web_ui,omitempty"`
}

// Filter selects the runs of one kind to list.
type Filter struct {
	// Kind is what to list; its zero value lists rollouts.
	Kind  Kind
	Fleet string
	// State is one of States; Phase one of the workflow's phases (rollouts
	// only: the load balancer workflows do not record theirs where a list
	// can filter).
	State     string
	Phase     workflows.Phase
	Limit     int
	PageToken []byte
}

// States are the values of Rollout.State, in Temporal's terms.
var States = []string{"running", "paused", "completed", "failed", "canceled", "terminated", "timed-out", "continued-as-new"}

// Open says whether a run in state has not ended: running, or paused in
// Temporal (its workflow pause), which still takes signals and resumes
// where it stopped.
func Open(state string) bool { return state == "running" || state == "paused" }

// Phases are every phase a rollout can report, for validating filters.
var Phases = workflows.Phases

// runIDRE is the shape of a run ID; fleet names and revisions follow
// config.ValidFleetName and config.ValidRevision, which also keep quotes
// out of visibility queries.
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// RolloutID is the API's ID of a run.
func RolloutID(r rollouts.Run) string {
	if r.RunID == "" {
		return r.WorkflowID
	}
	return r.WorkflowID + ":" + r.RunID
}

// ParseID reverses RolloutID for rollouts.
func ParseID(id string) (rollouts.Run, error) { return Rollouts.ParseID(id) }

func (s *Server) links(r rollouts.Run) Links {
	self := Rollouts.self(r)
	l := Links{Self: self, Abort: self + "/abort", Rollback: self + "/rollback", Approve: self + "/approve"}
	l.WebUI = dnsroll.WebUILink(s.cfg.WebUIURL, s.cfg.Namespace, r.WorkflowID, r.RunID)
	return l
}

// signalAllowed says why a rollout cannot take a signal now, or "" when it
// can. The workflow makes the same decision again when the signal arrives,
// so a state change in between is recorded as an ignored signal, not lost.
func signalAllowed(name string, st workflows.Status) string {
	p := st.Phase
	switch {
	case p.Done():
		return fmt.Sprintf("the rollout has ended (%s)", p)
	case name == workflows.SignalApprove && p != workflows.PhaseAwaitingApproval:
		return fmt.Sprintf("the rollout is %s, not awaiting approval", p)
	case name == workflows.SignalApprove:
		return ""
	case st.NoWayBack != "":
		return st.NoWayBack
	case p == workflows.PhaseDeletingBlue || p == workflows.PhaseRenaming:
		return fmt.Sprintf("the rollout is %s: blue servers are being deleted, so there is nothing to roll back to; roll out the previous revision instead (dnsroll rollout start --revision <previous> --allow-serial-decrease: its SOA serials are behind the live ones)", p)
	case p == workflows.PhaseRollingBack:
		return "the rollout is already rolling back"
	}
	return ""
}

// kind is what f lists.
func (f Filter) kind() Kind {
	if f.Kind.Type == "" {
		return Rollouts
	}
	return f.Kind
}
