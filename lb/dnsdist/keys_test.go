package dnsdist

import (
	"context"
	"fmt"
	"testing"

	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/lb/lbtest"
)

// A worker runs for weeks while load balancers are replaced (<name>-next,
// then renamed) and deleted, and fleets come and go: the console keys it
// keeps are bounded, the ones not asked for longest go first, and a key
// that went is read again when it is asked for.
func TestConsoleKeysAreBounded(t *testing.T) {
	d := &Driver{}
	ch := &fakeChannel{key: testKey(t)}
	fleet := lbtest.VMFleet()
	ctx := context.Background()
	get := func(i int) {
		t.Helper()
		if _, err := d.key(ctx, ch, fleet, fmt.Sprintf("lb%d", i), vmKeyFile); err != nil {
			t.Fatal(err)
		}
	}
	// lb0 stays in use while many other load balancers come and go.
	for i := 1; i <= 4*maxKeys; i++ {
		get(0)
		get(i)
	}
	if got := len(d.keys); got > maxKeys {
		t.Errorf("%d console keys kept, want at most %d", got, maxKeys)
	}
	if got, want := len(ch.commands), 1+4*maxKeys; got != want {
		t.Errorf("%d key reads, want %d: one for each load balancer, lb0's kept while in use", got, want)
	}
	get(1)
	if got, want := len(ch.commands), 2+4*maxKeys; got != want {
		t.Errorf("%d key reads, want %d: the key of lb1, long unused, read again", got, want)
	}
}

// The bound leaves room for a whole fleet being replaced: every load
// balancer a fleet may have and its <name>-next, each used in turn again
// and again (a flip of each), are read once each.
func TestConsoleKeysKeepAReplacedFleet(t *testing.T) {
	d := &Driver{}
	ch := &fakeChannel{key: testKey(t)}
	fleet := lbtest.VMFleet()
	ctx := context.Background()
	for range 3 {
		for i := range config.MaxLoadBalancers {
			for _, name := range []string{fmt.Sprintf("lb%d", i), fmt.Sprintf("lb%d-next", i)} {
				if _, err := d.key(ctx, ch, fleet, name, vmKeyFile); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if got, want := len(ch.commands), 2*config.MaxLoadBalancers; got != want {
		t.Errorf("%d key reads, want %d: one for each load balancer and its replacement", got, want)
	}
}
