package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dnsroll/dnsroll/internal/temporaltest"
)

// On a real server, a step whose deadline passes before any worker
// starts it says so, and what to do; one that ran and kept failing
// until its deadline still gives its last error; one that ran, alive,
// until its deadline passed says it timed out, not that it never
// started: more workers would not have helped it. A step that used up
// steps.max_attempts records them all. The test environment starts every
// step at once, so it cannot show the first, and it does not report the
// attempts used up.
func TestReasonOfAStepThatNeverStarted(t *testing.T) {
	c := temporaltest.DevServer(t)
	const queue = "reason-never-started"
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(deadlineReasons, workflow.RegisterOptions{Name: "TestDeadlineReasons"})
	w.RegisterActivityWithOptions(func(context.Context) error { return errors.New("the cloud answered 503") }, activity.RegisterOptions{Name: "TestUnavailable"})
	w.RegisterActivityWithOptions(func(ctx context.Context) error {
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, activity.RegisterOptions{Name: "TestSlow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "TestDeadlineReasons")
	var got [4]string
	if err == nil {
		err = run.Get(ctx, &got)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := neverStartedReason; got[0] != want {
		t.Errorf("reason of the step no worker started = %q, want %q", got[0], want)
	}
	// The server ends the retries of a step whose next attempt would pass
	// its deadline with the last attempt's error, not a timeout: only the
	// retry state tells that it was the deadline that stopped them.
	if want := "gave up at the step deadline; last error: the cloud answered 503"; got[1] != want {
		t.Errorf("reason of the step that failed until its deadline = %q, want %q", got[1], want)
	}
	if !strings.Contains(got[2], "timed out") || strings.Contains(got[2], "never started") {
		t.Errorf("reason of the step that ran until its deadline = %q, want it timed out", got[2])
	}
	if want := "2 attempts: the cloud answered 503"; got[3] != want {
		t.Errorf("the step that used up its attempts = %q, want %q", got[3], want)
	}
}

// deadlineReasons runs a step of 3 s on a queue that no worker polls, one
// that always fails, and one that runs, heartbeating, past its deadline,
// and returns the reason of each error; then one that always fails, of at
// most two attempts, and returns the attempts recorded and its reason.
func deadlineReasons(ctx workflow.Context) ([4]string, error) {
	o := stepOptions(3*time.Second, time.Second, 500*time.Millisecond, time.Second, 0)
	var out [4]string
	for i, step := range []string{"TestUnpolled", "TestUnavailable", "TestSlow"} {
		if step == "TestUnpolled" {
			o.TaskQueue = "nobody-polls-this-queue"
		} else {
			o.TaskQueue = ""
		}
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), step).Get(ctx, nil)
		if err == nil {
			return out, errors.New(step + " succeeded")
		}
		out[i] = reason(err)
	}
	o = stepOptions(time.Minute, time.Second, 100*time.Millisecond, 100*time.Millisecond, 2)
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), "TestUnavailable").Get(ctx, nil)
	out[3] = fmt.Sprintf("%d attempts: %s", failedAttempts(err, o.RetryPolicy.MaximumAttempts), reason(err))
	return out, nil
}
