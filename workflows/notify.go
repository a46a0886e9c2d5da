package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
)

// notifyOptions retry a webhook for about half a minute; after that the
// event is dropped with a note, since a notification must never hold up or
// fail a rollout.
var notifyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	HeartbeatTimeout:    10 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    5,
	},
}

// notifyDrainWait bounds how long a workflow that has its outcome waits for
// deliveries still pending (version "bounded-notify-drain"): its workflow
// ID, and so the fleet, stays taken until it closes, and a webhook that is
// down must not keep the next rollout out for minutes.
const notifyDrainWait = 30 * time.Second

// notifier delivers a workflow's webhook notifications in order, from one
// sender on a context that survives cancellation, so "aborted" still goes
// out. One that was never started (no webhooks) sends nothing.
type notifier struct {
	webhooks []config.Webhook
	// event records a delivery that failed or was dropped.
	event func(workflow.Context, string)
	queue workflow.Channel
	done  workflow.WaitGroup
	seq   int
	// pending are the deliveries queued or being sent, oldest first, as
	// "event (webhook)".
	pending []string
}

// start starts the sender, if any webhook is configured.
func (n *notifier) start(ctx workflow.Context, webhooks []config.Webhook, event func(workflow.Context, string)) {
	if len(webhooks) == 0 {
		return
	}
	n.webhooks, n.event = webhooks, event
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	n.queue = workflow.NewBufferedChannel(ctx, 64)
	n.done = workflow.NewWaitGroup(ctx)
	n.done.Add(1)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer n.done.Done()
		// Webhooks whose last delivery was given up on, by name.
		down := map[string]bool{}
		var in activities.NotifyInput
		for n.queue.Receive(ctx, &in) {
			opts := deliveryOptions(down[in.Webhook.Name])
			if undoEvents[in.Event] {
				opts = undoStep(ctx, opts)
			}
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.Notify, in).Get(ctx, nil)
			n.pending = n.pending[1:]
			down[in.Webhook.Name] = err != nil
			if err != nil {
				n.event(ctx, "notification "+in.Event+" not delivered: "+reason(err))
			}
		}
	})
}

// undoEvents are the notifications of an undo and of a run's end without
// success: they go with the undo steps, on the undo queue, which forward
// steps filling every slot cannot hold up until the drain gives them up.
var undoEvents = map[string]bool{config.EventFailed: true, config.EventAborted: true,
	config.EventRolledBack: true, config.EventCleanupRetrying: true}

// deliveryOptions are notifyOptions, with a single attempt for a webhook
// whose last delivery was given up on: a receiver that is down then costs
// each later event one try, not half a minute of retries, while one that
// comes back is used again at once.
func deliveryOptions(down bool) workflow.ActivityOptions {
	o := notifyOptions
	if down {
		p := *o.RetryPolicy
		p.MaximumAttempts = 1
		o.RetryPolicy = &p
	}
	return o
}

// send queues event for every webhook that wants it; about carries the
// fleet, phase and reason.
func (n *notifier) send(ctx workflow.Context, event string, about activities.NotifyInput) {
	if n.queue == nil || event == "" {
		return
	}
	n.seq++
	for _, w := range n.webhooks {
		if !w.Wants(event) {
			continue
		}
		in := about
		in.Webhook, in.Event, in.Seq = w, event, n.seq
		if !n.queue.SendAsync(in) {
			n.event(ctx, "notification "+event+" dropped: queue full")
			continue
		}
		n.pending = append(n.pending, event+" ("+w.Name+")")
	}
}

// drain waits until every queued notification was sent or given up on, so
// the workflow does not end with deliveries pending, but for notifyDrainWait
// at the most: those still pending then are given up on, with an event.
func (n *notifier) drain(ctx workflow.Context) {
	if n.queue == nil {
		return
	}
	n.queue.Close()
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if workflow.GetVersion(ctx, "bounded-notify-drain", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		n.done.Wait(ctx)
		return
	}
	drained, err := workflow.AwaitWithTimeout(ctx, notifyDrainWait, func() bool { return len(n.pending) == 0 })
	if err == nil && !drained {
		n.event(ctx, fmt.Sprintf("notifications still pending at the end, given up after %s: %s", notifyDrainWait, strings.Join(n.pending, ", ")))
	}
}

// notify queues event for every webhook that wants it, with the rollout's
// failure as the reason.
func (r *rollout) notify(ctx workflow.Context, event string) {
	r.notifyReason(ctx, event, r.st.Failure)
}

func (r *rollout) notifyReason(ctx workflow.Context, event, reason string) {
	in := activities.NotifyInput{Fleet: r.st.Fleet, Revision: r.st.Revision, Phase: string(r.st.Phase), Reason: reason}
	if event == config.EventAwaitingApproval {
		in.ApprovalGate = r.st.ApprovalGate
	}
	r.notes.send(ctx, event, in)
}
