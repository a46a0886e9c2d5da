package api

import (
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// The status query of a run no worker answers waits the whole query
// timeout, which makes each poll of --wait or --follow that long; but it
// waits as a long poll does. A worker that comes back meanwhile takes the
// waiting query at once, and the read answers then, with the run's steps:
// a shorter timeout, or skipping the query of a run recently unanswered,
// would show the worker back no sooner, and could call a slow worker
// gone.
func TestStatusQueryIsAnsweredByAWorkerThatComesBack(t *testing.T) {
	c := temporaltest.DevServer(t, workflows.SearchAttributes...)
	const queue = "api-live"
	startWorker := func() worker.Worker {
		w := worker.New(c, queue, worker.Options{StickyScheduleToStartTimeout: workflows.StickyScheduleToStartTimeout})
		w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			st := workflows.Status{Fleet: "lab", Run: workflows.Run{Phase: workflows.PhaseProvisioning}}
			if err := workflow.SetQueryHandler(ctx, workflows.QueryStatus, func() (workflows.Status, error) { return st, nil }); err != nil {
				return err
			}
			workflow.GetSignalChannel(ctx, "release").Receive(ctx, nil)
			return nil
		}, workflow.RegisterOptions{Name: Rollouts.Type})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	first := startWorker()
	wr, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "rollout-lab", TaskQueue: queue}, Rollouts.Type)
	if err != nil {
		t.Fatal(err)
	}
	run := rollouts.Run{WorkflowID: wr.GetID(), RunID: wr.GetRunID()}
	b := &Temporal{Client: c}
	if ro, err := b.Get(t.Context(), run); err != nil || ro.unanswered != nil || ro.Fleet != "lab" {
		t.Fatalf("with a worker: %+v, %v, unanswered %v", ro.Status, err, ro.unanswered)
	}
	first.Stop()

	const comesBack = 3 * time.Second
	second := make(chan worker.Worker, 1)
	time.AfterFunc(comesBack, func() { second <- startWorker() })
	defer func() { (<-second).Stop() }()
	start := time.Now()
	ro, err := b.Get(t.Context(), run)
	took := time.Since(start)
	if err != nil || ro.unanswered != nil || ro.Fleet != "lab" {
		t.Fatalf("worker back after %s: %+v, %v, unanswered %v (after %s)", comesBack, ro.Status, err, ro.unanswered, took)
	}
	if took >= defaultQueryTimeout-time.Second {
		t.Errorf("the read took %s: want it answered as the worker came back, %s in", took, comesBack)
	}
	t.Logf("answered %s after the read began, the worker back at %s", took, comesBack)
}
