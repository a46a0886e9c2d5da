// Package needlab decides what a test does when something the lab needs
// (a program, the machine image, PostgreSQL) is missing: under `make test`
// (DNSROLL_REQUIRE_LAB set) it fails, since a silent skip would hide a
// broken setup; elsewhere it skips, so that `go test` runs without the lab.
package needlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Required reports whether missing lab parts fail tests rather than skip
// them.
func Required() bool { return os.Getenv("DNSROLL_REQUIRE_LAB") != "" }

// Missing fails or skips tb, as Required says, with a message that should
// name what is missing and how to get it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatal(msg)
	} else {
		tb.Skip(msg)
	}
}

// Programs fails or skips tb, as Missing does, unless every one of
// programs is on PATH. `make deps` installs them all.
func Programs(tb testing.TB, programs ...string) {
	tb.Helper()
	var missing []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		Missing(tb, "needs %s, not found on PATH (run `make deps`)", strings.Join(missing, ", "))
	}
}

// Slow skips tb under -short: lab tests take seconds to minutes.
func Slow(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("%s is slow; skipped with -short", what)
	}
}
