package worker

import (
	"fmt"
	"os"
	"strconv"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll/workflows"
)

// Options are how a worker runs its steps; the zero value is the
// defaults.
type Options struct {
	// StopGrace is how long a worker told to stop lets its running steps
	// finish (0: DefaultStopGrace).
	StopGrace time.Duration
	// MaxConcurrentActivities caps the steps it runs at once (0:
	// DefaultMaxConcurrentActivities).
	MaxConcurrentActivities int
}

// DefaultMaxConcurrentActivities is how many steps a worker runs at once
// unless --max-concurrent-activities says otherwise, in place of the
// SDK's 1,000, at which a worker serving many fleets would start hundreds
// of programs on a small host. Most steps start one: ansible-playbook
// (about 50 MB and a second of CPU for even a one-task playbook, and a
// process per host it configures), ssh, a probe engine. Eight is about
// what a 2-core, 2 GB host runs without swapping, most of them waiting
// on SSH or the Linode API. A rollout runs one step per nameserver or
// per load balancer at once (creating, deleting and renaming servers;
// staging, flipping and switching load balancers), and one notification
// beside them, so a fleet of two of each needs three slots at its widest
// and one most of the time. A step past the cap waits for a free slot,
// here or on another worker, and the wait counts against its step
// timeout: add workers, or raise the cap on a bigger host, rather than
// let steps queue.
const DefaultMaxConcurrentActivities = 8

// MaxConcurrentActivitiesFromEnv is DNSROLL_MAX_CONCURRENT_ACTIVITIES,
// else DefaultMaxConcurrentActivities.
func MaxConcurrentActivitiesFromEnv() (int, error) {
	return aboveZeroFromEnv("DNSROLL_MAX_CONCURRENT_ACTIVITIES", DefaultMaxConcurrentActivities, strconv.Atoi, "a count of steps")
}

// aboveZeroFromEnv is the environment variable name as parse reads it,
// else def when it is unset. A value that parse refuses, or one of 0 or
// less, is refused naming the variable and asking for what, such as "a
// duration", with def as the example.
func aboveZeroFromEnv[T int | time.Duration](name string, def T, parse func(string) (T, error), what string) (T, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	x, err := parse(v)
	if err != nil || x <= 0 {
		return 0, fmt.Errorf("worker: %s=%q: want %s above 0, such as %v", name, v, what, def)
	}
	return x, nil
}

// undoOptions are the SDK's options for the worker of the undo queue: no
// workflows, and as many slots again as the forward steps', which they
// never take. Not fewer: a common cause (a bad release, a Linode outage)
// fails several fleets' rollouts at once, just when their undo matters,
// and a rollout flips all its load balancers back at once, how many the
// worker cannot know; a small fixed reservation would make those undos
// queue behind each other as they did behind forward steps. The cost is
// up to twice --max-concurrent-activities steps at once on a host, only
// while rollouts are being undone, and undo steps are light beside
// provisioning: a flip over an SSH connection kept open, a switch's
// short playbook, a few Linode API calls.
func undoOptions(o Options) sdkworker.Options {
	u := sdkOptions(o)
	u.DisableWorkflowWorker = true
	return u
}

// sdkOptions are the SDK's worker options for o, defaults filled in.
// dnsroll runs no local activities, so their cap is left alone.
func sdkOptions(o Options) sdkworker.Options {
	if o.StopGrace <= 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.MaxConcurrentActivities <= 0 {
		o.MaxConcurrentActivities = DefaultMaxConcurrentActivities
	}
	return sdkworker.Options{
		StickyScheduleToStartTimeout:       workflows.StickyScheduleToStartTimeout,
		MaxHeartbeatThrottleInterval:       heartbeatThrottle,
		WorkerStopTimeout:                  o.StopGrace,
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
	}
}
