package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// LBUpdateRequest is the body of POST /load-balancer-updates.
type LBUpdateRequest struct {
	Fleet string `json:"fleet"`
	// LoadBalancers names the ones to update, in order; empty is all.
	LoadBalancers []string  `json:"load_balancers,omitempty"`
	Update        lb.Update `json:"update"`
	Reason        string    `json:"reason,omitempty"`
	RequestedBy   string    `json:"requested_by,omitempty"`
}

// LBReplaceRequest is the body of POST /load-balancer-replacements: the
// workflow's input, checked.
type LBReplaceRequest = workflows.LBReplaceInput

// WorkflowRun is a load balancer update (S is workflows.Status) or
// replacement (workflows.LBReplaceStatus): the 201 of its start, without
// state and status, and the 200 of its read.
type WorkflowRun[S any] struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Fleet      string `json:"fleet"`
	// State is Temporal's view, as Rollout.State; Status.Phase says more.
	State  string   `json:"state,omitempty"`
	Status *S       `json:"status,omitempty"`
	Links  RunLinks `json:"links"`
}

// RunSummary is one load balancer update or replacement in a list: what
// Temporal records of it without asking the workflow. Its phase and steps
// are in the run itself.
type RunSummary struct {
	ID         string    `json:"id"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Fleet      string    `json:"fleet"`
	State      string    `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	Links      RunLinks  `json:"links"`
}

// RunPage is the body of GET /load-balancer-updates and
// GET /load-balancer-replacements.
type RunPage struct {
	Runs []RunSummary `json:"runs"`
	// NextPageToken fetches the next page; absent on the last one.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// LBAccepted is the body of a signal's 202.
type LBAccepted struct {
	ID     string   `json:"id"`
	Signal string   `json:"signal"`
	Links  RunLinks `json:"links"`
	// Warning says that no worker answered for the run: the signal waits
	// in Temporal until one takes it.
	Warning string `json:"warning,omitempty"`
}

// domainRE is a DNS name, loosely: the workflow checks the delegation itself.
var domainRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

// registrarRE is a registrar's name; the workflow refuses an unknown one
// before it creates anything.
var registrarRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// routeLB routes one kind of load balancer workflow.
func (s *Server) routeLB(r chi.Router, k Kind, create, get http.HandlerFunc) {
	r.Post(k.Path, create)
	r.Get(k.Path, s.listRuns(k))
	r.Get(k.Path+"/{id}", get)
	for _, name := range k.Signals {
		r.Post(k.Path+"/{id}/"+name, s.lbSignal(k, name))
	}
}

// listRuns lists the runs of k, newest first, as listRollouts does
// rollouts.
func (s *Server) listRuns(k Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items, next, ok := listPage(s, w, r, k, func(it Summary) RunSummary {
			return RunSummary{ID: it.ID, WorkflowID: it.WorkflowID, RunID: it.RunID, Fleet: it.Fleet, State: it.State,
				StartedAt: it.StartedAt, EndedAt: it.EndedAt, Links: s.runLinks(k, rollouts.Run{WorkflowID: it.WorkflowID, RunID: it.RunID})}
		})
		if ok {
			writeJSON(w, http.StatusOK, RunPage{Runs: items, NextPageToken: next})
		}
	}
}

// createLB starts a run of k from a request body R: check fills in its
// defaults and checks it, start turns it into the fleet and the
// workflow's input.
func createLB[R any](s *Server, k Kind, check func(*R) error, start func(R) (fleet string, in any, logArgs []any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req R
		if err := s.decode(w, r, &req, false); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := check(&req); err != nil {
			s.fail(w, r, err)
			return
		}
		fleet, in, logArgs := start(req)
		s.startLB(w, r, k, fleet, in, logArgs...)
	}
}

func lbUpdateInput(req LBUpdateRequest) (string, any, []any) {
	in := workflows.LBUpdateInput{FleetName: req.Fleet, LoadBalancers: req.LoadBalancers, Update: req.Update, Reason: req.Reason, RequestedBy: req.RequestedBy}
	return req.Fleet, in, []any{"update", req.Update.Kind, "requested_by", req.RequestedBy}
}

func lbReplaceInput(req LBReplaceRequest) (string, any, []any) {
	return req.Fleet, req, []any{"domain", req.Domain, "requested_by", req.RequestedBy}
}

func (s *Server) validateLBUpdate(req *LBUpdateRequest) error {
	req.RequestedBy = requester(req.RequestedBy)
	if err := validateWho(req.Fleet, req.Reason, req.RequestedBy); err != nil {
		return err
	}
	switch u := req.Update; {
	case !slices.Contains([]string{lb.UpdateConfig, lb.UpdateBinary, lb.UpdateConsole}, u.Kind):
		return fieldError("update.kind", "must be %s, %s or %s; got %q", lb.UpdateConfig, lb.UpdateBinary, lb.UpdateConsole, u.Kind)
	case u.Kind == lb.UpdateConsole && strings.TrimSpace(u.Lua) == "":
		return fieldError("update.lua", "is required for a %s update: the Lua chunk to run on dnsdist's console", lb.UpdateConsole)
	case u.Kind != lb.UpdateConsole && u.Lua != "":
		return fieldError("update.lua", "is only for a %s update (dnsdist)", lb.UpdateConsole)
	case u.Kind != lb.UpdateConsole && u.UndoLua != "":
		return fieldError("update.undo_lua", "is only for a %s update (dnsdist)", lb.UpdateConsole)
	case u.Kind != lb.UpdateConfig && u.Config != "":
		return fieldError("update.config", "is only for a %s update (nginx)", lb.UpdateConfig)
	}
	fleet, err := s.fleet(req.Fleet)
	if err != nil || fleet == nil {
		return err
	}
	// The workflow's own check, so that a refusal is a 400 naming the
	// field, not a run that fails.
	var ie *workflows.InputError
	if _, err := workflows.ChooseLBsToUpdate(fleet, req.LoadBalancers, req.Update); errors.As(err, &ie) {
		return fieldError(ie.Field, "%s", ie.Problem)
	} else if err != nil {
		return err
	}
	return nil
}

func (s *Server) validateLBReplace(req *LBReplaceRequest) error {
	req.RequestedBy = requester(req.RequestedBy)
	if err := validateWho(req.Fleet, req.Reason, req.RequestedBy); err != nil {
		return err
	}
	switch {
	case req.Domain == "" || !domainRE.MatchString(req.Domain) || len(strings.TrimSuffix(req.Domain, ".")) > 253:
		return fieldError("domain", "must be the delegated domain whose glue names the load balancers, such as example.com; got %q", req.Domain)
	case len(req.Parent) == 0:
		return fieldError("parent", "is required: the parent zone's servers (address:port) where the delegation is checked")
	case req.Registrar != "" && !registrarRE.MatchString(req.Registrar):
		return fieldError("registrar", "must be a registrar's name such as manual; got %q", req.Registrar)
	case req.GlueWait < 0:
		return fieldError("glue_wait", "must not be negative; got %s", req.GlueWait.D())
	case req.Drain.QuietQPS < 0:
		return fieldError("drain.quiet_qps", "must not be negative; got %g", req.Drain.QuietQPS)
	case req.Drain.Quiet < 0:
		return fieldError("drain.quiet", "must not be negative; got %s", req.Drain.Quiet.D())
	case req.Drain.MaxWait < 0:
		return fieldError("drain.max_wait", "must not be negative; got %s", req.Drain.MaxWait.D())
	case req.Drain.Poll < 0:
		return fieldError("drain.poll", "must not be negative; got %s", req.Drain.Poll.D())
	case req.GlueWait.D() > workflows.MaxReplacementWait:
		return fieldError("glue_wait", "must be at most %s (14 days), so that the replacement's readings fit in its workflow history; got %s", workflows.MaxReplacementWait, req.GlueWait.D())
	case req.Drain.Poll != 0 && req.Drain.Poll.D() < time.Second:
		// Each reading reads every old load balancer: at the longest
		// waits, faster readings outgrow the workflow's history.
		return fieldError("drain.poll", "must be at least 1s (default 5s), so that the replacement's readings fit in its workflow history; got %s", req.Drain.Poll.D())
	case req.Drain.MaxWait.D() > workflows.MaxReplacementWait:
		return fieldError("drain.max_wait", "must be at most %s (14 days), so that the replacement's readings fit in its workflow history; got %s", workflows.MaxReplacementWait, req.Drain.MaxWait.D())
	}
	if _, err := activities.ParseParent(req.Parent); err != nil {
		field, msg, _ := strings.Cut(err.Error(), ": ")
		return fieldError(field, "%s", msg)
	}
	fleet, err := s.fleet(req.Fleet)
	if err != nil || fleet == nil {
		return err
	}
	// The workflow's own check, so that a refusal is a 400 naming the
	// field, not a run that fails.
	var ie *workflows.InputError
	if err := workflows.CheckGlueAddresses(fleet); errors.As(err, &ie) {
		return fieldError(ie.Field, "%s", ie.Problem)
	} else if err != nil {
		return err
	}
	return nil
}

// startLB starts a run of k for fleet with input in; logArgs go into the
// log line.
func (s *Server) startLB(w http.ResponseWriter, r *http.Request, k Kind, fleet string, in any, logArgs ...any) {
	if err := s.busy(r, k, fleet); err != nil {
		s.fail(w, r, err)
		return
	}
	run, err := s.cfg.Backend.StartWorkflow(r.Context(), k, fleet, in)
	if dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
		err = s.conflictWith(r, k, err, rollouts.Run{WorkflowID: k.ID(fleet)})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info(k.Noun+" started", append([]any{"request_id", RequestID(r.Context()), "fleet", fleet, "id", RolloutID(run)}, logArgs...)...)
	links := s.runLinks(k, run)
	w.Header().Set("Location", links.Self)
	writeJSON(w, http.StatusCreated, WorkflowRun[struct{}]{ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID, Fleet: fleet, Links: links})
}

// busy refuses to start a run of k while the fleet runs a workflow of
// another kind: a rollout, an update and a replacement all change the
// fleet's load balancers. It answers the common case with a 409 that names
// the run; two starts at the same moment can both pass it, and then the
// workflows' hold of the fleet refuses one (workflows/fleetlock.go). A
// second run of k itself is Temporal's to refuse, by workflow ID.
func (s *Server) busy(r *http.Request, k Kind, fleet string) error {
	for _, other := range Kinds {
		if other.Type == k.Type {
			continue
		}
		run, state, err := s.cfg.Backend.Read(r.Context(), other, rollouts.Run{WorkflowID: other.ID(fleet)}, nil)
		if dnsroll.ErrorCode(err) == dnsroll.ENOTFOUND {
			continue
		}
		if err != nil {
			return err
		}
		if Open(state) {
			return conflictAbout(RolloutID(run), "fleet %s has a %s %s, %s: no %s was started; start one once that %s has ended",
				fleet, state, other.Noun, RolloutID(run), k.Noun, other.Noun)
		}
	}
	return nil
}

// conflictWith names the fleet's running run of k in a 409.
func (s *Server) conflictWith(r *http.Request, k Kind, err error, run rollouts.Run) error {
	e := errorf(http.StatusConflict, dnsroll.ECONFLICT, "%s", err.Error())
	if cur, _, rerr := s.cfg.Backend.Read(r.Context(), k, run, nil); rerr == nil {
		e.body.RolloutID = RolloutID(cur)
	}
	return e
}

// readRun reads the run of k that the {id} URL parameter names.
func readRun[S any](s *Server, r *http.Request, k Kind) (WorkflowRun[S], error) {
	run, err := k.runParam(r)
	if err != nil {
		return WorkflowRun[S]{}, err
	}
	st := new(S)
	run, state, err := s.cfg.Backend.Read(r.Context(), k, run, st)
	// With err the run is still named, for one no worker answered for.
	return WorkflowRun[S]{ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID, Fleet: k.Fleet(run), State: state, Status: st, Links: s.runLinks(k, run)}, err
}

func (s *Server) getLBUpdate(w http.ResponseWriter, r *http.Request) {
	out, err := readRun[workflows.Status](s, r, LBUpdates)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	emptyNotNull(out.Status)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getLBReplacement(w http.ResponseWriter, r *http.Request) {
	out, err := readRun[workflows.LBReplaceStatus](s, r, LBReplacements)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st := out.Status; st.Steps == nil {
		st.Steps = []*workflows.Step{}
	}
	writeJSON(w, http.StatusOK, out)
}

// lbSignal sends name to a run of k if its phase allows it, 409 otherwise.
func (s *Server) lbSignal(k Kind, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := s.signalInput(w, r, name)
		if err == nil && name == workflows.SignalForceDrain && strings.TrimSpace(in.Reason) == "" {
			err = fieldError("reason", "is required for %s: say why the old load balancers may go before they are quiet", name)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		cur, err := readRun[struct {
			Phase        workflows.Phase `json:"phase"`
			ApprovalGate int             `json:"approval_gate"`
		}](s, r, k)
		warning := ""
		if he := (*httpError)(nil); errors.As(err, &he) && he.body.Code == codeUnavailable {
			// With no worker to say the phase, the signal is sent: the
			// workflow decides when a worker takes it, an approve's gate
			// too. Workers being down is when an operator most needs an
			// abort to get through.
			warning, err = unchecked(errors.New(he.body.Message), k.Noun, name, in), nil
		}
		if err == nil && name == workflows.SignalZoneRevision {
			// A revision the rollout would refuse is refused here: the
			// rollout would fail at its plan, after days of waiting.
			var fleet *config.Fleet
			if fleet, err = s.fleet(cur.Fleet); err == nil {
				err = checkRevision(fleet, in.Revision)
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		why := ""
		if warning == "" {
			why = cmp.Or(lbSignalAllowed(name, cur.Status.Phase), closedGate(name, in, cur.Status.ApprovalGate))
		}
		if why == "" && !Open(cur.State) {
			why = "the " + k.Noun + " is " + cur.State
		}
		if why == "" && name == workflows.SignalZoneRevision {
			in.LiveBundle, in.LiveUnknown = s.live(r.Context(), cur.Fleet)
		}
		if s.send(w, r, rollouts.Run{WorkflowID: cur.WorkflowID, RunID: cur.RunID}, name, in, why) {
			writeJSON(w, http.StatusAccepted, LBAccepted{ID: cur.ID, Signal: name, Links: cur.Links, Warning: warning})
		}
	}
}

// live is the fleet's live revision, looked up as a rollout's start looks
// it up, for the rollout a zone-revision starts to compare with; or why
// it is unknown. A replacement's fleet serves some revision even when no
// successful rollout of it is listed (visibility keeps closed runs only
// for the namespace's retention): that is unknown too, and the signal
// says so, as a sender that did not look would not.
func (s *Server) live(ctx context.Context, fleet string) (bundle, why string) {
	bundle, why = s.cfg.Backend.Live(ctx, fleet)
	if bundle == "" && why == "" {
		why = "no successful rollout of fleet " + fleet + " is listed in Temporal's visibility store"
	}
	return bundle, why
}

// lbSignalAllowed says why a load balancer update or replacement in phase
// p cannot take a signal now, or "" when it can. The workflow decides
// again when the signal arrives.
func lbSignalAllowed(name string, p workflows.Phase) string {
	switch {
	case p.Done():
		return fmt.Sprintf("it has ended (%s)", p)
	case name == workflows.SignalForceDrain && p != workflows.PhaseDraining:
		return fmt.Sprintf("it is %s, not draining", p)
	case name == workflows.SignalApprove && p != workflows.PhaseAwaitingApproval:
		return fmt.Sprintf("it is %s, not awaiting approval", p)
	case name == workflows.SignalZoneRevision && p != workflows.PhaseAwaitingZoneRevision:
		return fmt.Sprintf("it is %s, not awaiting a zone revision", p)
	case name == workflows.SignalZoneRevision:
		return ""
	case name == workflows.SignalGlueUpdated || name == workflows.SignalForceDrain || name == workflows.SignalApprove:
		return ""
	case p == workflows.PhaseDeletingOldLBs || p == workflows.PhaseRenaming:
		return fmt.Sprintf("it is %s: the old load balancers are being deleted, so there is nothing to go back to", p)
	case p == workflows.PhaseRollingBack || p == workflows.PhaseRestoringGlue || p == workflows.PhaseRestoringLB:
		return fmt.Sprintf("it is already stopping (%s)", p)
	}
	return ""
}
