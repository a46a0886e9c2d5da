package temporaltest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/converter"
)

// fatalRecorder is a testing.TB whose Fatal records the failure and stops
// the caller there, as the real one does, by a panic that value recovers.
type fatalRecorder struct {
	testing.TB
	failed string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	panic(r)
}

// value runs Value[T] with a recorder and says why it failed, if it did.
func value[T any](v converter.EncodedValue, err error) (got T, failed string) {
	r := &fatalRecorder{}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed
	}()
	return Value[T](r, v, err), ""
}

// jsonValue is an encoded value as the test environments' JSON converter
// would hold it.
type jsonValue string

func (j jsonValue) HasValue() bool    { return j != "" }
func (j jsonValue) Get(ptr any) error { return json.Unmarshal([]byte(j), ptr) }

type result struct {
	Note string `json:"note"`
}

func TestValue(t *testing.T) {
	if got, failed := value[result](jsonValue(`{"note": "ok"}`), nil); failed != "" || got.Note != "ok" {
		t.Errorf("Value = %+v (failed %q), want note ok", got, failed)
	}
	if _, failed := value[result](nil, errors.New("activity refused")); failed != "activity refused" {
		t.Errorf("an error: failed %q, want the error", failed)
	}
	if _, failed := value[int](jsonValue(`{"note": "ok"}`), nil); failed == "" {
		t.Error("a value that is not a T did not fail")
	}
}
