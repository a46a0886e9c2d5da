package main

import (
	"regexp"
	"strings"
	"testing"
)

// A worker capped at no step at once would run none: a cap below 1 is
// refused before the worker dials Temporal, naming the flag or the
// variable it came from, and the variable is the flag's default.
func TestWorkerConcurrencyCap(t *testing.T) {
	const env = "DNSROLL_MAX_CONCURRENT_ACTIVITIES"
	t.Setenv("DNSROLL_STATE_DIR", t.TempDir())
	t.Setenv(env, "")
	for _, n := range []string{"0", "-1"} {
		_, errOut, code := cli(t, "worker", "--temporal-address", "127.0.0.1:1", "--max-concurrent-activities", n)
		if code != 1 || !strings.Contains(errOut, "--max-concurrent-activities "+n+": want 1 or more") {
			t.Errorf("--max-concurrent-activities %s: exit %d, stderr %q; want a refusal naming the flag", n, code, errOut)
		}
	}
	t.Setenv(env, "0")
	if _, errOut, code := cli(t, "worker", "--temporal-address", "127.0.0.1:1"); code != 1 || !strings.Contains(errOut, env+`="0"`) {
		t.Errorf("%s=0: exit %d, stderr %q; want a refusal naming the variable", env, code, errOut)
	}
	t.Setenv(env, "3")
	out, _, code := cli(t, "worker", "--help")
	if flag := regexp.MustCompile(`(?s)-max-concurrent-activities int\n[^\n]*\(default 3\)`); code != 0 || !flag.MatchString(out) {
		t.Errorf("%s=3: exit %d; --help lacks --max-concurrent-activities with default 3:\n%s", env, code, out)
	}
}
