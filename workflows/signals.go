package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// listenForSignals turns abort and rollback signals into a stop of the
// forward steps. Once blue deletion has begun, there is nothing to roll back
// to: the signal is recorded as rejected and the rollout carries on.
func (r *rollout) listenForSignals(ctx workflow.Context) {
	abort := workflow.GetSignalChannel(ctx, SignalAbort)
	rollback := workflow.GetSignalChannel(ctx, SignalRollback)
	approve := workflow.GetSignalChannel(ctx, SignalApprove)
	for {
		sel := workflow.NewSelector(ctx)
		// A slice, not a map: workflow code must not depend on map order.
		for _, sig := range []struct {
			name string
			ch   workflow.ReceiveChannel
		}{{SignalAbort, abort}, {SignalRollback, rollback}, {SignalApprove, approve}} {
			name := sig.name
			sel.AddReceive(sig.ch, func(c workflow.ReceiveChannel, _ bool) {
				var in SignalInput
				c.Receive(ctx, &in)
				if name == SignalApprove {
					r.onApprove(ctx, in)
				} else {
					r.onStopSignal(ctx, name, in)
				}
			})
		}
		sel.Select(ctx)
	}
}

func (r *rollout) onStopSignal(ctx workflow.Context, name string, in SignalInput) {
	switch {
	case r.st.Phase.Done():
		r.event(ctx, name+" ignored: the rollout has ended")
	case r.committed:
		r.event(ctx, name+" rejected: blue servers are being deleted, so there is nothing to roll back to; roll out the previous revision instead")
	case r.stop != nil:
		r.event(ctx, name+" ignored: already stopping ("+r.stop.signal+")")
	default:
		r.stop = &stopRequest{signal: name, in: in}
		r.event(ctx, name+" requested"+in.describe())
		r.cancelSteps()
	}
}

func (r *rollout) event(ctx workflow.Context, msg string) {
	r.st.Events = append(r.st.Events, Event{At: workflow.Now(ctx), Message: msg})
	workflow.GetLogger(ctx).Info(msg, "fleet", r.st.Fleet)
}

func (r *rollout) onApprove(ctx workflow.Context, in SignalInput) {
	if r.st.Phase != PhaseAwaitingApproval {
		r.event(ctx, "approve ignored: the rollout is "+string(r.st.Phase)+", not awaiting approval")
		return
	}
	r.approved = true
	r.event(ctx, "approved"+in.describe())
}
