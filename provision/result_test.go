package provision

import (
	"strings"
	"testing"
)

// A script task (install-zones.sh, wait-zones.py, dnsdist-backends.sh) run
// over SSH gets a terminal (ssh -tt): the script's stderr arrives in its
// stdout, and stderr holds only ssh's "Shared connection to ... closed."
// The failure must quote the script's words, which say "failed to
// validate" for a zone BIND refuses (activities.rejected), not ssh's.
func TestFailureOfAScriptOverSSHQuotesTheScript(t *testing.T) {
	// As ansible-playbook's json callback printed it for a broken zone on a
	// machine reached over SSH.
	doc := `{"plays": [{"tasks": [{"task": {"name": "nameserver : Validate and install the zone set"},
		"hosts": {"ns1": {"failed": true, "changed": true, "rc": 1, "msg": "non-zero return code",
			"stderr": "Shared connection to 10.231.0.200 closed.\r\n",
			"stdout": "failed to validate 1 of 1 zones (named-checkconf -z); the running zones are unchanged:\r\ndns_rdata_fromtext: example.com.zone:4: near '192.0.2': bad dotted quad\r\n"}}}]}],
		"stats": {"ns1": {"failures": 1, "ok": 5}}}`
	res, err := parseOutput([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 {
		t.Fatalf("failures = %+v, want one", res.Failures)
	}
	msg := res.Failures[0].Message
	want := "non-zero return code: failed to validate 1 of 1 zones (named-checkconf -z); the running zones are unchanged:\n" +
		"dns_rdata_fromtext: example.com.zone:4: near '192.0.2': bad dotted quad"
	if msg != want {
		t.Errorf("message = %q, want %q", msg, want)
	}
}

// A command's own stderr, over SSH without a terminal, is quoted as it is,
// and a script's stderr on a local connection too.
func TestFailureQuotesStderr(t *testing.T) {
	for _, stderr := range []string{"E: Could not get lock /var/lib/apt/lists/lock", "boom\nShared connection to 192.0.2.1 closed."} {
		r := taskResult{Failed: true, Msg: "non-zero return code", Stderr: stderr, Stdout: "progress"}
		if got, want := r.message(), "non-zero return code: "+stderr; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
	}
	if !strings.Contains(taskResult{Msg: "x", Stderr: "Shared connection to h closed.\r\n"}.message(), "Shared connection") {
		t.Error("with no stdout, ssh's line is all there is to quote")
	}
}

// A failed loop's message is its first failed or unreachable item's, with
// the item's label: the loop's own msg says only that some item failed.
func TestFailureOfALoopQuotesItsItem(t *testing.T) {
	for _, item := range []taskResult{
		{Failed: true, ItemLabel: "example.com", Msg: "zone example.com/IN: not loaded due to errors"},
		{Unreachable: true, ItemLabel: "example.com", Msg: "Failed to connect to the host via ssh"},
	} {
		r := taskResult{Failed: true, Msg: "One or more items failed", Results: []taskResult{{ItemLabel: "example.net", Msg: "ok"}, item}}
		if got, want := r.message(), "example.com: "+item.Msg.(string); got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
	}
}

// A host that was unreachable for a moment (ignore_unreachable, a reboot)
// and then failed a task is reported by the task, not as unreachable; one
// only unreachable is reported so.
func TestRunErrorNamesAFailedTaskOverAnUnreachableMoment(t *testing.T) {
	res := Result{
		Hosts:    map[string]HostStats{"ns1": {Failed: 1, Unreachable: 1}, "ns2": {Unreachable: 1}},
		Failures: []Failure{{Host: "ns1", Task: "Install BIND", Message: "E: Unable to locate package bind9"}, {Host: "ns2", Task: "Gathering Facts", Message: "Failed to connect"}},
	}
	msg := runError("nameserver.yml", res, outcome{stderr: newTail(stderrKeep), exit: 2}, nil).Error()
	for _, want := range []string{`failed on ns1: task "Install BIND": E: Unable to locate package bind9`, "failed on ns2: host unreachable: Failed to connect"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}
