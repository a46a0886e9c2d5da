package activities

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// fleetrefLoader loads the test fleet with text appended, in dir; with
// text "" the worker has no such fleet.
func fleetrefLoader(text, dir string) FleetLoader {
	return func(name string) (*config.Fleet, error) {
		if text == "" {
			return nil, dnsroll.Errorf(dnsroll.ENOTFOUND, "fleet %s: no such fleet", name)
		}
		f, err := config.Parse([]byte(fleettest.YAML(name, "127.0.0.1:5301", "127.0.0.1:5302") + text))
		if err == nil {
			f.Dir = dir
		}
		return f, err
	}
}

// A store entry under a reference's digest whose bytes are not the ones
// digested (a damaged or foreign file) is not the planned config: the
// step falls back to this worker's own config, and refuses it when that
// is not the planned one either.
func TestStepFleetRefusesAKeptConfigOtherThanItsDigest(t *testing.T) {
	const planned = "ansible: {connection: local}\nprobe: {rounds: 3}\n"
	const edited = "ansible: {connection: local}\nprobe: {rounds: 9}\n"
	store := bundle.Store{Dir: t.TempDir()}
	a := &Activities{Bundles: store, Fleets: fleetrefLoader(planned, "/srv/fleet")}
	own, err := a.Fleets("test")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a.planFleetRef(own.ForSteps(), PlanInput{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := fleetrefLoader(edited, "/srv/fleet")("test")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := fleetJSON(other.ForSteps())
	if err != nil {
		t.Fatal(err)
	}
	damaged, err := json.Marshal(keptFleet{Dir: "/srv/fleet", Fleet: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutConfig(ref.SHA256, damaged); err != nil {
		t.Fatal(err)
	}
	if f, err := a.stepFleet(StepFleet{FleetRef: ref}); err != nil || f.Probe.Rounds != 3 {
		t.Errorf("with the planned config on the worker: rounds %v, %v; want the planned 3", f, err)
	}
	a.Fleets = fleetrefLoader(edited, "/srv/fleet")
	if f, err := a.stepFleet(StepFleet{FleetRef: ref}); dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
		t.Errorf("got %+v, %v; want the step refused: neither the kept bytes nor the worker's config are the planned ones", f, err)
	}
}

// An undo step carries the planned fleet with the rollout's overrides
// already in it (Plan wrote them into Plan.Fleet), and applies them again:
// a load balancer replacement's new load balancer is switched back once,
// not twice.
func TestUndoStepSwitchesAnExtraLoadBalancerOnce(t *testing.T) {
	const planned = "ansible: {connection: local}\n"
	plan := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: fleetrefLoader(planned, "/srv/fleet")}
	fleet, err := plan.Fleets("test")
	if err != nil {
		t.Fatal(err)
	}
	next := config.LoadBalancer{Name: "lb1-next", Address: "203.0.113.1:53", Fronts: config.Labels{"ns1"}}
	in := PlanInput{Overrides: Overrides{ExtraLoadBalancers: []config.LoadBalancer{next}}}
	ref, err := plan.planFleetRef(fleet.ForSteps(), in)
	if err != nil {
		t.Fatal(err)
	}
	ref.apply(fleet)
	undo := Plan{Fleet: fleet.ForSteps(), FleetRef: ref}.UndoStepFleet()
	// A worker without the fleet runs it with the planned fleet it carries.
	a := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: fleetrefLoader("", "")}
	f, err := a.stepFleet(undo)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, lb := range f.LoadBalancers {
		names = append(names, lb.Name)
	}
	if got, want := strings.Join(names, ","), "lb1,lb2,lb1-next"; got != want {
		t.Errorf("undo step's load balancers %s, want %s", got, want)
	}
}

// An undo step whose planned fleet is another fleet's (an input that
// does not hold together) is refused where the reference does not
// resolve, rather than run against that other fleet's load balancers.
func TestUndoStepRefusesAnotherFleetsPlannedConfig(t *testing.T) {
	a := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: fleetrefLoader("", "")}
	ref := &FleetRef{Name: "test", SHA256: "sha256:" + strings.Repeat("0", 64)}
	if f, err := a.stepFleet(StepFleet{FleetRef: ref, Planned: &config.Fleet{Name: "other"}}); err == nil {
		t.Errorf("an undo step of fleet test ran with fleet %s's config", f.Name)
	}
}

// The worker that planned runs the steps in the directory it planned in
// even once its fleet file no longer loads (a bad edit): the undo's too.
func TestKeptFleetKeepsThePlannedDirectory(t *testing.T) {
	a := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: fleetrefLoader("ansible: {connection: local}\n", "/srv/fleets")}
	own, err := a.Fleets("test")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a.planFleetRef(own.ForSteps(), PlanInput{})
	if err != nil {
		t.Fatal(err)
	}
	a.Fleets = func(string) (*config.Fleet, error) { return nil, errors.New("config: line 3: bad edit") }
	f, err := a.stepFleet(StepFleet{FleetRef: ref})
	if err != nil || f.Dir != "/srv/fleets" {
		t.Errorf("with the fleet file broken: %+v, %v; want the planned fleet in /srv/fleets", f, err)
	}
}
