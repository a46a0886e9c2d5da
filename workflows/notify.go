package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
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

// startNotifier starts the one sender that delivers notifications in order,
// on a context that survives cancellation so "aborted" still goes out.
func (r *rollout) startNotifier(ctx workflow.Context) {
	if len(r.plan.Fleet.Notifications.Webhooks) == 0 {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	r.notices = workflow.NewBufferedChannel(ctx, 64)
	r.notifier = workflow.NewWaitGroup(ctx)
	r.notifier.Add(1)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer r.notifier.Done()
		actx := workflow.WithActivityOptions(ctx, notifyOptions)
		var in activities.NotifyInput
		for r.notices.Receive(ctx, &in) {
			if err := workflow.ExecuteActivity(actx, a.Notify, in).Get(ctx, nil); err != nil {
				r.event(ctx, "notification "+in.Event+" not delivered: "+reason(err))
			}
		}
	})
}

// notify queues event for every webhook that wants it, with the rollout's
// failure as the reason.
func (r *rollout) notify(ctx workflow.Context, event string) {
	r.notifyReason(ctx, event, r.st.Failure)
}

func (r *rollout) notifyReason(ctx workflow.Context, event, reason string) {
	if r.notices == nil || event == "" {
		return
	}
	r.noticeN++
	for _, w := range r.plan.Fleet.Notifications.Webhooks {
		if !w.Wants(event) {
			continue
		}
		in := activities.NotifyInput{
			Webhook: w, Event: event, Fleet: r.st.Fleet, Revision: r.st.Revision,
			Phase: string(r.st.Phase), Reason: reason, Seq: r.noticeN,
		}
		if !r.notices.SendAsync(in) {
			r.event(ctx, "notification "+event+" dropped: queue full")
		}
	}
}

// drainNotifications waits until every queued notification was sent or
// given up on, so the workflow does not end with deliveries pending.
func (r *rollout) drainNotifications(ctx workflow.Context) {
	if r.notices == nil {
		return
	}
	r.notices.Close()
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	r.notifier.Wait(ctx)
}
