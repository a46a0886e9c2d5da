// Package temporaltest reads what Temporal's test environments hand back,
// so that tests of activities and workflows decode results in one way,
// and starts a real dev server for the tests that need one (DevServer).
package temporaltest

import (
	"context"
	"os"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

// RecordEnv names the directory and file prefix that recorded histories
// are written to, for workflows' replay test:
// DNSROLL_RECORD_HISTORIES=$PWD/workflows/testdata/v6.
const RecordEnv = "DNSROLL_RECORD_HISTORIES"

// Recording tells whether this run of the tests records histories.
func Recording() bool { return os.Getenv(RecordEnv) != "" }

// RecordHistory writes the history of a real run, workflow id and run
// runID on c, as $DNSROLL_RECORD_HISTORIES-name.json, when recording;
// otherwise it does nothing.
func RecordHistory(t testing.TB, c client.Client, id, runID, name string) {
	t.Helper()
	prefix := os.Getenv(RecordEnv)
	if prefix == "" {
		return
	}
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	out, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefix+"-"+name+".json", out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Value returns v decoded as a T, and fails t when err is set or v does not
// decode: v, err are what TestActivityEnvironment.ExecuteActivity or
// TestWorkflowEnvironment.QueryWorkflow returned.
func Value[T any](t testing.TB, v converter.EncodedValue, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
