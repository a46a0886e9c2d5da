package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/bundle"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/provision"
)

// writeFleetDir writes a revision, the test fleet's zone file and a
// nameserver playbook with its role, into dir.
func writeFleetDir(t *testing.T, dir string) {
	t.Helper()
	for name, text := range map[string]string{
		"zones/example.com.zone":                  verifyZone,
		"ansible/nameserver.yml":                  "- hosts: all\n  roles:\n    - role: nameserver\n",
		"ansible/roles/nameserver/tasks/main.yml": "- ansible.builtin.debug: {msg: one}\n",
		"ansible/roles/unused/tasks/main.yml":     "- ansible.builtin.debug: {msg: unused}\n",
	} {
		writeFile(t, filepath.Join(dir, name), text)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countingRunner succeeds, counting the playbooks it ran.
type countingRunner struct{ runs *atomic.Int32 }

func (r countingRunner) Run(context.Context, provision.Request, func(string)) (provision.Result, error) {
	r.runs.Add(1)
	return provision.Result{}, nil
}

// A file of the revision edited between Plan and a later step: the step
// refuses, for good and before running anything, naming the planned and
// found bundles and the file, rather than give green (or check it
// against) a mix of two revisions. Unchanged, the step runs; a file that
// no role in the playbook uses is not part of the revision.
func TestStepsRefuseARevisionChangedSincePlan(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		step       string // provision, verify
		store      bool   // this worker kept the planned file list
		want       string // "" for no refusal
	}{
		{"unchanged", "", "provision", true, ""},
		{"a role nobody uses", "ansible/roles/unused/tasks/main.yml", "provision", true, ""},
		{"zone file, provision", "zones/example.com.zone", "provision", true, "(zones/example.com.zone changed)"},
		{"zone file, verify", "zones/example.com.zone", "verify", true, "(zones/example.com.zone changed)"},
		{"the role's tasks", "ansible/roles/nameserver/tasks/main.yml", "provision", true, "(ansible/roles/nameserver/tasks/main.yml changed)"},
		{"zone file, worker without the list", "zones/example.com.zone", "provision", false, "example.com.zone changed"},
		{"role, worker without the list", "ansible/roles/nameserver/tasks/main.yml", "provision", false, "has no list of the planned files"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCloudEnv(t)
			c.fleet.Ansible.Connection = "local" // no SSH to wait for
			c.acts.Bundles = bundle.Store{Dir: filepath.Join(t.TempDir(), "bundles")}
			var runs atomic.Int32
			c.acts.Ansible = countingRunner{&runs}
			plan, dir := c.plan(t)
			if !strings.HasPrefix(plan.Bundle, "sha256:") || len(plan.Bundle) != len("sha256:")+64 {
				t.Fatalf("plan.Bundle = %q, want sha256:<64 hex>", plan.Bundle)
			}
			if !tt.store {
				c.acts.Bundles = bundle.Store{}
			}
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, tt.file), "; edited after the plan\n")
			}
			var err error
			switch tt.step {
			case "provision":
				_, err = c.env.ExecuteActivity(c.acts.ProvisionNameservers, ProvisionInput{Fleet: plan.Fleet, Servers: []dnsroll.Server{{ID: 1, Label: "ns1-next"}}, Zones: plan.Zones, Bundle: plan.Bundle})
			case "verify":
				_, err = c.env.ExecuteActivity(c.acts.Verify, VerifyInput{Fleet: plan.Fleet, Targets: []ProbeTarget{{Name: "ns1-next", Addr: "127.0.0.1:1"}}, Zones: plan.Zones, Bundle: plan.Bundle})
			}
			if tt.want == "" {
				if err != nil || runs.Load() != 1 {
					t.Fatalf("err = %v, %d playbook runs; want none and 1", err, runs.Load())
				}
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
			if runs.Load() != 0 {
				t.Errorf("the playbook ran %d times after the refusal", runs.Load())
			}
		})
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
