// Package temporaltest reads what Temporal's test environments hand back,
// so that tests of activities and workflows decode results in one way.
package temporaltest

import (
	"testing"

	"go.temporal.io/sdk/converter"
)

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
