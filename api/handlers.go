package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.temporal.io/api/serviceerror"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// StartRequest is the body of POST /rollouts: a rollout's input, whose
// Revision may be empty (the fleet's last successful revision, or the
// server's default for a new fleet). CleanUp is refused: only
// POST /rollouts/{id}/cleanup asks for one.
type StartRequest workflows.RolloutInput

// Started is the body of a 201.
type Started struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Fleet      string `json:"fleet"`
	Revision   string `json:"revision,omitempty"`
	Links      Links  `json:"links"`
}

// Page is the body of GET /rollouts.
type Page struct {
	Rollouts []Summary `json:"rollouts"`
	// NextPageToken fetches the next page; absent on the last one.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SignalRequest is the optional body of abort, rollback and approve.
type SignalRequest = workflows.SignalInput

// Accepted is the body of a 202.
type Accepted struct {
	ID     string `json:"id"`
	Signal string `json:"signal"`
	Links  Links  `json:"links"`
	// Warning says that no worker answered for the rollout: the signal
	// waits in Temporal until one takes it, and the rollout decides then.
	Warning string `json:"warning,omitempty"`
}

const (
	maxReason = 500
	maxBy     = 100
)

func (s *Server) createRollout(w http.ResponseWriter, r *http.Request) {
	req, ok := s.startRequest(w, r)
	if !ok {
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.RequestedBy = requester(req.RequestedBy)
	s.start(w, r, workflows.RolloutInput(req), key, "rollout started", "revision", req.Revision, "requested_by", req.RequestedBy)
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// idempotencyKey reads a start's Idempotency-Key header: a CI job's retry
// with the key of its first start gets that rollout back (200) rather
// than a 409 about it, or a second rollout once it has ended.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fieldError("Idempotency-Key", "is given %d times; give it once", len(vs))
	}
	k := strings.TrimSpace(vs[0])
	if k == "" || len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return "", fieldError("Idempotency-Key", "must be 1-%d printable ASCII characters without spaces, such as a UUID or the CI job's ID", maxIdempotencyKey)
	}
	return k, nil
}

// Planned is the body of POST /plans' 200: what a rollout of the revision
// would start from, and the plan's workflow, for the Web UI.
type Planned struct {
	workflows.PlanReport
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// WebUI is the plan's run in the Temporal Web UI, when the server
	// knows its URL.
	WebUI string `json:"web_ui,omitempty"`
}

// createPlan is a dry run of POST /rollouts: the same request, checked the
// same way, answered with what the rollout's Plan step finds (blue, the
// changes against the live revision, warnings) or its refusal. Nothing is
// created, and a rollout of the fleet may be running.
func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) {
	req, ok := s.startRequest(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PlanWait)
	defer cancel()
	rep, run, err := s.cfg.Backend.Plan(ctx, workflows.RolloutInput(req))
	if err != nil && r.Context().Err() == nil && planTimedOut(ctx, err) {
		err = errorf(http.StatusGatewayTimeout, codeTimeout, "the plan did not finish in %s: no worker of this task queue is running, or its Plan step is still retrying (a cloud or DNS error); the Web UI shows workflow %s", s.cfg.PlanWait, run.WorkflowID)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("rollout planned", "request_id", RequestID(r.Context()), "fleet", req.Fleet, "revision", req.Revision, "workflow_id", run.WorkflowID)
	writeJSON(w, http.StatusOK, Planned{PlanReport: rep, WorkflowID: run.WorkflowID, RunID: run.RunID,
		WebUI: dnsroll.WebUILink(s.cfg.WebUIURL, s.cfg.Namespace, run.WorkflowID, run.RunID)})
}

// planTimedOut says whether a plan's wait, under ctx, ended at its
// deadline with err. The SDK's long poll for the result often returns its
// gRPC call's deadline error, or the cancel of its stream, a moment
// before ctx says it is done.
func planTimedOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	until, _ := ctx.Deadline()
	return (errors.As(err, &deadline) || errors.As(err, &canceled)) && time.Until(until) < time.Second
}

// startRequest reads and checks the body of POST /rollouts and
// POST /plans. It answers an error itself, and then returns ok false.
func (s *Server) startRequest(w http.ResponseWriter, r *http.Request) (req StartRequest, ok bool) {
	err := s.decode(w, r, &req, false)
	if err == nil {
		err = s.validateStart(r, &req)
	}
	if err != nil {
		s.fail(w, r, err)
		return req, false
	}
	return req, true
}

// requester is who asks, "api" when the request does not say.
func requester(by string) string {
	if by == "" {
		return "api"
	}
	return by
}

// validateWho checks the fields every start has.
func validateWho(fleet, reason, by string) error {
	switch {
	case fleet == "":
		return fieldError("fleet", "is required")
	case !config.ValidFleetName(fleet):
		return fieldError("fleet", "must be %s; got %q%s", config.FleetNameRule, fleet, config.FleetNameHint(fleet))
	}
	if err := textField("reason", reason, maxReason); err != nil {
		return err
	}
	return textField("requested_by", by, maxBy)
}

// steering says whether r would steer how text shows rather than be
// shown: a control character, a line or paragraph separator, or a
// bidirectional override or isolate, which can make a reason read
// otherwise than it is.
func steering(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// textField checks a free-text field that operators read on terminals
// and in the Web UI: at most max bytes, on one line, and without control
// characters, which could drive a terminal.
func textField(name, v string, max int) error {
	switch {
	case utf8.RuneCountInString(v) > max:
		// Characters, as openapi.yaml's maxLength counts them.
		return fieldError(name, "must be at most %d characters", max)
	case strings.ContainsFunc(v, steering):
		return fieldError(name, "must be one line of text, without control characters; got %q", v)
	}
	return nil
}

// fleet loads the named fleet's config when the server has them; nil,
// nil when it has none to check against.
func (s *Server) fleet(name string) (*config.Fleet, error) {
	if s.cfg.Fleets == nil {
		return nil, nil
	}
	f, err := s.cfg.Fleets(name)
	var unread *fs.PathError
	switch {
	case dnsroll.ErrorCode(err) == dnsroll.ENOTFOUND:
		// The loader names the fleets there are, as a client needs to know.
		return nil, fieldError("fleet", "%v", err)
	case errors.As(err, &unread) && !errors.Is(err, fs.ErrNotExist):
		// A file this host cannot read is its own fault, not the
		// request's: a 500, whose details go to the log.
		return nil, fmt.Errorf("fleet %s: %w", name, err)
	case err != nil:
		// The fleet's file does not load: the message says where.
		return nil, fieldError("fleet", "%v", err)
	}
	return f, nil
}

// validateStart checks the request and fills in the revision.
func (s *Server) validateStart(r *http.Request, req *StartRequest) error {
	if err := validateWho(req.Fleet, req.Reason, req.RequestedBy); err != nil {
		return err
	}
	if err := refuseLive(req.LiveBundle, req.LiveUnknown); err != nil {
		return err
	}
	switch {
	case req.Revision != "" && !config.ValidRevision(req.Revision):
		return fieldError("revision", "must be %s; got %q", config.RevisionRule, req.Revision)
	case req.CleanUp != nil:
		return fieldError("clean_up", "is not accepted here: POST /rollouts/{id}/cleanup cleans up after a cleanup-failed rollout")
	case len(req.ExtraLoadBalancers) > 0:
		return fieldError("extra_load_balancers", "is not accepted here: only a load balancer replacement sets it, for the rollout of its zone records")
	case req.HeldBy != "":
		return fieldError("held_by", "is not accepted here: only a load balancer replacement sets it, for the rollout of its zone records")
	}
	fleet, err := s.fleet(req.Fleet)
	if err != nil {
		return err
	}
	if req.Revision == "" {
		rev, err := s.cfg.Backend.LastRevision(r.Context(), req.Fleet)
		if err != nil {
			return err
		}
		if rev == "" {
			rev = s.cfg.DefaultRevision
		}
		req.Revision = rev
	}
	return checkRevision(fleet, req.Revision)
}

// refuseLive refuses a request that names the fleet's live revision
// (live_bundle) or why it is unknown (live_unknown): the API looks it up
// itself, for a rollout's start and a zone-revision.
func refuseLive(bundle, why string) error {
	const msg = "is not accepted here: the API looks up the fleet's live revision itself"
	switch {
	case bundle != "":
		return fieldError("live_bundle", msg)
	case why != "":
		return fieldError("live_unknown", msg)
	}
	return nil
}

// checkRevision refuses a revision fleet's config cannot roll out (nil:
// the server has no fleet configs to check against). Its zone files must
// exist and parse here, as they must on the worker: refused now, nothing
// is started.
func checkRevision(fleet *config.Fleet, rev string) error {
	if fleet == nil {
		return nil
	}
	if err := fleet.ValidateRevision(rev); err != nil {
		var fe *config.FieldError
		if errors.As(err, &fe) {
			return fieldError(fe.Field, "%s", fe.Message)
		}
		return fieldError("revision", "%v", err)
	}
	if _, err := preflight.Zones(fleet, rev); err != nil {
		return fieldError("revision", "%v", err)
	}
	return nil
}

// conflict names the running rollout in a 409.
func (s *Server) conflict(r *http.Request, err error, run rollouts.Run) error {
	e := errorf(http.StatusConflict, dnsroll.ECONFLICT, "%s", err.Error())
	if cur, gerr := s.cfg.Backend.Get(r.Context(), run); gerr == nil {
		e.body.RolloutID = cur.ID
	}
	return e
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) {
	items, next, ok := listPage(s, w, r, Rollouts, func(it Summary) Summary {
		it.Links = s.links(rollouts.Run{WorkflowID: it.WorkflowID, RunID: it.RunID})
		return it
	})
	if ok {
		writeJSON(w, http.StatusOK, Page{Rollouts: items, NextPageToken: next})
	}
}

// listPage reads the page of k's runs that the request's filters select,
// each made a list item by item, and the sealed token of the next page. It
// answers an error itself, and then returns ok false.
func listPage[T any](s *Server, w http.ResponseWriter, r *http.Request, k Kind, item func(Summary) T) (items []T, next string, ok bool) {
	f, err := s.listFilter(r, k)
	var sums []Summary
	var raw []byte
	if err == nil {
		sums, raw, err = s.cfg.Backend.List(r.Context(), f)
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, "", false
	}
	items = make([]T, 0, len(sums))
	for _, it := range sums {
		items = append(items, item(it))
	}
	if len(raw) > 0 {
		next = s.pages.seal(raw, f)
	}
	return items, next, true
}

// query reads r's query parameters, refusing what cannot be decoded: Go's
// URL.Query drops such a parameter, so a client's broken page token would
// list the first page again, and a retry's force=%zz would not force.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, dnsroll.EINVALID, "query: %v; percent-encode its values", err)
	}
	return q, nil
}

// listParams are the query parameters of the lists.
var listParams = []string{"fleet", "status", "phase", "limit", "page_token"}

// listFilter reads a list of k's query parameters: fleet, status, phase
// (rollouts only), limit and page_token.
func (s *Server) listFilter(r *http.Request, k Kind) (Filter, error) {
	q, err := query(r)
	if err != nil {
		return Filter{Kind: k}, err
	}
	f := Filter{Kind: k, Fleet: q.Get("fleet"), State: q.Get("status"), Phase: workflows.Phase(q.Get("phase")), Limit: 20}
	// A misspelt filter (state= for status=) would list every run as if
	// filtered, and a repeated one would filter by its first value alone.
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(listParams, name):
			return f, fieldError(name, "is not a parameter of this list; it takes %s", strings.Join(listParams, ", "))
		case len(q[name]) > 1:
			return f, fieldError(name, "is given %d times; give it once", len(q[name]))
		}
	}
	if f.Fleet != "" && !config.ValidFleetName(f.Fleet) {
		return f, fieldError("fleet", "must be a fleet name, %s; got %q", config.FleetNameRule, f.Fleet)
	}
	if f.State != "" && !slices.Contains(States, f.State) {
		return f, fieldError("status", "must be one of %v; got %q", States, f.State)
	}
	switch {
	case f.Phase != "" && k.Type != Rollouts.Type:
		return f, fieldError("phase", "is a filter of rollouts only: a %s's phase is in its status (GET %s/{id})", k.Noun, k.Path)
	case f.Phase != "" && !slices.Contains(Phases, f.Phase):
		return f, fieldError("phase", "must be one of %v; got %q", Phases, f.Phase)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return f, fieldError("limit", "must be a number from 1 to 100; got %q", v)
		}
		f.Limit = n
	}
	if v := q.Get("page_token"); v != "" {
		tok, ok := s.pages.open(v, f)
		if !ok {
			return f, fieldError("page_token", "is not a next_page_token this API gave for the same list and fleet, status and phase filters")
		}
		f.PageToken = tok
	}
	return f, nil
}

// rollout reads the rollout that the {id} URL parameter names.
func (s *Server) rollout(r *http.Request) (Rollout, error) {
	run, err := Rollouts.runParam(r)
	if err != nil {
		return Rollout{}, err
	}
	ro, err := s.cfg.Backend.Get(r.Context(), run)
	if err != nil {
		return Rollout{}, err
	}
	ro.Links = s.links(rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID})
	emptyNotNull(&ro.Status)
	return ro, nil
}

// emptyNotNull gives st empty lists, not nulls, before the first step and
// the first server.
func emptyNotNull(st *workflows.Status) {
	if st.Steps == nil {
		st.Steps = []*workflows.Step{}
	}
	if st.Blue == nil {
		st.Blue = map[string]dnsroll.Server{}
	}
	if st.Green == nil {
		st.Green = map[string]dnsroll.Server{}
	}
	if st.OnGreen == nil {
		st.OnGreen = []string{}
	}
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) {
	ro, err := s.rollout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ro.unanswered != nil {
		ro.Warning = ro.unanswered.Error()
	}
	writeJSON(w, http.StatusOK, ro)
}

// signalRequest reads the optional body of a signal or a cleanup (a
// reason and who asks, default "api", each of bounded length), then the
// rollout it is for.
func (s *Server) signalRequest(w http.ResponseWriter, r *http.Request, name string) (SignalRequest, Rollout, error) {
	in, err := s.signalInput(w, r, name)
	if err != nil {
		return in, Rollout{}, err
	}
	ro, err := s.rollout(r)
	return in, ro, err
}

// signalInput reads the optional body of signal name ("" for a cleanup).
func (s *Server) signalInput(w http.ResponseWriter, r *http.Request, name string) (SignalRequest, error) {
	var in SignalRequest
	if err := s.decode(w, r, &in, true); err != nil {
		return in, err
	}
	switch {
	case name != workflows.SignalZoneRevision && in.Revision != "":
		return in, fieldError("revision", "is only for %s", workflows.SignalZoneRevision)
	case in.Revision != "" && !config.ValidRevision(in.Revision):
		return in, fieldError("revision", "must be %s; got %q", config.RevisionRule, in.Revision)
	case name != workflows.SignalApprove && in.Gate != 0:
		return in, fieldError("gate", "is only for %s", workflows.SignalApprove)
	case in.Gate < 0:
		return in, fieldError("gate", "must be the number of the approval gate, from 1, that the status shows as approval_gate (or left out for whichever is open); got %d", in.Gate)
	case in.Gate != 0 && !strings.Contains(idParam(r), ":"):
		// Every run of a fleet has the same workflow ID and numbers its
		// gates from 1, so the fleet's latest may be a run started since
		// the status was read, at a gate of the same number.
		return in, fieldError("gate", "is a gate of one run, and each run numbers its gates from 1: name the run too, %s:<run id> as the status's id gives it, lest the approval open gate %d of a run of the fleet started since you read the status", idParam(r), in.Gate)
	}
	if err := refuseLive(in.LiveBundle, in.LiveUnknown); err != nil {
		return in, err
	}
	if err := textField("reason", in.Reason, maxReason); err != nil {
		return in, err
	}
	if err := textField("by", in.By, maxBy); err != nil {
		return in, err
	}
	in.By = requester(in.By)
	return in, nil
}

// signal sends name to the rollout if its state allows it, 409 otherwise.
func (s *Server) signal(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ro, err := s.signalRequest(w, r, name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		why := signalAllowed(name, ro.Status)
		warning := ""
		if ro.unanswered != nil {
			// The phase is what Temporal recorded, but not the gate:
			// the workflow checks a gate named when it takes the approve.
			warning = unchecked(ro.unanswered, "rollout", name, in)
		} else {
			why = cmp.Or(why, closedGate(name, in, ro.ApprovalGate))
		}
		if why == "" && !Open(ro.State) {
			why = "the rollout is " + ro.State
		}
		if s.send(w, r, rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID}, name, in, why) {
			writeJSON(w, http.StatusAccepted, Accepted{ID: ro.ID, Signal: name, Links: ro.Links, Warning: warning})
		}
	}
}

// unchecked is the warning of signal name sent to a noun with in, when no
// worker answered its status query (unanswered): the workflow decides
// when a worker takes it, and says in its events what it did not act on.
func unchecked(unanswered error, noun, name string, in SignalRequest) string {
	msg := unanswered.Error() + "; the " + noun + " decides when a worker takes the signal, and records one it does not act on as ignored in its events"
	switch {
	case name != workflows.SignalApprove:
	case in.Gate != 0:
		msg += fmt.Sprintf(": it takes this approve only if approval gate %d is open then", in.Gate)
	default:
		msg += ": this approve names no gate, so it approves whichever approval gate is open then (name the gate, as the status showed it, to approve that one only)"
	}
	return msg
}

// closedGate says why an approve that names an approval gate cannot take
// the one open now, or "". The workflow checks again (SignalInput.Gate).
func closedGate(name string, in SignalRequest, open int) string {
	if name != workflows.SignalApprove || in.Gate == 0 || in.Gate == open {
		return ""
	}
	if open == 0 {
		// A worker answered, from before gates were numbered, or for a
		// run whose gate opened on one: it would take the gate for an
		// unknown field and ignore the approve. (With no worker to
		// answer, the caller leaves the gate to the workflow.)
		return "the status does not say which approval gate is open (the run's gate opened on a worker from before gates were numbered, which ignores an approve naming one): read the status, and approve without gate if you mean to approve whichever is open"
	}
	return fmt.Sprintf("approval gate %d is not open: gate %d is; read the status to see what it holds back, and approve it with gate %d if you mean to", in.Gate, open, open)
}

// send sends signal name with in to run, unless why says why it cannot
// take it now (a 409). It reports whether it sent it; when not, it has
// answered.
func (s *Server) send(w http.ResponseWriter, r *http.Request, run rollouts.Run, name string, in SignalRequest, why string) bool {
	id := RolloutID(run)
	if why != "" {
		s.fail(w, r, conflictAbout(id, "cannot %s %s: %s", name, id, why))
		return false
	}
	if err := s.cfg.Backend.Signal(r.Context(), run, name, in); err != nil {
		if dnsroll.ErrorCode(err) == dnsroll.ENOTFOUND {
			// It ended between the read and the signal.
			err = errorf(http.StatusConflict, dnsroll.ECONFLICT, "cannot %s %s: it has ended", name, id)
		}
		s.fail(w, r, err)
		return false
	}
	s.log.Info("signal sent", "request_id", RequestID(r.Context()), "signal", name, "id", id, "by", in.By)
	return true
}

// retryRollout starts an ended rollout again with its original input.
// Activities are idempotent, so whatever the earlier run left is reused.
// It takes no body: a reason or requester sent with it would not reach the
// new run, whose input is the old one's.
func (s *Server) retryRollout(w http.ResponseWriter, r *http.Request) {
	if err := s.noBody(w, r, "is not accepted: a retry takes no body, since the new run has the fleet, revision, reason and requester of the rollout it retries"); err != nil {
		s.fail(w, r, err)
		return
	}
	ro, err := s.rollout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if Open(ro.State) {
		s.fail(w, r, conflictAbout(ro.ID, "cannot retry %s: it is still %s (%s)", ro.ID, ro.State, ro.Phase))
		return
	}
	force, err := forceParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if why := retryNeedsForce(ro.Status); why != "" && !force {
		s.fail(w, r, conflictAbout(ro.ID, "cannot retry %s: %s; if that is meant, retry with force=true (dnsroll rollout retry --force)", ro.ID, why))
		return
	}
	if err := s.busy(r, Rollouts, Rollouts.Fleet(rollouts.Run{WorkflowID: ro.WorkflowID})); err != nil {
		s.fail(w, r, err)
		return
	}
	run, in, err := s.cfg.Backend.Retry(r.Context(), rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID})
	s.started(w, r, in, run, err, "rollout retried", "retry_of", ro.ID)
}

// retryNeedsForce says why retrying a rollout that ended as st did is not
// what a retry is for, or "": a retry starts a failed rollout again, and
// one that someone stopped with abort or rollback, or that succeeded,
// would deploy again what was stopped, or what is already live. A
// rollback after a failure, or an approval that timed out, was no one's
// decision.
func retryNeedsForce(st workflows.Status) string {
	switch {
	case st.Phase == workflows.PhaseSucceeded:
		return "it succeeded, so there is nothing to retry; start a rollout to deploy a revision again"
	case st.StoppedBy != "":
		why := cmp.Or(st.Failure, string(st.Phase))
		return fmt.Sprintf("it was stopped on purpose, by %s (%s), and a retry would deploy again what was stopped", st.StoppedBy, why)
	}
	return ""
}

// forceParam reads a retry's only query parameter, force.
func forceParam(r *http.Request) (bool, error) {
	q, err := query(r)
	if err != nil {
		return false, err
	}
	for name, vs := range q {
		switch {
		case name != "force":
			return false, fieldError(name, "is not a parameter of a retry; it takes force=true")
		case len(vs) > 1:
			return false, fieldError(name, "is given %d times; give it once", len(vs))
		}
	}
	switch v := q.Get("force"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fieldError("force", "must be true or false; got %q", v)
	}
}

// cleanupRollout finishes the cleanup of a rollout that ended
// cleanup-failed, or mid-way: a new run of the fleet's workflow puts every
// load balancer back on blue and deletes every -next server, from the blue
// servers that the run's status names and the servers it left
// (cleanupLeft), which the fleet may no longer list.
func (s *Server) cleanupRollout(w http.ResponseWriter, r *http.Request) {
	in, ro, err := s.signalRequest(w, r, "")
	if err == nil {
		err = s.cleanupAllowed(r, ro)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := ro.Status
	left, err := s.cleanupLeft(r, ro)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := &workflows.CleanupRequest{From: ro.ID, Blue: st.Blue, Left: left}
	s.start(w, r, workflows.RolloutInput{
		Fleet: st.Fleet, Revision: st.Revision, Reason: in.Reason, RequestedBy: in.By, CleanUp: req, ExtraLoadBalancers: st.ExtraLoadBalancers,
	}, "", "cleanup started", "cleanup_of", ro.ID)
}

// cleanupAllowed refuses a cleanup after ro unless ro ended cleanup-failed
// (or ended mid-way, below) with its blue servers recorded and no later rollout may have changed
// the fleet (one refused because the fleet was busy did not). The
// workflow points the load balancers at those servers before it checks
// that they answer, and a later rollout may have deleted them: the cleanup
// would then take the fleet down.
//
// A rollout whose workflow ended mid-way (terminated, timed out: its
// phase is no end) ran none of its undo steps, and may have left load
// balancers on green and green servers: it is cleaned up after the same
// way, unless it had passed its point of no return, where only a person
// can finish it.
func (s *Server) cleanupAllowed(r *http.Request, ro Rollout) error {
	endedMidWay := endedMidWay(ro)
	p := ro.Status.Phase
	switch {
	case endedMidWay && (ro.Status.NoWayBack != "" || p == workflows.PhaseDeletingBlue || p == workflows.PhaseRenaming):
		return conflictAbout(ro.ID, "cannot clean up after %s: its workflow ended (%s) in phase %s, past its point of no return (%s), so its load balancers stay on green; "+
			"finish it by hand: delete the blue servers left, then rename each <label>-next to <label> (README, what each outcome means)",
			ro.ID, ro.State, p, cmp.Or(ro.Status.NoWayBack, "blue servers were being deleted"))
	case !endedMidWay && ro.Status.Phase != workflows.PhaseCleanupFailed:
		// --fleet names the fleet's latest run, which may be one refused
		// after the cleanup-failed run the operator means.
		return conflictAbout(ro.ID, "cannot clean up after %s: it is %s; only a cleanup-failed rollout, or one whose workflow ended mid-way (terminated), has something left to undo "+
			"(to clean up after an earlier one, name it: `dnsroll rollout list --fleet %[3]s --phase cleanup-failed` lists them, "+
			"and `dnsroll rollout list --fleet %[3]s --status terminated` those terminated, "+
			"and `dnsroll rollout cleanup --id <id>` cleans up after one, if no later rollout changed the fleet)", ro.ID, ro.Status.Phase, Rollouts.Fleet(rollouts.Run{WorkflowID: ro.WorkflowID}))
	case len(ro.Status.Blue) == 0 && endedMidWay:
		// It ended before its Plan recorded blue (or the fleet had none):
		// a cleanup would point every load balancer at no server.
		return conflictAbout(ro.ID, "cannot clean up after %s: its workflow ended (%s) in phase %s before it recorded any blue servers to point the load balancers back at; "+
			"see where it stopped (its status) and put the load balancers and servers right by hand", ro.ID, ro.State, p)
	case len(ro.Status.Blue) == 0:
		return conflictAbout(ro.ID, "cannot clean up after %s: it recorded no blue servers to point the load balancers back at; undo what its cleanup.left lists by hand", ro.ID)
	}
	later, state, err := s.cfg.Backend.LaterChange(r.Context(), rollouts.Run{WorkflowID: ro.WorkflowID, RunID: ro.RunID})
	if err != nil {
		return err
	}
	if later.RunID != "" {
		id := RolloutID(later)
		return conflictAbout(id, "cannot clean up after %s: the fleet's later rollout %s (%s) may have deleted the blue servers that %s recorded, "+
			"and pointing the load balancers back at them would take the fleet down; clean up after %s if it ends cleanup-failed, or start a new rollout",
			ro.ID, id, state, ro.ID, id)
	}
	return nil
}

// start starts a run of the fleet's workflow and answers as started does.
func (s *Server) start(w http.ResponseWriter, r *http.Request, in workflows.RolloutInput, key, msg string, logArgs ...any) {
	if err := s.busy(r, Rollouts, in.Fleet); err != nil {
		// The rollout this key started may have ended before the run
		// that makes the fleet busy began: a repeat gets it back.
		if key != "" {
			if run, ok, rerr := s.cfg.Backend.Replayed(r.Context(), in, key); rerr == nil && ok {
				s.replayed(w, r, in, run, msg)
				return
			}
		}
		s.fail(w, r, err)
		return
	}
	run, replayed, err := s.cfg.Backend.Start(r.Context(), in, key)
	if key != "" && dnsroll.ErrorCode(err) == dnsroll.EINVALID {
		s.fail(w, r, fieldError("Idempotency-Key", "%v", err))
		return
	}
	if replayed {
		s.replayed(w, r, in, run, msg)
		return
	}
	s.started(w, r, in, run, err, msg, logArgs...)
}

// replayed answers a start with the rollout an earlier request with its
// Idempotency-Key started.
func (s *Server) replayed(w http.ResponseWriter, r *http.Request, in workflows.RolloutInput, run rollouts.Run, msg string) {
	s.log.Info(msg+" earlier, with this Idempotency-Key", "request_id", RequestID(r.Context()), "fleet", in.Fleet, "id", RolloutID(run))
	s.answerStarted(w, http.StatusOK, in, run)
}

// started answers a start of run with input in: 201 with it, 409 naming
// the fleet's running rollout, or err's status; logArgs go into the log
// line.
func (s *Server) started(w http.ResponseWriter, r *http.Request, in workflows.RolloutInput, run rollouts.Run, err error, msg string, logArgs ...any) {
	if dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
		s.fail(w, r, s.conflict(r, err, rollouts.Run{WorkflowID: workflows.WorkflowID(in.Fleet)}))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info(msg, append([]any{"request_id", RequestID(r.Context()), "fleet", in.Fleet, "id", RolloutID(run)}, logArgs...)...)
	s.answerStarted(w, http.StatusCreated, in, run)
}

// answerStarted writes the Started body of run, begun with input in.
func (s *Server) answerStarted(w http.ResponseWriter, code int, in workflows.RolloutInput, run rollouts.Run) {
	links := s.links(run)
	w.Header().Set("Location", links.Self)
	writeJSON(w, code, Started{ID: RolloutID(run), WorkflowID: run.WorkflowID, RunID: run.RunID, Fleet: in.Fleet, Revision: in.Revision, Links: links})
}
