package probe

import (
	"context"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/leaktest"
)

// A worker probes thousands of times over weeks, often cancelled midway
// (a rollout stopped, a step timed out): every call must give back its
// sockets and goroutines.
func TestProbesLeaveNoSocketsOrGoroutines(t *testing.T) {
	z := parseZone(t, testZone)
	blue, green, silent := startServer(t, z), startServer(t, z), startServer(t, z)
	silent.setMode(modeSilent)
	checks := Checks(z, Scope{All: true})
	job := Job{
		Role: "green", Targets: []Server{{"ns1-next", green.addr}},
		BaselineRole: "blue", Baseline: []Server{{"ns1", blue.addr}},
		Checks: checks, Serials: map[string]uint32{"example.com": 2024010101},
	}
	p := fastProber()
	round := func(i int) {
		ctx := context.Background()
		p.Probe(ctx, green.addr, both, checks)
		p.Analyze(ctx, job, Settings{ExpectChanges: true})
		_, _ = SOASerial(ctx, green.addr, "example.com", time.Second)
		_, _ = Identify(ctx, green.addr, []string{"udp", "tcp"}[i%2], "example.com", time.Second)
		// Cancelled while the queries are outstanding.
		cctx, cancel := context.WithTimeout(ctx, time.Duration(1+i%5)*time.Millisecond)
		p.Probe(cctx, silent.addr, both, checks)
		_, _ = Identify(cctx, silent.addr, "udp", "example.com", time.Second)
		cancel()
	}
	round(0)
	base := leaktest.Take(t)
	for i := range 100 {
		round(i)
	}
	leaktest.Check(t, base, 2, 3*time.Second)
}
