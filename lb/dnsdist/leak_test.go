package dnsdist

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/leaktest"
	"github.com/dnsroll/dnsroll/internal/testnet"
	"github.com/dnsroll/dnsroll/lb"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// A flip cancelled while dnsdist's console does not answer (the rollout
// was stopped, or the step's heartbeat lost) returns at once and gives
// back its connection, rather than holding both until the step's deadline
// or consoleTimeout.
func TestCancelledFlipOnASilentConsoleLeavesNothing(t *testing.T) {
	// Reads everything, answers nothing, until the flip hangs up.
	console := testnet.ServeTCP(t, func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
	d := &Driver{Reach: lb.Reach{Channels: fakeOpener{"lb1": &fakeChannel{key: testKey(t), console: console}}}}
	fleet := lbtest.VMFleet()
	green := dnsroll.Server{Label: "green", IPv4: "192.0.2.30"}
	base := leaktest.Take(t)
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err := d.Flip(ctx, fleet, config.LoadBalancer{Name: "lb1", Address: "192.0.2.10:53"}, []lb.Share{{Server: green, Weight: 1}})
		if err == nil {
			t.Fatal("flip on a silent console succeeded")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("cancelled flip returned after %v: %v", took, err)
		}
		// The step learns it was cancelled, not that the console broke.
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled flip: %v, want context.Canceled", err)
		}
	}
	leaktest.Check(t, base, 0, 3*time.Second)
}
