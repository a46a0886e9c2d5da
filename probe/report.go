package probe

import (
	"errors"
	"fmt"
	"strings"
)

// MaxResults bounds the failure results a Report keeps, so a server that is
// wrong about everything still makes a small workflow history entry.
const MaxResults = 20

// Report is the outcome of probing one server: counts, the failures (at
// most MaxResults; passing checks are only counted) and the SOA serials
// seen, keyed by zone apex.
type Report struct {
	Addr    string            `json:"addr"`
	OK      bool              `json:"ok"`
	Passed  int               `json:"passed"`
	Failed  int               `json:"failed"`
	Errors  int               `json:"errors"`
	Results []Result          `json:"results,omitempty"`
	Serials map[string]uint32 `json:"serials,omitempty"`
}

// Result is one check over one protocol that did not pass.
type Result struct {
	// Check names the query and protocol: "www.example.com. A udp".
	Check    string `json:"check"`
	Protocol string `json:"protocol"`
	Outcome  string `json:"outcome"`
	// Detail says what was wrong, e.g. "rcode SERVFAIL, want NOERROR".
	Detail string `json:"detail,omitempty"`
}

// Err is nil when the server passed every check, else an error naming the
// server, the counts and the first few failures, for operators reading the
// Temporal UI.
func (r Report) Err() error {
	if r.OK {
		return nil
	}
	const shown = 3
	var b strings.Builder
	fmt.Fprintf(&b, "DNS probe of %s: %d of %d checks failed", r.Addr, r.Failed+r.Errors, r.Passed+r.Failed+r.Errors)
	if r.Errors > 0 {
		fmt.Fprintf(&b, " (%d without an answer)", r.Errors)
	}
	for i, res := range r.Results {
		if i == shown {
			break
		}
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		if res.Check == "" {
			fmt.Fprintf(&b, "%s%s", sep, res.Detail)
		} else {
			fmt.Fprintf(&b, "%s%s: %s", sep, res.Check, res.Detail)
		}
	}
	if more := r.Failed + r.Errors - min(len(r.Results), shown); more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return errors.New(b.String())
}
