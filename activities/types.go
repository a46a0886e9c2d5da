package activities

import (
	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/provision"
)

// One input and one result struct per activity. They are recorded in
// workflow history, so they never carry secrets and stay small.

// PlanInput names the fleet and revision to roll out.
type PlanInput struct {
	Fleet    string `json:"fleet"`
	Revision string `json:"revision"`
	// Overrides are this rollout's own; Plan writes them into Plan.Fleet.
	Overrides
	// SmallHistory asks for a plan whose size does not grow with the
	// fleet's zones: no Zones, and Fleet as config.Fleet.ForSteps. Later
	// steps read the zones from the revision's bundle. Unset by rollouts
	// that started before it, which expect every zone in the plan.
	SmallHistory bool `json:"small_history,omitempty"`
	// LiveBundle is the bundle of the fleet's last rollout that
	// succeeded, which the starter looked up; Plan says what changes
	// against it (Plan.Changes). LiveUnknown, when set, is why the
	// starter could not tell.
	LiveBundle  string `json:"live_bundle,omitempty"`
	LiveUnknown string `json:"live_unknown,omitempty"`
	// Diff, when above 0, asks for the RRsets the revision changes in
	// each zone against the live one (Plan.Diffs), at most Diff of each
	// kind a zone. A dry run asks; a rollout does not, so that its
	// history stays small.
	Diff int `json:"diff,omitempty"`
	// DryRun is set by a dry run (workflows.PlanWorkflow), which changes
	// nothing: it does not check the load balancers' SSH, which records
	// their host keys at first contact and waits out an sshd that does not
	// answer; the rollout's Plan does.
	DryRun bool `json:"dry_run,omitempty"`
}

// Plan is everything later steps need, fixed at the start of the rollout so a
// config edit mid-rollout cannot change a running one.
type Plan struct {
	Fleet *config.Fleet `json:"fleet"`
	// FleetRef names Fleet by its content; steps get it instead of
	// Fleet. Nil in rollouts planned before it.
	FleetRef *FleetRef `json:"fleet_ref,omitempty"`
	Revision string    `json:"revision"`
	// Blue maps a nameserver label to the server now serving it. A label with
	// no entry has no blue yet (the fleet's first rollout).
	Blue map[string]dnsroll.Server `json:"blue"`
	// Zones are the zone files this revision deploys, with their serials;
	// empty in a plan with a small history, whose steps read them from
	// the bundle (ZoneCount says how many).
	Zones     []ZoneFile `json:"zones"`
	ZoneCount int        `json:"zone_count,omitempty"`
	// Bundle is the revision's content address, "sha256:<hex>" over the
	// zone files and the nameserver playbook's Ansible files (package
	// bundle); later steps refuse any other. Empty in rollouts planned
	// before it was recorded.
	Bundle string `json:"bundle,omitempty"`
	// Changes is what this revision changes against the live one, for
	// the approval gate; nil in rollouts planned before it was recorded.
	Changes *Changes `json:"changes,omitempty"`
	// Checks are no longer set: Verify builds its checks from Zones, so
	// that a zone of any size stays out of workflow history. Kept for
	// histories recorded before.
	Checks []probe.Check `json:"checks"`
	// Diffs are the zones whose files differ from the live revision's,
	// with their RRset changes (PlanInput.Diff); at most MaxZoneDiffs,
	// and MoreDiffs counts the rest.
	Diffs     []ZoneChange `json:"diffs,omitempty"`
	MoreDiffs int          `json:"more_diffs,omitempty"`
	// Warnings are things the operator should know that do not stop the
	// rollout; at most MaxWarnings, the last of which counts the rest.
	Warnings []string `json:"warnings,omitempty"`
	Attempt  int32    `json:"attempt"`
}

// ZoneFile is one zone as deployed by Ansible.
type ZoneFile struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Serial uint32 `json:"serial"`
	// SHA256 is the content Plan read; every step that reads the file
	// checks it (empty in rollouts from before it was recorded).
	SHA256 string `json:"sha256,omitempty"`
	// bundled is the file's name in the bundle, when the zone came from
	// the bundle's manifest (plannedZones): Path is then the planning
	// worker's, named relative to its directory, which may not be this
	// worker's. Empty, the name is Path's relative to the step's fleet.
	bundled string
}

// EnsureServerInput asks for a running, fleet-tagged server with Spec.Label.
type EnsureServerInput struct {
	StepFleet
	Spec dnsroll.ServerSpec `json:"spec"`
	// KeepUnlike reuses a server an earlier run left under the label
	// whatever its region, plan and image: a replacement load balancer,
	// which the parent's glue may point at. A nameserver's green of
	// another spec is deleted and created anew.
	KeepUnlike bool `json:"keep_unlike,omitempty"`
}

// ServerResult is a server as the cloud reports it.
type ServerResult struct {
	Server  dnsroll.Server `json:"server"`
	Created bool           `json:"created"`
	Attempt int32          `json:"attempt"`
}

// ProvisionInput provisions nameservers with the nameserver playbook.
type ProvisionInput struct {
	StepFleet
	Servers []dnsroll.Server `json:"servers"`
	// Zones are the plan's zones; empty when the plan has a small
	// history, and the zones are Revision's in Bundle.
	Zones []ZoneFile `json:"zones"`
	// Bundle is Plan.Bundle: provision refuses files that hash otherwise.
	Bundle   string `json:"bundle,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// ProvisionResult is Ansible's per-host recap.
type ProvisionResult struct {
	Ansible provision.Result `json:"ansible"`
	Attempt int32            `json:"attempt"`
}

// ProbeTarget is one address to check: a server directly or a load balancer.
type ProbeTarget struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// VerifyInput analyses every target's DNS answers.
type VerifyInput struct {
	StepFleet
	Targets []ProbeTarget `json:"targets"`
	// Checks are used only when Zones is empty (inputs recorded before
	// Verify built its checks from the zone files).
	Checks []probe.Check `json:"checks"`
	// Serials is the SOA serial each zone must have on every target.
	Serials map[string]uint32 `json:"serials"`
	// Baseline are the servers now serving (blue), to compare targets
	// against; empty on the fleet's first rollout and after the switch.
	Baseline []ProbeTarget `json:"baseline,omitempty"`
	// Zones are the zone files the targets must serve; Verify parses them
	// again to build its checks. Empty when the plan has a small history:
	// then they, and Serials, are Revision's zones in Bundle.
	Zones []ZoneFile `json:"zones,omitempty"`
	// Bundle is Plan.Bundle: Verify refuses zone files that hash otherwise.
	Bundle   string `json:"bundle,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Live is the live revision's bundle (Plan.Changes.Live), blue's:
	// with changes expected, what it holds and Bundle does not is asked
	// too. Empty when not known, and in rollouts started before it.
	Live string `json:"live,omitempty"`
	// Rounds, when set, overrides the fleet's probe.rounds, e.g. 1 for
	// one bake round; consecutive_successes is capped at it.
	Rounds int `json:"rounds,omitempty"`
}

// VerifyResult is an analysis: one report per target (counts per kind of
// check, sample failures, SOA serials, the diff against blue), the
// outcome of each round and a one-line summary. A failed Verify attaches
// it to its error as the second detail, after the attempt number.
type VerifyResult struct {
	Reports []probe.Report `json:"reports"`
	Rounds  []string       `json:"rounds,omitempty"`
	// Checks is how many queries a round asks each target per protocol.
	Checks  int      `json:"checks,omitempty"`
	Summary string   `json:"summary,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Attempt int32    `json:"attempt"`
	// Coverage says which zones were checked how (probe.coverage); nil
	// when the checks came in the input.
	Coverage *probe.Coverage `json:"coverage,omitempty"`
}

// SwitchInput points one load balancer at backends.
type SwitchInput struct {
	StepFleet
	LB       config.LoadBalancer `json:"lb"`
	Backends []dnsroll.Server    `json:"backends"`
}

// StepResult is the result of steps that return nothing else.
type StepResult struct {
	Attempt int32  `json:"attempt"`
	Note    string `json:"note,omitempty"`
}

// DeleteServerInput deletes one fleet-tagged server.
type DeleteServerInput struct {
	Tag    string         `json:"tag"`
	Server dnsroll.Server `json:"server"`
}

// DeleteGreenInput deletes every fleet-tagged server with one of Labels. It
// undoes server creation even when the create's response was lost and the
// workflow never learned the new server's ID.
type DeleteGreenInput struct {
	Tag    string   `json:"tag"`
	Labels []string `json:"labels"`
	// IDs are servers to delete whatever their label, as long as it
	// still ends in -next: ones an earlier run recorded, which may have
	// been relabelled since.
	IDs []int `json:"ids,omitempty"`
}

// RenameInput gives a green server its final label.
type RenameInput struct {
	Tag    string         `json:"tag"`
	Server dnsroll.Server `json:"server"`
	To     string         `json:"to"`
}
