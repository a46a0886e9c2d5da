package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// Kind is one of the workflows the API starts, reads and signals: where it
// lives in the API, its workflow ID and registered type, and the signals
// its workflow listens to. A fleet runs one workflow of each kind at a
// time (the workflow ID), and the API refuses to start one while another
// kind runs for the fleet: they all change the same load balancers.
type Kind struct {
	// Noun names a run in messages: "rollout".
	Noun string
	// Path is its collection's URL path: "/rollouts".
	Path string
	// Type is the workflow's registered name.
	Type string
	// ID is the workflow ID of the fleet's run; ID("") is every ID's prefix.
	ID func(fleet string) string
	// Signals are the signals its workflow listens to; the API routes
	// exactly these.
	Signals []string
}

// The kinds of workflow the API serves.
var (
	Rollouts = Kind{Noun: "rollout", Path: "/rollouts", Type: "RolloutWorkflow", ID: workflows.WorkflowID,
		Signals: []string{workflows.SignalAbort, workflows.SignalRollback, workflows.SignalApprove}}
	LBUpdates = Kind{Noun: "load balancer update", Path: "/load-balancer-updates", Type: "LoadBalancerUpdateWorkflow",
		ID: workflows.LBUpdateWorkflowID, Signals: []string{workflows.SignalAbort}}
	LBReplacements = Kind{Noun: "load balancer replacement", Path: "/load-balancer-replacements", Type: "LoadBalancerReplaceWorkflow",
		ID:      workflows.LBReplaceWorkflowID,
		Signals: []string{workflows.SignalAbort, workflows.SignalRollback, workflows.SignalApprove, workflows.SignalGlueUpdated, workflows.SignalForceDrain, workflows.SignalZoneRevision}}
	// Kinds are all of them, for the one-at-a-time check.
	Kinds = []Kind{Rollouts, LBUpdates, LBReplacements}
)

// ParseID reads a run's ID: "<prefix><fleet>" (the fleet's latest) or
// "<prefix><fleet>:<run id>". An ID that no run of k can have is
// ENOTFOUND, like one that names nothing.
func (k Kind) ParseID(id string) (rollouts.Run, error) {
	wid, rid, hasRun := strings.Cut(id, ":")
	fleet, ok := strings.CutPrefix(wid, k.ID(""))
	if !ok || !config.ValidFleetName(fleet) || (hasRun && !runIDRE.MatchString(rid)) {
		return rollouts.Run{}, dnsroll.Errorf(dnsroll.ENOTFOUND, "no %s %q: its IDs look like %s<fleet>:<run id>", k.Noun, id, k.ID(""))
	}
	return rollouts.Run{WorkflowID: wid, RunID: rid}, nil
}

// runParam reads the run that the {id} URL parameter names. chi routes on
// the path as the client escaped it whenever that differs from Go's own
// escaping, so a colon sent as %3A (encodeURIComponent does) stays %3A in
// the parameter; otherwise the parameter is already unescaped, and must
// not be unescaped twice.
func (k Kind) runParam(r *http.Request) (rollouts.Run, error) { return k.ParseID(idParam(r)) }

// idParam is the {id} URL parameter, unescaped once (see runParam).
func idParam(r *http.Request) string {
	id := chi.URLParam(r, "id")
	if r.URL.RawPath != "" {
		if u, err := url.PathUnescape(id); err == nil {
			id = u
		}
	}
	return id
}

// Fleet is the fleet of a run of k.
func (k Kind) Fleet(r rollouts.Run) string { return strings.TrimPrefix(r.WorkflowID, k.ID("")) }

// self is a run's URL path.
func (k Kind) self(r rollouts.Run) string { return k.Path + "/" + url.PathEscape(RolloutID(r)) }

// RunLinks are where a client goes next from a load balancer update or
// replacement: its URL, one per signal its workflow takes, and the Web UI.
type RunLinks struct {
	Self string `json:"self"`
	// Signals maps each signal's name to its URL (POST).
	Signals map[string]string `json:"signals"`
	WebUI   string            `json:"web_ui,omitempty"`
}

func (s *Server) runLinks(k Kind, r rollouts.Run) RunLinks {
	l := RunLinks{Self: k.self(r), Signals: map[string]string{}}
	for _, name := range k.Signals {
		l.Signals[name] = l.Self + "/" + name
	}
	l.WebUI = dnsroll.WebUILink(s.cfg.WebUIURL, s.cfg.Namespace, r.WorkflowID, r.RunID)
	return l
}
