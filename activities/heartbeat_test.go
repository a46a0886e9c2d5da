package activities

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/registrar"
)

// slowRegistrar takes its time over SetGlue, as Route 53 Domains does
// while an operation is IN_PROGRESS: until beat is closed, or at most
// for took.
type slowRegistrar struct {
	beat <-chan struct{}
	took time.Duration
}

func (slowRegistrar) Glue(context.Context, string) ([]registrar.NameServer, error) { return nil, nil }

func (r slowRegistrar) SetGlue(ctx context.Context, _ string, _ []registrar.NameServer) error {
	select {
	case <-r.beat:
		return nil
	case <-time.After(r.took):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A registrar that takes longer than the heartbeat timeout to settle a
// change is heartbeated through: before, SetGlue sent none, so each
// attempt was timed out as if its worker had died, and the replacement
// was undone.
func TestSetGlueHeartbeatsWhileTheRegistrarWorks(t *testing.T) {
	beat := make(chan struct{})
	var once sync.Once
	acts := &Activities{Registrars: map[string]RegistrarMaker{
		"slow": func(context.Context) (registrar.Registrar, error) {
			return slowRegistrar{beat: beat, took: 20 * time.Second}, nil
		},
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	var beats atomic.Int32
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
		beats.Add(1)
		once.Do(func() { close(beat) })
	})
	in := SetGlueInput{Registrar: "slow", Domain: "example.com", Parent: []string{"192.0.2.53:53"},
		NS: []registrar.NameServer{{Name: "lb1.example.com"}}}
	if _, err := env.ExecuteActivity(acts.SetGlue, in); err != nil {
		t.Fatal(err)
	}
	if n := beats.Load(); n == 0 {
		t.Errorf("SetGlue sent no heartbeat in 20 s of the registrar's work")
	}
}

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
