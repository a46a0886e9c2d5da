package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/registrar"
)

// LoadBalancerReplaceWorkflow replaces a fleet's load balancers blue-green
// through the glue records: it creates <lb>-next for each load balancer,
// checks DNS through each, moves the glue at the registrar, checks that the
// parent zone serves the new glue, drains the old load balancers (TTLs,
// then quiet counters), deletes them and gives the new ones their names.
// Until the old ones are being deleted, abort and rollback put the glue
// back and delete the new ones (the undo stack).

// Signals of a load balancer replacement, besides abort and rollback.
const (
	// SignalGlueUpdated says the operator changed the glue at the
	// registrar (manual registrar). The workflow checks the parent before
	// believing it.
	SignalGlueUpdated = "glue-updated"
	// SignalForceDrain ends the drain now; it needs a reason, recorded.
	SignalForceDrain = "force-drain"
)

// Undo actions of a load balancer replacement, in the order pushed.
const (
	UndoDeleteNewLoadBalancers = "DeleteNewLoadBalancers"
	UndoRestoreGlue            = "RestoreGlue"
)

// Phases of a load balancer replacement that a rollout has not.
const (
	PhaseCheckingParent Phase = "checking-parent"
	PhaseUpdatingGlue   Phase = "updating-glue"
	PhaseAwaitingGlue   Phase = "awaiting-glue"
	PhaseDraining       Phase = "draining"
	PhaseDeletingOldLBs Phase = "deleting-old-load-balancers"
	PhaseRestoringGlue  Phase = "restoring-glue"
	PhaseVerifyNewLBs   Phase = "verifying-new-load-balancers"
	PhaseCreatingNewLBs Phase = "creating-new-load-balancers"
)

// ttlFloor is the shortest wait after a glue change: BIND caches a
// delegation for at least 10 s whatever its TTL (docs/delegation-lab.md).
const ttlFloor = 10 * time.Second

// LBReplaceWorkflowID is the ID of a fleet's load balancer replacement:
// one at a time per fleet.
func LBReplaceWorkflowID(fleet string) string { return "lbreplace-" + fleet }

// LBReplaceInput starts a load balancer replacement.
type LBReplaceInput struct {
	Fleet string `json:"fleet"`
	// Domain is the delegated domain whose glue names the load balancers.
	Domain string `json:"domain"`
	// Parent are the parent zone's servers (address:port) that the delegation
	// is checked at.
	Parent []string `json:"parent"`
	// Registrar is "manual" (the default) or "route53domains", which the
	// worker configures (docs/load-balancers.md).
	Registrar   string `json:"registrar,omitempty"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// GlueWait bounds the wait for the parent to serve the new glue
	// (default 72h); past it the replacement is aborted.
	GlueWait config.Duration `json:"glue_wait,omitempty"`
	Drain    DrainPolicy     `json:"drain"`
}

// DrainPolicy says when the old load balancers count as drained.
type DrainPolicy struct {
	// QuietQPS is the rate below which a load balancer is quiet (default 1).
	QuietQPS float64 `json:"quiet_qps,omitempty"`
	// Quiet is how long every old load balancer must stay quiet (default 1m).
	Quiet config.Duration `json:"quiet,omitempty"`
	// MaxWait ends a drain whose counters never fall quiet, once the TTLs
	// have passed (default 24h); recorded as a warning.
	MaxWait config.Duration `json:"max_wait,omitempty"`
	// Poll is how often counters and the parent are read (default 5s).
	Poll config.Duration `json:"poll,omitempty"`
}

func (p DrainPolicy) withDefaults() DrainPolicy {
	if p.QuietQPS <= 0 {
		p.QuietQPS = 1
	}
	if p.Quiet <= 0 {
		p.Quiet = config.Duration(time.Minute)
	}
	if p.MaxWait <= 0 {
		p.MaxWait = config.Duration(24 * time.Hour)
	}
	if p.Poll <= 0 {
		p.Poll = config.Duration(5 * time.Second)
	}
	return p
}

// LBReplaceStatus is what the status query of a replacement returns.
type LBReplaceStatus struct {
	Fleet  string `json:"fleet"`
	Domain string `json:"domain"`
	Run
	// Old are the load balancers being replaced; New their replacements
	// (named <lb>-next until renamed).
	Old  []config.LoadBalancer `json:"old"`
	New  []config.LoadBalancer `json:"new,omitempty"`
	Glue GlueStatus            `json:"glue"`
	// ApproveBy is the approval gate's deadline (rollout.approval:
	// manual), while it waits.
	ApproveBy time.Time `json:"approve_by,omitzero"`
	// ApprovalGate is 1 once the replacement's one approval gate has
	// opened (Status.ApprovalGate).
	ApprovalGate int `json:"approval_gate,omitempty"`
	// Drain is set once the drain has begun.
	Drain *DrainStatus `json:"drain,omitempty"`
	// Zone is set when the zone's own records name old load balancers
	// (lbzone.go).
	Zone *ZoneRecordsStatus `json:"zone,omitempty"`
	// NoWayBack, once set, says why abort and rollback are refused: the
	// old load balancers are being deleted.
	NoWayBack string   `json:"no_way_back,omitempty"`
	Failure   string   `json:"failure,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Events    []Event  `json:"events,omitempty"`
}

// GlueStatus is the delegation before and after, and what the operator
// must do when the registrar is manual.
type GlueStatus struct {
	Old []registrar.NameServer `json:"old"`
	New []registrar.NameServer `json:"new,omitempty"`
	// Instructions are the manual registrar's, while it waits for them.
	Instructions string `json:"instructions,omitempty"`
	// ServedSince is when the parent was first seen serving New.
	ServedSince time.Time `json:"served_since,omitzero"`
}

// DrainStatus is how the drain of the old load balancers stands.
type DrainStatus struct {
	// TTL is the longest of the parent's NS and glue TTLs and the zone's
	// own NS TTL, each as read before the glue moved or after, whichever
	// is longer, its old address records' TTL (Zone) and ttlFloor; Until
	// is ServedSince plus TTL.
	TTL   config.Duration `json:"ttl"`
	Until time.Time       `json:"until"`
	// QPS is the queries per second still arriving at each old load
	// balancer, by name; absent for drivers without counters.
	QPS        map[string]float64 `json:"qps"`
	QuietSince time.Time          `json:"quiet_since,omitzero"`
	// Uncounted are the old load balancers whose driver keeps no counter
	// (nginx): for them only the TTL counts.
	Uncounted []string `json:"uncounted,omitempty"`
	// TimeLeft is the least time still to wait (TTL and quiet period).
	TimeLeft config.Duration `json:"time_left"`
	GiveUpAt time.Time       `json:"give_up_at"`
	// Ended says how the drain ended: "drained", "max-wait" or "forced".
	Ended  string `json:"ended,omitempty"`
	Forced string `json:"forced,omitempty"`
}

// lbReplace is one replacement's state.
type lbReplace struct {
	in    LBReplaceInput
	fleet *config.Fleet
	st    LBReplaceStatus
	undos undoStack
	// created are the new load balancers' servers, by old name.
	created map[string]dnsroll.Server
	stopping
	cancel workflow.CancelFunc
	// glueSignals carries glue-updated signals to the waits for them.
	glueSignals workflow.Channel
	// siblingGlue: see versionSiblingGlue.
	siblingGlue bool
	// dropOldAddrs: see versionGlueDropsOldAddrs.
	dropOldAddrs bool
	// force is the force-drain request, once sent during the drain.
	force      *SignalInput
	forceWaker workflow.Channel
	// setGlue records that new glue was asked for, so that a stop
	// restores the old.
	setGlue bool
	// servedTTL is the longest TTL the parent and zone gave with the new
	// glue: resolvers that took it hold it that long (restoreGlue).
	servedTTL time.Duration
	// approved is set by the approve signal while awaiting approval.
	approved bool
	// zoneRevision is the zone-revision signal not yet taken; zoneRollout
	// is the zone's rollout while it runs, which a stop is sent on to.
	zoneRevision *SignalInput
	zoneRollout  workflow.ChildWorkflowFuture
	// undoing is set once the undo has begun: a stop then changes nothing.
	undoing bool
	// notes sends the webhook notifications.
	notes notifier
}

// CheckGlueAddresses refuses a fleet whose load balancers glue cannot tell
// apart: a glue record is an IP address, with no port, so each load
// balancer a replacement moves needs an IP address of its own. Two on one
// address (the process lab's 127.0.0.1:5301 and :5302) would get new load
// balancers on one address and port 53 too, the second never able to
// start. The API runs it too, so that a refusal is a 400 naming the field.
func CheckGlueAddresses(fleet *config.Fleet) error {
	seen := map[netip.Addr]int{}
	for i, b := range fleet.LoadBalancers {
		field := fmt.Sprintf("load_balancers[%d].address", i)
		ap, err := netip.ParseAddrPort(b.Address)
		if err != nil {
			return &InputError{field, fmt.Sprintf("%s is not an IP address and port; glue names IP addresses, so a load balancer replaced through the glue needs one", b.Address)}
		}
		if j, ok := seen[ap.Addr()]; ok {
			return &InputError{field, fmt.Sprintf("%s is load_balancers[%d]'s address too; glue names addresses, not ports, so each load balancer replaced through the glue needs an address of its own, answering on port 53", ap.Addr(), j)}
		}
		seen[ap.Addr()] = i
	}
	return nil
}

// LoadBalancerReplaceWorkflow: see the comment at the top of this file.
func LoadBalancerReplaceWorkflow(ctx workflow.Context, in LBReplaceInput) (LBReplaceStatus, error) {
	r := &lbReplace{in: in, created: map[string]dnsroll.Server{}}
	r.in.Drain = in.Drain.withDefaults()
	if r.in.GlueWait <= 0 {
		r.in.GlueWait = config.Duration(72 * time.Hour)
	}
	r.st = LBReplaceStatus{Fleet: in.Fleet, Domain: in.Domain, Run: Run{StartedAt: workflow.Now(ctx), Steps: []*Step{}}}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (LBReplaceStatus, error) { return r.st, nil }); err != nil {
		return r.st, err
	}
	r.glueSignals = workflow.NewBufferedChannel(ctx, 16)
	r.forceWaker = workflow.NewBufferedChannel(ctx, 1)
	fwd, cancel := workflow.WithCancel(ctx)
	r.cancel = cancel
	workflow.Go(ctx, r.listen)

	hold, err := holdFleet(ctx, in.Fleet)
	if err == nil {
		err = r.forward(fwd)
	}
	p, failure := r.conclude(ctx, err)
	hold.release(ctx)
	r.st.Phase, r.st.EndedAt = p, workflow.Now(ctx)
	r.notify(ctx, terminalEvents[p])
	r.notes.drain(ctx)
	if failure == "" {
		return r.st, nil
	}
	// The failure carries the status, so that its readers (the API) have
	// it from Temporal's record, with no worker to answer a query.
	return r.st, temporal.NewNonRetryableApplicationError(r.st.Failure, failure, nil, r.st)
}

// conclude decides how a replacement ends once its forward steps have
// returned err: undone (the undo stack) unless the old load balancers were
// already being deleted. It returns the phase and, when the run fails, the
// failure's error type.
func (r *lbReplace) conclude(ctx workflow.Context, err error) (Phase, string) {
	// What stopped the forward steps: a signal that comes while they are
	// undone does not make a failure an abort.
	stop := r.stop
	if r.failedFirst != nil {
		// A step had failed when the stop came: that ends the run.
		stop, err = nil, r.failedFirst
	}
	if err == nil && stop == nil {
		return PhaseSucceeded, ""
	}
	var timedOut *approvalTimeout
	switch {
	case stop != nil:
		r.st.Failure = stop.signal + stop.in.describe()
	case errors.As(err, &timedOut):
		r.st.Failure = "aborted: " + timedOut.Error() + " (rollout.approval_timeout)"
	default:
		r.st.Failure = errText(err)
	}
	if r.committed {
		// Past the point of no return there is nothing to undo: the
		// operator is told what to finish.
		switch {
		case r.st.NoWayBack == lbNoWayBack:
			r.st.Warnings = append(r.st.Warnings, r.finishByHand()...)
		case r.st.Zone != nil:
			r.st.Warnings = append(r.st.Warnings, r.bothSetsServe())
		}
		return PhaseFailed, "ReplaceFailed"
	}
	r.st.Phase, r.undoing = PhaseRollingBack, true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if uerr := r.undos.run(dctx); uerr != nil {
		r.st.Failure += "; cleanup: " + errText(uerr)
		return PhaseCleanupFailed, "CleanupFailed"
	}
	switch {
	case stop != nil && stop.signal == SignalAbort, timedOut != nil:
		return PhaseAborted, ""
	case stop != nil:
		return PhaseRolledBack, ""
	}
	return PhaseFailed, failureType(err, "ReplaceFailed")
}

// notify queues event for every webhook that wants it.
func (r *lbReplace) notify(ctx workflow.Context, event string) {
	in := activities.NotifyInput{Fleet: r.st.Fleet, Phase: string(r.st.Phase), Reason: r.st.Failure}
	if event == config.EventAwaitingApproval {
		in.ApprovalGate = r.st.ApprovalGate
	}
	r.notes.send(ctx, event, in)
}

// awaitApproval holds the replacement before the glue moves until an
// operator approves, when the fleet's rollout.approval is manual; past
// rollout.approval_timeout it is aborted.
func (r *lbReplace) awaitApproval(ctx workflow.Context) error {
	rc := r.fleet.Rollout
	if !rc.Gated() {
		return nil
	}
	r.st.ApproveBy = workflow.Now(ctx).Add(rc.ApprovalTimeout.D())
	if gatesNumbered(ctx) {
		r.st.ApprovalGate = 1
	}
	r.st.Phase = PhaseAwaitingApproval
	r.notify(ctx, config.EventAwaitingApproval)
	ok, err := workflow.AwaitWithTimeout(ctx, rc.ApprovalTimeout.D(), func() bool { return r.approved })
	r.st.ApproveBy = time.Time{}
	switch {
	case err != nil:
		return err
	case !ok:
		r.event(ctx, "approval timed out after "+rc.ApprovalTimeout.D().String())
		return &approvalTimeout{after: rc.ApprovalTimeout.D()}
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var se *stepError
	if errors.As(err, &se) {
		// The step's own word, where it says more (a bake's round).
		return se.step.label() + ": " + cmp.Or(se.step.Error, reason(se.err))
	}
	return reason(err)
}

func (r *lbReplace) forward(ctx workflow.Context) error {
	// Version 1 added the approval gate and webhooks.
	controls := workflow.GetVersion(ctx, "lbreplace-controls", workflow.DefaultVersion, 1) == 1
	r.st.Phase = PhasePlanning
	if err := r.st.exec(ctx, "LoadFleet", r.in.Fleet, planOptions, a.LoadFleet, r.in.Fleet, &r.fleet); err != nil {
		return err
	}
	if controls {
		r.notes.start(ctx, r.fleet.Notifications.Webhooks, r.event)
		r.notify(ctx, config.EventStarted)
	}
	if r.in.Domain == "" || len(r.in.Parent) == 0 {
		return temporal.NewNonRetryableApplicationError("domain and parent are required: the delegated domain and its parent zone's servers (host:port)", activities.ErrInvalid, nil)
	}
	if len(r.fleet.LoadBalancers) == 0 {
		return temporal.NewNonRetryableApplicationError("fleet "+r.fleet.Name+" has no load_balancers to replace", activities.ErrInvalid, nil)
	}
	if workflow.GetVersion(ctx, "lbreplace-glue-addresses", workflow.DefaultVersion, 1) == 1 {
		if err := CheckGlueAddresses(r.fleet); err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrInvalid, nil)
		}
	}
	r.st.Old = slices.Clone(r.fleet.LoadBalancers)
	if workflow.GetVersion(ctx, "lbreplace-offers", workflow.DefaultVersion, 1) == 1 {
		var res activities.StepResult
		in := activities.CheckOffersInput{Fleet: r.fleet}
		if err := r.st.exec(ctx, "CheckOffers", "", r.opts(r.fleet.Steps.ProbeTimeout), a.CheckNewLoadBalancerOffers, in, &res); err != nil {
			return err
		}
		if res.Note != "" {
			// Old load balancers the replacement will not delete: the
			// operator takes them down, and is told from the start.
			r.st.Warnings = append(r.st.Warnings, res.Note)
			r.event(ctx, res.Note)
		}
	}

	r.st.Phase = PhaseCheckingParent
	var parent activities.ParentResult
	// The zone is asked through the old load balancers too, the first
	// that answers: its own addresses of its name servers, which the
	// replacement does not move.
	check := r.parentInput("")
	check.AddrsFrom = r.oldAddresses()
	check.Registrar = r.in.Registrar // checked here, before anything is created
	if err := r.st.exec(ctx, "CheckParent", r.in.Domain, r.opts(r.fleet.Steps.ProbeTimeout), a.CheckParent, check, &parent); err != nil {
		return err
	}
	r.siblingGlue = workflow.GetVersion(ctx, versionSiblingGlue, workflow.DefaultVersion, 1) == 1
	r.st.Glue.Old = r.delegation(parent.NS)
	if n := r.gluedLBs(parent.NS); n == 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the parent's glue for %s (%s) names none of the load balancers' addresses; check domain and load_balancers[].address", registrar.Fqdn(r.in.Domain), registrar.Text(parent.NS)), activities.ErrInvalid, nil)
	}
	if lb, ns := r.siblingGlued(parent.NS); ns != "" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("load balancer %s (%s) is reached only as %s, a name server outside %s whose address the parent gives from its own zone: "+
			"no registrar moves that glue, so the replacement could not move it, and would delete %s while resolvers still ask it; make %s a name server of %s, or replace it by hand",
			lb.Name, lb.Address, ns, registrar.Fqdn(r.in.Domain), lb.Name, lb.Name, registrar.Fqdn(r.in.Domain)), activities.ErrInvalid, nil)
	}
	if parent.ZoneUnasked != "" {
		r.event(ctx, "the zone's own addresses of its name servers could not be asked of the old load balancers ("+parent.ZoneUnasked+"); "+
			"if the zone names them itself, roll out a revision naming the new addresses as soon as the replacement ends (docs/load-balancers.md: the zone's own address records)")
	}
	if held := r.oldAddrsInZone(parent.ZoneAddrs); len(held) > 0 && workflow.GetVersion(ctx, versionZoneRollout, workflow.DefaultVersion, 1) == 1 {
		r.st.Zone = &ZoneRecordsStatus{Records: held, TTL: config.Duration(parent.ZoneAddrTTL)}
		r.event(ctx, fmt.Sprintf("the zone %s itself gives %s, old load balancers' addresses (TTL up to %s): once the new load balancers serve, "+
			"the replacement waits for a revision naming their addresses (%s) and rolls it out before it moves the glue",
			registrar.Fqdn(r.in.Domain), strings.Join(held, ", "), parent.ZoneAddrTTL, SignalZoneRevision))
	} else if len(held) > 0 {
		r.event(ctx, fmt.Sprintf("the zone %s itself gives %s, old load balancers' addresses (TTL up to %s): the replacement moves the glue only, "+
			"so resolvers that take the zone's records would ask the old addresses once they are deleted; roll out a revision naming the new addresses as soon as the replacement ends (docs/load-balancers.md: the zone's own address records)",
			registrar.Fqdn(r.in.Domain), strings.Join(held, ", "), parent.ZoneAddrTTL))
	}

	r.st.Phase = PhaseCreatingNewLBs
	r.undos.push(UndoDeleteNewLoadBalancers, r.deleteNew)
	var calls []*call
	for _, lb := range r.st.Old {
		calls = append(calls, r.st.start(ctx, "CreateLoadBalancer", dnsroll.NextLabel(lb.Name), r.opts(r.fleet.Steps.ProvisionTimeout), a.CreateLoadBalancer, activities.LoadBalancerInput{Fleet: r.fleet, LB: lb}))
	}
	if err := waitEach(ctx, calls, func(i int, out activities.NewLoadBalancer) {
		r.created[r.st.Old[i].Name] = out.Server
		r.st.New = append(r.st.New, out.LB)
	}); err != nil {
		return err
	}

	r.st.Phase = PhaseVerifyNewLBs
	calls = nil
	for _, lb := range r.st.New {
		calls = append(calls, r.st.start(ctx, "VerifyLoadBalancer", lb.Name, r.opts(r.fleet.Steps.ProbeTimeout), a.VerifyLoadBalancer, activities.LoadBalancerInput{Fleet: r.fleet, LB: lb}))
	}
	if err := waitAll(ctx, calls); err != nil {
		return err
	}

	if controls {
		if err := r.awaitApproval(ctx); err != nil {
			return err
		}
	}
	if r.st.Zone != nil {
		if err := r.rollOutZone(ctx); err != nil {
			return err
		}
	}
	r.dropOldAddrs = workflow.GetVersion(ctx, versionGlueDropsOldAddrs, workflow.DefaultVersion, 1) == 1
	var dropped []string
	r.st.Glue.New, dropped = r.newGlue(r.delegation(parent.NS))
	if len(dropped) > 0 {
		msg := fmt.Sprintf("the new glue leaves out %s: addresses of the other family beside an old load balancer's, taken for that machine's, which goes after the drain; "+
			"add the new load balancers' at the registrar once they serve them, if you want them", strings.Join(dropped, ", "))
		r.st.Warnings = append(r.st.Warnings, msg)
		r.event(ctx, msg)
	}
	r.st.Phase = PhaseUpdatingGlue
	r.undos.push(UndoRestoreGlue, r.restoreGlue)
	r.setGlue = true
	served, err := r.moveGlue(ctx, r.st.Glue.New, PhaseAwaitingGlue)
	if err != nil {
		return err
	}
	r.st.Glue.ServedSince = workflow.Now(ctx)
	r.servedTTL = max(served.NSTTL, served.GlueTTL, served.ZoneNSTTL)
	r.event(ctx, "the parent serves the new glue: "+registrar.Text(r.st.Glue.New))
	if stale := staleZoneAddrs(served.ZoneAddrs, r.st.Glue.Old, r.st.Glue.New); len(stale) > 0 {
		msg := fmt.Sprintf("the zone %s still gives %s (TTL up to %s), which the new glue does not name: resolvers take the zone's own records over the glue, "+
			"and ask those addresses once the old load balancers are deleted; roll out a revision naming the new glue's addresses as soon as this replacement ends (docs/load-balancers.md: the zone's own address records)",
			registrar.Fqdn(r.in.Domain), strings.Join(stale, ", "), served.ZoneAddrTTL)
		r.st.Warnings = append(r.st.Warnings, msg)
		r.event(ctx, msg)
	}
	r.notify(ctx, config.EventSwitched)

	if err := r.drain(ctx, parent, served); err != nil {
		return err
	}

	// The point of no return: the old load balancers go. Runs from before
	// versionNoCommitAfterStop went on whatever a stop said.
	if workflow.GetVersion(ctx, versionNoCommitAfterStop, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		r.committed = true
	} else if err := r.commit(ctx); err != nil {
		return err
	}
	r.undos = nil
	r.st.NoWayBack = lbNoWayBack
	r.st.Phase = PhaseDeletingOldLBs
	calls = nil
	for _, lb := range r.st.Old {
		calls = append(calls, r.st.start(ctx, "DeleteLoadBalancer", lb.Name, r.opts(r.fleet.Steps.CreateTimeout), a.DeleteLoadBalancer, activities.DeleteLoadBalancerInput{Fleet: r.fleet, Label: lb.Name, Address: lb.Address}))
	}
	if err := waitAll(ctx, calls); err != nil {
		return err
	}

	r.st.Phase = PhaseRenaming
	calls = nil
	for _, lb := range r.st.Old {
		calls = append(calls, r.st.start(ctx, "RenameServer", dnsroll.NextLabel(lb.Name), r.opts(r.fleet.Steps.CreateTimeout), a.RenameServer, activities.RenameInput{Tag: r.fleet.Tag(), Server: r.created[lb.Name], To: lb.Name}))
	}
	if err := waitAll(ctx, calls); err != nil {
		return err
	}
	for i := range r.st.New {
		r.st.New[i].Name = r.st.Old[i].Name
	}
	r.st.Warnings = append(r.st.Warnings, r.configWarnings()...)
	return nil
}

// configWarnings say what the fleet config must give each load balancer
// once the glue names the new ones and the old ones are being deleted.
func (r *lbReplace) configWarnings() []string {
	var out []string
	for i, next := range r.st.New {
		old := r.st.Old[i]
		out = append(out, fmt.Sprintf("update the fleet config: load_balancers %s address is now %s (was %s)%s", old.Name, next.Address, old.Address, sshHostChange(old, next)))
	}
	return out
}

// finishByHand is what the operator must do when a replacement fails
// while it deletes the old load balancers or renames the new ones: the
// parent serves the new glue, so the fleet config must name the new
// load balancers as after a success, and what the replacement did not
// finish is done in Linode's console.
func (r *lbReplace) finishByHand() []string {
	var old, next []string
	for i, lb := range r.st.Old {
		old = append(old, lb.Name+" "+lb.Address)
		next = append(next, r.st.New[i].Name)
	}
	return append(r.configWarnings(), fmt.Sprintf("the parent serves the new glue and the old load balancers were being deleted: delete those still running (%s) "+
		"and give each new one still labelled <lb>-next (%s) its load balancer's label, in Linode's console (docs/load-balancers.md)", strings.Join(old, ", "), strings.Join(next, ", ")))
}

// sshHostChange is what the fleet config's ssh_host of old becomes for
// its replacement next, or "" when it stays unset: a replacement at an
// IPv6 address is reached over SSH at its IPv4 address, and an old
// ssh_host names the old machine.
func sshHostChange(old, next config.LoadBalancer) string {
	switch {
	case next.SSHHost == old.SSHHost:
		return ""
	case next.SSHHost == "":
		return fmt.Sprintf(", without ssh_host (was %s)", old.SSHHost)
	case old.SSHHost == "":
		return ", ssh_host " + next.SSHHost
	}
	return fmt.Sprintf(", ssh_host %s (was %s)", next.SSHHost, old.SSHHost)
}

// moveGlue asks the registrar for ns and returns the parent's referral
// once every parent server serves it, in phase waiting while it waits for
// the operator. A manual registrar's instructions
// go into the status, and each glue-updated signal is checked at the
// parent: one sent too early is refused, and the parent checked again
// until glue_wait.
func (r *lbReplace) moveGlue(ctx workflow.Context, ns []registrar.NameServer, waiting Phase) (activities.ParentResult, error) {
	var set activities.SetGlueResult
	in := activities.SetGlueInput{Registrar: r.in.Registrar, Domain: r.in.Domain, Parent: r.in.Parent, NS: ns}
	if err := r.st.exec(ctx, "SetGlue", r.in.Domain, r.glueOpts(ctx, r.fleet.Steps.SwitchTimeout, waiting), a.SetGlue, in, &set); err != nil {
		return activities.ParentResult{}, err
	}
	waitStart := workflow.Now(ctx)
	giveUp := waitStart.Add(r.in.GlueWait.D())
	r.st.Glue.Instructions = set.Instructions
	if set.Instructions != "" {
		// The person is told by when: past it the forward steps are
		// undone, and an undo stops keeping the new load balancers.
		then := "the replacement is undone"
		if waiting == PhaseRestoringGlue {
			then = "the undo stops, cleanup-failed, and keeps the new load balancers"
		}
		r.st.Glue.Instructions += fmt.Sprintf("\nif the parent does not serve it by %s (glue_wait), %s", giveUp.UTC().Format(time.RFC3339), then)
	}
	defer func() { r.st.Glue.Instructions = "" }()
	// The zone is asked at a new load balancer when moving to it; when
	// putting the old glue back, at the first old one that answers: a
	// dead lb1 may be why the replacement was stopped.
	check := r.parentInput("")
	if len(r.st.New) > 0 && registrar.Equal(ns, r.st.Glue.New) {
		check.Child = r.st.New[0].Address
	} else {
		check.AddrsFrom = r.oldAddresses()
	}
	spaced := workflow.GetVersion(ctx, versionLongWaitsPollLess, workflow.DefaultVersion, 1) == 1
	// polling is set once a glue-updated was refused (versionRecheckAfterGlueUpdated).
	polling := false
	for {
		signalled := false
		if set.Instructions != "" {
			r.st.Phase = waiting
			wait := giveUp.Sub(workflow.Now(ctx))
			if polling {
				wait = min(wait, r.gluePause(ctx, spaced, waitStart, giveUp))
			}
			in, ok, err := r.waitGlueSignal(ctx, wait)
			switch {
			case err != nil:
				return activities.ParentResult{}, err
			case ok:
				signalled = true
				r.event(ctx, SignalGlueUpdated+" received"+in.describe()+"; checking the parent")
			case !polling || !workflow.Now(ctx).Before(giveUp):
				return activities.ParentResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the parent did not serve the glue within %s (glue_wait)", r.in.GlueWait.D()), "GlueTimeout", nil)
			}
		} else if err := workflow.Sleep(ctx, r.gluePause(ctx, spaced, waitStart, giveUp)); err != nil {
			return activities.ParentResult{}, err
		}
		var got activities.ParentResult
		err := r.st.exec(ctx, "CheckParent", r.in.Domain, r.glueOpts(ctx, r.fleet.Steps.ProbeTimeout, waiting), a.CheckParent, check, &got)
		switch {
		case temporal.IsCanceledError(err):
			return activities.ParentResult{}, err
		case err == nil && registrar.Equal(r.delegation(got.NS), ns):
			return got, nil
		case signalled && !polling && workflow.GetVersion(ctx, versionRecheckAfterGlueUpdated, workflow.DefaultVersion, 1) == 1:
			// The person made the change: the registry may take a while
			// to publish it (its servers disagree meanwhile), and nothing
			// asks them to signal again.
			polling = true
		}
		switch {
		case err != nil:
			r.event(ctx, "the parent could not be checked: "+errText(err))
		case signalled && polling:
			r.event(ctx, fmt.Sprintf("%s refused: the parent still serves %s, not %s; checking it again until it does, or until glue_wait ends at %s",
				SignalGlueUpdated, registrar.Text(got.NS), registrar.Text(ns), giveUp.UTC().Format(time.RFC3339)))
		case signalled:
			r.event(ctx, fmt.Sprintf("%s refused: the parent still serves %s, not %s; waiting", SignalGlueUpdated, registrar.Text(got.NS), registrar.Text(ns)))
		}
		if set.Instructions == "" && !workflow.Now(ctx).Before(giveUp) {
			return activities.ParentResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the parent did not serve the glue within %s (glue_wait)", r.in.GlueWait.D()), "GlueTimeout", nil)
		}
	}
}

// versionRecheckAfterGlueUpdated marks replacements that, once a
// glue-updated came before the parent served the glue, check the parent
// again on their own until glue_wait. Runs from before it waited for
// another signal.
const versionRecheckAfterGlueUpdated = "lbreplace-recheck-after-glue-updated"

// versionLongWaitsPollLess marks the change that spaced out the readings
// of long waits (longWaitPause); replacements started before it poll
// every drain.poll to the end, as their histories say.
const versionLongWaitsPollLess = "long-waits-poll-less"

// maxLongPause is the longest pause between two readings of a long wait:
// a wait of days then sees its end within the hour.
const maxLongPause = time.Hour

// maxDelegationTTL is the longest a resolver keeps a delegation, whatever
// its TTL: BIND's max-cache-ttl is 7 days by default (Unbound's and
// PowerDNS's, 1 day). A drain waits no longer for a TTL.
const maxDelegationTTL = 7 * 24 * time.Hour

// MaxReplacementWait bounds glue_wait and drain.max_wait, so that the
// readings of a replacement's longest waits fit in its workflow history.
const MaxReplacementWait = 14 * 24 * time.Hour

// longWaitPause is the pause before the next reading in a wait that has
// gone on for waited: poll at first, then a twentieth of the time waited,
// up to maxLongPause. A wait of days then reads a few hundred times, not
// tens of thousands (every reading adds its events to the workflow's
// history, which Temporal caps at 51,200), and sees its end within 5% of
// the time waited, or an hour.
func longWaitPause(poll, waited time.Duration) time.Duration {
	return max(poll, min(waited/20, maxLongPause))
}

// gluePause is the pause before the next check of the parent, which has
// not yet served the glue: the poll, or longWaitPause from when the wait
// began, but not past glue_wait.
func (r *lbReplace) gluePause(ctx workflow.Context, spaced bool, waitStart, giveUp time.Time) time.Duration {
	poll := r.in.Drain.Poll.D()
	if !spaced {
		return poll
	}
	now := workflow.Now(ctx)
	pause := longWaitPause(poll, now.Sub(waitStart))
	if left := giveUp.Sub(now); left < pause {
		pause = max(left, poll)
	}
	return pause
}

// drainPause is the pause before the next reading of the old load
// balancers' counters, at now, with left to go at the least. Readings
// before the quiet period that ends with the TTLs cannot end the drain, so
// they are spaced by longWaitPause from the drain's start and stop short
// of that period. From then on they are spaced from its start, and come
// no later than when the quiet period under way (left) or max_wait ends.
func drainPause(p DrainPolicy, d *DrainStatus, start, now time.Time, left time.Duration) time.Duration {
	poll := p.Poll.D()
	counted := d.Until.Add(-p.Quiet.D() - 2*poll)
	if now.Before(counted) {
		return max(poll, min(longWaitPause(poll, now.Sub(start)), counted.Sub(now)))
	}
	pause := longWaitPause(poll, now.Sub(later(start, counted)))
	if !d.QuietSince.IsZero() {
		pause = min(pause, left)
	}
	if giveUp := d.GiveUpAt.Sub(now); giveUp > 0 {
		pause = min(pause, giveUp)
	}
	return max(pause, poll)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// glueSignal is a glue-updated signal as the waits for it get it: whether
// it came after an abort or rollback, which one sent before cannot
// answer for (confirmOldGlue).
type glueSignal struct {
	In        SignalInput
	AfterStop bool
}

// waitGlueSignal waits up to d for a glue-updated signal; ok is false when
// d passed without one.
func (r *lbReplace) waitGlueSignal(ctx workflow.Context, d time.Duration) (in SignalInput, ok bool, err error) {
	if d <= 0 {
		return in, false, nil
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, d)
	sel := workflow.NewSelector(ctx)
	var g glueSignal
	sel.AddReceive(r.glueSignals, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &g)
		in, ok = g.In, true
	})
	sel.AddFuture(timer, func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.Select(ctx)
	if ok && ctx.Err() != nil && workflow.GetVersion(ctx, versionGlueSignalKeptForUndo, workflow.DefaultVersion, 1) == 1 {
		// A stop cancelled this wait as the signal came with it: the
		// signal is the undo's word on the registrar (confirmOldGlue).
		r.glueSignals.SendAsync(g)
		return in, false, temporal.NewCanceledError()
	}
	if ok {
		return in, true, nil
	}
	return in, false, err
}

// versionGlueSignalKeptForUndo marks replacements whose wait for the new
// glue, cancelled by a stop that came with a glue-updated, leaves the
// signal to the undo. Runs from before took it there, and their undo
// waited glue_wait for another.
const versionGlueSignalKeptForUndo = "lbreplace-glue-signal-kept-for-undo"

// versionDrainCachedTTLs marks replacements whose drain waits the TTLs
// read before the glue moved too. Runs from before waited only those
// served after it, short when a zone revision had lowered the NS TTL.
const versionDrainCachedTTLs = "lbreplace-drain-cached-ttls"

// drain waits until the TTLs have passed since the parent began serving
// the new glue and every old load balancer's counter has stayed quiet for
// the quiet period; or until force-drain, or max_wait once the TTLs passed.
// The TTLs are the longer of those served with the new glue and those
// read before it moved (cached): resolvers hold what they cached for the
// TTL it had then, whatever a zone revision lowered it to since.
func (r *lbReplace) drain(ctx workflow.Context, cached, served activities.ParentResult) error {
	spaced := workflow.GetVersion(ctx, versionLongWaitsPollLess, workflow.DefaultVersion, 1) == 1
	if workflow.GetVersion(ctx, versionDrainCachedTTLs, workflow.DefaultVersion, 1) == 1 {
		served.NSTTL = max(served.NSTTL, cached.NSTTL)
		served.GlueTTL = max(served.GlueTTL, cached.GlueTTL)
		served.ZoneNSTTL = max(served.ZoneNSTTL, cached.ZoneNSTTL)
	}
	ttl := max(served.NSTTL, served.GlueTTL, served.ZoneNSTTL, ttlFloor)
	if r.st.Zone != nil {
		// Resolvers may hold the old records, taken over the glue, as
		// long as this.
		ttl = max(ttl, r.st.Zone.TTL.D())
	}
	capped := ""
	if spaced && ttl > maxDelegationTTL {
		ttl, capped = maxDelegationTTL, ", capped at 7 days: no resolver keeps a delegation longer"
	}
	p := r.in.Drain
	start := workflow.Now(ctx)
	d := &DrainStatus{TTL: config.Duration(ttl), Until: r.st.Glue.ServedSince.Add(ttl), QPS: map[string]float64{}, GiveUpAt: start.Add(p.MaxWait.D())}
	r.st.Drain = d
	r.st.Phase = PhaseDraining
	records := ""
	if r.st.Zone != nil {
		records = ", the zone's old address records " + r.st.Zone.TTL.D().String()
	}
	r.event(ctx, fmt.Sprintf("draining the old load balancers: TTL %s (parent NS %s, glue %s, zone NS %s%s, floor %s%s), then %s below %g queries/s", ttl, served.NSTTL, served.GlueTTL, served.ZoneNSTTL, records, ttlFloor, capped, p.Quiet.D(), p.QuietQPS))
	// Replacements started before this change drained an uncounted load
	// balancer for the TTL alone.
	uncountedWaitsQuiet := workflow.GetVersion(ctx, "uncounted-drain-waits-quiet", workflow.DefaultVersion, 1) == 1
	oneStep := workflow.GetVersion(ctx, versionDrainReadsInOneStep, workflow.DefaultVersion, 1) == 1
	last := map[string]uint64{}
	var lastAt time.Time
	for {
		now := workflow.Now(ctx)
		quiet := true
		readings, err := r.readCounters(ctx, oneStep)
		if err != nil {
			return err
		}
		for i, lb := range r.st.Old {
			q := readings[i]
			if q.Error != "" {
				// A load balancer that cannot be read is not known quiet.
				quiet = false
				continue
			}
			if !q.Counted {
				if _, noted := d.QPS[lb.Name]; !noted && !slices.Contains(d.Uncounted, lb.Name) {
					d.Uncounted = append(d.Uncounted, lb.Name)
					r.event(ctx, lb.Name+" ("+lb.Driver+") keeps no query counter: its drain is the TTL, then the quiet period")
				}
				// Nothing shows when the last cached referral ran out,
				// so its quiet period starts when the TTL has passed.
				if uncountedWaitsQuiet && now.Before(d.Until) {
					quiet = false
				}
				continue
			}
			if prev, seen := last[lb.Name]; seen && now.After(lastAt) {
				rate := float64(q.Queries-min(prev, q.Queries)) / now.Sub(lastAt).Seconds()
				d.QPS[lb.Name] = rate
				if rate >= p.QuietQPS {
					quiet = false
				}
			} else {
				quiet = false // a rate needs two readings
			}
			last[lb.Name] = q.Queries
		}
		lastAt = now
		switch {
		case !quiet:
			d.QuietSince = time.Time{}
		case d.QuietSince.IsZero():
			d.QuietSince = now
		}
		left := d.Until.Sub(now)
		if d.QuietSince.IsZero() {
			left = max(left, p.Quiet.D())
		} else {
			left = max(left, d.QuietSince.Add(p.Quiet.D()).Sub(now))
		}
		d.TimeLeft = config.Duration(max(left, 0))
		switch {
		case r.force != nil:
			d.Ended, d.Forced = "forced", r.force.Reason
			r.event(ctx, "drain forced"+r.force.describe())
			return nil
		case left <= 0:
			d.Ended = "drained"
			r.event(ctx, "the old load balancers are drained")
			return nil
		case !now.Before(d.GiveUpAt) && !now.Before(d.Until):
			d.Ended = "max-wait"
			msg := fmt.Sprintf("drain ended at max_wait %s with queries still arriving at the old load balancers: %s", p.MaxWait.D(), qpsText(d.QPS))
			r.st.Warnings = append(r.st.Warnings, msg)
			r.event(ctx, msg)
			return nil
		}
		// Sleep a poll, or longer in a long drain, waking early for
		// force-drain.
		pause := p.Poll.D()
		if spaced {
			pause = drainPause(p, d, start, now, left)
		}
		tctx, cancel := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(tctx, pause)
		var terr error
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(f workflow.Future) { terr = f.Get(ctx, nil) })
		sel.AddReceive(r.forceWaker, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.Select(ctx)
		cancel()
		if terr != nil {
			return terr
		}
		if ctx.Err() != nil {
			return temporal.NewCanceledError()
		}
	}
}

// versionDrainReadsInOneStep marks drains that read every old load
// balancer's counter in one step a round (LoadBalancersQueries), so that
// their history grows by the same few events a round however many load
// balancers they drain. Runs from before it read each in a step of its
// own: some 6 events a load balancer a round, which with a dozen of them
// at the longest waits passed Temporal's cap of 51,200 events.
const versionDrainReadsInOneStep = "lbreplace-drain-reads-in-one-step"

// readCounters reads every old load balancer's counter, in the order of
// r.st.Old: in one step (oneStep), or one step each. A load balancer that
// could not be read has an Error. The error returned is a cancellation.
func (r *lbReplace) readCounters(ctx workflow.Context, oneStep bool) ([]activities.LBQueries, error) {
	opts := r.opts(r.fleet.Steps.ProbeTimeout)
	out := make([]activities.LBQueries, len(r.st.Old))
	if !oneStep {
		for i, lb := range r.st.Old {
			var q activities.QueriesResult
			err := r.st.exec(ctx, "LoadBalancerQueries", lb.Name, opts, a.LoadBalancerQueries, activities.LoadBalancerInput{Fleet: r.fleet, LB: lb}, &q)
			if temporal.IsCanceledError(err) {
				return nil, err
			}
			out[i] = activities.LBQueries{Name: lb.Name, Counted: q.Counted, Queries: q.Queries}
			if err != nil {
				out[i].Error = errText(err)
			}
		}
		return out, nil
	}
	names := make([]string, len(r.st.Old))
	for i, lb := range r.st.Old {
		names[i] = lb.Name
	}
	var res activities.LoadBalancersQueriesResult
	c := r.st.startAlone(ctx, "LoadBalancersQueries", strings.Join(names, ","), opts, a.LoadBalancersQueries, activities.LoadBalancersInput{Fleet: r.fleet, LBs: r.st.Old})
	err := c.wait(ctx, &res)
	if temporal.IsCanceledError(err) {
		return nil, err
	}
	var unread []string
	for i, name := range names {
		// Matched by name, not place: a result that does not list a load
		// balancer leaves it unread.
		j := slices.IndexFunc(res.LBs, func(q activities.LBQueries) bool { return q.Name == name })
		switch {
		case err != nil:
			out[i] = activities.LBQueries{Name: name, Error: errText(err)}
		case j < 0:
			out[i] = activities.LBQueries{Name: name, Error: "not read"}
		default:
			out[i] = res.LBs[j]
		}
		if out[i].Error != "" && err == nil {
			unread = append(unread, out[i].Error)
		}
	}
	if len(unread) > 0 {
		c.step.Note = "not read: " + strings.Join(unread, "; ")
	}
	return out, nil
}

func qpsText(qps map[string]float64) string {
	var b []string
	for _, n := range slices.Sorted(maps.Keys(qps)) {
		b = append(b, fmt.Sprintf("%s %.1f/s", n, qps[n]))
	}
	if len(b) == 0 {
		return "no counters"
	}
	return strings.Join(b, ", ")
}

// restoreGlue undoes the glue change: the old glue back at the parent,
// then the TTL waited out, so that no resolver still holding the new glue
// is sent to a load balancer about to be deleted.
func (r *lbReplace) restoreGlue(ctx workflow.Context) error {
	if !r.setGlue {
		return nil
	}
	r.st.Phase = PhaseRestoringGlue
	var now activities.ParentResult
	if err := r.st.exec(ctx, "CheckParent", r.in.Domain, r.cleanupOpts(ctx), a.CheckParent, r.parentInput(""), &now); err == nil && registrar.Equal(r.delegation(now.NS), r.st.Glue.Old) && r.st.Glue.ServedSince.IsZero() {
		// The new glue was never served: nothing cached it. But a
		// registrar's operation asked for may still be pending, and would
		// move the glue to the new load balancers once they are gone: it
		// is put back through the registrar all the same. A person (the
		// manual registrar) is told instead.
		manual := r.in.Registrar == "" || r.in.Registrar == activities.ManualRegistrar
		if manual && workflow.GetVersion(ctx, versionManualRestoreConfirmed, workflow.DefaultVersion, 1) == 1 {
			published, ttl, err := r.confirmOldGlue(ctx)
			if err != nil {
				return err
			}
			if !published {
				if workflow.GetVersion(ctx, versionManualRestoreWaitsTTL, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
					r.event(ctx, "deleting the new load balancers")
					return nil
				}
				r.event(ctx, fmt.Sprintf("waiting %s, the TTLs of the glue the registry may have published meanwhile, before deleting the new load balancers", ttl))
				return workflow.Sleep(ctx, ttl)
			}
		} else if manual || workflow.GetVersion(ctx, "lbreplace-restore-pending-glue", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			msg := "the parent still serves the old glue; nothing to restore"
			if manual {
				msg += " (if you changed the glue at the registrar, put the old one back)"
			}
			r.event(ctx, msg)
			return nil
		}
	}
	restored, err := r.moveGlue(ctx, r.st.Glue.Old, PhaseRestoringGlue)
	if err != nil {
		return err
	}
	ttl := max(restored.NSTTL, restored.GlueTTL, restored.ZoneNSTTL, ttlFloor)
	if workflow.GetVersion(ctx, versionRestoreWaitsServedTTLs, workflow.DefaultVersion, 1) == 1 {
		ttl = max(ttl, r.servedTTL)
	}
	r.event(ctx, fmt.Sprintf("the parent serves the old glue again; waiting %s before deleting the new load balancers", ttl))
	return workflow.Sleep(ctx, ttl)
}

// versionRestoreWaitsServedTTLs marks replacements whose undo waits the
// TTLs served with the new glue too. Runs from before waited only those
// of the old glue put back, short when the new zone's NS TTL was longer.
const versionRestoreWaitsServedTTLs = "lbreplace-restore-waits-served-ttls"

// versionManualRestoreConfirmed marks replacements whose undo, with the
// manual registrar and the new glue never served, keeps the new load
// balancers until the person confirms the registrar holds the old glue
// (confirmOldGlue). Runs from before it deleted them at once.
const versionManualRestoreConfirmed = "lbreplace-manual-restore-confirmed"

// versionManualRestoreWaitsTTL marks replacements whose undo, once
// confirmOldGlue found the parent serving the old glue, waits its TTLs
// before deleting the new load balancers: the person may have asked for
// the new glue, and the registry published it for a while before the old
// was put back. Runs from before it deleted them at once.
const versionManualRestoreWaitsTTL = "lbreplace-manual-restore-waits-ttl"

// confirmOldGlue decides, after an undo that found the parent serving
// the old glue with the manual registrar, whether the new load balancers
// may go: the person may have asked for the new glue before the stop, and
// a registry publishing it after they are deleted would delegate the
// domain to deleted machines. After an abort or rollback the person is
// there, and is asked to confirm the registrar holds the old glue
// (glue-updated, within glue_wait); after a failure, such as glue_wait
// passing with no one acting, no one is asked. Either way the parent is
// checked last: published is true when it serves something else, so the
// old glue is put back as after a served change; else ttl is how long
// resolvers may hold what it served.
func (r *lbReplace) confirmOldGlue(ctx workflow.Context) (published bool, ttl time.Duration, err error) {
	confirmed := false
	// Those sent before the stop, still queued, confirm nothing about
	// the registrar after it.
	var queued glueSignal
	for !confirmed && r.glueSignals.ReceiveAsync(&queued) {
		if confirmed = queued.AfterStop; confirmed {
			r.event(ctx, SignalGlueUpdated+" received"+queued.In.describe()+"; checking the parent")
		} else {
			r.event(ctx, SignalGlueUpdated+" sent before the undo began"+queued.In.describe()+": not taken as word that the registrar holds the old glue")
		}
	}
	if r.stop != nil && !confirmed {
		r.st.Glue.Instructions = fmt.Sprintf("The replacement stopped before the parent served the new glue of %s. If you asked your registrar for the new glue, "+
			"put the old one back: %s. Then, or at once if you changed nothing, send %s: the new load balancers are deleted the TTLs of the glue after it (or after glue_wait %s, "+
			"if the parent still serves the old glue), and kept until then in case the registry publishes a change after all, or did for a while.",
			registrar.Fqdn(r.in.Domain), registrar.Text(r.st.Glue.Old), SignalGlueUpdated, r.in.GlueWait.D())
		defer func() { r.st.Glue.Instructions = "" }()
		r.event(ctx, "the parent still serves the old glue; waiting for "+SignalGlueUpdated+" to confirm the registrar holds it before deleting the new load balancers")
		in, ok, err := r.waitGlueSignal(ctx, r.in.GlueWait.D())
		if err != nil {
			return false, 0, err
		}
		if confirmed = ok; ok {
			r.event(ctx, SignalGlueUpdated+" received"+in.describe()+"; checking the parent")
		} else {
			r.event(ctx, fmt.Sprintf("no %s within glue_wait %s; checking the parent", SignalGlueUpdated, r.in.GlueWait.D()))
		}
	}
	now, err := r.parentNow(ctx)
	if err != nil {
		return false, 0, err
	}
	if !registrar.Equal(r.delegation(now.NS), r.st.Glue.Old) {
		r.event(ctx, "the parent serves "+registrar.Text(now.NS)+", not the old glue: putting the old glue back")
		return true, 0, nil
	}
	if !confirmed {
		r.st.Warnings = append(r.st.Warnings, fmt.Sprintf("the new load balancers were deleted with no word that the registrar holds the old glue; check that it does (%s)", registrar.Text(r.st.Glue.Old)))
	}
	r.event(ctx, "the parent serves the old glue")
	return false, max(now.NSTTL, now.GlueTTL, now.ZoneNSTTL, ttlFloor), nil
}

// parentNow is what the parent serves, asked again after a failed check
// (parent servers disagree while a change publishes) up to
// parentCheckAttempts times, drain.poll apart.
func (r *lbReplace) parentNow(ctx workflow.Context) (activities.ParentResult, error) {
	for i := 1; ; i++ {
		var now activities.ParentResult
		// The zone's NS TTL is asked at the old load balancers, as when
		// the old glue is put back (moveGlue).
		check := r.parentInput("")
		check.AddrsFrom = r.oldAddresses()
		err := r.st.exec(ctx, "CheckParent", r.in.Domain, r.cleanupOpts(ctx), a.CheckParent, check, &now)
		if err == nil || temporal.IsCanceledError(err) || i == parentCheckAttempts {
			return now, err
		}
		r.event(ctx, "the parent could not be checked: "+errText(err)+"; asking again")
		if err := workflow.Sleep(ctx, r.in.Drain.Poll.D()); err != nil {
			return now, err
		}
	}
}

// parentCheckAttempts bounds parentNow.
const parentCheckAttempts = 10

// deleteNew deletes every <lb>-next, created or only perhaps created:
// those whose create reported back by ID, which a list may not show yet,
// the others by label. When a create did not report back (an abort or a
// deadline cut it short), Linode may still commit it after that first
// sweep, so its <lb>-next is swept again once the create has settled, as
// a rollout's green is (deleteGreen). Runs from before
// versionSweepNewAgain swept once, by label.
func (r *lbReplace) deleteNew(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, versionSweepNewAgain, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.sweepNew(ctx, r.st.Old, false)
	}
	var unsure []config.LoadBalancer
	for _, lb := range r.st.Old {
		if _, ok := r.created[lb.Name]; !ok {
			unsure = append(unsure, lb)
		}
	}
	if err := r.sweepNew(ctx, r.st.Old, true); err != nil || len(unsure) == 0 {
		return err
	}
	if err := workflow.Sleep(ctx, createSettle); err != nil {
		return err
	}
	return r.sweepNew(ctx, unsure, false)
}

// versionSweepNewAgain marks the undo that deletes the new load balancers
// it knows by ID and sweeps again for those whose create did not report
// back (deleteNew).
const versionSweepNewAgain = "lbreplace-sweep-new-again"

// sweepNew deletes the <lb>-next of each of lbs; byID, those created by
// their ID.
func (r *lbReplace) sweepNew(ctx workflow.Context, lbs []config.LoadBalancer, byID bool) error {
	var calls []*call
	for _, lb := range lbs {
		in := activities.DeleteLoadBalancerInput{Fleet: r.fleet, Label: dnsroll.NextLabel(lb.Name)}
		if byID {
			in.ID = r.created[lb.Name].ID
		}
		calls = append(calls, r.st.start(ctx, "DeleteLoadBalancer", in.Label, r.cleanupOpts(ctx), a.DeleteLoadBalancer, in))
	}
	return waitAll(ctx, calls)
}

// versionSiblingGlue marks replacements that keep, of the parent's
// referral, only what a registrar holds (registrar.Delegation): a parent
// may add addresses for name servers outside the domain, which SetGlue
// refuses to send. Runs from before it keep the referral whole.
const versionSiblingGlue = "lbreplace-sibling-glue"

// delegation is the parent's referral ns as the registrar holds it: no
// glue for name servers outside the domain (versionSiblingGlue).
func (r *lbReplace) delegation(ns []registrar.NameServer) []registrar.NameServer {
	if !r.siblingGlue {
		return ns
	}
	return registrar.Delegation(r.in.Domain, ns)
}

// versionGlueDropsOldAddrs marks replacements whose new glue names, for a
// name server glued to an old load balancer, the replacement's address
// alone (newGlue). Runs from before it kept the name server's other
// addresses.
const versionGlueDropsOldAddrs = "lbreplace-glue-drops-old-addrs"

// newGlue is old with each old load balancer's address replaced by its
// replacement's. A name server glued to an old load balancer by IPv4 keeps
// no IPv6 address (with dropOldAddrs), nor one glued by IPv6 an IPv4: the
// replacement knows only the address the fleet gives, and the other
// family's, such as the IPv6 Linode gives every machine, is the old
// machine's, deleted after the drain. dropped says which were left out.
func (r *lbReplace) newGlue(old []registrar.NameServer) (glue []registrar.NameServer, dropped []string) {
	repl := map[netip.Addr]netip.Addr{}
	for i, lb := range r.st.Old {
		o, err1 := hostAddr(lb.Address)
		n, err2 := hostAddr(r.st.New[i].Address)
		if err1 == nil && err2 == nil {
			repl[o] = n
		}
	}
	glue = make([]registrar.NameServer, len(old))
	for i, ns := range old {
		glue[i] = registrar.NameServer{Name: ns.Name}
		// The families of the old load balancers' addresses this name
		// server is glued to: an address of the other family is the old
		// machine's too (Linode gives each both), one of the same family
		// another machine's.
		var moved4, moved6 bool
		for _, a := range ns.Addrs {
			if _, ok := repl[a]; ok && r.dropOldAddrs {
				moved4, moved6 = moved4 || a.Is4(), moved6 || a.Is6()
			}
		}
		for _, addr := range ns.Addrs {
			n, ok := repl[addr]
			switch {
			case ok:
				addr = n
			case addr.Is6() && moved4 && !moved6, addr.Is4() && moved6 && !moved4:
				dropped = append(dropped, fmt.Sprintf("%s %s", registrar.Fqdn(ns.Name), addr))
				continue
			}
			glue[i].Addrs = append(glue[i].Addrs, addr)
		}
	}
	return glue, dropped
}

// oldAddresses are the old load balancers' addresses, host:port.
func (r *lbReplace) oldAddresses() []string {
	var out []string
	for _, lb := range r.st.Old {
		out = append(out, lb.Address)
	}
	return out
}

// oldAddrsInZone are the addresses the zone gives its name servers
// (zone) that are old load balancers', as "name address".
func (r *lbReplace) oldAddrsInZone(zone []registrar.NameServer) []string {
	return addrsInZone(zone, r.st.Old)
}

// staleZoneAddrs are the addresses the zone gives its name servers
// (zone), of those whose glue the replacement changes (old to glue), that
// the new glue does not name, as "name address": the old machines'. A
// name server the replacement leaves alone is not judged.
func staleZoneAddrs(zone, old, glue []registrar.NameServer) []string {
	addrs := func(ns []registrar.NameServer, name string) []netip.Addr {
		i := slices.IndexFunc(ns, func(g registrar.NameServer) bool { return strings.EqualFold(registrar.Fqdn(g.Name), name) })
		if i < 0 {
			return nil
		}
		return ns[i].Addrs
	}
	var out []string
	for _, z := range zone {
		name := registrar.Fqdn(z.Name)
		now := addrs(glue, name)
		if slices.Equal(addrs(old, name), now) {
			continue
		}
		for _, a := range z.Addrs {
			if !slices.Contains(now, a) {
				out = append(out, name+" "+a.String())
			}
		}
	}
	return out
}

// siblingGlued is an old load balancer whose address only a name server
// outside the domain has in ns (sibling glue), and that name server; ""
// when none has (or before versionSiblingGlue).
func (r *lbReplace) siblingGlued(ns []registrar.NameServer) (config.LoadBalancer, string) {
	if !r.siblingGlue {
		return config.LoadBalancer{}, ""
	}
	inDomain := r.delegation(ns)
	for _, lb := range r.st.Old {
		a, err := hostAddr(lb.Address)
		if err != nil || slices.ContainsFunc(inDomain, func(s registrar.NameServer) bool { return slices.Contains(s.Addrs, a) }) {
			continue
		}
		for _, s := range ns {
			if slices.Contains(s.Addrs, a) {
				return lb, registrar.Fqdn(s.Name)
			}
		}
	}
	return config.LoadBalancer{}, ""
}

// gluedLBs counts the old load balancers whose address the glue names.
func (r *lbReplace) gluedLBs(ns []registrar.NameServer) int {
	n := 0
	for _, lb := range r.st.Old {
		a, err := hostAddr(lb.Address)
		if err != nil {
			continue
		}
		for _, s := range ns {
			if slices.Contains(s.Addrs, a) {
				n++
				break
			}
		}
	}
	return n
}

func hostAddr(hostport string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(hostport)
}

func (r *lbReplace) parentInput(child string) activities.ParentInput {
	return activities.ParentInput{Domain: r.in.Domain, Parent: r.in.Parent, Child: child}
}

func (r *lbReplace) opts(timeout config.Duration) workflow.ActivityOptions {
	s := r.fleet.Steps
	return stepOptions(timeout.D(), s.HeartbeatTimeout.D(), s.RetryInitialInterval.D(), s.RetryMaximumInterval.D(), s.MaxAttempts)
}

// cleanupOpts are those of the undo's steps, and of the checks of the
// zone and the parent that decide it: tried harder than forward steps,
// as a rollout's cleanup is, and undo steps (undoStep).
func (r *lbReplace) cleanupOpts(ctx workflow.Context) workflow.ActivityOptions {
	return undoStep(ctx, r.persistentOpts())
}

// persistentOpts are the options of a step that must get through, as an
// undo's do, with more time and attempts than a forward step's.
func (r *lbReplace) persistentOpts() workflow.ActivityOptions {
	o := r.opts(r.fleet.Steps.SwitchTimeout)
	o.ScheduleToCloseTimeout *= 3
	o.RetryPolicy.MaximumAttempts *= 3
	return o
}

// glueOpts are those of moveGlue's steps, which are undo steps when
// they put the old glue back (in phase PhaseRestoringGlue).
func (r *lbReplace) glueOpts(ctx workflow.Context, timeout config.Duration, waiting Phase) workflow.ActivityOptions {
	if waiting == PhaseRestoringGlue {
		return undoStep(ctx, r.opts(timeout))
	}
	return r.opts(timeout)
}

func (r *lbReplace) event(ctx workflow.Context, msg string) {
	r.st.Events = append(r.st.Events, Event{At: workflow.Now(ctx), Message: msg})
	workflow.GetLogger(ctx).Info(msg, "fleet", r.st.Fleet)
}

// versionLBFailedBeforeStop marks the change that has a replacement
// stopped while a step's failure waited to be acted on (one new load
// balancer's create or verify failed as another's ran) end failed with
// that failure (stopping.failedFirst). Runs from before ended aborted or
// rolled back, and sent that webhook event.
const versionLBFailedBeforeStop = "lbreplace-failed-before-stop"

// lbNoWayBack is why a replacement past its point of no return refuses
// abort and rollback.
const lbNoWayBack = "the old load balancers are being deleted, so there is nothing to roll back to"

// listen turns signals into decisions: abort and rollback stop the forward
// steps until the old load balancers are being deleted; glue-updated goes
// to whichever wait checks the parent; force-drain, with a reason, ends a
// running drain.
func (r *lbReplace) listen(ctx workflow.Context) {
	listenSignals(ctx, []string{SignalAbort, SignalRollback, SignalApprove, SignalGlueUpdated, SignalForceDrain, SignalZoneRevision}, r.event, r.onSignal)
}

func (r *lbReplace) onSignal(ctx workflow.Context, name string, in SignalInput) {
	switch {
	case r.st.Phase.Done():
		r.event(ctx, name+" ignored: the replacement has ended")
	case name == SignalGlueUpdated:
		r.glueSignals.SendAsync(glueSignal{In: in, AfterStop: r.stop != nil})
	case name == SignalApprove && r.st.Phase != PhaseAwaitingApproval:
		r.event(ctx, name+" ignored: the replacement is "+string(r.st.Phase)+", not awaiting approval")
	case name == SignalApprove && otherGate(in, r.st.ApprovalGate) != "":
		r.event(ctx, name+" ignored: "+otherGate(in, r.st.ApprovalGate))
	case name == SignalApprove:
		r.approved = true
		r.event(ctx, "approved"+in.describe())
	case name == SignalForceDrain && r.st.Phase != PhaseDraining:
		r.event(ctx, name+" ignored: the replacement is "+string(r.st.Phase)+", not draining")
	case name == SignalForceDrain && strings.TrimSpace(in.Reason) == "":
		r.event(ctx, name+" refused: give a reason")
	case name == SignalForceDrain:
		r.force = &in
		r.forceWaker.SendAsync(true)
	case name == SignalZoneRevision && r.st.Phase != PhaseAwaitingZoneRevision:
		r.event(ctx, name+" ignored: the replacement is "+string(r.st.Phase)+", not awaiting a zone revision")
	case name == SignalZoneRevision && r.badZoneRevision(in.Revision) != "":
		r.event(ctx, name+" refused: "+r.badZoneRevision(in.Revision))
	case name == SignalZoneRevision:
		r.zoneRevision = &in
	case r.undoing:
		// The undo under way ends the run for what stopped it.
		r.event(ctx, name+" ignored: the replacement is already being undone ("+r.st.Failure+")")
	default:
		if !r.requestStop(ctx, r.event, name, in, cmp.Or(r.st.NoWayBack, lbNoWayBack)) {
			break
		}
		switch {
		case r.zoneRollout != nil:
			// The rollout decides, as for a stop sent to it: it may be
			// past its point of no return.
			r.zoneRollout.SignalChildWorkflow(ctx, name, in)
		case r.st.Phase == PhaseRollingOutZone:
			// It has ended: what the zone names decides (rollOutZone).
		default:
			r.takeFailedFirst(ctx, &r.st.Run, versionLBFailedBeforeStop)
			r.cancel()
		}
	}
}
