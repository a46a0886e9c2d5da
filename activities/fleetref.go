package activities

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
)

// FleetRef names the fleet config a rollout's steps run with by its
// content, so that workflow history holds the config once, in the plan,
// and not again in every step's input. Plan fixes it; a step resolves it
// on whichever worker runs it (stepFleet).
type FleetRef struct {
	Name string `json:"name"`
	// SHA256 is "sha256:<hex>" of the fleet as steps get it
	// (config.Fleet.ForSteps) without its worker-local Dir, before this
	// rollout's overrides below.
	SHA256 string `json:"sha256"`
	// Overrides are the rollout's, which Plan wrote into Plan.Fleet.
	Overrides
}

// Overrides are a rollout's own settings over its fleet's config: Plan
// writes them into Plan.Fleet, and a step into the fleet its FleetRef
// resolves to (apply). Their JSON is inlined where they are embedded.
type Overrides struct {
	// ExpectChanges, when set, overrides the fleet's probe.expect_changes.
	ExpectChanges *bool `json:"expect_changes,omitempty"`
	// AllowSerialDecrease lets green's SOA serials be behind blue's.
	AllowSerialDecrease bool `json:"allow_serial_decrease,omitempty"`
	// AllowNewKSK accepts green's DNSKEY set signed by none of blue's
	// key-signing keys.
	AllowNewKSK bool `json:"allow_new_ksk,omitempty"`
	// ExtraLoadBalancers are switched with the fleet's own: a load
	// balancer replacement's new ones, which must front green too once
	// the zone names them.
	ExtraLoadBalancers []config.LoadBalancer `json:"extra_load_balancers,omitempty"`
}

// StepFleet is how a step's input names its fleet: FleetRef, the plan's
// reference, or Fleet itself, as inputs recorded before references and
// those of cleanup and load balancer runs carry it.
type StepFleet struct {
	Fleet    *config.Fleet `json:"fleet,omitempty"`
	FleetRef *FleetRef     `json:"fleet_ref,omitempty"`
	// Planned is the planned fleet itself, beside FleetRef in the inputs
	// of undo steps (UndoStepFleet): where the reference does not resolve
	// on the worker that runs one, it runs with this. A rollback must not
	// fail because the fleet's config changed since the plan.
	Planned *config.Fleet `json:"planned,omitempty"`
}

// StepFleet is how the plan's steps name the fleet: by its reference, so
// that history holds the config once; or inline, in rollouts planned
// before references and in cleanup-only runs, whose fleet LoadFleet read.
func (p Plan) StepFleet() StepFleet {
	if p.FleetRef != nil {
		return StepFleet{FleetRef: p.FleetRef}
	}
	return StepFleet{Fleet: p.Fleet}
}

// UndoStepFleet is how undo steps (flips and switches back to blue) name
// the fleet: by the plan's reference, with the planned fleet beside it
// for a worker on which the reference does not resolve. Forward steps
// refuse a config the rollout did not plan; an undo that did so would
// leave the load balancers on green. Its history cost is one fleet per
// undo step, a few KB: a plan's fleet holds only its first 16 zones.
func (p Plan) UndoStepFleet() StepFleet {
	s := p.StepFleet()
	if s.FleetRef != nil {
		s.Planned = p.Fleet
	}
	return s
}

// fleetDigest is the content address of f as FleetRef.SHA256 names it.
func fleetDigest(f *config.Fleet) (string, error) {
	_, digest, err := fleetJSON(f)
	return digest, err
}

// fleetJSON is f as JSON without its directory, and that JSON's digest.
func fleetJSON(f *config.Fleet) ([]byte, string, error) {
	c := *f
	c.Dir = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, "", err
	}
	return b, bytesDigest(b), nil
}

func bytesDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// apply writes the overrides into f, as Plan does.
func (r Overrides) apply(f *config.Fleet) {
	if r.ExpectChanges != nil {
		f.Probe.ExpectChanges = r.ExpectChanges
	}
	if r.AllowSerialDecrease {
		f.Probe.AllowSerialDecrease = true
	}
	if r.AllowNewKSK {
		f.Probe.AllowNewKSK = true
	}
	for _, lb := range r.ExtraLoadBalancers {
		if !slices.ContainsFunc(f.LoadBalancers, func(have config.LoadBalancer) bool { return have.Name == lb.Name }) {
			f.LoadBalancers = append(slices.Clip(f.LoadBalancers), lb)
		}
	}
}

// planFleetRef keeps f, the fleet as steps get it, in this worker's
// store and returns its reference with in's overrides.
func (a *Activities) planFleetRef(f *config.Fleet, in PlanInput) (*FleetRef, error) {
	// The bytes kept are the bytes digested, so that a later dnsroll,
	// which may write a fleet as other JSON (a new field), still finds
	// them the planned config; with the directory its paths are relative
	// to, which the digest leaves out.
	b, digest, err := fleetJSON(f)
	if err != nil {
		return nil, err
	}
	if b, err = json.Marshal(keptFleet{Dir: f.Dir, Fleet: b}); err != nil {
		return nil, err
	}
	if err := a.Bundles.PutConfig(digest, b); err != nil {
		return nil, err
	}
	return &FleetRef{Name: f.Name, SHA256: digest, Overrides: in.Overrides}, nil
}

// stepFleet is the fleet a step runs with: s.Fleet, or s.FleetRef
// resolved. A reference resolves to the config Plan kept in this worker's
// store, or, on a worker without it, to this worker's own config of the
// fleet once it is found to be the planned one byte for byte; any other
// config fails the step for good, so no step runs with a config the
// rollout did not plan, unless it is an undo step, which runs with the
// planned fleet its input carries.
func (a *Activities) stepFleet(s StepFleet) (*config.Fleet, error) {
	if s.Fleet != nil {
		return s.Fleet, nil
	}
	ref := s.FleetRef
	if ref == nil {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "step input names no fleet (neither fleet nor fleet_ref)")
	}
	f, err := a.plannedFleet(*ref)
	if err != nil {
		if s.Planned == nil || s.Planned.Name != ref.Name {
			return nil, err
		}
		// An undo step: the planned fleet, in this worker's directory
		// where it has the fleet.
		planned := *s.Planned
		if own, ownErr := a.Fleets(ref.Name); ownErr == nil {
			planned.Dir = own.Dir
		}
		f = &planned
	}
	ref.apply(f)
	return f, nil
}

// keptFleet is a planned fleet as Plan keeps it: the JSON it digested, and
// the directory the fleet's paths are relative to.
type keptFleet struct {
	Dir   string          `json:"dir"`
	Fleet json.RawMessage `json:"fleet"`
}

// kept is the planned fleet ref names from this worker's store, if kept
// there: as digested, with its directory beside it; or, by a dnsroll from
// before that, as the fleet's JSON with its directory, digested as this
// dnsroll writes it.
func (a *Activities) kept(ref FleetRef) (*config.Fleet, bool) {
	b, ok, err := a.Bundles.Config(ref.SHA256)
	if err != nil || !ok {
		return nil, false
	}
	var k keptFleet
	var f config.Fleet
	if json.Unmarshal(b, &k) == nil && len(k.Fleet) > 0 && bytesDigest(k.Fleet) == ref.SHA256 && json.Unmarshal(k.Fleet, &f) == nil {
		f.Dir = k.Dir
		return &f, true
	}
	if json.Unmarshal(b, &f) == nil {
		if d, err := fleetDigest(&f); err == nil && d == ref.SHA256 {
			return &f, true
		}
	}
	return nil, false
}

// plannedFleet is the fleet ref names, before its overrides.
func (a *Activities) plannedFleet(ref FleetRef) (*config.Fleet, error) {
	own, ownErr := a.Fleets(ref.Name)
	if kept, ok := a.kept(ref); ok {
		// Every worker of this user on this host shares the store, and the
		// digest leaves Dir out: another checkout with the same config
		// keeps it with its own Dir. The config is the planned one; its
		// files are in this worker's directory.
		if ownErr == nil {
			kept.Dir = own.Dir
		}
		return kept, nil
	}
	if ownErr != nil {
		return nil, ownErr
	}
	f := own.ForSteps()
	found, err := fleetDigest(f)
	if err != nil {
		return nil, err
	}
	if found != ref.SHA256 {
		host, _ := os.Hostname()
		return nil, dnsroll.Errorf(dnsroll.ECONFLICT, "fleet %s: config changed since the plan: planned %s, found %s on worker %s; restore the planned config on this worker or re-run the rollout",
			ref.Name, bundle.Short(ref.SHA256), bundle.Short(found), host)
	}
	return f, nil
}
