package activities

import (
	"cmp"
	"context"
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

// writeFleetDir writes a revision, the test fleet's zone file and a
// nameserver playbook with its role, into dir.
func writeFleetDir(t *testing.T, dir string) {
	t.Helper()
	testfiles.WriteAll(t, dir, map[string]string{
		"zones/example.com.zone":                  verifyZone,
		"ansible/nameserver.yml":                  "- hosts: all\n  roles:\n    - role: nameserver\n",
		"ansible/roles/nameserver/tasks/main.yml": "- ansible.builtin.debug: {msg: one}\n",
		"ansible/roles/unused/tasks/main.yml":     "- ansible.builtin.debug: {msg: unused}\n",
	})
}

// recordingRunner succeeds, recording the playbook runs it was asked for.
type recordingRunner struct{ reqs *[]provision.Request }

func (r recordingRunner) Run(_ context.Context, req provision.Request, _ func(string)) (provision.Result, error) {
	*r.reqs = append(*r.reqs, req)
	return provision.Result{}, nil
}

// A file of the revision edited between Plan and a later step. On the
// worker that planned, the step uses Plan's snapshot of the bundle: the
// planned bytes, whatever happened to the files since. A worker without
// the snapshot (or with a damaged one) refuses, for good and before
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
	for _, tt := range []struct {
		file, step, worker string
		want               string // "" for no refusal
	}{
		{"", "provision", noSnapshot, ""},
		{"ansible/roles/unused/tasks/main.yml", "provision", noSnapshot, ""},
		{"zones/example.com.zone", "provision", planner, ""},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", planner, ""},
		{"zones/example.com.zone", "provision", noSnapshot, "(zones/example.com.zone changed)"},
		{"zones/example.com.zone", "verify", noSnapshot, "(zones/example.com.zone changed)"},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", noSnapshot, "(ansible/roles/nameserver/tasks/main.yml changed)"},
		{"zones/example.com.zone", "provision", bare, "example.com.zone changed"},
		{"ansible/roles/nameserver/tasks/main.yml", "provision", bare, "has no list of the planned files"},
	} {
		t.Run(tt.step+" on "+tt.worker+", "+cmp.Or(tt.file, "nothing")+" edited", func(t *testing.T) {
			c := newCloudEnv(t)
			c.fleet.Ansible.Connection = "local" // no SSH to wait for
			store := bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
			c.acts.Bundles = store
			var reqs []provision.Request
			c.acts.Ansible = recordingRunner{&reqs}
			plan, dir := c.plan(t)
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
				_, err = c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{Fleet: plan.Fleet, Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Zones: plan.Zones, Bundle: plan.Bundle})
			case "verify":
				_, err = c.env.ExecuteActivity(c.acts.Verify, VerifyInput{Fleet: plan.Fleet, Targets: []ProbeTarget{{Name: "ns1-next", Addr: "127.0.0.1:1"}}, Zones: plan.Zones, Bundle: plan.Bundle})
			}
			if tt.want == "" {
				if err != nil || len(reqs) != 1 {
					t.Fatalf("err = %v, %d playbook runs; want none and 1", err, len(reqs))
				}
				wantPlanned(t, reqs[0], tt.worker == planner, store.Dir)
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
