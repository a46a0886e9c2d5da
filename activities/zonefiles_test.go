package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/provision"
)

// writeFleetDir writes a revision, the test fleet's zone file, a
// nameserver playbook with its role and a loadbalancer playbook into dir.
func writeFleetDir(t *testing.T, dir string) {
	t.Helper()
	testfiles.WriteAll(t, dir, map[string]string{
		"zones/example.com.zone":                  verifyZone,
		"ansible/nameserver.yml":                  "- hosts: all\n  roles:\n    - role: nameserver\n",
		"ansible/roles/nameserver/tasks/main.yml": "- ansible.builtin.debug: {msg: one}\n",
		"ansible/roles/unused/tasks/main.yml":     "- ansible.builtin.debug: {msg: unused}\n",
		"ansible/loadbalancer.yml":                "- hosts: all\n  tasks: []\n",
	})
}

// recordingRunner succeeds, recording the playbook runs it was asked for.
type recordingRunner struct{ reqs *[]provision.Request }

func (r recordingRunner) Run(_ context.Context, req provision.Request, _ func(string)) (provision.Result, error) {
	// The zone list travels in a file that lives as long as the run: it
	// is recorded as read then, as dnsroll_zones.
	if path, ok := req.ExtraVars["dnsroll_zones_file"].(string); ok {
		var zones []map[string]any
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &zones)
		}
		if err != nil {
			return provision.Result{}, fmt.Errorf("dnsroll_zones_file: %w", err)
		}
		req.ExtraVars = map[string]any{"dnsroll_zones": zones, "dnsroll_zones_file": path, "dnsroll_scratch_dir": req.ExtraVars["dnsroll_scratch_dir"]}
	}
	*r.reqs = append(*r.reqs, req)
	return provision.Result{}, nil
}

// A file of the revision edited between Plan and a later step. On the
// worker that planned, the step uses Plan's snapshot of the bundle: the
// planned bytes, whatever happened to the files since. A worker without
// the snapshot (or with a damaged one) uses a snapshot of its own files
// when they are the planned bundle, and otherwise refuses, for good and before
// running anything, naming the planned and found bundles and the file
// (when it has the planned list), rather than give green, or check it
// against, a mix of two revisions. A file of a role that the playbook
// does not use is not part of the revision.
func TestStepsUseOrRefuseARevisionChangedSincePlan(t *testing.T) {
	const (
		planner    = "the worker that planned"
		noSnapshot = "a worker with the planned list, no snapshot"
		bare       = "a worker with neither"
	)
	type revisionCase struct {
		file, step, worker string
		want               string // "" for no refusal
		small              bool   // planned with a small history
	}
	cases := []revisionCase{
		{"", "provision", noSnapshot, "", false},
		{"ansible/roles/unused/tasks/main.yml", "provision", noSnapshot, "", false},
		{"zones/example.com.zone", "provision", planner, "", false},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", planner, "", false},
		{"zones/example.com.zone", "provision", noSnapshot, "(zones/example.com.zone changed)", false},
		{"zones/example.com.zone", "verify", noSnapshot, "(zones/example.com.zone changed)", false},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", noSnapshot, "(ansible/roles/nameserver/tasks/main.yml changed)", false},
		{"zones/example.com.zone", "provision", bare, "example.com.zone changed", false},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", bare, "has no list of the planned files", false},
	}
	// With a small history the steps' inputs carry no zones: the worker
	// that planned reads them from its store, a worker with neither from
	// its own fleet config, checked against the hash.
	cases = append(cases, []revisionCase{
		{"", "provision", bare, "", true},
		{"", "verify", noSnapshot, "", true},
		{"zones/example.com.zone", "provision", planner, "", true},
		{"zones/example.com.zone", "verify", planner, "", true},
		{"zones/example.com.zone", "provision", noSnapshot, "(zones/example.com.zone changed)", true},
		{"zones/example.com.zone", "verify", bare, "has no list of the planned files", true},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", bare, "has no list of the planned files", true},
	}...)
	for _, tt := range cases {
		name := tt.step + " on " + tt.worker + ", " + cmp.Or(tt.file, "nothing") + " edited"
		if tt.small {
			name += ", small history"
		}
		t.Run(name, func(t *testing.T) {
			c := newCloudEnv(t)
			c.labFleet(t) // no SSH to wait for
			store := bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
			c.acts.Bundles = store
			var reqs []provision.Request
			c.acts.Ansible = recordingRunner{&reqs}
			plan, dir := c.planWith(t, PlanInput{Fleet: "t", SmallHistory: tt.small})
			if tt.small && (len(plan.Zones) != 0 || plan.ZoneCount != 1) {
				t.Fatalf("a small plan has %d zones and zone_count %d, want none and 1", len(plan.Zones), plan.ZoneCount)
			}
			if !strings.HasPrefix(plan.Bundle, "sha256:") || len(plan.Bundle) != len("sha256:")+64 {
				t.Fatalf("plan.Bundle = %q, want sha256:<64 hex>", plan.Bundle)
			}
			switch tt.worker {
			case noSnapshot:
				if err := os.RemoveAll(filepath.Join(store.Dir, strings.TrimPrefix(plan.Bundle, "sha256:"))); err != nil {
					t.Fatal(err)
				}
			case bare:
				c.acts.Bundles = bundle.Store{}
			}
			if tt.file != "" {
				testfiles.Write(t, filepath.Join(dir, tt.file), "; edited after the plan\n")
			}
			var err error
			switch tt.step {
			case "provision":
				_, err = c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Zones: plan.Zones, Bundle: plan.Bundle, Revision: plan.Revision})
			case "verify":
				_, err = c.env.ExecuteActivity(c.acts.Verify, VerifyInput{StepFleet: plan.StepFleet(), Targets: []ProbeTarget{{Name: "ns1-next", Addr: "127.0.0.1:1"}}, Zones: plan.Zones, Bundle: plan.Bundle, Revision: plan.Revision})
			}
			if tt.want == "" && tt.step == "verify" {
				// Nothing answers at the target: what matters is that the
				// analysis ran, with the planned zone's checks.
				if err == nil || !strings.Contains(err.Error(), "of 16 checks failed") {
					t.Fatalf("err = %v, want the analysis of the planned zone's 16 checks to fail", err)
				}
				return
			}
			if tt.want == "" {
				if err != nil || len(reqs) != 1 {
					t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(reqs))
				}
				wantPlanned(t, reqs[0], tt.worker != bare, store.Dir)
				return
			}
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || !app.NonRetryable() {
				t.Fatalf("err = %v, want a non-retryable refusal", err)
			}
			for _, w := range []string{"revision changed since the plan: planned " + bundle.Short(plan.Bundle) + ", found sha256:", tt.want, "re-run the rollout to deploy the new revision"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
			if len(reqs) != 0 {
				t.Errorf("the playbook ran %d times after the refusal", len(reqs))
			}
		})
	}
}

// wantPlanned checks that a playbook run deploys the planned zone file
// with the planned playbook: from the snapshot under store when
// snapshot, and in any case with the bytes Plan read.
func wantPlanned(t *testing.T, req provision.Request, snapshot bool, store string) {
	t.Helper()
	zones, _ := req.ExtraVars["dnsroll_zones"].([]map[string]any)
	if len(zones) != 1 {
		t.Fatalf("dnsroll_zones = %v, want one zone", req.ExtraVars["dnsroll_zones"])
	}
	// The zone list and the role's archive live in the step's scratch
	// directory, which goes with the step.
	scratch, _ := req.ExtraVars["dnsroll_scratch_dir"].(string)
	if list, _ := req.ExtraVars["dnsroll_zones_file"].(string); scratch == "" || filepath.Dir(list) != scratch {
		t.Errorf("dnsroll_zones_file %q is not in dnsroll_scratch_dir %q", list, scratch)
	}
	if _, err := os.Stat(scratch); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the scratch directory %s outlived the step (%v)", scratch, err)
	}
	src, _ := zones[0]["src"].(string)
	for _, p := range []string{src, req.Playbook} {
		if got := strings.HasPrefix(p, store+"/"); got != snapshot {
			t.Errorf("%s is in the snapshot: %v, want %v", p, got, snapshot)
		}
	}
	if b, err := os.ReadFile(src); err != nil || string(b) != verifyZone {
		t.Errorf("the zone deployed from %s is %q (%v), want the planned one", src, b, err)
	}
	role := filepath.Join(filepath.Dir(req.Playbook), "roles", "nameserver", "tasks", "main.yml")
	if b, err := os.ReadFile(role); err != nil || strings.Contains(string(b), "edited") {
		t.Errorf("the role run from %s is %q (%v), want the planned one", role, b, err)
	}
}

// A worker without a file of the revision fails the step with an error a
// retry may fix (another worker may hold it), naming the zone, the path
// and this worker.
func TestSameRevisionMissingHereIsRetried(t *testing.T) {
	dir := t.TempDir()
	writeFleetDir(t, dir)
	f := &config.Fleet{Dir: dir}
	f.Ansible.NameserverPlaybook = "ansible/nameserver.yml"
	zf := ZoneFile{Name: "example.com", Path: filepath.Join(dir, "zones", "example.com.zone")}
	m, err := revisionHere(f, []ZoneFile{zf})
	if err != nil {
		t.Fatal(err)
	}
	if zf.SHA256, err = bundle.FileSHA256(zf.Path); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tt := range []struct {
		name string
		gone string
		want string
	}{
		{"zone file", "zones/example.com.zone", "example.com.zone is not on worker " + host},
		{"playbook", "ansible/nameserver.yml", "worker " + host + " lacks a file of the revision's bundle"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			writeFleetDir(t, d)
			g := *f
			g.Dir = d
			z := zf
			z.Path = filepath.Join(d, "zones", "example.com.zone")
			if err := os.Remove(filepath.Join(d, tt.gone)); err != nil {
				t.Fatal(err)
			}
			err := sameRevision(bundle.Store{}, &g, m.Hash, []ZoneFile{z})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "another worker may take this step") {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if dnsroll.ErrorCode(err) == dnsroll.EINVALID || dnsroll.ErrorCode(err) == dnsroll.ECONFLICT {
				t.Errorf("err %v is not retried: another worker could not take the step", err)
			}
		})
	}
}

// A plan's warnings stay bounded however many zones warn: the first ones
// as they are, then one line that counts the rest.
func TestPlanWarningsAreCapped(t *testing.T) {
	var w []string
	for i := range 100_000 {
		w = append(w, fmt.Sprintf("zone z%d.example.: could not read blue's serial", i))
	}
	got := capWarnings(w)
	if len(got) != MaxWarnings || got[0] != w[0] || got[MaxWarnings-2] != w[MaxWarnings-2] {
		t.Fatalf("capWarnings kept %d, want the first %d and a count", len(got), MaxWarnings-1)
	}
	if want := fmt.Sprintf("… and %d more warnings like these", 100_000-(MaxWarnings-1)); got[MaxWarnings-1] != want {
		t.Fatalf("last warning %q, want %q", got[MaxWarnings-1], want)
	}
	if few := capWarnings(w[:3]); len(few) != 3 {
		t.Fatalf("3 warnings became %d", len(few))
	}
	// MaxWarnings of them are all kept: a count would hide the last.
	if all := capWarnings(w[:MaxWarnings]); len(all) != MaxWarnings || all[MaxWarnings-1] != w[MaxWarnings-1] {
		t.Fatalf("%d warnings became %q", MaxWarnings, all[len(all)-1])
	}
}

// A worker whose snapshot of a small plan's bundle is gone, and which
// lacks a zone file, names the zone and the file, with an error a retry
// may fix: another worker may have the files.
func TestSmallPlanWithoutSnapshotNamesTheMissingZone(t *testing.T) {
	c, store, plan, dir := smallPlanInStore(t)
	var reqs []provision.Request
	c.acts.Ansible = recordingRunner{&reqs}
	dropSnapshot(t, store, plan)
	zoneFile := filepath.Join(dir, "zones", "example.com.zone")
	if err := os.Remove(zoneFile); err != nil {
		t.Fatal(err)
	}
	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.NonRetryable() || !strings.Contains(err.Error(), "zone example.com: "+zoneFile+" is not on worker") {
		t.Fatalf("err = %v, want a retryable error naming example.com and %s", err, zoneFile)
	}
	if len(reqs) != 0 {
		t.Errorf("the playbook ran %d times without the zone file", len(reqs))
	}
}

// Plan refuses a serial behind the one blue serves, and one exactly 2^31
// from it, whose order RFC 1982 leaves undefined: resolvers and
// secondaries may keep blue's data either way. allow_serial_decrease lets
// both through; a serial ahead, or a zone blue did not answer for, passes.
func TestPlanRefusesASerialBehindBlues(t *testing.T) {
	zones := []ZoneFile{{Name: "example.com", Path: "zones/example.com.zone", Serial: 100}, {Name: "example.org", Path: "zones/example.org.zone", Serial: 100}}
	for _, tc := range []struct {
		name  string
		blue  map[string]blueSerial
		allow bool
		want  string // "" for no refusal
	}{
		{"ahead of blue", map[string]blueSerial{"example.com": {99, "ns1"}}, false, ""},
		{"as blue", map[string]blueSerial{"example.com": {100, "ns1"}}, false, ""},
		{"behind blue", map[string]blueSerial{"example.com": {101, "ns1"}}, false, "serial 100, behind the 101 that blue ns1 serves"},
		{"2^31 from blue", map[string]blueSerial{"example.com": {100 + 1<<31, "ns1"}}, false, "serial 100, behind the 2147483748"},
		{"behind blue, allowed", map[string]blueSerial{"example.com": {101, "ns1"}}, true, ""},
		{"2^31 from blue, allowed", map[string]blueSerial{"example.com": {100 + 1<<31, "ns1"}}, true, ""},
		{"blue did not answer", map[string]blueSerial{}, false, ""},
		{"blue did not answer for one zone, behind on another", map[string]blueSerial{"example.org": {101, "ns1"}}, false, "zone example.org: revision A has serial 100, behind the 101"},
	} {
		plan := &Plan{Fleet: &config.Fleet{Probe: config.Probe{AllowSerialDecrease: tc.allow}}, Revision: "A"}
		err := checkSerialsAgainstBlue(plan, zones, tc.blue)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no refusal", tc.name, err)
		case tc.want != "" && (dnsroll.ErrorCode(err) != dnsroll.EINVALID || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a refusal (EINVALID) saying %q", tc.name, err, tc.want)
		case tc.want != "" && (!strings.Contains(err.Error(), "Bump the serial in zones/example.") || !strings.Contains(err.Error(), "--allow-serial-decrease")):
			t.Errorf("%s: %v, want the refusal to name the file to fix and the override", tc.name, err)
		}
	}
}

// editingRunner edits file when the playbook starts, as a checkout updated
// on the worker would: after the step checked the files, before Ansible
// reads them. Then it records the run.
type editingRunner struct {
	file string
	recordingRunner
}

func (r editingRunner) Run(ctx context.Context, req provision.Request, progress func(string)) (provision.Result, error) {
	if err := os.WriteFile(r.file, []byte("; the next revision, checked out mid-step\n"), 0o644); err != nil {
		return provision.Result{}, err
	}
	return r.recordingRunner.Run(ctx, req, progress)
}

// A rollout paused at its gate past the retention loses its snapshot to
// Prune; so does a step on another worker never have one. Such a step
// checks the worker's own files against the planned hash, and must then
// deploy what it checked: a file edited after the check, while the step
// runs, must not reach green.
func TestStepWithoutSnapshotDeploysWhatItChecked(t *testing.T) {
	c, store, plan, dir := smallPlanInStore(t)
	// Unused for two hours, past a one-hour --bundle-max-age.
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{strings.TrimPrefix(plan.Bundle, "sha256:"), strings.TrimPrefix(plan.Bundle, "sha256:") + ".json"} {
		if err := os.Chtimes(filepath.Join(store.Dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	pruner := store
	pruner.Retention = bundle.Retention{MaxAge: time.Hour}
	if p, err := pruner.Prune(); err != nil || p.Snapshots != 1 {
		t.Fatalf("Prune = %+v, %v; want the planned snapshot removed", p, err)
	}
	var reqs []provision.Request
	c.acts.Ansible = editingRunner{filepath.Join(dir, "zones", "example.com.zone"), recordingRunner{&reqs}}
	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(reqs))
	}
	wantPlanned(t, reqs[0], true, store.Dir)
}

// A worker whose bundle store cannot be written (here a file, not a
// directory) still verifies, with its own files once they are found to be
// the planned bundle, as before steps copied them.
func TestVerifyWithUnwritableStoreUsesCheckedFiles(t *testing.T) {
	c := newCloudEnv(t)
	c.labFleet(t)
	c.acts.Bundles = bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	plan, _ := c.planWith(t, PlanInput{Fleet: "t", SmallHistory: true})
	notDir := filepath.Join(t.TempDir(), "bundles")
	testfiles.Write(t, notDir, "not a directory\n")
	c.acts.Bundles = bundle.Store{Dir: notDir}
	_, err := c.env.ExecuteActivity(c.acts.Verify, VerifyInput{StepFleet: plan.StepFleet(), Targets: []ProbeTarget{{Name: "ns1-next", Addr: "127.0.0.1:1"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	// Nothing answers at the target: what matters is that the analysis
	// ran, with the planned zone's checks.
	if err == nil || !strings.Contains(err.Error(), "of 16 checks failed") {
		t.Fatalf("err = %v, want the analysis of the planned zone's 16 checks to fail", err)
	}
}

// A file that changes while a step without a snapshot copies it, and is
// back to the planned bytes by the time it is checked again, shows the
// checkout being edited under the step: the step must not fall back to
// deploying the live files, which may change again while Ansible reads
// them; it fails with an error the next attempt, which copies again,
// may clear.
func TestStepRetriesWhenFilesChangeWhileCopied(t *testing.T) {
	// Read by the check (its hash, then the bundle's), by the copy, then
	// by the check again.
	reqs, err := provisionWithoutSnapshot(t, func(zone string) {
		testfiles.Changing(t, zone, verifyZone, verifyZone, "; the next revision, checked out mid-copy\n", verifyZone)
	})
	if err == nil || !strings.Contains(err.Error(), "changed while copied") || len(reqs) != 0 {
		t.Fatalf("err = %v, %d playbook runs; want the step to fail, to be tried again, before any run", err, len(reqs))
	}
	if app := (*temporal.ApplicationError)(nil); errors.As(err, &app) && app.NonRetryable() {
		t.Errorf("err = %v is final; the files are the planned ones again, so another attempt may copy them", err)
	}
}

// smallPlanInStore plans lab fleet t's revision with a bundle store,
// returning the env, the store, the plan and the fleet's directory.
func smallPlanInStore(t *testing.T) (*cloudEnv, bundle.Store, Plan, string) {
	t.Helper()
	c := newCloudEnv(t)
	c.labFleet(t)
	store := bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	c.acts.Bundles = store
	plan, dir := c.planWith(t, PlanInput{Fleet: "t", SmallHistory: true})
	return c, store, plan, dir
}

// dropSnapshot removes plan's snapshot from store, keeping its file list.
func dropSnapshot(t *testing.T, store bundle.Store, plan Plan) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(store.Dir, strings.TrimPrefix(plan.Bundle, "sha256:"))); err != nil {
		t.Fatal(err)
	}
}

// provisionWithoutSnapshot provisions ns1-next from a plan whose snapshot
// is gone (its file list stays), after edit was given the path of the
// plan's zone file; it returns the playbook runs and the error.
func provisionWithoutSnapshot(t *testing.T, edit func(zone string)) ([]provision.Request, error) {
	t.Helper()
	c, store, plan, dir := smallPlanInStore(t)
	dropSnapshot(t, store, plan)
	edit(filepath.Join(dir, "zones", "example.com.zone"))
	var reqs []provision.Request
	c.acts.Ansible = recordingRunner{&reqs}
	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	return reqs, err
}

// A file changed while copied that stays changed is a new revision: the
// step refuses it for good, as a step that found it changed at the check
// does, rather than retry until its deadline.
func TestStepRefusesFilesChangedForGoodWhileCopied(t *testing.T) {
	// Read by the check (its hash, then the bundle's); changed from the copy on.
	reqs, err := provisionWithoutSnapshot(t, func(zone string) {
		testfiles.Changing(t, zone, verifyZone, verifyZone, "; the next revision, checked out mid-copy\n")
	})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "revision changed since the plan") || len(reqs) != 0 {
		t.Fatalf("err = %v, %d playbook runs; want a final refusal of the changed revision, before any run", err, len(reqs))
	}
}

// A file removed while copied (a checkout switching branches) fails the
// attempt, to be checked again by the next: the step must not deploy the
// fleet's own files, which it no longer knows to be the checked ones.
func TestStepRetriesWhenAFileGoesWhileCopied(t *testing.T) {
	// Read by the check (its hash, then the bundle's), gone for the copy.
	reqs, err := provisionWithoutSnapshot(t, func(zone string) { testfiles.Vanishing(t, zone, verifyZone, verifyZone) })
	if err == nil || !strings.Contains(err.Error(), "copying the revision's files") || len(reqs) != 0 {
		t.Fatalf("err = %v, %d playbook runs; want the attempt to fail before any run", err, len(reqs))
	}
	if app := (*temporal.ApplicationError)(nil); errors.As(err, &app) && app.NonRetryable() {
		t.Errorf("err = %v is final; another attempt may find the file back", err)
	}
}

// A file the copy cannot read is no sign of a store this worker cannot
// write: the step must not fall back to deploying the fleet's own files,
// which it could not read either. A directory where the file was stays
// one: the step fails for good, naming the file, rather than retry until
// its deadline.
func TestStepFailsWhenACopiedFileIsADirectory(t *testing.T) {
	var zone string
	// Read by the check (its hash, then the bundle's), a directory for
	// the copy.
	reqs, err := provisionWithoutSnapshot(t, func(z string) { zone = z; testfiles.Unreadable(t, z, verifyZone, verifyZone) })
	wantUnreadable(t, err, reqs, zone, "is a directory")
}

// A directory where a zone file or the playbook should be, found by the
// check, fails the step for good too.
func TestStepFailsWhenAFileIsADirectory(t *testing.T) {
	for _, name := range []string{"zones/example.com.zone", "ansible/nameserver.yml"} {
		t.Run(name, func(t *testing.T) {
			var path string
			reqs, err := provisionWithoutSnapshot(t, func(zone string) {
				path = filepath.Join(filepath.Dir(filepath.Dir(zone)), name)
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			})
			wantUnreadable(t, err, reqs, path, "is a directory")
		})
	}
}

// wantUnreadable fails t unless err is a final failure before any
// playbook run that names path and says what to do about it.
func wantUnreadable(t *testing.T, err error, reqs []provision.Request, path, cause string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || len(reqs) != 0 {
		t.Fatalf("err = %v, %d playbook runs; want a final failure before any run", err, len(reqs))
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, cause) {
		t.Errorf("err = %v; want it to name %s and say it %s", err, path, cause)
	}
}

// Only errors reading a fleet file that stay until someone fixes them are
// final, and they say the fix; a file gone mid-edit, an I/O error or the
// store's own error (which materialise works around) another attempt may
// not meet.
func TestUnreadableIsFinalOnlyForLastingErrors(t *testing.T) {
	const file = "/fleet/zones/example.com.zone"
	for _, tc := range []struct {
		err   error
		final string // in the message; "" for no final error
	}{
		{&fs.PathError{Op: "open", Path: file, Err: syscall.EACCES}, "readable by the worker's user"},
		{&fs.PathError{Op: "open", Path: file, Err: syscall.EPERM}, "readable by the worker's user"},
		{fmt.Errorf("copying: %w", &fs.PathError{Op: "read", Path: file, Err: syscall.EISDIR}), "is a directory"},
		{&fs.PathError{Op: "open", Path: file, Err: syscall.ENOENT}, ""},
		{&fs.PathError{Op: "read", Path: file, Err: syscall.EIO}, ""},
		// No file to name: not final, and no panic.
		{fmt.Errorf("walking: %w", os.NewSyscallError("getdents", syscall.EACCES)), ""},
		{fmt.Errorf("%w: %w", bundle.ErrStore, &fs.PathError{Op: "open", Path: "/store/x", Err: syscall.EACCES}), ""},
	} {
		got := unreadable(tc.err)
		switch {
		case tc.final == "" && got != nil:
			t.Errorf("unreadable(%v) = %v; want nil: another attempt may not meet it", tc.err, got)
		case tc.final == "":
		case dnsroll.ErrorCode(got) != dnsroll.EINVALID || !strings.Contains(got.Error(), file) || !strings.Contains(got.Error(), tc.final):
			t.Errorf("unreadable(%v) = %v; want an EINVALID error naming %s and saying %q", tc.err, got, file, tc.final)
		}
	}
}
