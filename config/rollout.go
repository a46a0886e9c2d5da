package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Rollout strategies.
const (
	// StrategyAllAtOnce switches every load balancer, then bakes.
	StrategyAllAtOnce = "all-at-once"
	// StrategyOneAtATime switches one load balancer, verifies and bakes it,
	// then the next: DigitalOcean's gradual per-nameserver cutover.
	StrategyOneAtATime = "one-at-a-time"
	// StrategyCanary shifts a growing share of every load balancer's
	// queries to green, step by step (rollout.canary), analysing each step,
	// then switches the rest and bakes. It needs load balancers that weigh
	// backends and count what each one answers: the dnsdist driver.
	StrategyCanary = "canary"
)

// Approval modes. ApprovalEach is manual, and with strategy one-at-a-time
// waits again before each load balancer after the first.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
	ApprovalEach   = "each"
)

// Notification events, in the order a rollout can emit them.
const (
	EventStarted          = "started"
	EventAwaitingApproval = "awaiting_approval"
	EventSwitched         = "switched"
	EventSucceeded        = "succeeded"
	EventFailed           = "failed"
	EventAborted          = "aborted"
	EventRolledBack       = "rolled_back"
	// EventCleanupRetrying: a round of the cleanup after a stopped rollout
	// failed, and another follows.
	EventCleanupRetrying = "cleanup_retrying"
)

// AllEvents lists every notification event.
var AllEvents = []string{EventStarted, EventAwaitingApproval, EventSwitched, EventSucceeded, EventFailed, EventAborted, EventRolledBack, EventCleanupRetrying}

// Rollout holds the safety controls of a fleet's rollouts.
type Rollout struct {
	// Strategy is all-at-once (default) or one-at-a-time.
	Strategy string `yaml:"strategy" json:"strategy"`
	// Approval is auto (default), manual (wait for an approve signal
	// before the switch, for at most ApprovalTimeout, then abort) or each
	// (manual, and again before each load balancer after the first, once
	// the one before has baked; strategy one-at-a-time).
	Approval        string   `yaml:"approval" json:"approval"`
	ApprovalTimeout Duration `yaml:"approval_timeout" json:"approval_timeout"`
	// Bake is how long blue stays alive after the switch while the load
	// balancers are analysed; a rollback during it is instant.
	// Nil means the default (5m); 0s means no bake.
	Bake *Duration `yaml:"bake" json:"bake,omitempty"`
	// BakeInterval is the pause between analysis rounds during the bake.
	BakeInterval Duration `yaml:"bake_interval" json:"bake_interval"`
	// Canary configures strategy: canary.
	Canary Canary `yaml:"canary" json:"canary,omitzero"`
}

// Canary is the gradual traffic shift of strategy: canary.
type Canary struct {
	// Steps are the shares of queries sent to green, in order; after the
	// last, every query goes to green and the bake begins. Default: 1%,
	// 10%, 50%, each for a minute.
	Steps []CanaryStep `yaml:"steps" json:"steps,omitempty"`
	// MaxDropRateIncrease is how much higher green's rate of unanswered
	// queries, as each load balancer counts them, may be than blue's during
	// a step before the step fails and the rollout rolls back (0.01: one
	// point). Default 0.01.
	MaxDropRateIncrease float64 `yaml:"max_drop_rate_increase,omitempty" json:"max_drop_rate_increase,omitempty"`
}

// CanaryStep is one step of a canary: Weight percent of the queries go to
// green for Duration, while the analysis runs every bake_interval. With
// Approve, green then stays at Weight until an approve signal, for at most
// rollout.approval_timeout, after which the rollout rolls back: time for a
// person to look at what the analysis cannot see (latency graphs, support
// tickets) before more queries move.
type CanaryStep struct {
	Weight   int      `yaml:"weight" json:"weight"`
	Duration Duration `yaml:"duration" json:"duration"`
	Approve  bool     `yaml:"approve,omitempty" json:"approve,omitempty"`
}

// Notifications configures webhooks.
type Notifications struct {
	Webhooks []Webhook `yaml:"webhooks" json:"webhooks"`
}

// Webhook receives a JSON POST for each of its events.
type Webhook struct {
	// Name identifies the webhook within its fleet (default "webhook-1",
	// "webhook-2", ... in file order). Workflow history carries the name;
	// the worker looks the URL up by it when it sends, since a webhook URL
	// is often a secret itself (a Slack-style URL, a token in the query).
	Name string `yaml:"name" json:"name"`
	// URL receives the POSTs; or URLEnv names an environment variable on
	// the worker that holds it, keeping it out of the fleet file too.
	URL    string `yaml:"url" json:"url,omitempty"`
	URLEnv string `yaml:"url_env" json:"url_env,omitempty"`
	// Events to send; empty means all.
	Events []string `yaml:"events" json:"events,omitempty"`
	// SecretEnv names an environment variable on the worker holding an
	// HMAC-SHA256 key; the body's signature goes in X-Dnsroll-Signature.
	// The secret itself never appears in config or history.
	SecretEnv string `yaml:"secret_env" json:"secret_env,omitempty"`
}

// Wants reports whether the webhook subscribes to event.
func (w Webhook) Wants(event string) bool {
	if len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == event {
			return true
		}
	}
	return false
}

// BakeDuration is how long to bake; zero means no bake.
func (r Rollout) BakeDuration() time.Duration { return bakeOf(r.Bake) }

// bakeOf is a bake setting's duration: nil (a fleet not defaulted) and 0s
// are no bake.
func bakeOf(b *Duration) time.Duration {
	if b == nil {
		return 0
	}
	return b.D()
}

// setBake gives a bake and its interval, left out, their defaults; 0s
// written for the bake stays: no bake.
func setBake(bake **Duration, interval *Duration, defBake, defInterval time.Duration) {
	if *bake == nil {
		d := Duration(defBake)
		*bake = &d
	}
	setDur(interval, defInterval)
}

// validateBake checks the bake and bake_interval of section.
func validateBake(section string, bake *Duration, interval Duration) error {
	if bake != nil && *bake < 0 {
		return fieldErr(section+".bake", "must not be negative, got %s (0s for no bake)", bake.D())
	}
	if interval.D() < time.Second {
		return fieldErr(section+".bake_interval", "must be at least 1s, got %s", interval.D())
	}
	return nil
}

func (r *Rollout) setDefaults() {
	if r.Strategy == "" {
		r.Strategy = StrategyAllAtOnce
	}
	if r.Approval == "" {
		r.Approval = ApprovalAuto
	}
	setDur(&r.ApprovalTimeout, 24*time.Hour)
	setBake(&r.Bake, &r.BakeInterval, 5*time.Minute, 15*time.Second)
	if r.Strategy != StrategyCanary {
		return
	}
	if len(r.Canary.Steps) == 0 {
		for _, w := range []int{1, 10, 50} {
			r.Canary.Steps = append(r.Canary.Steps, CanaryStep{Weight: w, Duration: Duration(time.Minute)})
		}
	}
	if r.Canary.MaxDropRateIncrease == 0 {
		r.Canary.MaxDropRateIncrease = 0.01
	}
}

func (r *Rollout) validate() error {
	switch r.Strategy {
	case StrategyAllAtOnce, StrategyOneAtATime, StrategyCanary:
	default:
		return fieldErr("rollout.strategy", "must be %s, %s or %s, got %q", StrategyAllAtOnce, StrategyOneAtATime, StrategyCanary, r.Strategy)
	}
	if r.Strategy != StrategyCanary && (len(r.Canary.Steps) > 0 || r.Canary.MaxDropRateIncrease != 0) {
		return fieldErr("rollout.canary", "is set but rollout.strategy is %s; set strategy: canary, or remove canary", r.Strategy)
	}
	last := 0
	for i, s := range r.Canary.Steps {
		at := fmt.Sprintf("rollout.canary.steps[%d]", i)
		if s.Weight <= last || s.Weight >= 100 {
			return fieldErr(at+".weight", "must be a percentage from 1 to 99, above the step before (%d), got %d; the switch to 100%% follows the last step", last, s.Weight)
		}
		last = s.Weight
		if s.Duration == 0 {
			return fieldErr(at+".duration", "is required: how long green takes this share before the next step, such as 1m")
		}
		if s.Duration.D() < time.Second {
			return fieldErr(at+".duration", "must be at least 1s, got %s", s.Duration.D())
		}
	}
	// Written so that NaN (.nan), which compares false both ways, is
	// refused too: no drop rate would ever exceed it.
	if !(r.Canary.MaxDropRateIncrease >= 0 && r.Canary.MaxDropRateIncrease < 1) {
		return fieldErr("rollout.canary.max_drop_rate_increase", "must be a fraction from 0 to 1 (0.01 is one point), got %g", r.Canary.MaxDropRateIncrease)
	}
	switch r.Approval {
	case ApprovalAuto, ApprovalManual:
	case ApprovalEach:
		if r.Strategy != StrategyOneAtATime {
			return fieldErr("rollout.approval", "each gates every load balancer of strategy one-at-a-time, and the strategy is %s: set rollout.strategy: one-at-a-time, or approval: manual", r.Strategy)
		}
	default:
		return fieldErr("rollout.approval", "must be auto, manual or each, got %q", r.Approval)
	}
	if r.ApprovalTimeout.D() < time.Minute {
		return fieldErr("rollout.approval_timeout", "must be at least 1m, time for a person to answer the gate, got %s", r.ApprovalTimeout.D())
	}
	return validateBake("rollout", r.Bake, r.BakeInterval)
}

// MaxAnalysisRounds bounds the analysis rounds of one rollout: each adds
// about a dozen events to the workflow's history, which Temporal caps at
// 51,200, and the rest of a rollout needs room too.
const MaxAnalysisRounds = 2000

// analysisRounds refuses a bake (and canary) so long against its interval
// that the rollout's history would outgrow Temporal's cap, and Temporal
// would terminate it mid-bake, with blue and green both alive.
func (f *Fleet) analysisRounds() error {
	r := f.Rollout
	analysed, how := r.BakeDuration(), fmt.Sprintf("bake %s", r.BakeDuration())
	if r.Strategy == StrategyOneAtATime {
		analysed = times(len(f.LoadBalancers), analysed)
		how = fmt.Sprintf("bake %s for each of %d load balancers, one at a time", r.BakeDuration(), len(f.LoadBalancers))
	}
	if r.Strategy == StrategyCanary {
		for _, s := range r.Canary.Steps {
			analysed = plus(analysed, s.Duration.D())
		}
		how += " and the canary steps"
	}
	return roundsFit("rollout", "a rollout's", analysed, how, r.BakeInterval.D())
}

// roundsFit refuses analysed time, bake_interval apart, of more rounds
// than the workflow history of run (a rollout's) holds: section's
// bake_interval is named, with the least that fits. how says what the
// time is made of.
func roundsFit(section, run string, analysed time.Duration, how string, interval time.Duration) error {
	if analysed == maxDuration {
		return fieldErr(section+".bake", "%s is %s of analysis, longer than dnsroll can count: bake for less", how, durText(analysed))
	}
	rounds := int64(analysed / interval)
	if rounds <= MaxAnalysisRounds {
		return nil
	}
	least := (analysed + MaxAnalysisRounds - 1) / MaxAnalysisRounds
	return fieldErr(section+".bake_interval", "%s is %d analysis rounds of %s (%s), more than the %d %s workflow history holds: "+
		"raise bake_interval to at least %s, or bake for less", interval, rounds, analysed, how, MaxAnalysisRounds, run, least.Round(time.Second)+time.Second)
}

// LBUpdate holds the safety controls of a fleet's in-place load balancer
// updates (LoadBalancerUpdateWorkflow).
type LBUpdate struct {
	// Bake is how long DNS through each updated load balancer but the
	// last is checked, every BakeInterval, before the next is touched: a
	// fault that shows only after a while (under traffic, once caches
	// fill, a worker that crashes after a reload) then stops the update at
	// one load balancer, not all. Nil means the default, 1m: past the 10s
	// in which nginx's old workers may still hold connections after a
	// reload (worker_shutdown_timeout), with time for a crash loop to
	// show, at a minute per load balancer. 0s means no bake.
	Bake *Duration `yaml:"bake" json:"bake,omitempty"`
	// BakeInterval is the pause between the bake's checks; default 10s,
	// six checks in the default bake.
	BakeInterval Duration `yaml:"bake_interval" json:"bake_interval"`
}

// BakeDuration is how long each load balancer but the last bakes; zero
// means no bake.
func (u LBUpdate) BakeDuration() time.Duration { return bakeOf(u.Bake) }

func (u *LBUpdate) setDefaults() { setBake(&u.Bake, &u.BakeInterval, time.Minute, 10*time.Second) }

// lbUpdateBake checks lb_update's bake, once for each load balancer but
// the last, against the workflow history of an update, as analysisRounds
// checks a rollout's.
func (f *Fleet) lbUpdateBake() error {
	u := f.LBUpdate
	if err := validateBake("lb_update", u.Bake, u.BakeInterval); err != nil {
		return err
	}
	n := max(len(f.LoadBalancers)-1, 0)
	how := fmt.Sprintf("bake %s for each of %d load balancers but the last", u.BakeDuration(), len(f.LoadBalancers))
	return roundsFit("lb_update", "an update's", times(n, u.BakeDuration()), how, u.BakeInterval.D())
}

func (n *Notifications) validate() error {
	known := map[string]bool{}
	for _, e := range AllEvents {
		known[e] = true
	}
	names := map[string]int{}
	// Receivers, by field and value: one listed twice gets each event twice.
	receivers := map[[2]string]int{}
	for i, w := range n.Webhooks {
		at := fmt.Sprintf("notifications.webhooks[%d]", i)
		if other, dup := names[w.Name]; dup {
			if w.Name == defaultWebhookName(i) {
				return fieldErr(at+".name", "is %s (the default name at its place in the list), which notifications.webhooks[%d] also has: give one of them another name", w.Name, other)
			}
			return fieldErr(at+".name", "%q is also notifications.webhooks[%d]'s name; names must be unique", w.Name, other)
		}
		names[w.Name] = i
		switch {
		case w.URL != "" && w.URLEnv != "":
			return fieldErr(at+".url", "set url or url_env, not both")
		case w.URL == "" && w.URLEnv == "":
			return fieldErr(at+".url", "set url (the webhook's URL) or url_env (a variable on the worker that holds it)")
		}
		// A url_env's URL is read, and checked, on the worker when it sends.
		if w.URLEnv == "" {
			if err := CheckWebhookURL(w.URL); err != nil {
				return fieldErr(at+".url", "%v", err)
			}
		}
		for _, env := range []struct{ field, name, example string }{{"url_env", w.URLEnv, "DNSROLL_HOOK_URL"}, {"secret_env", w.SecretEnv, "DNSROLL_HOOK_SECRET"}} {
			if err := checkEnvName(env.name, env.example); err != nil {
				return fieldErr(at+"."+env.field, "%v", err)
			}
		}
		field, receiver := "url_env", w.URLEnv
		if w.URLEnv == "" {
			field, receiver = "url", sameURL(w.URL)
		}
		// The value is not quoted: a URL may be a secret.
		if other, dup := receivers[[2]string{field, receiver}]; dup {
			return fieldErr(at+"."+field, "is also notifications.webhooks[%d]'s, so an event both take would be sent twice: keep one webhook, with the events of both", other)
		}
		receivers[[2]string{field, receiver}] = i
		// Empty means every event, as when left out: a [] written to
		// mute the webhook would not.
		if w.Events != nil && len(w.Events) == 0 {
			return fieldErr(at+".events", "is [], which means every event: leave it out for every event, list the ones you want, or remove the webhook for none")
		}
		if err := noRepeats(at+".events", w.Events, func(e string) string { return e }); err != nil {
			return err
		}
		for j, e := range w.Events {
			if !known[e] {
				return fieldErr(fmt.Sprintf("%s.events[%d]", at, j), "unknown event %q (known: %s)", e, strings.Join(AllEvents, ", "))
			}
		}
	}
	return nil
}

// checkEnvName refuses what is not the name of a variable holding a
// webhook's URL or key (example is such a name): a worker that looked up
// "$HOOK" would find nothing, and never send. The value is not quoted: it
// may be the secret itself, written there by mistake, and the error goes
// to CI logs, the API and workflow history. Names a shell would not take
// (hook.url) are still names: os.Getenv reads them, and Docker and
// Kubernetes set them.
func checkEnvName(name, example string) error {
	switch {
	case name == "":
		return nil
	case strings.Contains(name, "://"):
		return fmt.Errorf("is a URL, not the name of the variable that holds it: set url, or write a name such as %s", example)
	case strings.HasPrefix(name, "$"):
		if bare := strings.Trim(name, "${}"); bare != "" && !strings.ContainsFunc(bare, notInEnvName) {
			return fmt.Errorf("is not an environment variable's name: write %s", bare)
		}
	case !strings.ContainsFunc(name, notInEnvName) && !keyLike(name):
		return nil
	case keyLike(name):
		return fmt.Errorf("looks like a key, not the name of the variable that holds it: write a name such as %s (a name of 20 or more characters with digits in it must be in capitals)", example)
	}
	return fmt.Errorf("is not an environment variable's name (it has a character such as $, =, /, : or a space): write a name such as %s", example)
}

// notInEnvName tells the characters that show a variable's value, a path
// or a shell expression was written where its name goes.
func notInEnvName(r rune) bool { return strings.ContainsRune("$={}'\"/:@+", r) || unicode.IsSpace(r) }

// keyLike says whether name looks like a key or token rather than a
// variable's name: long, and mixing digits with lower-case letters
// (whsec_…, xoxb-…, a UUID), or with letters unbroken by _ . or -
// (3f9a0c1b7d2e4f6a8b9c0d1e); or a long run of digits. A name of 20 or
// more characters with both is refused too: write it in capitals.
func keyLike(name string) bool {
	digits := strings.ContainsFunc(name, unicode.IsDigit)
	switch {
	case len(name) >= 12 && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsDigit(r) }):
		return true
	case len(name) < 20 || !digits:
		return false
	}
	return strings.ContainsFunc(name, unicode.IsLower) ||
		(!strings.ContainsAny(name, "_.-") && strings.ContainsFunc(name, unicode.IsLetter))
}

// noRepeats refuses a value listed twice in list (at field), comparing
// values by key: a second one adds nothing, so it is a slip.
func noRepeats(field string, list []string, key func(string) string) error {
	seen := map[string]int{}
	for i, v := range list {
		if j, dup := seen[key(v)]; dup {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q is %s[%d] again: list each once", v, field, j)
		}
		seen[key(v)] = i
	}
	return nil
}

// CheckWebhookURL checks a webhook URL without quoting it: the URL may be
// a secret.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("must be an http or https URL such as https://hooks.example.net/dnsroll")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; use secret_env")
	}
	// url.Parse takes any digits for a port; the send would fail at
	// every event.
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port must be a number from 1 to 65535, got %q", p)
		}
	}
	return nil
}

// sameURL is a checked webhook URL with its host in lower case, which
// names the same receiver in any case.
func sameURL(raw string) string {
	u, _ := url.Parse(raw)
	u.Host = strings.ToLower(u.Host)
	return u.String()
}

func (n *Notifications) setDefaults() {
	for i := range n.Webhooks {
		if n.Webhooks[i].Name == "" {
			n.Webhooks[i].Name = defaultWebhookName(i)
		}
	}
}

// defaultWebhookName is the name of the webhook at index i that has none.
func defaultWebhookName(i int) string { return fmt.Sprintf("webhook-%d", i+1) }

// ForHistory is a copy of f for workflow history and activity inputs,
// without what may be secret: webhook URLs, and the names of the variables
// that hold them and their keys, in case a secret was written there
// (Notify looks each webhook up by name in the fleet file).
func (f *Fleet) ForHistory() *Fleet {
	c := *f
	c.Notifications.Webhooks = slices.Clone(f.Notifications.Webhooks)
	for i := range c.Notifications.Webhooks {
		w := &c.Notifications.Webhooks[i]
		w.URL, w.URLEnv, w.SecretEnv = "", "", ""
	}
	return &c
}

// StepZones is how many of a fleet's zones ForSteps keeps: enough for the
// load balancers' health checks and the smoke checks through them, which
// ask the first zones, and few enough that a fleet of any size stays small
// in history.
const StepZones = 16

// ForSteps is ForHistory with the zone list cut to its first StepZones
// zones and ZoneCount set: the fleet as every step's input carries it, so
// that history does not repeat a fleet's zones per step. The steps that
// need every zone (provisioning, the analysis) read them from the
// revision's bundle.
func (f *Fleet) ForSteps() *Fleet {
	c := f.ForHistory()
	c.ZoneCount = f.ZonesTotal()
	c.Zones = slices.Clip(f.Zones[:min(len(f.Zones), StepZones)])
	return c
}

// ZonesTotal is how many zones the fleet serves, also when f is a ForSteps
// copy that carries only the first of them.
func (f *Fleet) ZonesTotal() int { return max(f.ZoneCount, len(f.Zones)) }

// Gated says whether an approve signal is awaited before the switch.
func (r Rollout) Gated() bool { return r.Approval == ApprovalManual || r.Approval == ApprovalEach }
