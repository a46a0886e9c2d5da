package provision

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
)

// Ansible reads the inventory as meant: each host at its address, as the
// request's user over ssh, with its own vars, which may override the
// group's; a local run uses the Python that runs Ansible. Only the
// worker's user can read the inventory and the extra vars.
func TestAnsibleReadsTheInventory(t *testing.T) {
	needlab.Programs(t, "ansible-inventory")
	for _, tc := range []struct {
		name string
		req  Request
		conn string
		want map[string]any
	}{
		{"ssh", Request{User: "deploy", Hosts: []Host{{Name: "ns1", Address: "192.0.2.1", Vars: map[string]any{"zone_count": 3}}}}, "ssh",
			map[string]any{"ansible_connection": "ssh", "ansible_user": "deploy", "ansible_host": "192.0.2.1", "zone_count": 3.0}},
		{"host overrides the user", Request{User: "deploy", Hosts: []Host{{Name: "ns1", Address: "192.0.2.1", Vars: map[string]any{"ansible_user": "admin"}}}}, "ssh",
			map[string]any{"ansible_user": "admin"}},
		{"local", Request{User: "deploy", Hosts: []Host{{Name: "ns1"}}}, "local",
			map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}", "ansible_user": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inv, vars, err := writeInputs(dir, tc.req, tc.conn)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{inv, vars} {
				if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v (%v), want 0600", filepath.Base(f), fi.Mode().Perm(), err)
				}
			}
			cmd := exec.Command("ansible-inventory", "-i", inv, "--host", "ns1")
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ansible-inventory: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}
