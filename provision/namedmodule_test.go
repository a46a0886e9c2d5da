package provision

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/needlab"
	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// runNamedModule runs the nameserver role's dnsroll_named module as
// Ansible would, on this machine, with the given programs on PATH before
// path, and returns its JSON result.
func runNamedModule(t *testing.T, fakes map[string]string, args map[string]any, path string) map[string]any {
	t.Helper()
	python := ansiblePython(t)
	bin := t.TempDir()
	for name, script := range fakes {
		testfiles.Write(t, filepath.Join(bin, name), "#!/bin/sh\n"+script)
		if err := os.Chmod(filepath.Join(bin, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(map[string]any{"ANSIBLE_MODULE_ARGS": args})
	if err != nil {
		t.Fatal(err)
	}
	argsFile := filepath.Join(t.TempDir(), "args.json")
	testfiles.Write(t, argsFile, string(b))
	cmd := exec.Command(python, "../ansible/roles/nameserver/library/dnsroll_named.py", argsFile)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+path)
	out, _ := cmd.Output()
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("module output %q: %v", out, err)
	}
	return res
}

// ansiblePython is the Python that ansible-playbook runs on, which has
// Ansible's module library (another python3 on PATH may not).
func ansiblePython(t *testing.T) string {
	t.Helper()
	needlab.Programs(t, "ansible-playbook")
	path, _ := exec.LookPath("ansible-playbook")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 || !strings.Contains(fields[len(fields)-1], "python") {
		needlab.Missing(t, "cannot tell ansible-playbook's Python from %q", line)
	}
	if len(fields) == 2 && filepath.Base(fields[0]) == "env" {
		return fields[1]
	}
	return fields[0]
}

// named that systemd cannot start fails the step with named's own words
// from the journal: systemctl's message says only to look there, on a VM
// that the rollout deletes once the step gives up.
func TestNamedThatWillNotStartShowsItsJournal(t *testing.T) {
	dir := t.TempDir()
	const systemctl = `case "$1" in
is-enabled) echo enabled ;;
is-active) echo failed; exit 3 ;;
start) echo 'Job for named.service failed because the control process exited with error code.' >&2; exit 1 ;;
esac
`
	args := map[string]any{"conf": filepath.Join(dir, "named.conf"), "zone_dir": dir, "pid_file": filepath.Join(dir, "pid"), "stamp": filepath.Join(dir, "stamp")}
	res := runNamedModule(t, map[string]string{
		"systemctl": systemctl,
		"journalctl": `echo "journalctl $*"
echo "loading configuration: permission denied"
echo "exiting (due to fatal error)"
`,
	}, args, os.Getenv("PATH"))
	msg, _ := res["msg"].(string)
	// The fake journalctl echoes its arguments first.
	if res["failed"] != true || !strings.Contains(msg, "systemctl start named failed") ||
		!strings.Contains(msg, "journalctl -u named -n 15 --no-pager -o cat | loading configuration: permission denied") {
		t.Errorf("result %v, want a failure with named's journal", res)
	}

	// Without journalctl, the failure is still systemctl's.
	res = runNamedModule(t, map[string]string{"systemctl": systemctl}, args, "/nonexistent")
	msg, _ = res["msg"].(string)
	if res["failed"] != true || !strings.Contains(msg, "systemctl start named failed (rc 1): Job for named.service failed") || !strings.Contains(msg, "no journalctl") {
		t.Errorf("without journalctl: result %v, want systemctl's failure", res)
	}
}
