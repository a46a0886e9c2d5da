package config

import (
	"fmt"
	"net/url"
	"time"
)

// Rollout strategies.
const (
	// StrategyAllAtOnce switches every load balancer, then bakes.
	StrategyAllAtOnce = "all-at-once"
	// StrategyOneAtATime switches one load balancer, verifies and bakes it,
	// then the next: DigitalOcean's gradual per-nameserver cutover.
	StrategyOneAtATime = "one-at-a-time"
)

// Approval modes.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
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
	// Approval is auto (default) or manual: wait for an approve signal
	// before the switch, for at most ApprovalTimeout, then abort.
	Approval        string   `yaml:"approval" json:"approval"`
	ApprovalTimeout Duration `yaml:"approval_timeout" json:"approval_timeout"`
	// Bake is how long blue stays alive after the switch while the load
	// balancers are analysed; a rollback during it is instant.
	// Nil means the default (5m); 0s means no bake.
	Bake *Duration `yaml:"bake" json:"bake,omitempty"`
	// BakeInterval is the pause between analysis rounds during the bake.
	BakeInterval Duration `yaml:"bake_interval" json:"bake_interval"`
}

// Notifications configures webhooks.
type Notifications struct {
	Webhooks []Webhook `yaml:"webhooks" json:"webhooks"`
}

// Webhook receives a JSON POST for each of its events.
type Webhook struct {
	URL string `yaml:"url" json:"url"`
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
func (r Rollout) BakeDuration() time.Duration {
	if r.Bake == nil {
		return 0
	}
	return r.Bake.D()
}

func (r *Rollout) setDefaults() {
	if r.Strategy == "" {
		r.Strategy = StrategyAllAtOnce
	}
	if r.Approval == "" {
		r.Approval = ApprovalAuto
	}
	setDur(&r.ApprovalTimeout, 24*time.Hour)
	if r.Bake == nil {
		d := Duration(5 * time.Minute)
		r.Bake = &d
	}
	setDur(&r.BakeInterval, 15*time.Second)
}

func (r *Rollout) validate() error {
	switch r.Strategy {
	case StrategyAllAtOnce, StrategyOneAtATime:
	default:
		return fieldErr("rollout.strategy", "must be %s or %s, got %q", StrategyAllAtOnce, StrategyOneAtATime, r.Strategy)
	}
	switch r.Approval {
	case ApprovalAuto, ApprovalManual:
	default:
		return fieldErr("rollout.approval", "must be auto or manual, got %q", r.Approval)
	}
	if *r.Bake < 0 {
		return fieldErr("rollout.bake", "must not be negative")
	}
	if r.BakeInterval.D() < time.Second {
		return fieldErr("rollout.bake_interval", "must be at least 1s")
	}
	return nil
}

func (n *Notifications) validate() error {
	known := map[string]bool{}
	for _, e := range AllEvents {
		known[e] = true
	}
	for i, w := range n.Webhooks {
		at := fmt.Sprintf("notifications.webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr(at+".url", "must be an http or https URL, got %q", w.URL)
		}
		if u.User != nil {
			return fieldErr(at+".url", "must not carry credentials; use secret_env")
		}
		for j, e := range w.Events {
			if !known[e] {
				return fieldErr(fmt.Sprintf("%s.events[%d]", at, j), "unknown event %q (known: %v)", e, AllEvents)
			}
		}
	}
	return nil
}
