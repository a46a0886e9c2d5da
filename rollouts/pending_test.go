package rollouts

import (
	"context"
	"errors"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dnsroll/dnsroll/workflows"
)

// describeClient answers DescribeWorkflowExecution with pending, or err.
type describeClient struct {
	client.Client
	pending []*workflowpb.PendingActivityInfo
	err     error
}

func (c describeClient) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{PendingActivities: c.pending}, c.err
}

// Pending sorts a rollout's pending steps: one that failed and waits for
// its next attempt, or runs it, is retrying, with its last failure's own
// message and its progress; one on its first attempt is working only
// while it runs and has said how far it is; the rest are neither.
func TestPending(t *testing.T) {
	progress, err := converter.GetDefaultDataConverter().ToPayloads("deleting ns1")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	failed := &failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "[500] Internal Server Error"}}
	pending := func(name string, attempt int32, state enumspb.PendingActivityState, last *failurepb.Failure, details *commonpb.Payloads) *workflowpb.PendingActivityInfo {
		return &workflowpb.PendingActivityInfo{ActivityType: &commonpb.ActivityType{Name: name}, Attempt: attempt, State: state, LastFailure: last,
			HeartbeatDetails: details, LastHeartbeatTime: timestamppb.New(at), ScheduledTime: timestamppb.New(at.Add(time.Minute))}
	}
	c := describeClient{pending: []*workflowpb.PendingActivityInfo{
		pending("Waiting", 3, enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, failed, progress),
		pending("Rerunning", 2, enumspb.PENDING_ACTIVITY_STATE_STARTED, failed, nil),
		pending("Provision", 1, enumspb.PENDING_ACTIVITY_STATE_STARTED, nil, progress),
		pending("Silent", 1, enumspb.PENDING_ACTIVITY_STATE_STARTED, nil, nil),
		pending("Queued", 1, enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, nil, progress),
		// A second attempt after a timeout Temporal records no failure for.
		pending("NoFailure", 2, enumspb.PENDING_ACTIVITY_STATE_STARTED, nil, progress),
	}}
	retrying, working := Pending(context.Background(), c, Run{WorkflowID: "rollout-lab"})
	wantRetrying := []workflows.Retry{
		{Activity: "Waiting", Attempt: 3, LastError: "[500] Internal Server Error", Progress: "deleting ns1", NextAttemptAt: at.Add(time.Minute)},
		{Activity: "Rerunning", Attempt: 2, LastError: "[500] Internal Server Error"},
	}
	wantWorking := []workflows.Working{
		{Activity: "Provision", Progress: "deleting ns1", At: at},
		{Activity: "NoFailure", Progress: "deleting ns1", At: at},
	}
	if len(retrying) != len(wantRetrying) {
		t.Fatalf("retrying %+v, want %+v", retrying, wantRetrying)
	}
	for i := range retrying {
		if retrying[i] != wantRetrying[i] {
			t.Errorf("retrying[%d] = %+v, want %+v", i, retrying[i], wantRetrying[i])
		}
	}
	if len(working) != len(wantWorking) {
		t.Fatalf("working %+v, want %+v", working, wantWorking)
	}
	for i := range working {
		if working[i] != wantWorking[i] {
			t.Errorf("working[%d] = %+v, want %+v", i, working[i], wantWorking[i])
		}
	}
	// Best effort: a describe that fails leaves the status without them.
	if r, w := Pending(context.Background(), describeClient{err: errors.New("unavailable")}, Run{}); r != nil || w != nil {
		t.Errorf("after a failed describe: %+v, %+v; want none", r, w)
	}
}

// A step's last error is what went wrong, not Temporal's wrapping of it:
// the innermost message that says something, or for a timeout, which
// deadline, named as the step's own error names it.
func TestFailureMessage(t *testing.T) {
	timeout := func(tt enumspb.TimeoutType, cause *failurepb.Failure) *failurepb.Failure {
		return &failurepb.Failure{Message: "activity timeout", Cause: cause,
			FailureInfo: &failurepb.Failure_TimeoutFailureInfo{TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{TimeoutType: tt}}}
	}
	for _, tt := range []struct {
		f    *failurepb.Failure
		want string
	}{
		{&failurepb.Failure{Message: "[429] Too Many Requests"}, "[429] Too Many Requests"},
		{&failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "wrapped", Cause: &failurepb.Failure{Message: "dial tcp: refused"}}}, "dial tcp: refused"},
		{&failurepb.Failure{Message: "activity error", Cause: &failurepb.Failure{Message: "dial tcp: refused", Cause: &failurepb.Failure{}}}, "dial tcp: refused"},
		{timeout(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil), "timed out (no heartbeat)"},
		{timeout(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), "timed out (step deadline)"},
		// A timeout with a cause says what the last heartbeat's attempt hit.
		{timeout(enumspb.TIMEOUT_TYPE_HEARTBEAT, &failurepb.Failure{Message: "ssh: handshake failed"}), "ssh: handshake failed"},
	} {
		if got := failureMessage(tt.f); got != tt.want {
			t.Errorf("failureMessage(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
