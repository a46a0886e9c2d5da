package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// CleanupRequest makes a rollout run do only the cleanup that an earlier
// run ended cleanup-failed without finishing: put every load balancer back
// on blue and delete every -next server. `dnsroll rollout cleanup` and
// POST /rollouts/{id}/cleanup start such runs from the failed run's status.
type CleanupRequest struct {
	// From is the rollout whose cleanup failed ("<workflow ID>/<run ID>").
	From string `json:"from"`
	// Blue are the servers the load balancers go back to, by label.
	Blue map[string]dnsroll.Server `json:"blue"`
	// Left is the failed run's cleanup.left. Its servers are deleted with
	// the fleet's greens: the fleet may have dropped or renamed their
	// nameservers since, and its labels alone would miss them.
	Left []Leftover `json:"left,omitempty"`
}

// Cleanup is how the cleanup after a stopped rollout goes: its rounds while
// it retries, and what is left to undo when it gave up.
type Cleanup struct {
	// Round is the number of rounds that failed so far.
	Round     int    `json:"round"`
	LastError string `json:"last_error,omitempty"`
	// NextRoundAt is when the next round starts; GiveUpAt is when the
	// rollout stops trying (steps.cleanup_timeout after the first round).
	NextRoundAt time.Time `json:"next_round_at,omitzero"`
	GiveUpAt    time.Time `json:"give_up_at,omitzero"`
	// Left is what remains to undo once the rollout ended cleanup-failed;
	// `dnsroll rollout cleanup` does it.
	Left []Leftover `json:"left,omitempty"`
}

// Leftover is one thing a failed cleanup did not undo.
type Leftover struct {
	// Kind is "load-balancer" (to point back at blue) or "server" (to delete).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// ID is the server's Linode ID, when the rollout learnt it.
	ID int `json:"id,omitempty"`
	// Action says what undoing it means, for the operator.
	Action string `json:"action"`
}

// Leftover kinds.
const (
	LeftoverLoadBalancer = "load-balancer"
	LeftoverServer       = "server"
)

// maxCleanupPause caps the pause between cleanup rounds; the config
// bounds steps.cleanup_timeout by the rounds it allows.
const maxCleanupPause = config.MaxCleanupPause

// cleanUp puts every load balancer that may be on green back on blue, then
// deletes green. A round that fails is tried again, the pause doubling from
// steps.retry_maximum_interval up to ten minutes, until steps.cleanup_timeout
// has passed; the status, the events, a webhook (cleanup_retrying) and the
// Web UI's step list say so meanwhile. retry false is the behaviour of
// rollouts that started before rounds existed: one round.
func (r *rollout) cleanUp(ctx workflow.Context, retry bool) error {
	steps := r.plan.Fleet.Steps
	giveUp := workflow.Now(ctx).Add(steps.CleanupTimeout.D())
	if retry {
		r.cleanupUntil = giveUp
	}
	pause := max(steps.RetryMaximumInterval.D(), time.Second)
	for round := 1; ; round++ {
		err := r.cleanUpRound(ctx)
		if err == nil {
			if r.st.Cleanup != nil {
				r.event(ctx, fmt.Sprintf("cleanup succeeded in round %d", round))
				r.st.Cleanup.NextRoundAt = time.Time{}
			}
			return nil
		}
		next := workflow.Now(ctx).Add(pause)
		if !retry || next.After(giveUp) {
			return err
		}
		r.st.Cleanup = &Cleanup{Round: round, LastError: fmt.Sprintf("%s failed: %s", stepName(err, "cleanup"), reason(err)), NextRoundAt: next, GiveUpAt: giveUp}
		r.event(ctx, fmt.Sprintf("cleanup round %d failed: %s; next round at %s, giving up at %s",
			round, r.st.Cleanup.LastError, next.UTC().Format(time.RFC3339), giveUp.UTC().Format(time.RFC3339)))
		r.notifyReason(ctx, config.EventCleanupRetrying, r.st.Cleanup.LastError)
		if err := workflow.Sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(2*pause, maxCleanupPause)
	}
}

// cleanUpRound is one attempt at the whole cleanup: the undo stack, from
// the top. Every load balancer is switched back, not only those known to be
// on green: a switch that failed may have half happened, and a switch to
// where a load balancer already points is a no-op. Green is deleted only
// once all of them are confirmed on blue, since its undo is below theirs.
func (r *rollout) cleanUpRound(ctx workflow.Context) error {
	return r.undos.run(ctx)
}

// deleteGreen undoes createGreen: every -next server is deleted, found by
// label, whether or not the rollout learnt of it. When a create did not
// report back (an abort or a deadline cut it short), Linode may still
// commit it after the first sweep, so green is swept again once such a
// create has settled. A cleanup-only run knows no creates of its own: it
// goes by what the failed run learnt (leftAllCreated).
func (r *rollout) deleteGreen(ctx workflow.Context) error {
	unsure := len(r.st.Green) < len(r.plan.Fleet.Nameservers)
	if err := r.sweepGreen(ctx); err != nil {
		return err
	}
	if unsure && r.leftAllCreated() && workflow.GetVersion(ctx, versionCleanupTrustsLeft, workflow.DefaultVersion, 1) >= 1 {
		unsure = false
	}
	if !unsure || workflow.GetVersion(ctx, versionSweepGreenAgain, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if err := workflow.Sleep(ctx, createSettle); err != nil {
		return err
	}
	return r.sweepGreen(ctx)
}

// versionSweepGreenAgain marks the second sweep of green after a create
// that did not report back; runs from before it swept once.
const versionSweepGreenAgain = "sweep-green-again"

// versionCleanupTrustsLeft: version 1 of a cleanup-only run skips the
// second sweep when the failed run recorded every create as finished
// (leftAllCreated); before, such a run always waited createSettle.
const versionCleanupTrustsLeft = "cleanup-trusts-left"

// leftAllCreated reports whether this is a cleanup-only run whose failed
// run learnt the ID of every -next server it may have created: each
// server it left has an ID, and so has the -next server of each of the
// fleet's nameservers. Its creates then all reported back, and none can
// still appear after the sweep. A server left without an ID, or a
// nameserver whose -next server it does not list (a run terminated while
// creating lists only the servers it learnt), may be a create cut short.
func (r *rollout) leftAllCreated() bool {
	if r.cleanupOf == "" {
		return false
	}
	known := map[string]bool{}
	for _, l := range r.leftGreen {
		if l.ID == 0 {
			return false
		}
		known[l.Name] = true
	}
	for _, ns := range r.plan.Fleet.Nameservers {
		if !known[dnsroll.NextLabel(ns.Label)] {
			return false
		}
	}
	return true
}

// createSettle is how long a create cut short may take to show in the
// Linode API: the request may have reached it as the step was cancelled.
const createSettle = 30 * time.Second

func (r *rollout) sweepGreen(ctx workflow.Context) error {
	in := activities.DeleteGreenInput{Tag: r.plan.Fleet.Tag(), Labels: r.greenLabels()}
	for _, l := range r.leftGreen {
		if l.ID != 0 {
			in.IDs = append(in.IDs, l.ID)
		}
	}
	var res activities.StepResult
	if err := r.st.exec(ctx, "DeleteGreen", "", r.cleanupOptions(ctx), a.DeleteGreen, in, &res); err != nil {
		return err
	}
	r.st.Green = map[string]dnsroll.Server{}
	return nil
}

// switchBackToBlue undoes a switch made with the driver's playbook.
func (r *rollout) switchBackToBlue(ctx workflow.Context) error {
	return r.switchLBs(ctx, r.plan.Fleet.LoadBalancers, r.st.Blue, "SwitchBackToBlue", false)
}

// greenLabels are the fleet's green labels, then those of the servers an
// earlier run left that the fleet no longer names.
func (r *rollout) greenLabels() []string {
	var labels []string
	for _, ns := range r.plan.Fleet.Nameservers {
		labels = append(labels, dnsroll.NextLabel(ns.Label))
	}
	for _, l := range r.leftGreen {
		if !contains(labels, l.Name) {
			labels = append(labels, l.Name)
		}
	}
	return labels
}

// leftovers lists what a failed cleanup leaves: the load balancers that
// may still be on green, then every -next server, which may exist even if
// the rollout never learnt of it (a create that timed out).
func (r *rollout) leftovers() []Leftover {
	var out []Leftover
	if r.trafficMoved() {
		for _, lb := range r.plan.Fleet.LoadBalancers {
			if !contains(r.st.OnGreen, lb.Name) {
				continue
			}
			var blues []string
			for _, label := range lb.Fronts {
				if b, ok := r.st.Blue[label]; ok {
					label += " (" + b.DNSAddr() + ")"
				}
				blues = append(blues, label)
			}
			action := "point back at blue " + strings.Join(blues, ", ")
			out = append(out, Leftover{Kind: LeftoverLoadBalancer, Name: lb.Name, Action: action})
		}
	}
	for _, ns := range r.plan.Fleet.Nameservers {
		l := Leftover{Kind: LeftoverServer, Name: dnsroll.NextLabel(ns.Label), Action: "delete if it exists"}
		if s, ok := r.st.Green[ns.Label]; ok {
			l.ID, l.Action = s.ID, "delete"
		}
		out = append(out, l)
	}
	// What an earlier run left stays listed, with its ID, until a cleanup
	// deletes it, so that the next cleanup-only run deletes it too.
	return AddLeft(out, r.leftGreen...)
}

// AddLeft adds to left each of more that it does not list yet, by kind
// and name. One it lists without an ID takes the ID that more gives it:
// a list by label would miss a server whose nameserver the fleet dropped.
func AddLeft(left []Leftover, more ...Leftover) []Leftover {
	for _, l := range more {
		i := slices.IndexFunc(left, func(have Leftover) bool { return have.Kind == l.Kind && have.Name == l.Name })
		switch {
		case i < 0:
			left = append(left, l)
		case left[i].ID == 0:
			left[i] = l
		}
	}
	return left
}

// cleanupOnly is a run started by a CleanupRequest: it loads the fleet,
// assumes any load balancer may be on green, and runs the cleanup.
func (r *rollout) cleanupOnly(ctx workflow.Context, in RolloutInput) error {
	r.st.Blue, r.cleanupOf = in.CleanUp.Blue, in.CleanUp.From
	// Only -next servers: whatever the request says, a blue is never
	// deleted by its label.
	for _, l := range in.CleanUp.Left {
		if _, next := dnsroll.FinalLabel(l.Name); l.Kind == LeftoverServer && next {
			r.leftGreen = append(r.leftGreen, l)
		}
	}
	r.event(ctx, "cleanup of "+in.CleanUp.From+" requested"+SignalInput{By: in.RequestedBy, Reason: in.Reason}.describe())
	// The first step of the undo: it must not wait behind forward steps either.
	if err := r.st.exec(ctx, "LoadFleet", in.Fleet, undoStep(ctx, planOptions), a.LoadFleet, in.Fleet, &r.plan.Fleet); err != nil {
		return err
	}
	// A replacement's new load balancers that the failed run switched too.
	for _, lb := range in.ExtraLoadBalancers {
		if !slices.ContainsFunc(r.plan.Fleet.LoadBalancers, func(have config.LoadBalancer) bool { return have.Name == lb.Name }) {
			r.plan.Fleet.LoadBalancers = append(r.plan.Fleet.LoadBalancers, lb)
		}
	}
	r.undos.push(UndoDeleteGreen, r.deleteGreen)
	r.undos.push(UndoSwitchBackToBlue, r.switchBackToBlue)
	// Which load balancers the failed run left on green is not known: each
	// counts as on green until its switch back is confirmed, so that one
	// that fails is listed in cleanup.left.
	for _, lb := range r.plan.Fleet.LoadBalancers {
		r.markOnGreen(lb.Name, true)
	}
	r.notes.start(ctx, r.plan.Fleet.Notifications.Webhooks, r.event)
	return errCleanupOnly
}

// errCleanupOnly sends a cleanup run straight to compensation.
var errCleanupOnly = temporal.NewNonRetryableApplicationError("cleanup requested", "CleanupOnly", nil)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
