package activities

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/hostkeys"
	"github.com/dnsroll/dnsroll/internal/parallel"
	"github.com/dnsroll/dnsroll/probe"
	"github.com/dnsroll/dnsroll/zone"
)

// ErrAnalysis is the error type of a Verify whose analysis failed. It is
// not retried: the analysis already had its rounds and limits, and the
// same servers would give the same answers.
const ErrAnalysis = "AnalysisFailed"

// Verify analyses the targets' DNS answers (see probe.Analyze): on green
// before the switch, with blue as the baseline, and through the load
// balancers after it. The checks come from the zone files in in.Zones,
// parsed again here rather than carried in the input, so that a zone of
// any size keeps workflow history small. Thresholds and settings come
// from the fleet's probe section.
func (a *Activities) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	// Heartbeat from the start: parsing a large fleet's zones and reading
	// blue's serials can outlast the heartbeat timeout before any probe.
	var progress atomic.Value
	progress.Store("preparing the checks: zones and blue's serials")
	stop := heartbeatEvery(ctx, time.Second, progress.Load)
	defer stop()
	var err error
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return VerifyResult{}, failure(ctx, err)
	}
	pc := in.Fleet.Probe
	zones, err := a.plannedZones(in.Fleet, in.Revision, in.Bundle, in.Zones)
	if err != nil {
		return VerifyResult{}, failure(ctx, err)
	}
	in.Zones = zones
	if len(in.Serials) == 0 {
		in.Serials = serialsOf(zones)
	}
	p := &probe.Prober{Timeout: pc.Timeout.D(), Attempts: pc.Attempts, EDNSBufSize: uint16(pc.EDNSBufferSize), Concurrency: pc.Concurrency}
	checks, keys, cov, err := a.verifyChecks(ctx, p, in)
	if err != nil {
		return VerifyResult{}, failure(ctx, err)
	}
	th := probe.Thresholds{
		Rounds: pc.Rounds, Interval: pc.Interval.D(), ConsecutiveSuccesses: pc.ConsecutiveSuccesses,
		FailureLimit: pc.FailureLimit, ErrorLimit: pc.Errors(),
	}
	if in.Rounds > 0 {
		th.Rounds, th.ConsecutiveSuccesses = in.Rounds, min(max(th.ConsecutiveSuccesses, 1), in.Rounds)
	}
	progress.Store("starting")
	j := job(in, checks)
	j.Keys = keys
	an := p.Analyze(ctx, j, probe.Settings{
		Protocols: pc.Protocols, Thresholds: th, ExpectChanges: pc.ChangesExpected(), AllowSerialDecrease: pc.AllowSerialDecrease, AllowNewKSK: pc.AllowNewKSK, Samples: pc.Samples,
		SignaturesValidFor: in.Fleet.Rollout.BakeDuration() + pc.Signatures(),
		MaxLatency:         pc.MaxLatency.D(),
		Progress:           func(s string) { progress.Store(s) },
	})
	stop()
	res := VerifyResult{Reports: an.Reports, Rounds: an.Rounds, Checks: len(checks), Notes: an.Notes, Attempt: attempt(ctx), Coverage: cov}
	res.Summary = summarize(an, cov)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if !an.OK {
		return res, temporal.NewApplicationErrorWithOptions(an.Reason, ErrAnalysis, temporal.ApplicationErrorOptions{
			NonRetryable: true, Details: []any{attempt(ctx), res},
		})
	}
	return res, nil
}

// verifyChecks parses the zone files and builds the checks the fleet
// asks for (see cover), and the DNSKEY sets of the signed zones. A file
// whose serial is not the one planned changed under the rollout, and
// fails it rather than be verified against a moving target.
func (a *Activities) verifyChecks(ctx context.Context, p *probe.Prober, in VerifyInput) ([]probe.Check, map[string]zone.Records, *probe.Coverage, error) {
	if len(in.Zones) == 0 {
		if len(in.Checks) == 0 {
			return nil, nil, nil, dnsroll.Errorf(dnsroll.EINVALID, "no DNS checks to run: the input names no zone files")
		}
		return in.Checks, nil, nil, nil
	}
	zones, _, err := a.materialise(in.Fleet, in.Bundle, in.Zones)
	if err != nil {
		return nil, nil, nil, err
	}
	pc := in.Fleet.Probe
	planned := make([]probe.Planned, len(zones))
	for i, zf := range zones {
		planned[i] = probe.Planned{Name: zf.Name, Serial: zf.Serial}
	}
	full, cov := cover(ctx, p, pc, in.Bundle, planned, in.Baseline)
	if cov.Full < cov.Zones {
		// The analysis's first protocol (Settings.Protocols' default).
		cov.SOAOver = "udp"
		if len(pc.Protocols) > 0 {
			cov.SOAOver = pc.Protocols[0]
		}
	}
	scope := probe.Scope{All: pc.CheckAllNames(), Names: pc.Names, Types: pc.Types}
	// With changes expected, green is asked too what blue's revision
	// holds and this one does not; without, green must equal blue.
	var live *liveZones
	if pc.ChangesExpected() && in.Live != "" && in.Live != in.Bundle {
		live, cov.RemovedNot = a.liveRevision(in.Live, zones)
	}
	// The zone files are read on every core, each zone's checks and
	// names counted apart, then joined in the zones' order.
	perZone := make([][]probe.Check, len(zones))
	apexes := make([]*zone.Apex, len(zones))
	names, removed := make([]int, len(zones)), make([]int, len(zones))
	unread := make([]error, len(zones))
	err = parallel.For(len(zones), func(i int) error {
		zf := zones[i]
		var c probe.Coverage
		zc, z, apex, err := zoneChecks(zf, full[i], scope, &c)
		if err != nil {
			return err
		}
		if apex.Serial != zf.Serial {
			return dnsroll.Errorf(dnsroll.EINVALID, "zone %s: %s changed since planning: serial %d, planned %d", zf.Name, zf.Path, apex.Serial, zf.Serial)
		}
		if live != nil && z != nil {
			gone, err := live.removedChecks(z, scope, zc)
			unread[i], removed[i] = err, distinctNames(gone)
			zc = append(zc, gone...)
		}
		perZone[i], apexes[i], names[i] = zc, apex, c.Names
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var checks []probe.Check
	if live != nil {
		gone, err := live.zoneChecks(zones)
		if err != nil {
			return nil, nil, nil, err
		}
		checks, cov.Removed = gone, len(gone)
		if err := errors.Join(unread...); err != nil {
			cov.RemovedNot = err.Error()
		}
	}
	keys := map[string]zone.Records{}
	origins := make([]string, len(zones))
	for i, apex := range apexes {
		checks = append(checks, perZone[i]...)
		cov.Names += names[i]
		cov.Removed += removed[i]
		if len(apex.DNSKEYs) > 0 {
			keys[apex.Origin] = apex.DNSKEYs
		}
		origins[i] = apex.Origin
	}
	return probe.AnsweredByItsZone(checks, origins), keys, &cov, nil
}

// zoneChecks reads the zone file of zf, in full when every name of it is
// checked (zone.ParseChecked), else only its apex (zone.ParseApex), and
// returns its checks, and the zone when read in full.
func zoneChecks(zf ZoneFile, full bool, scope probe.Scope, cov *probe.Coverage) ([]probe.Check, *zone.Zone, *zone.Apex, error) {
	if !full {
		apex, err := zone.ParseApex(zf.Path, zf.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		return []probe.Check{cov.SOACheck(apex)}, nil, apex, nil
	}
	// BIND loaded the file when it was planned and provisioned: a simple
	// one is read without a named-compilezone run.
	z, err := zone.ParseChecked(zf.Path, zf.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	return cov.Checks(z, scope), z, z.Apex(), nil
}

// distinctNames counts the names checks ask.
func distinctNames(checks []probe.Check) int {
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
	}
	return len(names)
}

// cover applies the fleet's coverage policy (probe.coverage) to the
// revision's zones: which of them are checked at every name. Above its
// threshold a zone changed in the revision when the serial it plans
// differs from the one the baseline (blue) serves, asked here; without a
// baseline (the first rollout, or through the load balancers after the
// switch, when green was analysed with one) only the sample is, and the
// coverage says so. The seed, unless configured, comes from the
// revision's bundle hash.
func cover(ctx context.Context, p *probe.Prober, pc config.Probe, bundle string, zones []probe.Planned, baseline []ProbeTarget) ([]bool, probe.Coverage) {
	c := pc.Coverage.WithDefaults()
	h := fnv.New32a()
	h.Write([]byte(bundle))
	pol := probe.Policy{FullUpTo: c.FullUpTo, Sample: c.Sample, Seed: h.Sum32()}
	if c.Seed != nil {
		pol.Seed = *c.Seed
	}
	var base map[string]uint32
	if len(zones) > pol.FullUpTo {
		var addrs []string
		for _, b := range baseline {
			if b.Addr != "" && !slices.Contains(addrs, b.Addr) {
				addrs = append(addrs, b.Addr)
			}
		}
		base = p.BaselineSerials(ctx, addrs, zones)
	}
	return probe.Cover(zones, pol, base)
}

// job pairs each target with its baseline: green ns1-next with blue ns1,
// by label, else by position.
func job(in VerifyInput, checks []probe.Check) probe.Job {
	j := probe.Job{Role: role(in.Fleet, in.Targets), BaselineRole: "blue", Checks: checks, Serials: in.Serials}
	for i, t := range in.Targets {
		j.Targets = append(j.Targets, probe.Server{Name: t.Name, Addr: t.Addr})
		if len(in.Baseline) == 0 {
			continue
		}
		b := in.Baseline[i%len(in.Baseline)]
		final, _ := dnsroll.FinalLabel(t.Name)
		for _, cand := range in.Baseline {
			if cand.Name == final {
				b = cand
			}
		}
		j.Baseline = append(j.Baseline, probe.Server{Name: b.Name, Addr: b.Addr})
	}
	return j
}

// role names the targets in messages: "load balancer" or "green".
func role(f *config.Fleet, targets []ProbeTarget) string {
	for _, lb := range f.LoadBalancers {
		if len(targets) > 0 && targets[0].Name == lb.Name {
			return "load balancer"
		}
	}
	if len(targets) > 0 && strings.HasSuffix(targets[0].Name, dnsroll.NextSuffix) {
		return "green"
	}
	return "server"
}

// summarize is one line for the Web UI and step notes, e.g.
// "pass after 1 round: ns1-next 84/84, ns2-next 84/84; covered every
// name of all 3 zones (12 names)".
func summarize(an probe.Analysis, cov *probe.Coverage) string {
	var parts []string
	for _, r := range an.Reports {
		part := fmt.Sprintf("%s %d/%d", r.Name, r.Passed, r.Passed+r.Failed+r.Errors)
		if r.Latency != nil {
			part += fmt.Sprintf(" (p95 %.0fms)", r.Latency.P95MS)
		}
		parts = append(parts, part)
	}
	verdict := "fail"
	if an.OK {
		verdict = "pass"
	}
	covered := ""
	if cov != nil {
		covered = "; covered " + cov.String()
	}
	return fmt.Sprintf("%s after %d round(s) [%s]: %s%s", verdict, len(an.Rounds), strings.Join(an.Rounds, ","), strings.Join(parts, ", "), covered)
}

// SwitchLoadBalancer points one load balancer at its backends through the
// load balancer's driver, which returns once the running program serves
// them, then checks through DNS that the load balancer answers from them.
// Pointing it where it already points is a no-op, and a retry converges
// from whatever an interrupted attempt left.
func (a *Activities) SwitchLoadBalancer(ctx context.Context, in SwitchInput) (StepResult, error) {
	d, ok := a.Drivers[in.LB.Driver]
	if !ok {
		return StepResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "load balancer %s: no driver %q on this worker", in.LB.Name, in.LB.Driver))
	}
	var err error
	if in.Fleet, err = a.stepFleet(in.StepFleet); err != nil {
		return StepResult{}, failure(ctx, err)
	}
	stop := keepAlive(ctx, "switching "+in.LB.Name)
	err = backendsAnswer(ctx, in.Fleet, in.Backends)
	if err == nil {
		err = d.Point(ctx, in.Fleet, in.LB, in.Backends)
	}
	if err == nil {
		err = confirmServing(ctx, in.Fleet, in.LB, in.Backends)
	}
	note := ""
	if refused := (*hostkeys.Error)(nil); errors.As(err, &refused) && len(in.Backends) > 0 && confirmServing(ctx, in.Fleet, in.LB, in.Backends) == nil {
		// Nothing to change: the load balancer already answers from the
		// backends, as it does when the switch to green was refused for
		// this very key and blue is being restored. The step succeeds
		// without logging in; the next switch is refused again.
		activity.GetLogger(ctx).Warn("host key refused; the load balancer already serves its backends, so nothing was changed", "lb", in.LB.Name, "error", err)
		err, note = nil, " (already serving; not logged into: host key refused)"
	}
	stop()
	if err != nil {
		return StepResult{}, failure(ctx, atLoadBalancer(in.LB.Name, "", err))
	}
	names := make([]string, len(in.Backends))
	for i, b := range in.Backends {
		names[i] = b.Label
	}
	return StepResult{Attempt: attempt(ctx), Note: fmt.Sprintf("%s → %s%s", in.LB.Name, strings.Join(names, ","), note)}, nil
}

// backendsAnswer checks, before a load balancer is pointed at backends,
// that each answers the fleet's first zone when asked directly, and as
// itself: an NSID, when it gives one, that names its own instance. A
// cleanup switching back to a blue server that a later rollout deleted,
// or whose address another server has since, would otherwise take the
// load balancer's traffic down; the step fails instead, to be retried,
// and the load balancer is left as it is.
func backendsAnswer(ctx context.Context, fleet *config.Fleet, backends []dnsroll.Server) error {
	if len(fleet.Zones) == 0 || len(fleet.Probe.Protocols) == 0 {
		return nil
	}
	zoneName, proto := fleet.Zones[0].Name, fleet.Probe.Protocols[0]
	for _, b := range backends {
		id, err := probe.Identify(ctx, b.DNSAddr(), proto, zoneName, max(fleet.Probe.Timeout.D(), time.Second))
		switch {
		case err != nil:
			return fmt.Errorf("%s (%s) does not answer, so the load balancer is not pointed at it: %w", b.Label, b.DNSAddr(), err)
		case id.NSID != "" && id.NSID != ServerID(b):
			return fmt.Errorf("%s (%s) answers as %s, not %s: another server has its address, so the load balancer is not pointed at it", b.Label, b.DNSAddr(), id.NSID, ServerID(b))
		}
	}
	return nil
}

// confirmAsks is how many queries per protocol confirmServing sends through
// a load balancer, each on a connection of its own, so that every worker of
// a multi-worker load balancer is likely to answer one.
const confirmAsks = 6

// confirmServing checks through DNS that lb answers from one of backends:
// over each of the fleet's protocols, the load balancer's answers carry
// the NSID and SOA serial that a backend gives when asked directly. A load
// balancer that still forwards to the other side (a switch that did not
// take) or to a deleted server fails the check, and the step retries.
// Servers provisioned before dnsroll set an NSID are told apart by serial
// alone. With no backends there is nothing to answer.
func confirmServing(ctx context.Context, fleet *config.Fleet, lb config.LoadBalancer, backends []dnsroll.Server) error {
	if len(backends) == 0 || len(fleet.Zones) == 0 {
		return nil
	}
	zoneName := fleet.Zones[0].Name
	timeout := max(fleet.Probe.Timeout.D(), time.Second)
	for _, proto := range fleet.Probe.Protocols {
		var want []probe.Identity
		var names []string
		for _, b := range backends {
			id, err := probe.Identify(ctx, b.DNSAddr(), proto, zoneName, timeout)
			if err != nil {
				return fmt.Errorf("confirm: backend %s does not answer: %w", b.Label, err)
			}
			want = append(want, id)
			names = append(names, fmt.Sprintf("%s (%s)", b.Label, id))
		}
		for range confirmAsks {
			got, err := probe.Identify(ctx, lb.Address, proto, zoneName, timeout)
			if err != nil {
				return fmt.Errorf("confirm: no answer through the load balancer, which should answer from %s: %w", strings.Join(names, ", "), err)
			}
			if !slices.Contains(want, got) {
				return fmt.Errorf("confirm: the load balancer answers %s with %s, not from %s", proto, got, strings.Join(names, ", "))
			}
		}
	}
	return nil
}
