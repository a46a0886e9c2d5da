package probe

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// Policy says how much of a fleet's zones one analysis checks. Up to
// FullUpTo zones every name of every zone is checked; a larger fleet gets
// the SOA of every zone on every target, every name of Sample zones chosen
// by Seed, and every name of every zone changed in the revision.
type Policy struct {
	FullUpTo int
	Sample   int
	Seed     uint32
}

// Planned is one zone of the revision as the policy sees it: its apex and
// the SOA serial of its zone file.
type Planned struct {
	Name   string
	Serial uint32
}

// How a coverage told which zones changed (Coverage.ChangedBy).
const (
	// ChangedAll: every zone was checked in full, below the threshold.
	ChangedAll = "all"
	// ChangedBaseline: a zone changed when the serial its zone file plans
	// differs from the one the baseline (blue) serves, or blue has none.
	ChangedBaseline = "baseline serial"
	// ChangedUnknown: there was no baseline to ask (the fleet's first
	// rollout, or the analysis through the load balancers after the
	// switch), or it answered no SOA; only the sample is checked in full.
	ChangedUnknown = "unknown: no baseline"
)

// Coverage says what an analysis covered. It stays a few hundred bytes
// whatever the zone count.
type Coverage struct {
	// Zones is how many zones the revision has.
	Zones int `json:"zones"`
	// SOA is how many zones had their SOA checked on every target.
	SOA int `json:"soa"`
	// Full is how many zones had every name checked: Sampled and Changed,
	// which may overlap, or every zone up to FullUpTo.
	Full    int `json:"full"`
	Sampled int `json:"sampled"`
	Changed int `json:"changed"`
	// ChangedBy says how Changed was told (ChangedAll, ...).
	ChangedBy string `json:"changed_by"`
	// FullUpTo, SampleSize and Seed are the policy applied.
	FullUpTo   int    `json:"full_up_to"`
	SampleSize int    `json:"sample_size"`
	Seed       uint32 `json:"seed"`
	// Names is how many distinct names were asked, on every target.
	Names int `json:"names"`
	// SOAOver is the one protocol the SOA of each zone outside the full
	// set was asked over (Check.OneProtocol); every name of the full set
	// is asked over every protocol. Empty when every zone is in full.
	SOAOver string `json:"soa_over,omitempty"`
	// Removed is how many names the live revision (blue's) answers
	// otherwise were asked, expecting what the planned zones say: those
	// only it holds, and those a wildcard answers in one revision only
	// (zone.Diff's entries with a Why). RemovedNot says why they were
	// not, when the live revision could not be read.
	Removed    int    `json:"removed,omitempty"`
	RemovedNot string `json:"removed_not,omitempty"`
}

// String is the coverage for the one-line summary.
func (c Coverage) String() string {
	removed := ""
	switch {
	case c.RemovedNot != "":
		removed = "; names the live revision answers otherwise not asked: " + c.RemovedNot
	case c.Removed > 0:
		removed = fmt.Sprintf("; and %d names the live revision answers otherwise", c.Removed)
	}
	if c.ChangedBy == ChangedAll {
		return fmt.Sprintf("every name of all %d zones (%d names)%s", c.Zones, c.Names, removed)
	}
	over := ""
	if c.SOAOver != "" {
		over = " over " + c.SOAOver
	}
	return fmt.Sprintf("SOA of %d of %d zones%s, every name of %d (%d sampled with seed %d, %d changed by %s; %d names)%s",
		c.SOA, c.Zones, over, c.Full, c.Sampled, c.Seed, c.Changed, c.ChangedBy, c.Names, removed)
}

// Cover decides which zones are checked at every name: all of them up to
// p.FullUpTo; above it the sample and the zones changed against base, the
// serials the baseline serves by canonical apex (nil when there is no
// baseline). full[i] is zones[i]'s decision; the coverage's SOA is every
// zone, Names is left for the caller, who builds the checks.
func Cover(zones []Planned, p Policy, base map[string]uint32) (full []bool, cov Coverage) {
	full = make([]bool, len(zones))
	cov = Coverage{Zones: len(zones), SOA: len(zones), FullUpTo: p.FullUpTo, SampleSize: p.Sample, Seed: p.Seed, ChangedBy: ChangedAll}
	if len(zones) <= p.FullUpTo {
		for i := range full {
			full[i] = true
		}
		cov.Full = len(zones)
		return full, cov
	}
	for _, i := range Sample(zones, p.Sample, p.Seed) {
		full[i] = true
		cov.Sampled++
	}
	cov.ChangedBy = ChangedUnknown
	if base != nil {
		cov.ChangedBy = ChangedBaseline
		for i, z := range zones {
			if s, ok := base[dns.CanonicalName(z.Name)]; !ok || s != z.Serial {
				full[i] = true
				cov.Changed++
			}
		}
	}
	for _, f := range full {
		if f {
			cov.Full++
		}
	}
	return full, cov
}

// Sample returns the indexes of n zones chosen by seed, in zones' order.
// A zone's rank is a hash of the seed and its canonical name, so the
// sample depends on neither the order of zones nor, but for the zones
// added or removed, on the rest of the fleet.
func Sample(zones []Planned, n int, seed uint32) []int {
	n = min(max(n, 0), len(zones))
	type ranked struct {
		rank uint64
		i    int
	}
	r := make([]ranked, len(zones))
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seed)
	for i, z := range zones {
		h := fnv.New64a()
		h.Write(s[:])
		h.Write([]byte(dns.CanonicalName(z.Name)))
		r[i] = ranked{h.Sum64(), i}
	}
	slices.SortFunc(r, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.i, b.i)) })
	out := make([]int, n)
	for k := range n {
		out[k] = r[k].i
	}
	slices.Sort(out)
	return out
}

// Checks returns the checks of s for z, a zone checked in full, and
// counts their names in c.Names.
func (c *Coverage) Checks(z *zone.Zone, s Scope) []Check {
	checks := Checks(z, s)
	names := map[string]bool{}
	for _, ch := range checks {
		names[ch.Name] = true
	}
	c.Names += len(names)
	return checks
}

// SOACheck is the one check of a zone outside the full set: its apex SOA,
// which proves the planned SOA and serial are served, asked over one
// protocol (Check.OneProtocol).
func (c *Coverage) SOACheck(a *zone.Apex) Check {
	c.Names++
	return Check{Zone: a.Origin, Name: a.Origin, Type: "SOA", Want: a.SOA, OneProtocol: true}
}

// BaselineSerials asks every server in addrs for the SOA of every zone,
// over UDP, and returns the serial each zone has on all of them, by
// canonical apex. The next analysis's first look at those servers takes
// their SOA answers from here instead of asking again. A zone a server did not answer, or on which servers
// disagree, is left out (so Cover counts it changed). It returns nil when
// no server answered any SOA: there is then no baseline to tell changes by.
func (p *Prober) BaselineSerials(ctx context.Context, addrs []string, zones []Planned) map[string]uint32 {
	if len(addrs) == 0 || len(zones) == 0 {
		return nil
	}
	checks := make([]Check, len(zones))
	for i, z := range zones {
		n := dns.CanonicalName(z.Name)
		checks[i] = Check{Zone: n, Name: n, Type: "SOA"}
	}
	var servers []*asked
	for _, a := range addrs {
		servers = append(servers, &asked{addr: a, protocols: []string{"udp"}})
	}
	p.acquire()
	defer p.release()
	p.askAll(ctx, make(chan struct{}, p.concurrency()), checks, servers)
	known := map[string]map[string]observed{}
	for _, s := range servers {
		known[s.addr] = map[string]observed{}
		for i, c := range checks {
			if o := s.obs[0][i]; o.replied {
				known[s.addr][c.Zone] = o
			}
		}
	}
	p.mu.Lock()
	p.baselineSOA = known
	p.mu.Unlock()
	out := map[string]uint32{}
	answered := false
	for i, c := range checks {
		agreed := true
		for _, s := range servers {
			o := s.obs[0][i]
			answered = answered || o.soa
			agreed = agreed && o.soa && o.serial == servers[0].obs[0][i].serial
		}
		if agreed {
			out[c.Zone] = servers[0].obs[0][i].serial
		}
	}
	if !answered {
		return nil
	}
	return out
}

// takeBaselineSOA returns the SOA answers BaselineSerials got, by server,
// and forgets them: they stand in for the first baseline round of one
// analysis, not for later ones, which ask afresh.
func (p *Prober) takeBaselineSOA() map[string]map[string]observed {
	p.mu.Lock()
	defer p.mu.Unlock()
	known := p.baselineSOA
	p.baselineSOA = nil
	return known
}
