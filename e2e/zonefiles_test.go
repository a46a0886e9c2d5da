package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/rollouts"
	"github.com/dnsroll/dnsroll/workflows"
)

// Zone files are read on whichever worker runs a step. A worker that
// lacks the revision's files, and the plan's snapshot of them, when
// provisioning starts fails the attempt
// with an error naming the file and the worker, which is retried (by any
// worker); once the files are there, the step and the rollout succeed.
func TestWorkerWithoutZoneFilesRetries(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DNSROLL_STATE_DIR", state) // where the worker keeps bundles
	tl := startBlue(t, "nginx", nil)
	dirB := filepath.Dir(tl.fleet.ZoneFile(tl.fleet.Zones[0], "B"))

	run := tl.start(t, workflows.RolloutInput{Revision: "B"})
	// Plan has read the files once green is being created. The worker
	// becomes one that has neither the files nor the plan's snapshot of
	// them, as another worker would be.
	tl.waitForActivity(t, run, "EnsureServer")
	planned := tl.waitStatus(t, run, "the plan's bundle", func(st workflows.Status) bool { return st.Bundle != "" })
	if err := os.RemoveAll(filepath.Join(state, "bundles", strings.TrimPrefix(planned.Bundle, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dirB, dirB+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	var seen string
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for seen == "" && ctx.Err() == nil {
		st, err := rollouts.Status(ctx, tl.client, run)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st.Retrying {
			if r.Activity == "ProvisionNameservers" && strings.Contains(r.LastError, "is not on worker") {
				seen = r.LastError
			}
		}
		if st.Phase.Done() {
			t.Fatalf("the rollout ended %s (%s) while a worker lacked its zone files", st.Phase, st.Failure)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("while the files were away: %s", seen)
	if !strings.Contains(seen, "zone example.com: "+filepath.Join(dirB, "example.com.zone")) {
		t.Errorf("the retry's error %q does not name the zone and its file", seen)
	}
	if err := os.Rename(dirB+".elsewhere", dirB); err != nil {
		t.Fatal(err)
	}
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("rollout B once the files are back: %v (%s)", err, st.Phase)
	}
	tl.wantAnswers(t, "", "revision B,revision B")
}

// A zone file edited between Plan and Provision. The worker that planned
// deploys and verifies its snapshot of the planned bundle: the rollout
// succeeds and serves the planned content, not the edit. A worker without
// that snapshot (as another worker would be) refuses the edited files:
// the rollout fails with "revision changed", naming the file, before any
// load balancer moves; green is deleted and blue still answers. No mix is
// ever served.
func TestZoneChangedBetweenPlanAndProvision(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DNSROLL_STATE_DIR", state) // where the worker keeps bundles
	tl := startBlue(t, "nginx", nil)
	edit := func(rev string) (rollouts.Run, workflows.Status) {
		path := tl.fleet.ZoneFile(tl.fleet.Zones[0], rev)
		run := tl.start(t, workflows.RolloutInput{Revision: rev, AllowSerialDecrease: true})
		tl.waitForActivity(t, run, "EnsureServer") // Plan has hashed the files
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		testfiles.Write(t, path, strings.Replace(string(b), `"revision `+rev+`"`, `"revision `+rev+`, edited after the plan"`, 1))
		return run, tl.waitStatus(t, run, "the plan's bundle", func(st workflows.Status) bool { return st.Bundle != "" })
	}

	run, _ := edit("B")
	st, err := tl.wait(t, run)
	if err != nil || st.Phase != workflows.PhaseSucceeded {
		t.Fatalf("rollout B, edited after the plan on the worker that planned: %v (%s: %s)", err, st.Phase, st.Failure)
	}
	tl.wantAnswers(t, "", "revision B,revision B")

	blue := tl.assertOnly(t, "ns1", "ns2")
	run, st = edit("A")
	if err := os.RemoveAll(filepath.Join(state, "bundles", strings.TrimPrefix(st.Bundle, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	st, err = tl.wait(t, run)
	if err == nil || st.Phase != workflows.PhaseFailed {
		t.Fatalf("rollout A, edited after the plan, without the snapshot: %v (%s), want it failed", err, st.Phase)
	}
	t.Logf("failure: %s", st.Failure)
	for _, want := range []string{"revision changed since the plan: planned " + bundle.Short(st.Bundle) + ", found sha256:", "example.com.zone changed", "re-run the rollout"} {
		if !strings.Contains(st.Failure, want) {
			t.Errorf("failure %q lacks %q", st.Failure, want)
		}
	}
	if len(st.OnGreen) != 0 {
		t.Errorf("load balancers %v were moved to green", st.OnGreen)
	}
	tl.assertKept(t, blue)
	tl.wantAnswers(t, "", "revision B,revision B")
}
