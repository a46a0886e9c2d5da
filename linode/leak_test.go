package linode_test

import (
	"context"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/internal/leaktest"
	"github.com/dnsroll/dnsroll/lab/linodesim"
)

// A worker's one Linode client serves every step for weeks: calls that
// succeed, fail, are retried or are cancelled must not pile up
// connections or goroutines (response bodies left open would).
func TestCallsLeaveNoConnectionsOrGoroutines(t *testing.T) {
	e := newEnvWith(t, linodesim.Options{CreateLimit: -1})
	c := ctx(t)
	round := func(i int) {
		s, err := e.cloud.Create(c, spec("ns1-next", tag), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.cloud.List(c, tag); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cloud.Get(c, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.cloud.Rename(c, s.ID, "ns1"); err != nil {
			t.Fatal(err)
		}
		if err := e.cloud.Delete(c, s.ID); err != nil {
			t.Fatal(err)
		}
		_, _ = e.cloud.Get(c, s.ID) // 404
		// Throttled, then cancelled while it waits to retry.
		e.sim.InjectFault(linodesim.Fault{Method: "GET", Status: 429, RetryAfter: 30, Count: 1})
		cc, cancel := context.WithTimeout(c, time.Duration(5+i%3*10)*time.Millisecond)
		_, _ = e.cloud.List(cc, tag)
		cancel()
		e.sim.ClearFaults()
	}
	round(0)
	base := leaktest.Take(t)
	for i := range 30 {
		round(i)
	}
	leaktest.Check(t, base, 4, 3*time.Second)
}
