package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxResults bounds the failure results a Report keeps, so a server that is
// wrong about everything still makes a small workflow history entry.
const MaxResults = 20

// Report is the outcome of probing one server: counts in total and by kind
// of check, sample failures (passing checks are only counted), the SOA
// serials seen, keyed by zone apex (in an analysis, at most its samples
// setting of them, failures first), and how its answers compare with the
// baseline server's.
type Report struct {
	// Name is the server's name ("ns1-next", "lb1"); empty from Probe.
	Name    string            `json:"name,omitempty"`
	Addr    string            `json:"addr"`
	OK      bool              `json:"ok"`
	Passed  int               `json:"passed"`
	Failed  int               `json:"failed"`
	Errors  int               `json:"errors"`
	Kinds   map[string]Tally  `json:"kinds,omitempty"`
	Results []Result          `json:"results,omitempty"`
	Serials map[string]uint32 `json:"serials,omitempty"`
	// Diffs compare this server's answers with its baseline's, per zone:
	// the zones that differ, up to the samples setting, and the others
	// too while all fit in it. DiffsOmitted counts the zones left out.
	Diffs        []Comparison `json:"diffs,omitempty"`
	DiffsOmitted int          `json:"diffs_omitted,omitempty"`
	// Latency is how fast the server answered the round's queries.
	Latency *Latency `json:"latency,omitempty"`
}

// Latency sums up how long a server's answers took, each from its first
// send (a lost datagram's resends count), in milliseconds.
type Latency struct {
	Answers int     `json:"answers"`
	P50MS   float64 `json:"p50_ms"`
	P95MS   float64 `json:"p95_ms"`
	MaxMS   float64 `json:"max_ms"`
}

// latencyOf is the latency of the answers in obs, or nil for none.
func latencyOf(obs [][]observed) *Latency {
	var rtts []time.Duration
	for _, l := range obs {
		for _, o := range l {
			if o.replied && o.rtt > 0 {
				rtts = append(rtts, o.rtt)
			}
		}
	}
	if len(rtts) == 0 {
		return nil
	}
	slices.Sort(rtts)
	at := func(q float64) float64 {
		return float64(rtts[int(q*float64(len(rtts)-1)+0.5)]) / float64(time.Millisecond)
	}
	return &Latency{Answers: len(rtts), P50MS: at(0.5), P95MS: at(0.95), MaxMS: at(1)}
}

// P95 is the 95th percentile as a duration.
func (l Latency) P95() time.Duration { return time.Duration(l.P95MS * float64(time.Millisecond)) }

// Tally counts one kind of check's outcomes.
type Tally struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
}

// Result is one check that did not pass.
type Result struct {
	// Check names the query and protocol ("www.example.com. A udp"), or
	// what else was checked ("example.com. serial").
	Check    string `json:"check"`
	Kind     string `json:"kind,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Outcome  string `json:"outcome"`
	// Detail says what was wrong, e.g. "rcode SERVFAIL, want NOERROR".
	Detail string `json:"detail,omitempty"`
}

// add counts res and keeps it as a sample, up to samples, unless it passed.
func (r *Report) add(res Result, samples int) {
	if r.Kinds == nil {
		r.Kinds = map[string]Tally{}
	}
	t := r.Kinds[res.Kind]
	switch res.Outcome {
	case OutcomePass:
		t.Pass++
		r.Passed++
	case OutcomeFail:
		t.Fail++
		r.Failed++
	default:
		t.Error++
		r.Errors++
	}
	r.Kinds[res.Kind] = t
	if res.Outcome != OutcomePass && len(r.Results) < samples {
		r.Results = append(r.Results, res)
	}
}

func (r *Report) finish() { r.OK = r.Failed == 0 && r.Errors == 0 }

// Err is nil when the server passed every check, else an error naming the
// server, the counts and the first few failures, for operators reading the
// Temporal UI.
func (r Report) Err() error {
	if r.OK {
		return nil
	}
	who := r.Addr
	if r.Name != "" {
		who = r.Name + " (" + r.Addr + ")"
	}
	return errors.New("DNS probe of " + who + ": " + r.failures(nil))
}

// failures summarises the failed checks of the given kinds (all when
// kinds is nil): "2 of 40 checks failed: x: detail; y: detail".
func (r Report) failures(kinds map[string]bool) string {
	const shown = 3
	var failed, errs, total int
	for k, t := range r.Kinds {
		if kinds == nil || kinds[k] {
			failed, errs, total = failed+t.Fail, errs+t.Error, total+t.Pass+t.Fail+t.Error
		}
	}
	if len(r.Kinds) == 0 { // a Report built by hand
		failed, errs, total = r.Failed, r.Errors, r.Passed+r.Failed+r.Errors
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d checks failed", failed+errs, total)
	if errs > 0 {
		fmt.Fprintf(&b, " (%d without an answer)", errs)
	}
	n := 0
	for _, res := range r.Results {
		if kinds != nil && !kinds[res.Kind] {
			continue
		}
		if n == shown {
			break
		}
		sep := "; "
		if n == 0 {
			sep = ": "
		}
		n++
		if res.Check == "" {
			fmt.Fprintf(&b, "%s%s", sep, res.Detail)
		} else {
			fmt.Fprintf(&b, "%s%s: %s", sep, res.Check, res.Detail)
		}
	}
	if more := failed + errs - n; more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return b.String()
}

// tally sums the tallies of kinds.
func (r Report) tally(kinds map[string]bool) Tally {
	var sum Tally
	for k, t := range r.Kinds {
		if kinds[k] {
			sum.Pass, sum.Fail, sum.Error = sum.Pass+t.Pass, sum.Fail+t.Fail, sum.Error+t.Error
		}
	}
	return sum
}
