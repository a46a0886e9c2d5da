package lbtest

import (
	"context"
	"os/exec"
	"reflect"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/lb"
)

// Driver is what every load balancer driver implements
// (activities.LoadBalancer and activities.Stager), declared here so that
// the contract needs no activities import.
type Driver interface {
	Point(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, backends []dnsroll.Server) error
	Stage(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, live, staged []dnsroll.Server) error
	Flip(ctx context.Context, fleet *config.Fleet, balancer config.LoadBalancer, shares []lb.Share) error
}

// Subject is one lab load balancer, not yet started, that Contract drives.
type Subject struct {
	Driver Driver
	Fleet  *config.Fleet
	LB     config.LoadBalancer
	// State, when set, returns what an operation that changes nothing
	// must leave as it was, such as the load balancer's process IDs.
	State func(t testing.TB) any
}

// NeedTools fails or skips t (needlab.Missing) unless every program in
// names is installed.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			needlab.Missing(t, "%s is not installed (run `make deps`)", name)
		}
	}
}

// Contract checks what every driver promises, against a real lab load
// balancer: Point is idempotent; Stage then Flip switches to green and
// back, and a repeated Flip changes nothing; a Flip to a server never
// staged fails with EINVALID and changes nothing; Point after flips
// serves only its backends, so the other side can no longer be flipped
// to; and bad input is EINVALID. Each driver's tests run it, and a new
// driver must pass it.
func Contract(t *testing.T, s Subject) {
	t.Helper()
	ctx := context.Background()
	blue, green, red := StartTXT(t, "blue"), StartTXT(t, "green"), StartTXT(t, "red")
	addr := s.LB.Address
	state := func() any {
		if s.State == nil {
			return nil
		}
		return s.State(t)
	}
	unchanged := func(what string, before any) {
		t.Helper()
		if after := state(); !reflect.DeepEqual(before, after) {
			t.Errorf("%s changed the load balancer from %v to %v; it should change nothing", what, before, after)
		}
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wantInvalid := func(what string, err error) {
		t.Helper()
		if dnsroll.ErrorCode(err) != dnsroll.EINVALID {
			t.Errorf("%s: error %v (code %q), want %q", what, err, dnsroll.ErrorCode(err), dnsroll.EINVALID)
		}
	}
	flip := func(shares ...lb.Share) error { return s.Driver.Flip(ctx, s.Fleet, s.LB, shares) }
	one := func(srv dnsroll.Server) []dnsroll.Server { return []dnsroll.Server{srv} }

	must("Point at blue", s.Driver.Point(ctx, s.Fleet, s.LB, one(blue)))
	WantTXT(t, addr, "blue")
	before := state()
	must("Point at blue again", s.Driver.Point(ctx, s.Fleet, s.LB, one(blue)))
	WantTXT(t, addr, "blue")
	unchanged("pointing again", before)

	must("Stage green", s.Driver.Stage(ctx, s.Fleet, s.LB, one(blue), one(green)))
	WantTXT(t, addr, "blue")
	must("Flip to green", flip(lb.Share{Server: green, Weight: 1}, lb.Share{Server: blue}))
	WantTXT(t, addr, "green")
	before = state()
	must("Flip to green again", flip(lb.Share{Server: green, Weight: 1}, lb.Share{Server: blue}))
	WantTXT(t, addr, "green")
	unchanged("flipping again", before)
	must("Flip back to blue", flip(lb.Share{Server: blue, Weight: 1}))
	WantTXT(t, addr, "blue")

	before = state()
	wantInvalid("Flip to a server never staged", flip(lb.Share{Server: red, Weight: 1}))
	WantTXT(t, addr, "blue")
	unchanged("a refused flip", before)

	must("Point at green after the flips", s.Driver.Point(ctx, s.Fleet, s.LB, one(green)))
	WantTXT(t, addr, "green")
	wantInvalid("Flip to blue after Point left green alone", flip(lb.Share{Server: blue, Weight: 1}))
	WantTXT(t, addr, "green")

	for name, shares := range map[string][]lb.Share{
		"no shares":       nil,
		"all weight zero": {{Server: blue}, {Server: green}},
		"negative weight": {{Server: green, Weight: 1}, {Server: blue, Weight: -1}},
		"a server twice":  {{Server: green, Weight: 1}, {Server: green, Weight: 2}},
	} {
		wantInvalid("Flip with "+name, flip(shares...))
	}
	for name, bal := range map[string]config.LoadBalancer{
		"a name that leaves the lab directory": {Name: "../lb1", Address: addr, Fronts: s.LB.Fronts, Driver: s.LB.Driver},
		"an address without a port":            {Name: s.LB.Name, Address: "127.0.0.1", Fronts: s.LB.Fronts, Driver: s.LB.Driver},
	} {
		wantInvalid("Point with "+name, s.Driver.Point(ctx, s.Fleet, bal, one(green)))
		wantInvalid("Stage with "+name, s.Driver.Stage(ctx, s.Fleet, bal, one(green), one(blue)))
	}
	WantTXT(t, addr, "green")
}
