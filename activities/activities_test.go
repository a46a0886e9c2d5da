package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// A step heartbeats often enough for the shortest steps.heartbeat_timeout
// (1s): two heartbeats may be late before the step is taken for a dead
// worker's. Before, it heartbeat every 2s whatever the timeout, and with
// one under about 3s every step longer than that was timed out and tried
// again until its deadline.
func TestHeartbeatsWithinAShortTimeout(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	busy := func(ctx context.Context) error {
		stop := keepAlive(ctx, "waiting on a load balancer")
		defer stop()
		time.Sleep(1500 * time.Millisecond)
		return nil
	}
	env.RegisterActivityWithOptions(busy, activity.RegisterOptions{Name: "Busy"})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: time.Second})
		return workflow.ExecuteActivity(ctx, "Busy").Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "Wf"})
	var beats atomic.Int32
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { beats.Add(1) })
	env.ExecuteWorkflow("Wf")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("a live step of 1.5s with a 1s heartbeat timeout: %v", err)
	}
	if beats.Load() == 0 {
		t.Error("no heartbeat reached the server")
	}
}
