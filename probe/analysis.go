package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dnsroll/dnsroll/zone"
)

// Server is one address to analyse: a nameserver or a load balancer.
type Server struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// Job is what an analysis checks.
type Job struct {
	// Role names the targets in messages ("green", "load balancer").
	Role    string
	Targets []Server
	// Baseline[i], when its Addr is set, is the server that Targets[i] is
	// compared with (blue), named BaselineRole in messages.
	Baseline     []Server
	BaselineRole string
	Checks       []Check
	// Serials is the SOA serial each zone must have, from the zone files.
	Serials map[string]uint32
	// Keys are the DNSKEY sets of the signed zones, by apex, from the zone
	// files: answers of those zones are checked as KindDNSSEC says.
	Keys map[string]zone.Records
}

// Thresholds turn rounds into a verdict, as in progressive-delivery
// analysis: the analysis passes after ConsecutiveSuccesses passing rounds
// in a row, fails once more than FailureLimit rounds had a wrong answer or
// more than ErrorLimit rounds had no answer for some query, and fails as
// inconclusive after Rounds rounds. Interval is the pause between rounds.
type Thresholds struct {
	Rounds               int
	Interval             time.Duration
	ConsecutiveSuccesses int
	FailureLimit         int
	ErrorLimit           int
}

// Settings say how to analyse.
type Settings struct {
	// Protocols to ask over; the first one's answers are compared with the
	// baseline.
	Protocols []string
	Thresholds
	// ExpectChanges false makes any difference from the baseline a failure
	// (an infrastructure-only change); true reports differences only.
	ExpectChanges bool
	// AllowSerialDecrease accepts a serial behind the baseline's, for a
	// deliberate return to an older revision of the zones.
	AllowSerialDecrease bool
	// Samples bounds the failures each report keeps and the changes each
	// comparison lists; 0 means 5.
	Samples int
	// SignaturesValidFor is how long past now the RRSIGs of signed zones
	// must stay valid: the bake and a margin (probe.signature_margin).
	SignaturesValidFor time.Duration
	// MaxLatency, when set, fails a round in which a target's answers took
	// longer than this at the 95th percentile (probe.max_latency).
	MaxLatency time.Duration
	// AllowNewKSK accepts a DNSKEY set that none of the baseline's
	// key-signing keys signs, or none where the baseline signs: the
	// parent's DS already names the target's key (probe.allow_new_ksk, a
	// double-DS rollover) or is gone. It is then a note.
	AllowNewKSK bool
	// Progress, when set, is told what the analysis is doing (heartbeats).
	Progress func(string)
}

// Analysis is the outcome of Analyze, small enough for workflow history.
type Analysis struct {
	OK bool `json:"ok"`
	// Rounds holds each round's outcome: pass, fail or error.
	Rounds []string `json:"rounds"`
	// Reports are the targets' reports from the last round.
	Reports []Report `json:"reports"`
	// Reason says why the analysis failed, naming servers and RRsets.
	Reason string `json:"reason,omitempty"`
	// Notes are worth knowing but failed nothing, such as an expected diff.
	Notes []string `json:"notes,omitempty"`
}

// queryKinds are the checks of single queries, summarised together in
// failure reasons.
var queryKinds = map[string]bool{KindAnswer: true, KindEDNS: true, KindRecursion: true}

// dnssecKinds come first in failure reasons: a bad signature is an
// outage of the whole zone for validating resolvers.
var dnssecKinds = map[string]bool{KindDNSSEC: true}

// maxReason bounds Analysis.Reason, which becomes an error message.
const maxReason = 1500

// Analyze runs rounds of checks against every target until Thresholds
// decide. Each round asks every check over every protocol of every target,
// checks EDNS sizes, that recursion is refused and the SOA serials, and
// compares the answers with the baseline's (asked once, in the first
// round, at the same moment as the targets). At most Concurrency queries
// are in flight across all servers.
func (p *Prober) Analyze(ctx context.Context, job Job, s Settings) Analysis {
	// One engine, its sockets kept, for every round.
	p.acquire()
	defer p.release()
	th := s.Thresholds
	th.Rounds, th.ConsecutiveSuccesses = max(th.Rounds, 1), max(th.ConsecutiveSuccesses, 1)
	if s.Samples <= 0 {
		s.Samples = 5
	}
	if len(s.Protocols) == 0 {
		s.Protocols = []string{"udp", "tcp"}
	}
	progress := func(msg string) {
		if s.Progress != nil {
			s.Progress(msg)
		}
	}
	sem := make(chan struct{}, p.concurrency())
	var a Analysis
	var base map[string]*answers
	var passes, fails, errs int
	lastReason := ""
	for round := 1; ; round++ {
		progress(fmt.Sprintf("round %d of at most %d", round, th.Rounds))
		var problems []string
		a.Reports, problems, a.Notes, base = p.round(ctx, sem, job, s, base)
		outcome := OutcomePass
		for _, r := range a.Reports {
			switch {
			case r.Failed > 0:
				outcome = OutcomeFail
			case r.Errors > 0 && outcome == OutcomePass:
				outcome = OutcomeError
			}
		}
		a.Rounds = append(a.Rounds, outcome)
		switch outcome {
		case OutcomePass:
			passes++
		case OutcomeFail:
			fails, passes = fails+1, 0
		default:
			errs, passes = errs+1, 0
		}
		if outcome != OutcomePass {
			lastReason = strings.Join(problems, "; ")
		}
		why := ""
		switch {
		case ctx.Err() != nil:
			why = "canceled: " + ctx.Err().Error()
		case passes >= th.ConsecutiveSuccesses:
			a.OK = true
			return a
		case fails > th.FailureLimit:
			why = fmt.Sprintf("failed round %d of at most %d, failure_limit %d", round, th.Rounds, th.FailureLimit)
		case errs > th.ErrorLimit:
			why = fmt.Sprintf("unanswered queries in round %d of at most %d, error_limit %d", round, th.Rounds, th.ErrorLimit)
		case round >= th.Rounds:
			why = fmt.Sprintf("inconclusive after %d rounds: %d of %d consecutive passing rounds", round, passes, th.ConsecutiveSuccesses)
		}
		if why != "" {
			a.Reason = clip(lastReason+" ("+why+")", maxReason)
			return a
		}
		if !complete(base) {
			base = nil // ask blue again: it missed some queries
		}
		progress(fmt.Sprintf("round %d: %s; next in %s", round, outcome, th.Interval))
		t := time.NewTimer(th.Interval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// round checks every target once, and asks the baseline servers too when
// base is nil, in the same pass: each check goes to green and blue at
// about the same moment. It returns the targets' reports, the problems
// that fail the round (for the reason), notes and the baseline's answers.
func (p *Prober) round(ctx context.Context, sem chan struct{}, job Job, s Settings, base map[string]*answers) ([]Report, []string, []string, map[string]*answers) {
	reports := make([]Report, len(job.Targets))
	got := make([]*answers, len(job.Targets))
	root := slices.ContainsFunc(job.Checks, func(c Check) bool { return c.Zone == "." })
	zones := signers(job.Keys, s.SignaturesValidFor, time.Now())
	var servers []*asked
	for _, t := range job.Targets {
		servers = append(servers, &asked{addr: t.Addr, protocols: s.Protocols})
	}
	var blue map[string]*asked
	if base == nil {
		// The SOA answers of blue that coverage asked for are compared
		// with as they are: they are seconds old, and over UDP.
		known := p.takeBaselineSOA()
		blue = map[string]*asked{}
		for _, b := range job.Baseline {
			if b.Addr != "" && blue[b.Addr] == nil {
				blue[b.Addr] = &asked{addr: b.Addr, protocols: s.Protocols[:1], knownSOA: known[b.Addr]}
				servers = append(servers, blue[b.Addr])
			}
		}
	}
	p.askAll(ctx, sem, job.Checks, servers)
	if base == nil {
		base = map[string]*answers{}
		for addr, b := range blue {
			base[addr] = collect(job.Checks, b.obs[0])
		}
	}
	// The recursion check of every target over every protocol, at once.
	recursion := make([][]Result, len(job.Targets))
	var wg sync.WaitGroup
	for i, t := range job.Targets {
		recursion[i] = make([]Result, len(s.Protocols))
		for pi, proto := range s.Protocols {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				recursion[i][pi] = p.checkRecursion(ctx, t.Addr, proto, root)
				<-sem
			}()
		}
	}
	wg.Wait()
	for i, t := range job.Targets {
		rep := Report{Name: t.Name, Addr: t.Addr}
		obs := servers[i].obs
		p.record(&rep, obs, s.Samples)
		rep.Latency = latencyOf(obs)
		checkDNSSEC(&rep, job.Checks, obs[0], zones, s.Samples)
		for _, res := range recursion[i] {
			rep.add(res, s.Samples)
		}
		reports[i], got[i] = rep, collect(job.Checks, obs[0])
	}

	var problems, notes []string
	for i := range reports {
		rep := &reports[i]
		who := strings.TrimSpace(job.Role + " " + rep.Name)
		var against *answers
		var bname string
		if i < len(job.Baseline) && job.Baseline[i].Addr != "" {
			against, bname = base[job.Baseline[i].Addr], strings.TrimSpace(job.BaselineRole+" "+job.Baseline[i].Name)
		}
		if against != nil {
			for _, r := range newKSKs(job.Checks, got[i], against, job.Role, bname) {
				if s.AllowNewKSK {
					notes = append(notes, who+" "+r.Check+": "+r.Detail)
				} else {
					rep.add(r, s.Samples)
				}
			}
		}
		if t := rep.tally(dnssecKinds); t.Fail+t.Error > 0 {
			problems = append(problems, who+" DNSSEC: "+rep.failures(dnssecKinds))
		}
		serialProblems := checkSerials(rep, job.Serials, against, bname, s.Samples, s.AllowSerialDecrease)
		for _, sp := range serialProblems {
			problems = append(problems, who+" "+sp)
		}
		if against != nil {
			msg, note := compare(rep, job.Checks, got[i], against, bname, s)
			if msg != "" {
				problems = append(problems, who+" "+msg)
			}
			if note != "" {
				notes = append(notes, who+" "+note)
			}
		}
		if l := rep.Latency; s.MaxLatency > 0 && l != nil && l.P95() > s.MaxLatency {
			slow := fmt.Sprintf("95th percentile %s over probe.max_latency %s (median %s, slowest %s, of %d answers)",
				ms(l.P95MS), s.MaxLatency, ms(l.P50MS), ms(l.MaxMS), l.Answers)
			rep.add(Result{Check: "latency", Kind: KindLatency, Outcome: OutcomeFail, Detail: slow}, s.Samples)
			problems = append(problems, who+" answers slowly: "+slow)
		}
		rep.finish()
		if t := rep.tally(queryKinds); t.Fail+t.Error > 0 {
			problems = append(problems, who+": "+rep.failures(queryKinds))
		}
	}
	return reports, problems, notes, base
}

// ms shows milliseconds as a duration, to the millisecond.
func ms(v float64) time.Duration {
	return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond)
}
