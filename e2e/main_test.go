package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the workers these tests start, in this process or as
// commands, a state directory of the run's own (bundle snapshots, known
// hosts): never the user's, which would keep every test's snapshots. A
// test that needs its own sets DNSROLL_STATE_DIR itself.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dnsroll-e2e-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Setenv("DNSROLL_STATE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
