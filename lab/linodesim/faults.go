package linodesim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Fault makes matching requests misbehave, so tests can prove that retries
// and idempotent creates hold up against a flaky API.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string `json:"method,omitempty"`
	// PathPrefix matches the start of the request path, e.g.
	// "/v4/linode/instances"; "" matches any.
	PathPrefix string `json:"path_prefix,omitempty"`
	// Status, when set, is returned instead of performing the request.
	Status int `json:"status,omitempty"`
	// Reason replaces the error's reason with Status, as "Linode busy."
	// (a 400 that linodego retries by itself).
	Reason string `json:"reason,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header with Status.
	RetryAfter int `json:"retry_after,omitempty"`
	// Delay stalls the request before anything else happens.
	Delay time.Duration `json:"delay,omitempty"`
	// LoseResponse performs the request but replies 502 (or Status), as if
	// the response had been lost on the way back.
	LoseResponse bool `json:"lose_response,omitempty"`
	// FilterMatchesNothing answers a list whose request has an X-Filter
	// with no results, as Linode's filters on list fields (tags) have
	// done; a list without one is served as usual.
	FilterMatchesNothing bool `json:"filter_matches_nothing,omitempty"`
	// FilterRefused answers a list whose request has an X-Filter with a
	// 400, as Linode does for a field it cannot filter on; a list without
	// one is served as usual.
	FilterRefused bool `json:"filter_refused,omitempty"`
	// Count is how many matching requests the fault affects: 0 means one,
	// a negative count means every one until the faults are cleared.
	Count int `json:"count,omitempty"`
}

// InjectFault adds f; faults are matched in the order they were added.
func (s *Sim) InjectFault(f Fault) {
	if f.Count == 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Faults returns the pending faults with the counts they have left, so a
// test can check that its faults were consumed.
func (s *Sim) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.faults)
}

// takeFault consumes one use of the first fault that matches r.
func (s *Sim) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) || !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
			continue
		}
		hit := *f
		if f.Count > 0 {
			if f.Count--; f.Count == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return hit, true
	}
	return Fault{}, false
}

// MarshalJSON writes Delay as a duration string such as "250ms".
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	return json.Marshal(struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain: plain(f), Delay: durString(f.Delay)})
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// UnmarshalJSON accepts snake_case or Go field names in any case, and Delay
// as a duration string ("250ms") or a number of nanoseconds, so shell
// scripts and Go tests can both drive POST /_sim/faults.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Fault{}
	// Every field but Delay, by its name lower case without underscores.
	plain := map[string]any{"method": &f.Method, "pathprefix": &f.PathPrefix, "status": &f.Status, "reason": &f.Reason,
		"retryafter": &f.RetryAfter, "loseresponse": &f.LoseResponse, "filtermatchesnothing": &f.FilterMatchesNothing, "filterrefused": &f.FilterRefused, "count": &f.Count}
	for k, v := range raw {
		var err error
		name := strings.ToLower(strings.ReplaceAll(k, "_", ""))
		switch field, ok := plain[name]; {
		case ok:
			err = json.Unmarshal(v, field)
		case name == "delay":
			var s string
			if json.Unmarshal(v, &s) == nil {
				f.Delay, err = time.ParseDuration(cmp.Or(s, "0"))
			} else {
				err = json.Unmarshal(v, (*int64)(&f.Delay))
			}
		default:
			err = fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return fmt.Errorf("fault %s: %w", k, err)
		}
	}
	return nil
}

func (s *Sim) getFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// postFault adds one fault, or a list of them, from JSON.
func (s *Sim) postFault(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if !decode(w, r, &body) {
		return
	}
	var faults []Fault
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		err = json.Unmarshal(body, &faults)
	} else {
		faults = make([]Fault, 1)
		err = json.Unmarshal(body, &faults[0])
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	for _, f := range faults {
		s.InjectFault(f)
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Sim) deleteFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	writeJSON(w, http.StatusOK, struct{}{})
}

// getInstances lets out-of-process tests see what the simulator holds.
func (s *Sim) getInstances(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Instances())
}

// createLimited answers a create past Options.CreateLimit in the last
// CreateWindow as Linode does: 429 "Too Many Requests", with Retry-After
// (whole seconds, rounded up) until the oldest of them leaves the window.
// Every create request it lets through counts, ones the API then refuses
// (a taken label, say) too, as Linode counts requests.
func (s *Sim) createLimited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.CreateLimit < 0 {
			h(w, r)
			return
		}
		s.mu.Lock()
		now := s.now()
		s.creates = slices.DeleteFunc(s.creates, func(at time.Time) bool { return !now.Before(at.Add(s.opts.CreateWindow)) })
		wait := time.Duration(0)
		if len(s.creates) >= s.opts.CreateLimit {
			wait = s.creates[0].Add(s.opts.CreateWindow).Sub(now)
		} else {
			s.creates = append(s.creates, now)
		}
		s.mu.Unlock()
		if wait == 0 {
			h(w, r)
			return
		}
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		w.Header().Set("X-RateLimit-Limit", fmt.Sprint(s.opts.CreateLimit))
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(now.Add(wait).Unix()))
		s.log.Info("linodesim create rate limit", "retry_after", secs)
		writeErr(w, http.StatusTooManyRequests, "Too Many Requests", "")
	}
}
