package parallel

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestForCallsEachIndexOnce(t *testing.T) {
	const n = 10000
	var calls [n]atomic.Int32
	if err := For(n, func(i int) error { calls[i].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times", i, c)
		}
	}
	if err := For(0, func(int) error { return errors.New("called") }); err != nil {
		t.Errorf("no items: %v", err)
	}
}

// The error returned is the lowest failing index's, whatever order the
// goroutines ran in, as a loop in order would return.
func TestForReturnsTheLowestFailure(t *testing.T) {
	for range 50 {
		err := For(1000, func(i int) error {
			if i%97 == 96 {
				return fmt.Errorf("item %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "item 96" {
			t.Fatalf("got %v, want item 96", err)
		}
	}
}
