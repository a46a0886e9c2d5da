package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/internal/temporaltest"
	"github.com/dnsroll/dnsroll/workflows"
)

// The worker's options reach the SDK's, with the defaults for those left
// at zero: without a cap, the SDK runs 1,000 steps at once.
func TestSDKOptions(t *testing.T) {
	for _, tt := range []struct {
		name       string
		in         Options
		grace      time.Duration
		activities int
	}{
		{"zero is the defaults", Options{}, DefaultStopGrace, DefaultMaxConcurrentActivities},
		{"set", Options{StopGrace: time.Minute, MaxConcurrentActivities: 3}, time.Minute, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := sdkOptions(tt.in)
			if got, want := o.WorkerStopTimeout, tt.grace; got != want {
				t.Errorf("WorkerStopTimeout = %s, want %s", got, want)
			}
			if got, want := o.MaxConcurrentActivityExecutionSize, tt.activities; got != want {
				t.Errorf("MaxConcurrentActivityExecutionSize = %d, want %d", got, want)
			}
		})
	}
}

// DNSROLL_MAX_CONCURRENT_ACTIVITIES caps a worker's steps; a value that is
// not a count above 0 is refused, naming it.
func TestMaxConcurrentActivitiesFromEnv(t *testing.T) {
	const env = "DNSROLL_MAX_CONCURRENT_ACTIVITIES"
	t.Setenv(env, "")
	if n, err := MaxConcurrentActivitiesFromEnv(); err != nil || n != DefaultMaxConcurrentActivities {
		t.Errorf("unset: %d %v, want %d", n, err, DefaultMaxConcurrentActivities)
	}
	t.Setenv(env, "3")
	if n, err := MaxConcurrentActivitiesFromEnv(); err != nil || n != 3 {
		t.Errorf("3: %d %v", n, err)
	}
	for _, bad := range []string{"0", "-1", "eight", "2.5"} {
		t.Setenv(env, bad)
		if _, err := MaxConcurrentActivitiesFromEnv(); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s: err %v, want one naming %s", bad, err, env)
		}
	}
}

// A worker capped at one step runs two steps scheduled at once one after
// the other, on a real Temporal server; capped at two, together, which
// shows that the test sees an overlap when there is one.
func TestMaxConcurrentActivitiesOnAServer(t *testing.T) {
	c := temporaltest.DevServer(t)
	for _, tt := range []struct {
		cap, want int
		// alone is how long a step waits for the other to start: the
		// longest a step capped at one waits, and under a cap of two the
		// bound on how late the other may start.
		alone time.Duration
	}{
		{cap: 2, want: 2, alone: 30 * time.Second},
		{cap: 1, want: 1, alone: time.Second},
	} {
		o := &overlap{alone: tt.alone, together: make(chan struct{})}
		w := New(c, &activities.Activities{}, Options{MaxConcurrentActivities: tt.cap})
		w.RegisterWorkflowWithOptions(twoStepsAtOnce, workflow.RegisterOptions{Name: "TestTwoStepsAtOnce"})
		w.RegisterActivityWithOptions(o.step, activity.RegisterOptions{Name: "TestOverlapStep"})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("overlap-cap-%d", tt.cap), TaskQueue: workflows.TaskQueue}, "TestTwoStepsAtOnce")
		if err == nil {
			err = run.Get(ctx, nil)
		}
		cancel()
		w.Stop()
		if err != nil {
			t.Fatalf("cap %d: %v", tt.cap, err)
		}
		if o.started != 2 || o.most != tt.want {
			t.Errorf("cap %d: %d steps started, at most %d at once; want 2, at most %d", tt.cap, o.started, o.most, tt.want)
		}
	}
}

// twoStepsAtOnce schedules two steps together and waits for both.
func twoStepsAtOnce(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	first := workflow.ExecuteActivity(ctx, "TestOverlapStep")
	second := workflow.ExecuteActivity(ctx, "TestOverlapStep")
	if err := first.Get(ctx, nil); err != nil {
		return err
	}
	return second.Get(ctx, nil)
}

// overlap counts the steps running at once. A step waits for company
// for up to alone, so that two running together are seen together.
type overlap struct {
	alone    time.Duration
	together chan struct{}
	once     sync.Once

	mu                     sync.Mutex
	running, most, started int
}

func (o *overlap) step(ctx context.Context) error {
	o.mu.Lock()
	o.started++
	o.running++
	o.most = max(o.most, o.running)
	if o.running == 2 {
		o.once.Do(func() { close(o.together) })
	}
	o.mu.Unlock()
	select {
	case <-o.together:
	case <-time.After(o.alone):
	case <-ctx.Done():
	}
	o.mu.Lock()
	o.running--
	o.mu.Unlock()
	return nil
}

// On a real Temporal server, a worker capped at one step whose slot a
// forward step holds still runs an undo step scheduled behind another
// forward step: the undo runs while the holder runs, and the queued
// forward step only after the holder has ended.
func TestUndoStepsDoNotWaitBehindForwardSteps(t *testing.T) {
	c := temporaltest.DevServer(t)
	s := &undoSlots{holding: make(chan struct{}), release: make(chan struct{})}
	w := New(c, &activities.Activities{}, Options{MaxConcurrentActivities: 1})
	w.RegisterWorkflowWithOptions(undoBehindForward, workflow.RegisterOptions{Name: "TestUndoBehindForward"})
	w.RegisterActivityWithOptions(s.hold, activity.RegisterOptions{Name: "TestHold"})
	w.RegisterActivityWithOptions(s.step("forward"), activity.RegisterOptions{Name: "TestForward"})
	w.RegisterActivityWithOptions(s.step("undo"), activity.RegisterOptions{Name: "TestUndo"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	// Before the worker stops, should the undo never run.
	t.Cleanup(s.end)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "undo-behind-forward", TaskQueue: workflows.TaskQueue}, "TestUndoBehindForward")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.holding:
	case <-ctx.Done():
		t.Fatal("the holding step never started")
	}
	if err := c.SignalWorkflow(ctx, run.GetID(), "", "holding", nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("%v (the undo step did not run while the forward steps filled the cap)", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := []string{"hold", "undo while holding", "forward"}
	if len(s.order) != len(want) || s.order[0] != want[0] || s.order[1] != want[1] || s.order[2] != want[2] {
		t.Errorf("steps started: %q, want %q", s.order, want)
	}
}

// undoBehindForward starts TestHold; once told it is holding, it schedules
// a forward step, then an undo step, and waits for all three.
func undoBehindForward(ctx workflow.Context) error {
	o := workflow.ActivityOptions{StartToCloseTimeout: time.Minute}
	hold := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), "TestHold")
	workflow.GetSignalChannel(ctx, "holding").Receive(ctx, nil)
	forward := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), "TestForward")
	// Not a minute: without a poller, the run fails within the test.
	o.ScheduleToCloseTimeout = 5 * time.Second
	o.TaskQueue = workflows.UndoTaskQueue(workflow.GetInfo(ctx).TaskQueueName)
	undo := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), "TestUndo")
	for _, f := range []workflow.Future{undo, hold, forward} {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// undoSlots records the order in which steps start; hold runs until the
// undo step has started.
type undoSlots struct {
	holding, release chan struct{}
	once             sync.Once

	mu    sync.Mutex
	held  bool
	order []string
}

func (s *undoSlots) hold(ctx context.Context) error {
	s.mu.Lock()
	s.held = true
	s.order = append(s.order, "hold")
	s.mu.Unlock()
	close(s.holding)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.held = false
	s.mu.Unlock()
	return nil
}

// step is a step named name that records whether it started while hold
// ran, and ends the hold.
func (s *undoSlots) step(name string) func(context.Context) error {
	return func(context.Context) error {
		s.mu.Lock()
		if s.held {
			name += " while holding"
		}
		s.order = append(s.order, name)
		s.mu.Unlock()
		s.end()
		return nil
	}
}

// end releases the holding step.
func (s *undoSlots) end() { s.once.Do(func() { close(s.release) }) }
