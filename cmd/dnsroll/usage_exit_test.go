package main

import (
	"bytes"
	"context"
	"testing"
)

// A usage mistake exits 1, as --help says: 2 and 3 are a followed run's
// outcomes (blue serving; a person must act), which a CI job acts on, so
// a mistyped flag must never read as a rollout that stopped.
func TestUsageMistakesExit1(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"rollout", "--nope"},
		{"rollout", "start", "--nope"},
		{"rollout", "start", "--fleet"},
		{"rollout", "start"},
		{"rollout", "status"},
		{"fleet", "validate"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), streams{out: &out, err: &errOut}, args)
		if err == nil {
			t.Errorf("dnsroll %q: no error", args)
			continue
		}
		if code := report(&errOut, err); code != 1 {
			t.Errorf("dnsroll %q: exit %d (%v), want 1", args, code, err)
		}
	}
}
