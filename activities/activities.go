// Package activities holds every side effect of a rollout. Each activity is
// idempotent: it describes a desired state ("ns1-next exists and runs"), so
// Temporal may retry it, or run it again after a worker crash, safely.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/preflight"
)

// FleetLoader returns the current config of a fleet by name, or an error
// with code dnsroll.ENOTFOUND.
type FleetLoader func(name string) (*config.Fleet, error)

// Activities holds the clients every activity uses. Register it once with
// the worker; workflows call its methods through a nil *Activities.
type Activities struct {
	Cloud   Cloud
	Ansible PlaybookRunner
	// Drivers maps config.LoadBalancer.Driver ("nginx") to its implementation.
	Drivers map[string]LoadBalancer
	// Registrars make the registrars a load balancer replacement may name,
	// besides manual, which needs no configuration ("route53domains").
	Registrars map[string]RegistrarMaker
	// HostKeys keeps the host keys of servers the rollout creates; nil
	// keeps none (connection local, tests).
	HostKeys HostKeys
	// SSHPort is where new servers' sshd listens: 0 means 22, as on
	// Linode; tests give another.
	SSHPort int
	Fleets  FleetLoader
	// Place says where a fleet's servers run (config.PlaceIn): their DNS
	// port and, in the lab, their directory. Nil places lab fleets in no
	// directory.
	Place config.Placer
	// WebUIURL is the Temporal Web UI's base URL, for links in notifications.
	WebUIURL string
	// HTTPClient sends webhooks; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Target is this worker as Plan's preflight checks see it: whether
	// Cloud is the real Linode API, and how many SSH keys new VMs get.
	Target preflight.Target
	// Bundles keeps the file list of each planned revision on this
	// worker, so a step refusing a changed revision can name the files.
	Bundles bundle.Store
	// PollInterval is how often a step checks a server that is booting
	// or being deleted; zero means every 2 s, which suits Linode. The
	// lab's simulator boots in a fraction of that.
	PollInterval time.Duration
}

// Error types that the workflow and the UI show. Types listed in
// NonRetryable never get another attempt.
const (
	ErrInvalid  = "InvalidInput"
	ErrConflict = "Conflict"
	ErrRefused  = "Refused"
	ErrStep     = "StepFailed"
)

// NonRetryable lists the error types that retrying cannot fix.
var NonRetryable = []string{ErrInvalid, ErrConflict, ErrRefused}

// failure turns err into an application error that carries this attempt's
// number, so the workflow's status can show how often a step was tried.
func failure(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	typ := ErrStep
	switch dnsroll.ErrorCode(err) {
	case dnsroll.EINVALID, dnsroll.ENOTFOUND:
		typ = ErrInvalid
	case dnsroll.ECONFLICT:
		typ = ErrConflict
	}
	var refusal *refusedError
	if errors.As(err, &refusal) {
		typ = ErrRefused
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), typ, temporal.ApplicationErrorOptions{
		NonRetryable: typ != ErrStep,
		Details:      []any{attempt(ctx)},
	})
}

// refusedError marks a request that would touch something dnsroll must not
// touch, such as an instance without the fleet tag.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return &refusedError{msg: fmt.Sprintf(format, args...)}
}

func attempt(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 1
	}
	return activity.GetInfo(ctx).Attempt
}

// heartbeat records progress; a dead worker's step is retried elsewhere once
// heartbeats stop for the step's heartbeat timeout.
func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// keepAlive heartbeats every few seconds until stop is called. It is for
// steps that hand their work to something with no progress callback (a load
// balancer driver), so a slow but healthy step is never mistaken for a
// dead worker.
func keepAlive(ctx context.Context, what string) (stop func()) {
	return heartbeatEvery(ctx, 2*time.Second, func() any { return what })
}

// heartbeatEvery records progress() every period until stopped, so a long
// step on a dead worker is retried within the heartbeat timeout, and a live
// one is not. The first heartbeat waits a period, and stop waits for the
// goroutine: a heartbeat still in flight when a fast step returns fails
// with "context canceled", which the SDK logs as a warning. Stopping twice
// is harmless.
func heartbeatEvery(ctx context.Context, period time.Duration, progress func() any) (stop func()) {
	period = heartbeatPeriod(ctx, period)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				heartbeat(ctx, progress())
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// heartbeatPeriod is want, or a third of the step's heartbeat timeout
// where that is shorter (steps.heartbeat_timeout may be as short as 1s),
// so that one reaches the SDK well within it; the SDK sends them on at
// most every 0.8 of the timeout.
func heartbeatPeriod(ctx context.Context, want time.Duration) time.Duration {
	if !activity.IsActivity(ctx) {
		return want
	}
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
		return max(min(want, hb/3), 10*time.Millisecond)
	}
	return want
}

// withDNSPort fills in where a server answers DNS, as the fleet's
// placement says: 53 on real VMs, a per-instance loopback port in the lab.
func (a *Activities) withDNSPort(fleet *config.Fleet, s dnsroll.Server) dnsroll.Server {
	s.DNSPort = a.Place.Place(fleet).DNSPort(s.ID)
	return s
}

// atLoadBalancer says what was being done at the load balancer name when
// err happened, naming it once: the SSH channel names it in its own errors.
// The error still unwraps to err, so its code and kind are kept.
func atLoadBalancer(name, doing string, err error) error {
	return &loadBalancerError{prefix: "load balancer " + name + ": ", doing: doing, err: err}
}

type loadBalancerError struct {
	prefix, doing string
	err           error
}

func (e *loadBalancerError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), e.prefix)
	if e.doing == "" {
		return e.prefix + msg
	}
	return e.prefix + e.doing + ": " + msg
}

func (e *loadBalancerError) Unwrap() error { return e.err }
