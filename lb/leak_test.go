package lb

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/leaktest"
)

// A command run on a local load balancer that is cancelled (the step timed
// out, the rollout was stopped) returns at once and leaves no process,
// goroutine or pipe behind, even when it started children of its own, as
// the flip and update scripts do.
func TestLocalRunCancelledLeavesNothing(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	base := leaktest.Take(t)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		_, err := Local{}.Run(ctx, "sleep 30 & echo $! > "+Quote(pidFile)+"; sleep 30; wait")
		cancel()
		if err == nil {
			t.Fatal("cancelled command succeeded")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("cancelled command returned after %v", took)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
	}
	leaktest.Check(t, base, 0, 3*time.Second)
}

// waitGone fails t unless process pid exits (or is a zombie) soon.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		// The state follows the command name in parentheses.
		if err != nil || strings.HasPrefix(string(stat[strings.LastIndexByte(string(stat), ')')+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the cancelled command still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
