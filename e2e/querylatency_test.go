package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/worker"
	"github.com/dnsroll/dnsroll/workflows"
)

// How long the status query takes while a rollout bakes, with the SDK's
// sticky schedule-to-start timeout (5 s) and with dnsroll's
// (workflows.StickyScheduleToStartTimeout): a query that reaches the
// worker's sticky queue between two polls waits that long. A measurement,
// not a pass/fail test: `make bench-query` runs it (docs/benchmarks.md).
func TestQueryLatencyBench(t *testing.T) {
	if os.Getenv("DNSROLL_BENCH_QUERY") == "" {
		t.Skip("a benchmark: make bench-query")
	}
	window := 90 * time.Second
	if d, err := time.ParseDuration(os.Getenv("DNSROLL_BENCH_QUERY_WINDOW")); err == nil {
		window = d
	}
	for _, c := range []struct {
		name string
		sdk  bool // a worker with the SDK's options, not worker.New's
	}{{"SDK default (5s)", true}, {fmt.Sprintf("dnsroll (%s)", workflows.StickyScheduleToStartTimeout), false}} {
		lat := measureQueries(t, c.sdk, window)
		if len(lat) == 0 {
			t.Fatalf("%s: nothing measured", c.name)
		}
		slow := 0
		for _, l := range lat {
			if l > time.Second {
				slow++
			}
		}
		fmt.Printf("sticky timeout %-18s %5d queries in %s  p50 %-10s p99 %-10s max %-8s over 1 s: %d\n",
			c.name, len(lat), window, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Millisecond), slow)
	}
}

// measureQueries starts a lab rollout on an in-process worker, one with the
// SDK's default options if sdk, and queries its status back to back for
// window while it bakes; it returns the latencies, sorted.
func measureQueries(t *testing.T, sdk bool, window time.Duration) []time.Duration {
	var lat []time.Duration
	t.Run(map[bool]string{true: "sdk", false: "dnsroll"}[sdk], func(t *testing.T) {
		tl := startLabDriver(t, "dnsdist", nil)
		tl.editFleet(t, "bake: 3s", fmt.Sprintf("bake: %s", window+time.Minute))
		if sdk {
			acts, err := worker.NewActivities(tl.workerConfig())
			if err != nil {
				t.Fatal(err)
			}
			w := sdkworker.New(tl.client, workflows.TaskQueue, sdkworker.Options{})
			workflows.Register(w)
			w.RegisterActivity(acts)
			// Should the rollout fail, its undo steps run on their own queue.
			undo := sdkworker.New(tl.client, workflows.UndoTaskQueue(workflows.TaskQueue), sdkworker.Options{DisableWorkflowWorker: true})
			undo.RegisterActivity(acts)
			for _, sw := range []sdkworker.Worker{w, undo} {
				if err := sw.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sw.Stop)
			}
		} else {
			tl.startWorker(t)
		}
		run := tl.start(t, workflows.RolloutInput{Revision: "A"})
		tl.waitForPhase(t, run, workflows.PhaseBaking)
		for end := time.Now().Add(window); time.Now().Before(end); {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			start := time.Now()
			_, err := rollouts.Status(ctx, tl.client, run)
			cancel()
			if err != nil {
				t.Fatalf("status query: %v", err)
			}
			lat = append(lat, time.Since(start))
			time.Sleep(20 * time.Millisecond)
		}
		// The rollout is still baking: the lab ends with the test.
	})
	slices.Sort(lat)
	return lat
}
