package activities

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll"
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

// slowListCloud takes took over every list, as linodego does while it
// waits out Linode's 429s (up to ten tries, each after as much as 30 s).
type slowListCloud struct {
	Cloud
	took time.Duration
}

func (c slowListCloud) List(ctx context.Context, tag string) ([]dnsroll.Server, error) {
	select {
	case <-time.After(c.took):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.Cloud.List(ctx, tag)
}

// slowStepHeartbeatTimeout is the heartbeat timeout runWithHeartbeatTimeout
// gives a step. It is not the shortest a fleet may set (1s,
// TestHeartbeatsWithinAShortTimeout): a loaded test machine now and then
// stalls a goroutine for longer than the third of a second that leaves,
// and these tests are about steps that send no heartbeat at all.
const slowStepHeartbeatTimeout = 3 * time.Second

// runWithHeartbeatTimeout runs activity name once, in a workflow, with a
// heartbeat timeout of slowStepHeartbeatTimeout and no retry: a step that
// sends no heartbeat for that long is timed out as if its worker had died.
func runWithHeartbeatTimeout(t *testing.T, acts *Activities, name string, in any) error {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(acts)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: slowStepHeartbeatTimeout,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteActivity(ctx, name, in).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "Wf"})
	env.ExecuteWorkflow("Wf")
	return env.GetWorkflowError()
}

// The load balancer replacement's delete and create look servers up by
// label, and a list slowed by Linode's 429s outlasts the heartbeat
// timeout: the steps heartbeat through it. Before, neither did, so a
// healthy attempt was timed out and tried again while it still ran, and
// one cut off from Temporal was never cancelled, being deaf to it.
func TestLoadBalancerStepsHeartbeatThroughASlowList(t *testing.T) {
	c := newCloudEnv(t)
	c.mustEnsure(t, "ns1")
	drv := &pointRecorder{}
	c.acts.Drivers = map[string]LoadBalancer{"nginx": drv, "": drv}
	c.acts.Cloud = slowListCloud{Cloud: c.cloud, took: slowStepHeartbeatTimeout * 3 / 2}
	if err := runWithHeartbeatTimeout(t, c.acts, "CreateLoadBalancer", LoadBalancerInput{Fleet: c.fleet, LB: c.fleet.LoadBalancers[0]}); err != nil {
		t.Errorf("CreateLoadBalancer with a slow list: %v", err)
	}
	if n := c.count("lb1-next"); n != 1 {
		t.Fatalf("%d lb1-next instances, want 1", n)
	}
	if err := runWithHeartbeatTimeout(t, c.acts, "DeleteLoadBalancer", DeleteLoadBalancerInput{Fleet: c.fleet, Label: "lb1-next"}); err != nil {
		t.Errorf("DeleteLoadBalancer with a slow list: %v", err)
	}
	if n := c.count("lb1-next"); n != 0 {
		t.Errorf("%d lb1-next instances after the delete, want 0", n)
	}
}

// refusingRegistrar's SetGlue fails, as a registrar that did not take
// the change does.
type refusingRegistrar struct{ err error }

func (refusingRegistrar) Glue(context.Context, string) ([]registrar.NameServer, error) {
	return nil, nil
}

func (r refusingRegistrar) SetGlue(context.Context, string, []registrar.NameServer) error {
	return r.err
}

// A registrar's refusal is SetGlue's error, with its code: a result
// would tell the workflow the glue change was asked for when it was not.
func TestSetGlueFailsWhenTheRegistrarRefuses(t *testing.T) {
	refused := dnsroll.Errorf(dnsroll.EINVALID, "registrar refused the glue")
	acts := &Activities{Registrars: map[string]RegistrarMaker{
		"refusing": func(context.Context) (registrar.Registrar, error) { return refusingRegistrar{err: refused}, nil },
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := SetGlueInput{Registrar: "refusing", Domain: "example.com", Parent: []string{"192.0.2.53:53"},
		NS: []registrar.NameServer{{Name: "ns.example.net"}}}
	_, err := env.ExecuteActivity(acts.SetGlue, in)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !strings.Contains(err.Error(), "registrar refused the glue") || app.Type() != ErrInvalid {
		t.Fatalf("SetGlue with a refusing registrar: %v, want its error as %s", err, ErrInvalid)
	}
}
