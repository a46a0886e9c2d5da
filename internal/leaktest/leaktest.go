// Package leaktest lets tests check that repeated or cancelled operations
// leave no goroutine or file descriptor behind, as a worker that runs for
// weeks would accumulate them.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Counts are the goroutines and open file descriptors of this process.
type Counts struct {
	Goroutines int
	FDs        int
}

// Take counts the goroutines and the entries of /proc/self/fd.
func Take(tb testing.TB) Counts {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("no /proc/self/fd: %v", err)
	}
	// ReadDir's own descriptor is listed too.
	return Counts{Goroutines: runtime.NumGoroutine(), FDs: len(ents) - 1}
}

// Check fails tb unless the counts come back to at most base plus slack
// within wait: closing and exiting may take a moment after an operation
// returns, and cached descriptors a collection. On failure it lists the goroutines and descriptors.
func Check(tb testing.TB, base Counts, slack int, wait time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		// Pipes that io.Copy keeps for splice between TCP connections
		// are closed when a collection finds them unused.
		runtime.GC()
		now := Take(tb)
		if now.Goroutines <= base.Goroutines+slack && now.FDs <= base.FDs+slack {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("leak: %d goroutines and %d descriptors, from %d and %d\n%s\n%s",
				now.Goroutines, now.FDs, base.Goroutines, base.FDs, fds(), stacks())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fds() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+" -> "+l)
	}
	sort.Strings(out)
	return "descriptors:\n" + strings.Join(out, "\n")
}

func stacks() string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	s := string(buf[:n])
	if len(s) > 20000 {
		s = s[:20000] + "\n..."
	}
	return fmt.Sprintf("goroutines:\n%s", s)
}
