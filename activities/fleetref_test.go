package activities

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/fleettest"
)

// A rollout's steps name the fleet by the plan's reference, not by its
// config. Every step runs with the config Plan fixed, and this rollout's
// overrides, whichever worker takes it. A worker that planned uses the
// config it kept, whatever happened to the file since. Another worker
// uses its own copy when that copy is the planned config byte for byte,
// wherever it keeps it. Any other config is refused for good, naming the
// fleet and both configs, so that no step runs with a config the rollout
// did not plan.
func TestStepsRunWithTheFleetThePlanFixed(t *testing.T) {
	const planned = "ansible: {connection: local}\nprobe: {rounds: 3}\n"
	type worker struct {
		store  bundle.Store
		config string // the fleet's config on this worker, after the plan
		dir    string
	}
	planner := t.TempDir()
	cases := []struct {
		name   string
		worker worker
		want   string // the error; "" for the planned fleet
	}{
		{"the worker that planned, config unchanged", worker{bundle.Store{Dir: planner}, planned, "/srv/fleet"}, ""},
		{"the worker that planned, config edited since", worker{bundle.Store{Dir: planner}, "ansible: {connection: local}\nprobe: {rounds: 9}\n", "/srv/fleet"}, ""},
		{"another worker with the planned config elsewhere", worker{bundle.Store{Dir: t.TempDir()}, planned, "/home/ci/fleet"}, ""},
		{"a worker that keeps no store", worker{bundle.Store{}, planned, "/srv/fleet"}, ""},
		{"another worker with another config", worker{bundle.Store{Dir: t.TempDir()}, "ansible: {connection: local}\nprobe: {rounds: 9}\n", "/srv/fleet"},
			"fleet test: config changed since the plan: planned sha256:"},
	}
	load := fleetrefLoader
	no := false
	own, err := load(planned, "/srv/fleet")("test")
	if err != nil {
		t.Fatal(err)
	}
	plan := &Activities{Bundles: bundle.Store{Dir: planner}, Fleets: load(planned, "/srv/fleet")}
	// A load balancer replacement's new load balancer, switched with the
	// fleet's own by the rollout of its zone records: on every worker,
	// including those whose own config does not list it.
	next := config.LoadBalancer{Name: "lb1-next", Address: "203.0.113.1:53", Fronts: config.Labels{"ns1"}}
	ref, err := plan.planFleetRef(own.ForSteps(), PlanInput{Overrides: Overrides{ExpectChanges: &no, AllowSerialDecrease: true, AllowNewKSK: true, ExtraLoadBalancers: []config.LoadBalancer{next}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &Activities{Bundles: c.worker.store, Fleets: load(c.worker.config, c.worker.dir)}
			f, err := a.stepFleet(StepFleet{FleetRef: ref})
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) || dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
					t.Fatalf("got fleet %v, error %v; want a conflict %q", f, err, c.want)
				}
				if !strings.Contains(err.Error(), bundle.Short(ref.SHA256)) || !strings.Contains(err.Error(), "re-run the rollout") {
					t.Errorf("error %q does not name the planned config and the fix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Probe.Rounds != 3 || f.Dir != c.worker.dir {
				t.Errorf("got rounds %d in %s; want the planned 3 in the worker's %s", f.Probe.Rounds, f.Dir, c.worker.dir)
			}
			if f.Probe.ExpectChanges == nil || *f.Probe.ExpectChanges || !f.Probe.AllowSerialDecrease || !f.Probe.AllowNewKSK {
				t.Errorf("the rollout's overrides are lost: expect_changes %v, allow_serial_decrease %v, allow_new_ksk %v", f.Probe.ExpectChanges, f.Probe.AllowSerialDecrease, f.Probe.AllowNewKSK)
			}
			if n := len(f.LoadBalancers); n != len(own.LoadBalancers)+1 || f.LoadBalancers[n-1].Name != next.Name || f.LoadBalancers[n-1].Address != next.Address {
				t.Errorf("load balancers %+v; want the fleet's, then %s", f.LoadBalancers, next.Name)
			}
		})
	}
}

// Every worker of one user on a host shares its store, and a reference
// leaves the fleet's directory out, so a second checkout whose config is
// the same keeps it again, with its own directory. A step of the first
// checkout's rollout still runs in the first checkout's directory. Before,
// it ran ansible-playbook in the other's, which the bundle snapshot did not
// hold: "fork/exec /bin/sh: no such file or directory", until the step's
// deadline.
func TestStepFleetInASharedStoreIsThisWorkers(t *testing.T) {
	store := bundle.Store{Dir: t.TempDir()}
	checkout := func(dir string) *Activities {
		return &Activities{Bundles: store, Fleets: func(name string) (*config.Fleet, error) {
			f, err := config.Parse([]byte(fleettest.YAML(name, "127.0.0.1:5301", "127.0.0.1:5302") + "ansible: {connection: local}\n"))
			if err == nil {
				f.Dir = dir
			}
			return f, err
		}}
	}
	plan := func(a *Activities) *FleetRef {
		_, ref := planRef(t, a, PlanInput{})
		return ref
	}
	first, second := checkout("/srv/first/fleets"), checkout("/srv/second/fleets")
	ref := plan(first)
	if again := plan(second); again.SHA256 != ref.SHA256 {
		t.Fatalf("the same config got two references, %s and %s: the test shows nothing", ref.SHA256, again.SHA256)
	}
	f, err := first.stepFleet(StepFleet{FleetRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	if f.Dir != "/srv/first/fleets" {
		t.Errorf("the first checkout's step runs in %s, want its own /srv/first/fleets", f.Dir)
	}
}

// An undo step (a flip or switch back to blue) runs with the planned
// fleet wherever it runs: on a worker whose config changed since the plan,
// or that has none, it takes the one its input carries. Before, it was
// refused for good there, like a forward step, and a rollback that a
// config edit had caused left the load balancers on green.
func TestUndoStepsRunWithThePlannedFleetWhereverTheyRun(t *testing.T) {
	const planned = "ansible: {connection: local}\nprobe: {rounds: 3}\n"
	load := fleetrefLoader
	own, err := load(planned, "/srv/fleet")("test")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	plan := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: load(planned, "/srv/fleet")}
	ref, err := plan.planFleetRef(own.ForSteps(), PlanInput{Overrides: Overrides{ExpectChanges: &no}})
	if err != nil {
		t.Fatal(err)
	}
	fleet := own.ForSteps()
	fleet.Probe.ExpectChanges = &no
	undo := Plan{Fleet: fleet, FleetRef: ref}.UndoStepFleet()
	if undo.FleetRef == nil || undo.Planned == nil || undo.Fleet != nil {
		t.Fatalf("UndoStepFleet = %+v; want the reference with the planned fleet beside it", undo)
	}
	for _, w := range []struct {
		name, config, dir, wantDir string
	}{
		{"a worker whose config changed since the plan", "ansible: {connection: local}\nprobe: {rounds: 9}\n", "/srv/other", "/srv/other"},
		{"a worker without the fleet", "", "", "/srv/fleet"},
	} {
		t.Run(w.name, func(t *testing.T) {
			a := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: load(w.config, w.dir)}
			if _, err := a.stepFleet(StepFleet{FleetRef: ref}); err == nil {
				t.Fatal("a forward step ran with a config the rollout did not plan: the test shows nothing")
			}
			f, err := a.stepFleet(undo)
			if err != nil {
				t.Fatalf("undo step: %v", err)
			}
			if f.Probe.Rounds != 3 || f.Dir != w.wantDir || f.Probe.ExpectChanges == nil || *f.Probe.ExpectChanges {
				t.Errorf("undo step ran with rounds %d in %s, expect_changes %v; want the planned 3 in %s, with the rollout's override", f.Probe.Rounds, f.Dir, f.Probe.ExpectChanges, w.wantDir)
			}
		})
	}
}

// A step whose input carries the fleet inline, as those recorded before
// fleet references do, runs with it; one that names no fleet is refused.
func TestStepFleetInlineOrNone(t *testing.T) {
	a := &Activities{Fleets: func(string) (*config.Fleet, error) { t.Fatal("the inline fleet was looked up"); return nil, nil }}
	inline := &config.Fleet{Name: "inline"}
	if f, err := a.stepFleet(StepFleet{Fleet: inline}); err != nil || f != inline {
		t.Errorf("got %v, %v; want the inline fleet", f, err)
	}
	if _, err := a.stepFleet(StepFleet{}); dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), "fleet_ref") {
		t.Errorf("got %v; want an invalid input naming fleet_ref", err)
	}
}

// The worker that planned keeps using the config it kept after an upgrade
// that changes how a fleet is written as JSON (a new field, here one the
// kept copy lacks): the kept bytes are what the reference names. Before,
// the kept copy was written out again by the new code, its digest no
// longer matched, and every step, the undo's too, failed for good with
// "config changed since the plan".
func TestKeptFleetSurvivesAnUpgrade(t *testing.T) {
	f, err := config.Parse([]byte(fleettest.YAML("test", "127.0.0.1:5301", "127.0.0.1:5302") + "ansible: {connection: local}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.Dir = ""
	b, err := json.Marshal(f.ForSteps())
	if err != nil {
		t.Fatal(err)
	}
	// As another dnsroll wrote it: without a field this one writes.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	const anyField = "steps"
	if _, ok := fields[anyField]; !ok {
		t.Fatalf("the fleet's JSON has no %s: %s", anyField, b)
	}
	delete(fields, anyField)
	old, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(old)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	store := bundle.Store{Dir: t.TempDir()}
	kept, err := json.Marshal(keptFleet{Dir: "/srv/fleets", Fleet: old})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutConfig(digest, kept); err != nil {
		t.Fatal(err)
	}
	a := &Activities{Bundles: store, Fleets: func(string) (*config.Fleet, error) { return f, nil }}
	got, err := a.stepFleet(StepFleet{FleetRef: &FleetRef{Name: "test", SHA256: digest}})
	if err != nil {
		t.Fatalf("the kept config, without %q: %v", anyField, err)
	}
	if got.Name != "test" || len(got.LoadBalancers) != 2 {
		t.Errorf("kept fleet %+v, want test's", got)
	}
	// A worker whose own fleet file no longer loads (a bad edit) still
	// runs the steps, the undo's too, with the kept config, in the
	// directory it was planned in.
	a.Fleets = func(string) (*config.Fleet, error) { return nil, errors.New("config: line 3: bad edit") }
	got, err = a.stepFleet(StepFleet{FleetRef: &FleetRef{Name: "test", SHA256: digest}})
	if err != nil {
		t.Errorf("with the fleet file broken: %v; want the kept config", err)
	} else if got.Dir != "/srv/fleets" {
		t.Errorf("with the fleet file broken: dir %q, want the kept config's /srv/fleets", got.Dir)
	}
}

// planRef keeps the test fleet's config through a, as Plan does, with in's
// overrides, and returns the fleet as a loads it and its reference.
func planRef(t *testing.T, a *Activities, in PlanInput) (*config.Fleet, *FleetRef) {
	t.Helper()
	f, err := a.Fleets("test")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a.planFleetRef(f.ForSteps(), in)
	if err != nil {
		t.Fatal(err)
	}
	return f, ref
}

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
	_, ref := planRef(t, a, PlanInput{})
	other, err := fleetrefLoader(edited, "/srv/fleet")("test")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := fleetJSON(other.ForSteps())
	if err != nil {
		t.Fatal(err)
	}
	kept, err := json.Marshal(keptFleet{Dir: "/srv/fleet", Fleet: b})
	if err != nil {
		t.Fatal(err)
	}
	// As this dnsroll keeps a fleet, and as one from before keptFleet did:
	// the fleet's JSON alone.
	for _, damaged := range []struct {
		name  string
		bytes []byte
	}{{"kept with its directory", kept}, {"kept as the fleet's JSON alone", b}} {
		t.Run(damaged.name, func(t *testing.T) {
			if err := store.PutConfig(ref.SHA256, damaged.bytes); err != nil {
				t.Fatal(err)
			}
			a.Fleets = fleetrefLoader(planned, "/srv/fleet")
			if f, err := a.stepFleet(StepFleet{FleetRef: ref}); err != nil || f.Probe.Rounds != 3 {
				t.Errorf("with the planned config on the worker: %+v, %v; want the planned rounds 3", f, err)
			}
			a.Fleets = fleetrefLoader(edited, "/srv/fleet")
			if f, err := a.stepFleet(StepFleet{FleetRef: ref}); dnsroll.ErrorCode(err) != dnsroll.ECONFLICT {
				t.Errorf("got %+v, %v; want the step refused: neither the kept bytes nor the worker's config are the planned ones", f, err)
			}
		})
	}
}

// An undo step carries the planned fleet with the rollout's overrides
// already in it (Plan wrote them into Plan.Fleet), and applies them again:
// a load balancer replacement's new load balancer is switched back once,
// not twice.
func TestUndoStepSwitchesAnExtraLoadBalancerOnce(t *testing.T) {
	const planned = "ansible: {connection: local}\n"
	plan := &Activities{Bundles: bundle.Store{Dir: t.TempDir()}, Fleets: fleetrefLoader(planned, "/srv/fleet")}
	next := config.LoadBalancer{Name: "lb1-next", Address: "203.0.113.1:53", Fronts: config.Labels{"ns1"}}
	fleet, ref := planRef(t, plan, PlanInput{Overrides: Overrides{ExtraLoadBalancers: []config.LoadBalancer{next}}})
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
	_, ref := planRef(t, a, PlanInput{})
	a.Fleets = func(string) (*config.Fleet, error) { return nil, errors.New("config: line 3: bad edit") }
	f, err := a.stepFleet(StepFleet{FleetRef: ref})
	if err != nil || f.Dir != "/srv/fleets" {
		t.Errorf("with the fleet file broken: %+v, %v; want the planned fleet in /srv/fleets", f, err)
	}
}
