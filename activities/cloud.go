package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
)

// pollInterval is how often EnsureServer checks a booting server, and
// DeleteServer a deleting one, unless Activities.PollInterval says.
var pollInterval = 2 * time.Second

// poll is how often the steps check a server that is booting or being
// deleted.
func (a *Activities) poll() time.Duration {
	if a.PollInterval > 0 {
		return a.PollInterval
	}
	return pollInterval
}

// EnsureServer makes sure a running, fleet-tagged server with the spec's
// label exists, creating it only if no such server exists. Running it twice,
// or after a create whose response was lost, yields the same one server.
func (a *Activities) EnsureServer(ctx context.Context, in EnsureServerInput) (ServerResult, error) {
	defer keepAlive(ctx, "ensuring "+in.Spec.Label)()
	log := activity.GetLogger(ctx)
	var err error
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return ServerResult{}, failure(ctx, err)
	}
	tag := in.Fleet.Tag()
	s, found, err := a.findByLabel(ctx, tag, in.Spec.Label)
	if err != nil {
		return ServerResult{}, failure(ctx, err)
	}
	if found && s.Status != dnsroll.StatusDeleting && !in.KeepUnlike {
		// A server an earlier rollout left is reused only as the fleet
		// now describes it: it goes, and a new one is created.
		if unlike := in.Spec.Unlike(s); unlike != "" {
			log.Info("replacing a server left by an earlier run", "label", s.Label, "id", s.ID, "unlike", unlike)
			heartbeat(ctx, fmt.Sprintf("deleting %s (Linode %d) left by an earlier run: %s", s.Label, s.ID, unlike))
			if err := a.Cloud.Delete(ctx, s.ID); err != nil {
				return ServerResult{}, failure(ctx, err)
			}
			s.Status = dnsroll.StatusDeleting
		}
	}
	if found && s.Status == dnsroll.StatusDeleting {
		// An earlier rollout's green on its way out holds the label.
		if err := a.waitGone(ctx, s); err != nil {
			return ServerResult{}, failure(ctx, err)
		}
		// Its keys go with it, those given to its label included, before
		// the new server is given its own.
		a.forgetKeys(ctx, tag, s)
		found = false
	}
	created := false
	if !found {
		var userData []byte
		// Only a server met over SSH (meetNewServer) checks a given key.
		if in.Fleet.Ansible.Connection == "ssh" && in.Fleet.Ansible.HostKeys != config.HostKeysFirstUse && a.HostKeys != nil {
			if userData, err = a.HostKeys.Give(in.Fleet.Name, in.Spec.Label); err != nil {
				return ServerResult{}, failure(ctx, err)
			}
		}
		s, err = a.create(ctx, in.Fleet.Steps.HeartbeatTimeout.D(), in.Spec, userData)
		if dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
			// The label exists. If it is ours, an earlier create succeeded
			// and only its response was lost; otherwise never touch it.
			if s, found, err = a.findByLabel(ctx, tag, in.Spec.Label); err == nil && !found {
				err = a.labelTaken(ctx, tag, in.Spec.Label)
			}
			if err == nil && s.Status == dnsroll.StatusDeleting {
				err = fmt.Errorf("label %s is held by Linode %d, a server of this fleet on its way out: creating it again once it is gone", in.Spec.Label, s.ID)
			}
		}
		if err != nil {
			return ServerResult{}, failure(ctx, err)
		}
		created = !found
		log.Info("created server", "label", s.Label, "id", s.ID)
	}
	s, err = a.waitRunning(ctx, in.Fleet, s)
	if err != nil {
		return ServerResult{}, failure(ctx, err)
	}
	return ServerResult{Server: s, Created: created, Attempt: attempt(ctx)}, nil
}

// create creates the server within bound, the step's heartbeat timeout
// (or minCreateBound, if longer). A worker cut off from Temporal stops
// heartbeating, and once the timeout passes another worker takes the step
// over: a create this one still ran (linodego retries a 429 for minutes)
// could land after the rollout's cleanup was done, and leave a server
// nobody tracks. A create abandoned at the bound that Linode did make is
// found by label on the retry.
func (a *Activities) create(ctx context.Context, bound time.Duration, spec dnsroll.ServerSpec, userData []byte) (dnsroll.Server, error) {
	if bound <= 0 {
		return a.Cloud.Create(ctx, spec, userData)
	}
	bound = max(bound, minCreateBound)
	bounded, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	s, err := a.Cloud.Create(bounded, spec, userData)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil {
		return s, fmt.Errorf("creating %s did not finish within the step's heartbeat timeout (%s), after which another worker may take the step over: asking again", spec.Label, bound)
	}
	return s, err
}

// minCreateBound is the least time a create is given, whatever the
// heartbeat timeout: Linode's create answers in seconds, but not in one.
var minCreateBound = 30 * time.Second

// labelTaken says why a create or a rename was refused as a duplicate
// label: one outside the fleet holds it, or the fleet's own in other
// letter case, refusals that name it; or the fleet's holder is on its way
// out, or none is listed yet (Linode's lists lag its creates, and a
// deleted instance's label may be freed a moment after its GET answers
// 404), errors a retry may clear.
func (a *Activities) labelTaken(ctx context.Context, tag, label string) error {
	holders, err := a.Cloud.Holding(ctx, []string{label})
	if err != nil {
		return fmt.Errorf("label %s: Linode refused it as taken, and looking up its holder failed: %w", label, err)
	}
	for _, h := range holders {
		switch {
		case !h.HasTag(tag):
			return dnsroll.Errorf(dnsroll.ECONFLICT, "label %s is taken by Linode %d (%s), not this fleet's (tag %s): rename or delete it by hand", label, h.ID, preflight.TagsOf(h), tag)
		case h.Label != label:
			return dnsroll.Errorf(dnsroll.ECONFLICT, "label %s is taken by Linode %d, labelled %s (Linode's labels ignore letter case): rename or delete it by hand", label, h.ID, h.Label)
		case h.Status == dnsroll.StatusDeleting:
			return fmt.Errorf("label %s is still held by %s, which is deleting; retrying once it is gone", label, h)
		default:
			// A create whose answer was lost made it, or a deletion has not
			// shown yet: the retry finds out.
			return fmt.Errorf("label %s is held by %s, this fleet's, which is not being deleted: asking again (a create whose answer was lost, or a deletion not shown yet, clears it)", label, h)
		}
	}
	return fmt.Errorf("label %s: Linode refused it as taken, but lists no instance that holds it: asking again, as its lists lag its creates and deletes for a moment "+
		"(if this goes on, the holder is one this token cannot see: a restricted user lists only the Linodes it has grants on)", label)
}

func (a *Activities) findByLabel(ctx context.Context, tag, label string) (dnsroll.Server, bool, error) {
	servers, err := a.Cloud.List(ctx, tag)
	if err != nil {
		return dnsroll.Server{}, false, err
	}
	for _, s := range servers {
		if s.Label == label && s.HasTag(tag) {
			return s, true, nil
		}
	}
	return dnsroll.Server{}, false, nil
}

// stuckAfter is how long a server may show a status that Linode does not
// leave by itself (stuck) before waitRunning gives up on it.
var stuckAfter = time.Minute

// stuck are the statuses that never turn into running unless someone acts:
// a boot the watchdog gave up on, a shutdown, maintenance, a billing hold.
var stuck = map[string]bool{"offline": true, "stopped": true, "billing_suspension": true}

// waitRunning polls until the server is running, heartbeating so that a
// crashed worker's wait is picked up by another. A server stuck for
// stuckAfter is an error of code ECONFLICT, which no retry of the step
// clears: the run stops and deletes what it created.
func (a *Activities) waitRunning(ctx context.Context, fleet *config.Fleet, s dnsroll.Server) (dnsroll.Server, error) {
	// Linode is polled every a.poll(), and the step heartbeats the
	// last status as often as its heartbeat timeout wants, which may be
	// more often.
	var last atomic.Value
	last.Store(s.Label + " is " + s.Status)
	defer heartbeatEvery(ctx, 2*time.Second, last.Load)()
	var stuckSince time.Time
	for {
		if s.Status == "running" {
			return a.withDNSPort(fleet, s), nil
		}
		switch {
		case !stuck[s.Status]:
			stuckSince = time.Time{}
		case stuckSince.IsZero():
			stuckSince = time.Now()
		case time.Since(stuckSince) >= stuckAfter:
			return s, dnsroll.Errorf(dnsroll.ECONFLICT, "%s (Linode %d) has been %s for %s, and Linode does not start it by itself "+
				"(a boot that failed, a shutdown, maintenance or a billing hold); the run stops and deletes the servers it created, "+
				"and a retry creates new ones", s.Label, s.ID, s.Status, stuckAfter)
		}
		last.Store(fmt.Sprintf("%s is %s", s.Label, s.Status))
		heartbeat(ctx, last.Load())
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(a.poll()):
		}
		var err error
		if s, err = a.Cloud.Get(ctx, s.ID); err != nil {
			return s, err
		}
	}
}

// DeleteServer deletes one fleet-tagged nameserver (a rollout's blue). A
// server that is already gone counts as deleted; a server without the
// fleet tag is never deleted; one that a load balancer of the fleet's
// current file may still answer from is kept, with an error the step
// retries (keepServed).
func (a *Activities) DeleteServer(ctx context.Context, in DeleteServerInput) (StepResult, error) {
	defer keepAlive(ctx, "deleting "+in.Server.Label)()
	if err := a.keepServed(ctx, in.Tag, in.Server); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	return a.deleteServer(ctx, in)
}

// deleteServer is DeleteServer without asking the load balancers: that of
// a load balancer's own server, which none answers from.
func (a *Activities) deleteServer(ctx context.Context, in DeleteServerInput) (StepResult, error) {
	s, err := a.Cloud.Get(ctx, in.Server.ID)
	if errors.Is(err, dnsroll.ErrNotFound) {
		a.forgetKeys(ctx, in.Tag, in.Server)
		return StepResult{Attempt: attempt(ctx), Note: "already deleted"}, nil
	}
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if !s.HasTag(in.Tag) {
		return StepResult{}, failure(ctx, refuse("refusing to delete %s: it lacks tag %s", s, in.Tag))
	}
	if s.Status != dnsroll.StatusDeleting {
		if err := a.Cloud.Delete(ctx, s.ID); err != nil {
			return StepResult{}, failure(ctx, err)
		}
	}
	// Linode shows a deleted instance as "deleting", with its label still
	// taken, for a while; the rename that follows needs the label free.
	if err := a.waitGone(ctx, s); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	activity.GetLogger(ctx).Info("deleted server", "label", s.Label, "id", s.ID)
	a.forgetKeys(ctx, in.Tag, s)
	return StepResult{Attempt: attempt(ctx)}, nil
}

// forgetKeys removes the host keys of s, a deleted server of the fleet
// whose tag is tag. A failure is only logged: the server is gone either
// way, and a later instance at its address replaces what is left (see
// HostKeys.TrustNew).
func (a *Activities) forgetKeys(ctx context.Context, tag string, s dnsroll.Server) {
	if a.HostKeys == nil {
		return
	}
	fleet, _ := config.FleetOfTag(tag)
	if err := a.HostKeys.Forget(s.IPv4, ServerID(s), fleet, s.Label); err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("could not remove a deleted server's SSH host keys", "label", s.Label, "addr", s.IPv4, "error", err)
	}
}

// waitGone polls until the instance is gone, heartbeating while it waits.
func (a *Activities) waitGone(ctx context.Context, s dnsroll.Server) error {
	var last atomic.Value
	last.Store(s.Label + " is being deleted")
	defer heartbeatEvery(ctx, 2*time.Second, last.Load)()
	for {
		cur, err := a.Cloud.Get(ctx, s.ID)
		if errors.Is(err, dnsroll.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		last.Store(fmt.Sprintf("%s is %s", s.Label, cur.Status))
		heartbeat(ctx, last.Load())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.poll()):
		}
	}
}

// DeleteGreen deletes every fleet-tagged -next server whose label is in
// Labels or whose ID is in IDs. It is the undo of EnsureServer and works
// without knowing server IDs. A label without -next is never deleted: a
// blue named by mistake stays.
func (a *Activities) DeleteGreen(ctx context.Context, in DeleteGreenInput) (StepResult, error) {
	defer keepAlive(ctx, "deleting green")()
	servers, err := a.Cloud.List(ctx, in.Tag)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	want := map[string]bool{}
	for _, l := range in.Labels {
		want[l] = true
	}
	var deleted []dnsroll.Server
	for _, s := range servers {
		_, next := dnsroll.FinalLabel(s.Label)
		if !next || !want[s.Label] && !slices.Contains(in.IDs, s.ID) || !s.HasTag(in.Tag) {
			continue
		}
		if s.Status != dnsroll.StatusDeleting {
			if err := a.Cloud.Delete(ctx, s.ID); err != nil {
				return StepResult{}, failure(ctx, err)
			}
		}
		deleted = append(deleted, s)
	}
	// Done means gone: a retry of the rollout must find the labels free.
	for _, s := range deleted {
		if err := a.waitGone(ctx, s); err != nil {
			return StepResult{}, failure(ctx, err)
		}
		a.forgetKeys(ctx, in.Tag, s)
	}
	return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("deleted %d server(s)", len(deleted))}, nil
}

// RenameServer gives a green server its final label by stripping exactly
// the "-next" suffix. It only touches fleet-tagged servers, and a server
// that already has the final label counts as renamed.
func (a *Activities) RenameServer(ctx context.Context, in RenameInput) (StepResult, error) {
	defer keepAlive(ctx, "renaming "+in.Server.Label)()
	s, err := a.Cloud.Get(ctx, in.Server.ID)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	if !s.HasTag(in.Tag) {
		return StepResult{}, failure(ctx, refuse("refusing to rename %s: it lacks tag %s", s, in.Tag))
	}
	if s.Label == in.To {
		return StepResult{Attempt: attempt(ctx), Note: "already renamed"}, nil
	}
	final, ok := dnsroll.FinalLabel(s.Label)
	if !ok || final != in.To {
		return StepResult{}, failure(ctx, refuse("refusing to rename %s to %s: only a %s suffix is stripped", s.Label, in.To, dnsroll.NextSuffix))
	}
	if err := a.Cloud.Rename(ctx, s.ID, in.To); err != nil {
		if dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
			err = a.labelTaken(ctx, in.Tag, in.To)
		}
		return StepResult{}, failure(ctx, err)
	}
	return StepResult{Attempt: attempt(ctx)}, nil
}
