package rollouts

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dnsroll/dnsroll/workflows"
)

// planClient starts plans that never finish, and records terminations.
type planClient struct {
	client.Client
	terminated []string
}

func (c *planClient) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return waitingRun{}, nil
}

func (c *planClient) TerminateWorkflow(_ context.Context, id, _, _ string, _ ...any) error {
	c.terminated = append(c.terminated, id)
	return nil
}

// waitingRun is a run whose result is waited for until ctx ends.
type waitingRun struct{ client.WorkflowRun }

func (waitingRun) GetID() string    { return "plan-lab-1" }
func (waitingRun) GetRunID() string { return "r1" }
func (waitingRun) Get(ctx context.Context, _ any) error {
	<-ctx.Done()
	return ctx.Err()
}

// A plan is terminated when its caller goes away, and only then: one
// whose wait ran out is left to finish, as the API's 504 points at it.
// (TestPlanEndsWhenItsCallerGoesAway does it on a dev server, where the
// SDK's call may end a moment before ctx says why.)
func TestPlanTerminatedOnlyWhenItsCallerGoesAway(t *testing.T) {
	in := workflows.RolloutInput{Fleet: "lab", Revision: "B", LiveUnknown: "not looked up here"}

	c := &planClient{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := Plan(ctx, c, in); !errors.Is(err, context.DeadlineExceeded) || len(c.terminated) != 0 {
		t.Errorf("a plan whose wait ran out: %v, terminated %v; want its deadline, and it left running", err, c.terminated)
	}

	c = &planClient{}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, _, err := Plan(ctx, c, in); !errors.Is(err, context.Canceled) || len(c.terminated) != 1 || c.terminated[0] != "plan-lab-1" {
		t.Errorf("a plan whose caller went away: %v, terminated %v; want it ended", err, c.terminated)
	}
}
