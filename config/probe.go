package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsroll/dnsroll/zone"
)

// Probe configures the DNS analysis that runs on green before the switch
// and through the load balancers after it. A round asks every check of
// every target once; the thresholds turn rounds into a verdict.
type Probe struct {
	// AllNames checks every owner name in the zone files (default true);
	// false checks only each zone's apex SOA and NS, and Names.
	AllNames *bool `yaml:"all_names" json:"all_names,omitempty"`
	// Names are checked as well: relative to each zone ("www", "@") or
	// absolute. A name the zone lacks is expected to be NXDOMAIN, so
	// recently removed names can be listed to prove they are gone.
	Names []string `yaml:"names" json:"names"`
	// Types, when set, are asked at every checked name; by default each
	// name is asked for the types it holds (and A at a CNAME).
	Types []string `yaml:"types" json:"types,omitempty"`
	// Protocols to ask over: udp, tcp (default both).
	Protocols []string `yaml:"protocols" json:"protocols"`
	// EDNSBufferSize is the UDP payload size queries advertise (default
	// 1232, the DNS Flag Day 2020 value); larger UDP answers fail.
	EDNSBufferSize int `yaml:"edns_buffer_size" json:"edns_buffer_size,omitempty"`
	// Timeout bounds one attempt of one query (default 2s).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// MaxLatency, when set, fails an analysis round in which a server
	// (green, or a load balancer) took longer than this to answer at the
	// 95th percentile: a server that answers right but slowly. Default:
	// no limit; every analysis reports the latency either way.
	MaxLatency Duration `yaml:"max_latency" json:"max_latency,omitempty"`
	// Attempts is how many times a query without an answer is sent
	// within one round (default 3). Wrong answers are not retried.
	Attempts int `yaml:"attempts" json:"attempts"`
	// Concurrency bounds the queries in flight across all servers of one
	// analysis (default 32).
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	// Rounds is the most rounds one analysis runs (default 3).
	Rounds int `yaml:"rounds" json:"rounds,omitempty"`
	// Interval is the pause between rounds (default 2s).
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// ConsecutiveSuccesses passing rounds in a row pass the analysis
	// (default 1).
	ConsecutiveSuccesses int `yaml:"consecutive_successes" json:"consecutive_successes,omitempty"`
	// FailureLimit is how many rounds with a wrong answer are tolerated
	// (default 0: the first one fails the analysis).
	FailureLimit int `yaml:"failure_limit" json:"failure_limit"`
	// ErrorLimit is how many rounds with a query left unanswered after
	// every attempt are tolerated (default 1).
	ErrorLimit *int `yaml:"error_limit" json:"error_limit,omitempty"`
	// ExpectChanges says whether green may answer differently from blue
	// (default true: a zone change). false is for infrastructure-only
	// changes, such as an OS or BIND upgrade: any difference fails. A
	// rollout request can override it.
	ExpectChanges *bool `yaml:"expect_changes" json:"expect_changes,omitempty"`
	// AllowSerialDecrease accepts green SOA serials behind blue's. Only a
	// rollout request sets it (activities.FleetRef), to return to an older
	// revision of the zones once; a fleet file may not (perRollout).
	AllowSerialDecrease bool `yaml:"-" json:"allow_serial_decrease,omitempty"`
	// AllowNewKSK accepts green's DNSKEY set signed by none of the
	// key-signing keys that sign blue's, or none where blue signs: the
	// parent's DS already names green's key (a double-DS rollover), or is
	// gone. Only a rollout request sets it,
	// for the one rollout that moves to the new key, as
	// AllowSerialDecrease.
	AllowNewKSK bool `yaml:"-" json:"allow_new_ksk,omitempty"`
	// Samples bounds the failures and diff entries kept per server in the
	// results (default 5).
	Samples int `yaml:"samples" json:"samples,omitempty"`
	// SignatureMargin is how long past the bake the RRSIGs of signed zones
	// must stay valid (default 24h), so that a rollout never switches to
	// signatures that expire before anyone could re-sign and roll again.
	SignatureMargin *Duration `yaml:"signature_margin" json:"signature_margin,omitempty"`
	// Coverage says how much of a large fleet one analysis checks.
	Coverage Coverage `yaml:"coverage" json:"coverage"`
}

// Coverage is the analysis policy for large fleets. A fleet of at most
// FullUpTo zones has every name of every zone checked, as small fleets
// always did. A larger one has the SOA of every zone checked on every
// server (over the first protocol only), and every name of Sample zones chosen by Seed and of every zone
// the revision changed (its planned serial differs from blue's): asking
// every name of 100,000 zones would take longer than the change deserves.
type Coverage struct {
	// FullUpTo is the most zones checked at every name (default 1000).
	FullUpTo int `yaml:"full_up_to" json:"full_up_to"`
	// Sample is how many zones above it are checked at every name
	// besides the changed ones (default 100).
	Sample int `yaml:"sample" json:"sample"`
	// Seed chooses the sample; by default it is derived from the
	// revision's bundle hash, so both analyses of one rollout check the
	// same zones and the next revision other ones. The result records it.
	Seed *uint32 `yaml:"seed" json:"seed,omitempty"`
}

// WithDefaults is c with its defaults, also for a fleet config recorded
// before the setting existed.
func (c Coverage) WithDefaults() Coverage {
	if c.FullUpTo == 0 {
		c.FullUpTo = 1000
	}
	if c.Sample == 0 {
		c.Sample = 100
	}
	return c
}

// Signatures is the signature margin, with its default.
func (p Probe) Signatures() time.Duration {
	if p.SignatureMargin == nil {
		return 24 * time.Hour
	}
	return p.SignatureMargin.D()
}

// CheckAllNames reports whether every name in the zone files is checked.
func (p Probe) CheckAllNames() bool { return p.AllNames == nil || *p.AllNames }

// ChangesExpected reports whether green may differ from blue.
func (p Probe) ChangesExpected() bool { return p.ExpectChanges == nil || *p.ExpectChanges }

// Errors is the error limit, with its default.
func (p Probe) Errors() int {
	if p.ErrorLimit == nil {
		return 1
	}
	return *p.ErrorLimit
}

func (p *Probe) setDefaults() {
	if len(p.Protocols) == 0 {
		p.Protocols = []string{"udp", "tcp"}
	}
	setDur(&p.Timeout, 2*time.Second)
	setDur(&p.Interval, 2*time.Second)
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&p.Attempts, 3)
	setInt(&p.EDNSBufferSize, 1232)
	setInt(&p.Concurrency, 32)
	setInt(&p.Rounds, 3)
	setInt(&p.ConsecutiveSuccesses, 1)
	setInt(&p.Samples, 5)
	p.Coverage = p.Coverage.WithDefaults()
	if p.AllNames == nil {
		p.AllNames = ptr(true)
	}
	if p.ExpectChanges == nil {
		p.ExpectChanges = ptr(true)
	}
	if p.ErrorLimit == nil {
		p.ErrorLimit = ptr(1)
	}
	if p.SignatureMargin == nil {
		p.SignatureMargin = ptr(Duration(p.Signatures()))
	}
}

func ptr[T any](v T) *T { return &v }

// namesInZones refuses a full probe name (with the final dot) outside
// every zone: no zone's checks ask it, so it would check nothing.
func (p *Probe) namesInZones(zones []Zone) error {
	for i, n := range p.Names {
		if !dns.IsFqdn(n) || n == "@" {
			continue
		}
		if !slices.ContainsFunc(zones, func(z Zone) bool { return dns.IsSubDomain(dns.Fqdn(z.Name), n) }) {
			return fieldErr(fmt.Sprintf("probe.names[%d]", i), "%q is in none of the fleet's zones, so no check asks it: name a record in one of them, or leave the final dot out for a name relative to each zone", n)
		}
	}
	return nil
}

func (p *Probe) validate() error {
	for i, proto := range p.Protocols {
		if proto != "udp" && proto != "tcp" {
			return fieldErr(fmt.Sprintf("probe.protocols[%d]", i), "must be udp or tcp, got %q", proto)
		}
	}
	if err := noRepeats("probe.protocols", p.Protocols, func(s string) string { return s }); err != nil {
		return err
	}
	if err := noRepeats("probe.types", p.Types, strings.ToUpper); err != nil {
		return err
	}
	for i, n := range p.Names {
		if strings.TrimSpace(n) == "" {
			return fieldErr(fmt.Sprintf("probe.names[%d]", i), "must not be empty")
		}
		if err := asciiName(fmt.Sprintf("probe.names[%d]", i), n); err != nil {
			return err
		}
		if _, ok := dns.IsDomainName(n); n != "@" && (!ok || strings.ContainsAny(n, " \t")) {
			return fieldErr(fmt.Sprintf("probe.names[%d]", i), "must be a name relative to each zone (www, @) or a full name ending in a dot, got %q", n)
		}
	}
	// www and www. are two names: relative to each zone, and absolute.
	if err := noRepeats("probe.names", p.Names, strings.ToLower); err != nil {
		return err
	}
	for i, t := range p.Types {
		if qt, ok := zone.TypeCode(t); !ok || !askable(qt) {
			return fieldErr(fmt.Sprintf("probe.types[%d]", i), "must be a record type such as A, AAAA, MX or TXT, got %q", t)
		}
	}
	ranges := []struct {
		field    string
		v, lo, h int
	}{
		{"probe.attempts", p.Attempts, 1, 10},
		{"probe.edns_buffer_size", p.EDNSBufferSize, 512, 4096},
		{"probe.concurrency", p.Concurrency, 1, 1024},
		{"probe.rounds", p.Rounds, 1, 1000},
		{"probe.consecutive_successes", p.ConsecutiveSuccesses, 1, p.Rounds},
		{"probe.failure_limit", p.FailureLimit, 0, p.Rounds},
		{"probe.error_limit", p.Errors(), 0, p.Rounds},
		{"probe.samples", p.Samples, 1, 50},
		{"probe.coverage.full_up_to", p.Coverage.FullUpTo, 1, 10_000_000},
		{"probe.coverage.sample", p.Coverage.Sample, 1, 10_000_000},
	}
	for _, r := range ranges {
		if r.v < r.lo || r.v > r.h {
			return fieldErr(r.field, "must be between %d and %d, got %d", r.lo, r.h, r.v)
		}
	}
	if p.Timeout <= 0 {
		return fieldErr("probe.timeout", "must be positive, got %s", p.Timeout.D())
	}
	switch {
	case p.MaxLatency < 0:
		return fieldErr("probe.max_latency", "must not be negative, got %s (leave it out for no limit)", p.MaxLatency.D())
	case p.MaxLatency >= p.Timeout:
		return fieldErr("probe.max_latency", "%s must be shorter than probe.timeout (%s): a slower answer is no answer", p.MaxLatency.D(), p.Timeout.D())
	}
	if p.Interval < 0 {
		return fieldErr("probe.interval", "must not be negative, got %s", p.Interval.D())
	}
	if p.Signatures() < 0 {
		return fieldErr("probe.signature_margin", "must not be negative, got %s", p.Signatures())
	}
	return nil
}

// askable says whether a type names data a zone can hold, so that asking
// for it at a name is a check: not 0, OPT, or a query-only type (ANY, AXFR,
// IXFR, MAILA, MAILB, TKEY, TSIG).
func askable(t uint16) bool {
	switch t {
	case dns.TypeNone, dns.TypeOPT, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeTKEY, dns.TypeTSIG,
		// Signatures come with the RRsets they sign, which are checked
		// with them (KindDNSSEC); asked alone, they are dropped from the
		// answer. NSEC3 records stand at hashed names.
		dns.TypeRRSIG, dns.TypeNSEC3:
		return false
	}
	return true
}
