package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/registrar"
)

// A zone whose name servers are named inside it (ns1.example.com for
// example.com) gives their addresses itself, and BIND hands resolvers
// those over the glue. When they name old load balancers, moving the glue
// alone would leave resolvers asking deleted machines. So, once the new
// load balancers exist and their addresses are known, the replacement
// waits for a revision naming them (the zone-revision signal) and rolls it
// out as a rollout of the fleet that switches the new load balancers with
// the old; only once the zone no longer names an old load balancer does it
// move the glue, and its drain waits out the old records' TTL too. Once
// the zone names a new load balancer there is no way back: deleting the
// new ones would take the zone's name servers away.

// SignalZoneRevision names the revision whose zone gives its name servers
// the new load balancers' addresses; its payload is {"revision": "..."}
// (empty for a fleet whose zone file paths have no {revision}), with
// reason and by.
const SignalZoneRevision = "zone-revision"

// Phases of a replacement whose zone names its load balancers.
const (
	PhaseAwaitingZoneRevision Phase = "awaiting-zone-revision"
	PhaseRollingOutZone       Phase = "rolling-out-zone"
)

// versionZoneRollout marks replacements that roll out the zone's own
// address records before the glue moves; runs from before it warned only.
const versionZoneRollout = "lbreplace-zone-rollout"

// versionZoneFailedPastNoReturn marks replacements that fail at once when
// their zone rollout failed and the zone names a new load balancer and
// still an old one; runs from before it waited for another revision.
const versionZoneFailedPastNoReturn = "lbreplace-zone-failed-past-no-return"

// zoneNoWayBack is why a replacement whose zone names a new load balancer
// refuses abort and rollback.
const zoneNoWayBack = "the zone names the new load balancers, so deleting them would take its name servers away: the replacement goes on"

// ZoneRecordsStatus is what a replacement does about the zone's own
// address records of its name servers.
type ZoneRecordsStatus struct {
	// Records are those that name an old load balancer ("name address"),
	// as the zone served them when the replacement began, and TTL their
	// longest TTL, which the drain waits out.
	Records []string        `json:"records"`
	TTL     config.Duration `json:"ttl"`
	// Replace pairs each old load balancer's address with its
	// replacement's ("old -> new"): what the revision must change.
	Replace []string `json:"replace,omitempty"`
	// Instructions say what to do while the replacement waits for the
	// revision, until WaitUntil (glue_wait).
	Instructions string    `json:"instructions,omitempty"`
	WaitUntil    time.Time `json:"wait_until,omitzero"`
	// Rollouts are the rollouts run for it, latest last.
	Rollouts []ZoneRollout `json:"rollouts,omitempty"`
}

// ZoneRollout is one rollout a replacement ran for its zone records.
type ZoneRollout struct {
	Revision   string `json:"revision"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	// Phase is the rollout's phase once it ended; Failure why it failed.
	Phase   Phase  `json:"phase,omitempty"`
	Failure string `json:"failure,omitempty"`
}

// rollOutZone waits for revisions and rolls them out until the zone names
// no old load balancer. It returns an error that stops the replacement
// (undone while the zone names none of the new load balancers); past that
// point r.committed is set.
func (r *lbReplace) rollOutZone(ctx workflow.Context) error {
	z := r.st.Zone
	for i, old := range r.st.Old {
		z.Replace = append(z.Replace, addrText(old.Address)+" -> "+addrText(r.st.New[i].Address))
	}
	z.WaitUntil = workflow.Now(ctx).Add(r.in.GlueWait.D())
	for {
		r.st.Phase = PhaseAwaitingZoneRevision
		z.Instructions = fmt.Sprintf("The zone %s gives %s, old load balancers' addresses. Commit a revision whose zone gives its name servers the new addresses (%s), "+
			"then send %s with it: dnsroll lb zone-revision --fleet %s --revision <revision> (or temporal workflow signal --workflow-id %s --name %s --input '{\"revision\":\"<revision>\"}'). "+
			"The replacement rolls it out through the old and new load balancers before it moves the glue; without one by %s (glue_wait) it is undone.",
			registrar.Fqdn(r.in.Domain), strings.Join(z.Records, ", "), strings.Join(z.Replace, ", "), SignalZoneRevision, r.st.Fleet,
			LBReplaceWorkflowID(r.st.Fleet), SignalZoneRevision, z.WaitUntil.UTC().Format(time.RFC3339))
		in, ok, err := r.waitZoneRevision(ctx, z.WaitUntil.Sub(workflow.Now(ctx)))
		z.Instructions = ""
		switch {
		case err != nil:
			return err
		case !ok:
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no %s within %s (glue_wait)", SignalZoneRevision, r.in.GlueWait.D()), "ZoneRevisionTimeout", nil)
		}
		r.event(ctx, SignalZoneRevision+" received"+in.describe()+": rolling out revision "+cmp.Or(in.Revision, "(the zone files as they are)")+" through the old and new load balancers")
		r.st.Phase = PhaseRollingOutZone
		z.Instructions = fmt.Sprintf("Rollout %s rolls out revision %s through the old and new load balancers: follow it with dnsroll rollout status --fleet %s; "+
			"where the fleet's rollouts wait for approval (rollout.approval manual or each, a canary step with approve: true) it waits there too (dnsroll rollout approve --fleet %s). An abort or rollback of this replacement is passed on to it.",
			WorkflowID(r.st.Fleet), cmp.Or(in.Revision, "(as they are)"), r.st.Fleet, r.st.Fleet)
		rollErr := r.runZoneRollout(ctx, in)
		z.Instructions = ""
		zone, err := r.askZone(ctx)
		if err != nil {
			// Not knowing what the zone names, the new load balancers
			// must stay: the replacement fails without undo.
			r.committed, r.st.NoWayBack = true, "the zone could not be asked whether it names the new load balancers"
			return errors.Join(rollErr, err)
		}
		if named := r.newAddrsInZone(zone); len(named) > 0 && !r.committed {
			r.committed, r.st.NoWayBack = true, zoneNoWayBack
			r.undos = nil
			r.event(ctx, "the zone gives "+strings.Join(named, ", ")+", the new load balancers': "+zoneNoWayBack)
		}
		if r.stop != nil && r.committed {
			// The rollout was past its own point of no return when the
			// stop came, and rejected it: so is the replacement.
			r.event(ctx, r.stop.signal+" rejected: "+zoneNoWayBack)
			r.stop = nil
		}
		held := r.oldAddrsInZone(zone)
		switch {
		case r.stop != nil:
			// The rollout took the stop and put blue back.
			return cmp.Or(rollErr, temporal.NewCanceledError())
		case len(held) == 0 && rollErr == nil:
			return nil
		case len(held) == 0 && r.committed:
			msg := fmt.Sprintf("%s; green serves through every load balancer: once this replacement ends, start a rollout of %s to finish it", rollErr.Error(), r.st.Fleet)
			r.st.Warnings = append(r.st.Warnings, msg)
			r.event(ctx, msg)
			return nil
		case rollErr != nil && r.committed && workflow.GetVersion(ctx, versionZoneFailedPastNoReturn, workflow.DefaultVersion, 1) == 1:
			// The rollout failed leaving the zone naming new and old load
			// balancers (its cleanup failed, or it failed past its own
			// point of no return): another revision's Plan would refuse
			// the load balancers left on green, and an abort is refused.
			// The replacement fails, keeping the new load balancers, and
			// frees the fleet for the rollout's cleanup.
			r.event(ctx, rollErr.Error()+"; the zone names new and old load balancers: the replacement fails here, keeping the new ones, "+
				"so that the rollout can be cleaned up (dnsroll rollout cleanup) or finished")
			return rollErr
		case rollErr != nil:
			// Blue still serves and the zone names no new load balancer:
			// another revision may be tried, or the replacement stopped.
			r.event(ctx, rollErr.Error()+"; the zone is as it was: send "+SignalZoneRevision+" again (the same revision, once what failed is fixed, or another), or abort")
		default:
			r.event(ctx, fmt.Sprintf("the rollout of revision %s succeeded, but the zone still gives %s: waiting for another %s", cmp.Or(in.Revision, "(as they are)"), strings.Join(held, ", "), SignalZoneRevision))
		}
		if len(held) > 0 {
			z.Records = held
		}
	}
}

// bothSetsServe is what the operator must do when a replacement fails
// once the zone names its new load balancers: they serve beside the old,
// and the fleet config knows only the old, so a rollout would switch the
// old alone and delete the servers the new ones front.
func (r *lbReplace) bothSetsServe() string {
	var next []string
	for _, lb := range r.st.New {
		next = append(next, lb.Name+" "+lb.Address)
	}
	return fmt.Sprintf("the zone names the new load balancers (%s), which serve beside the old ones: add them to the fleet config's load_balancers before any rollout of %s, "+
		"which would otherwise leave them in front of deleted servers; then move the glue to them and, once the old load balancers are quiet, delete those (docs/load-balancers.md)",
		strings.Join(next, ", "), r.st.Fleet)
}

// runZoneRollout rolls out in.Revision as a child rollout of the fleet,
// under this run's hold of it, switching the new load balancers with the
// fleet's own; the revision changes records by design, so changes are
// expected whatever the fleet's probe.expect_changes. A stop of the
// replacement is sent on to it (onSignal), which takes it as its own
// (undoing, unless past its point of no return, when it rejects it); the
// replacement waits for it to end either way. Terminating the replacement
// asks Temporal to cancel it.
func (r *lbReplace) runZoneRollout(ctx workflow.Context, in SignalInput) error {
	roll := RolloutInput{Fleet: r.st.Fleet, Revision: in.Revision, RequestedBy: cmp.Or(in.By, r.in.RequestedBy),
		Reason:             cmp.Or(in.Reason, "the zone names the new load balancers of "+LBReplaceWorkflowID(r.st.Fleet)),
		ExtraLoadBalancers: slices.Clone(r.st.New), HeldBy: workflow.GetInfo(ctx).WorkflowExecution.ID, ExpectChanges: &expectChanges,
		LiveBundle: in.LiveBundle, LiveUnknown: in.LiveUnknown}
	if roll.LiveBundle == "" && roll.LiveUnknown == "" {
		roll.LiveUnknown = noLiveInSignal
	}
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            WorkflowID(r.st.Fleet),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation:   true,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: RolloutAttributes(roll),
		StaticSummary:         RolloutSummary(roll),
	})
	rec := ZoneRollout{Revision: in.Revision, WorkflowID: WorkflowID(r.st.Fleet)}
	z := r.st.Zone
	z.Rollouts = append(z.Rollouts, rec)
	cur := &z.Rollouts[len(z.Rollouts)-1]
	child := workflow.ExecuteChildWorkflow(ctx, RolloutWorkflow, roll)
	r.zoneRollout = child
	defer func() { r.zoneRollout = nil }()
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err == nil {
		cur.RunID = exec.RunID
		r.event(ctx, "rollout "+exec.ID+" run "+exec.RunID+" rolls out the zone")
	}
	var st Status
	err := child.Get(ctx, &st)
	var app *temporal.ApplicationError
	if err != nil && errors.As(err, &app) && app.HasDetails() {
		_ = app.Details(&st)
	}
	cur.Phase = st.Phase
	if err == nil {
		return nil
	}
	cur.Failure = cmp.Or(st.Failure, errText(err))
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the rollout of the zone (%s, revision %s) ended %s: %s", rec.WorkflowID, cmp.Or(in.Revision, "(as they are)"), cmp.Or(string(st.Phase), "without a status"), cur.Failure), "ZoneRolloutFailed", nil)
}

// noLiveInSignal is why the zone rollout cannot compare with the live
// revision when the zone-revision signal did not say what it is: the
// fleet has one all the same, whose servers the replacement fronts.
const noLiveInSignal = "the zone-revision signal did not carry the fleet's live revision (the API and dnsroll lb zone-revision look it up; temporal workflow signal does not)"

// expectChanges is the zone rollout's probe.expect_changes.
var expectChanges = true

// waitZoneRevision waits up to d for a zone-revision signal.
func (r *lbReplace) waitZoneRevision(ctx workflow.Context, d time.Duration) (in SignalInput, ok bool, err error) {
	if d <= 0 {
		return in, false, nil
	}
	ok, err = workflow.AwaitWithTimeout(ctx, d, func() bool { return r.zoneRevision != nil })
	if ok {
		in, r.zoneRevision = *r.zoneRevision, nil
	}
	return in, ok, err
}

// askZone asks the zone at each new and old load balancer for the
// addresses it gives its name servers, and returns all they said: after a
// rollout that did not end cleanly, some may front blue and others green.
// It runs even after a stop: what the zone names decides whether the new
// load balancers may go.
// A load balancer that does not answer (a dead old one) is passed over;
// when none answers, it asks again, up to parentCheckAttempts times.
func (r *lbReplace) askZone(ctx workflow.Context) ([]registrar.NameServer, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	var at []string
	for _, lb := range r.st.New {
		at = append(at, lb.Address)
	}
	at = append(at, r.oldAddresses()...)
	// Undo steps once the replacement is stopping; forward ones otherwise,
	// which must not take the undo queue's slots.
	opts := r.persistentOpts()
	if r.stop != nil {
		opts = r.cleanupOpts(ctx)
	}
	for i := 1; ; i++ {
		var zone []registrar.NameServer
		var why []string
		for _, server := range at {
			check := r.parentInput("")
			check.AddrsFrom = []string{server}
			var res activities.ParentResult
			err := r.st.exec(ctx, "CheckParent", r.in.Domain, opts, a.CheckParent, check, &res)
			switch {
			case err != nil:
				why = append(why, errText(err))
			case res.ZoneUnasked != "":
				why = append(why, res.ZoneUnasked)
			default:
				zone = append(zone, res.ZoneAddrs...)
			}
		}
		if zone != nil || i == parentCheckAttempts {
			if zone == nil {
				return nil, errors.New("the zone could not be asked: " + strings.Join(why, "; "))
			}
			return zone, nil
		}
		if err := workflow.Sleep(ctx, r.in.Drain.Poll.D()); err != nil {
			return nil, err
		}
	}
}

// newAddrsInZone are the addresses the zone gives its name servers that
// are new load balancers', as "name address".
func (r *lbReplace) newAddrsInZone(zone []registrar.NameServer) []string {
	return addrsInZone(zone, r.st.New)
}

// addrsInZone are the addresses of zone that are lbs', as "name address",
// each once, in order.
func addrsInZone(zone []registrar.NameServer, lbs []config.LoadBalancer) []string {
	var out []string
	for _, z := range zone {
		for _, a := range z.Addrs {
			s := registrar.Fqdn(z.Name) + " " + a.String()
			if !slices.Contains(out, s) && slices.ContainsFunc(lbs, func(lb config.LoadBalancer) bool { h, err := hostAddr(lb.Address); return err == nil && h == a }) {
				out = append(out, s)
			}
		}
	}
	return out
}

// addrText is a load balancer's address without its port.
func addrText(hostport string) string {
	if a, err := hostAddr(hostport); err == nil {
		return a.String()
	}
	return hostport
}

// badZoneRevision says why a zone-revision signal's revision cannot be
// rolled out, or "".
func (r *lbReplace) badZoneRevision(rev string) string {
	switch {
	case rev != "" && !config.ValidRevision(rev):
		return fmt.Sprintf("revision must be %s; got %q", config.RevisionRule, rev)
	case rev == "" && r.fleet != nil && r.fleet.NeedsRevision():
		return fmt.Sprintf("give the revision: fleet %s's zone file paths hold %s", r.st.Fleet, config.RevisionPlaceholder)
	}
	return ""
}
