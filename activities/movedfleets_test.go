package activities

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/internal/testfiles"
	"github.com/dnsroll/dnsroll/provision"
)

// The worker that planned a rollout is replaced, mid-rollout, by one on
// the same host (so with the same bundle store) whose --fleets is another
// directory holding the same fleet file. Its steps resolve the fleet to
// the planned config in the new directory, and must still find the
// revision in Plan's snapshot, whose files are named relative to the
// planning worker's directory: the planned bytes, whatever the files in
// either directory say now. Before, the names were worked out from the
// new directory: a zone file inside the fleet's directory, or a playbook
// outside it, named a file the snapshot does not have, and Ansible was
// handed a zone list or a playbook that does not exist. Where the
// snapshot is gone, the step checks the new directory's files against the
// plan and runs with a snapshot of them, not of the old directory's; files outside the
// fleet's directory are named by their paths, so another tree's are
// another revision, refused for good, naming them, before any playbook
// runs.
func TestStepsOfAWorkerWithAnotherFleetsDirUseThePlannedSnapshot(t *testing.T) {
	for _, layout := range []struct {
		name string
		sub  string // the fleet file's directory in the tree writeFleetDir writes
		up   string // from it to the tree
	}{
		{"zones and playbooks in the fleet's directory", "", ""},
		{"fleets/ beside zones/ and ansible/", "fleets", "../"},
	} {
		for _, gone := range []bool{false, true} {
			name := layout.name
			if gone {
				name += ", snapshot gone"
			}
			t.Run(name, func(t *testing.T) { testMovedFleetsDir(t, layout.sub, layout.up, gone) })
		}
	}
}

// testMovedFleetsDir plans in one tree, with the fleet file in its
// directory sub (up leads back), then runs the steps with the fleet in
// another tree's sub, with the snapshot gone or not.
func testMovedFleetsDir(t *testing.T, sub, up string, gone bool) {
	c, store, reqs := movedFleetsEnv(t, up)
	tree := func() string {
		root := t.TempDir()
		writeFleetDir(t, root)
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		return root
	}
	planned := tree()
	plan := c.planIn(t, filepath.Join(planned, sub), PlanInput{Fleet: "t", SmallHistory: true})
	moved := tree()
	edited := []string{planned, moved}
	if gone {
		// Only the old directory's files changed: the new one holds the
		// planned revision, which the step checks.
		edited = edited[:1]
		if err := os.RemoveAll(filepath.Join(store.Dir, strings.TrimPrefix(plan.Bundle, "sha256:"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range edited {
		testfiles.Write(t, filepath.Join(root, "zones/example.com.zone"), "; edited after the plan\n")
		testfiles.Write(t, filepath.Join(root, "ansible/roles/nameserver/tasks/main.yml"), "; edited after the plan\n")
	}
	next := *c.fleet
	next.Dir = filepath.Join(moved, sub)
	c.acts.Fleets = func(string) (*config.Fleet, error) { return &next, nil }

	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	if gone && sub != "" {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "revision changed since the plan") ||
			!strings.Contains(err.Error(), moved+"/ansible/nameserver.yml added") {
			t.Fatalf("err = %v, want a refusal naming the new tree's playbook", err)
		}
		if len(*reqs) != 0 {
			t.Errorf("the playbook ran %d times after the refusal", len(*reqs))
		}
		return
	}
	if err != nil || len(*reqs) != 1 {
		t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(*reqs))
	}
	wantPlanned(t, (*reqs)[0], true, store.Dir)
	if _, err := os.Stat((*reqs)[0].Playbook); err != nil {
		t.Errorf("the playbook run is not there: %v", err)
	}
	if m, ok, err := store.Load(plan.Bundle); gone && (err != nil || !ok || m.Base != next.Dir) {
		t.Errorf("the snapshot the step made is of %q (%v, %v), want the new directory %s", m.Base, ok, err, next.Dir)
	}
	_, err = c.env.ExecuteActivity(c.acts.Verify, VerifyInput{StepFleet: plan.StepFleet(), Targets: []ProbeTarget{{Name: "ns1-next", Addr: "127.0.0.1:1"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	// Nothing answers at the target: what matters is that the analysis
	// ran, with the planned zone's checks.
	if err == nil || !strings.Contains(err.Error(), "of 16 checks failed") {
		t.Fatalf("err = %v, want the analysis of the planned zone's 16 checks to fail", err)
	}
}

// Two checkouts on one host share the bundle store, and plan the same
// bundle: the manifest holds the zones and directory of the one that
// planned last. A rollout of the other, planned with its zones in history
// (before small histories), still finds them in the snapshot.
func TestZonesInHistoryFindTheSnapshotAnotherCheckoutPlannedAgain(t *testing.T) {
	c := newCloudEnv(t)
	c.labFleet(t) // no SSH to wait for
	store := bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	c.acts.Bundles = store
	reqs := &[]provision.Request{}
	c.acts.Ansible = recordingRunner{reqs}
	plan, dir := c.planWith(t, PlanInput{Fleet: "t"})
	if len(plan.Zones) != 1 || plan.Fleet.Dir != dir {
		t.Fatalf("plan has %d zones in %s, want 1 in %s", len(plan.Zones), plan.Fleet.Dir, dir)
	}
	if again, _ := c.planWith(t, PlanInput{Fleet: "t", SmallHistory: true}); again.Bundle != plan.Bundle {
		t.Fatalf("the other checkout planned %s, want the same bundle %s: the test shows nothing", again.Bundle, plan.Bundle)
	}
	testfiles.Write(t, filepath.Join(dir, "zones/example.com.zone"), "; edited after the plan\n")
	_, err := c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Zones: plan.Zones, Bundle: plan.Bundle, Revision: plan.Revision})
	if err != nil || len(*reqs) != 1 {
		t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(*reqs))
	}
	wantPlanned(t, (*reqs)[0], true, store.Dir)
}

// A rollout planned before manifests recorded their directory (Base), and
// still running after the upgrade, finds its snapshot's files as before:
// named relative to the fleet's directory, the planning worker's too.
func TestStepsOfARolloutPlannedBeforeManifestsKeptTheirBase(t *testing.T) {
	for _, layout := range []struct{ name, sub, up string }{
		{"zones and playbooks in the fleet's directory", "", ""},
		{"fleets/ beside zones/ and ansible/", "fleets", "../"},
	} {
		t.Run(layout.name, func(t *testing.T) { testPlannedWithoutBase(t, layout.sub, layout.up) })
	}
}

func testPlannedWithoutBase(t *testing.T, sub, up string) {
	c, store, reqs := movedFleetsEnv(t, up)
	root := t.TempDir()
	writeFleetDir(t, root)
	dir := filepath.Join(root, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	plan := c.planIn(t, dir, PlanInput{Fleet: "t", SmallHistory: true})
	// The manifest as a worker from before Base wrote it.
	file := filepath.Join(store.Dir, strings.TrimPrefix(plan.Bundle, "sha256:")+".json")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m["base"] != dir {
		t.Fatalf("manifest %s: base %v (%v), want %s", file, m["base"], err, dir)
	}
	delete(m, "base")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, file, string(b))
	testfiles.Write(t, filepath.Join(root, "zones/example.com.zone"), "; edited after the plan\n")
	testfiles.Write(t, filepath.Join(root, "ansible/roles/nameserver/tasks/main.yml"), "; edited after the plan\n")
	_, err = c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{StepFleet: plan.StepFleet(), Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Bundle: plan.Bundle, Revision: plan.Revision})
	if err != nil || len(*reqs) != 1 {
		t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(*reqs))
	}
	wantPlanned(t, (*reqs)[0], true, store.Dir)
	if _, err := os.Stat((*reqs)[0].Playbook); err != nil || !strings.HasPrefix((*reqs)[0].Playbook, store.Dir+"/") {
		t.Errorf("the playbook run, %s, is not the snapshot's: %v", (*reqs)[0].Playbook, err)
	}
}

// movedFleetsEnv is a lab fleet whose zone file and playbooks are named
// from the fleet's directory by up ("" or "../"), with a bundle store of
// its own and its playbook runs recorded instead of run.
func movedFleetsEnv(t *testing.T, up string) (*cloudEnv, bundle.Store, *[]provision.Request) {
	c := newCloudEnv(t)
	c.labFleet(t) // no SSH to wait for
	c.fleet.Zones[0].File = up + "zones/example.com.zone"
	c.fleet.Ansible.NameserverPlaybook = up + "ansible/nameserver.yml"
	c.fleet.Ansible.LoadBalancerPlaybook = up + "ansible/loadbalancer.yml"
	store := bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
	c.acts.Bundles = store
	reqs := &[]provision.Request{}
	c.acts.Ansible = recordingRunner{reqs}
	return c, store, reqs
}
