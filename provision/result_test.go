package provision

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
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

// A Result goes into workflow history, so however many hosts fail and
// however long their messages, it keeps at most 20 failures of at most
// about 500 bytes each, cut on a character boundary; a loop item's label
// counts towards its message's bound.
func TestResultStaysSmall(t *testing.T) {
	long := "x" + strings.Repeat("é", 1500) // é at odd offsets, so a cut at 500 splits one
	var hosts, stats []string
	for i := range 30 {
		h := fmt.Sprintf("ns%02d", i)
		r := fmt.Sprintf(`{"failed": true, "msg": %q}`, long)
		if i%2 == 1 {
			r = fmt.Sprintf(`{"failed": true, "msg": "One or more items failed", "results": [{"failed": true, "_ansible_item_label": %q, "msg": %q}]}`, long, long)
		}
		hosts = append(hosts, fmt.Sprintf("%q: %s", h, r))
		stats = append(stats, fmt.Sprintf(`%q: {"failures": 1}`, h))
	}
	doc := `{"plays": [{"tasks": [{"task": {"name": "Install BIND"}, "hosts": {` + strings.Join(hosts, ",") + `}}]}], "stats": {` + strings.Join(stats, ",") + `}}`
	res, err := parseOutput([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Failures), 20; got != want {
		t.Errorf("%d failures, want %d", got, want)
	}
	for _, f := range res.Failures {
		if n := len(f.Message); n > 500+len("…") || n < 400 || !utf8.ValidString(f.Message) {
			t.Errorf("%s: message of %d bytes (valid UTF-8: %v), want about 500", f.Host, n, utf8.ValidString(f.Message))
		}
	}
}

// A failure that Ansible did not count (ignore_unreachable, ignore_errors,
// rescue) is not reported; Ansible's own chatter before the JSON document
// is skipped.
func TestUncountedFailuresAreNotReported(t *testing.T) {
	doc := `[WARNING]: Found variable using reserved name
{"plays": [{"tasks": [{"task": {"name": "Reboot"}, "hosts": {"ns1": {"unreachable": true, "msg": "Connection reset"}, "ns2": {"failed": true, "msg": "ignored"}}}]}],
	"stats": {"ns1": {"ok": 3, "ignored": 0}, "ns2": {"ok": 3, "ignored": 1}}}`
	res, err := parseOutput([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 0 || res.Hosts["ns1"].OK != 3 {
		t.Errorf("result = %+v, want 3 ok on ns1 and no failures", res)
	}
}

// A host's error names the failure that stopped it, its last one (an
// earlier one was rescued), and quotes the last ten lines of stderr.
func TestRunErrorNamesTheLastFailureAndStderrTail(t *testing.T) {
	res := Result{
		Hosts: map[string]HostStats{"ns1": {Failed: 1}},
		Failures: []Failure{
			{Host: "ns1", Task: "Try the fast way", Message: "rescued"},
			{Host: "ns1", Task: "Install BIND", Message: "E: Unable to locate package bind9"},
		},
	}
	stderr := newTail(stderrKeep)
	for i := 1; i <= 15; i++ {
		fmt.Fprintf(stderr, "stderr line %d\n", i)
	}
	msg := runError("nameserver.yml", res, outcome{stderr: stderr, exit: 2}, nil).Error()
	if want := `failed on ns1: task "Install BIND": E: Unable to locate package bind9`; !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want)
	}
	if !strings.Contains(msg, "stderr line 6\n") || !strings.HasSuffix(msg, "stderr line 15") || strings.Contains(msg, "stderr line 5\n") || strings.Contains(msg, "rescued") {
		t.Errorf("error %q, want the failure that stopped ns1 and stderr lines 6 to 15", msg)
	}
}

// A run that failed without a failed task (Ansible could not parse the
// playbook, or printed no result) says how it exited and why nothing was
// parsed.
func TestRunErrorWithoutFailedTasks(t *testing.T) {
	msg := runError("nameserver.yml", Result{}, outcome{stderr: newTail(stderrKeep), exit: 4}, errNoOutput).Error()
	if want := "ansible: nameserver.yml: ansible-playbook exited with status 4 (no JSON result on stdout)"; msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
}

// The stderr kept for errors is the end of what ansible-playbook wrote,
// bounded however much it writes.
func TestStderrTailIsBounded(t *testing.T) {
	tl := newTail(stderrKeep)
	for i := range 5000 {
		fmt.Fprintf(tl, "line %d\n", i)
	}
	if n := len(tl.lastLines(1 << 20)); n > stderrKeep || n < stderrKeep-20 {
		t.Errorf("kept %d bytes, want about %d", n, stderrKeep)
	}
	if got := tl.lastLines(2); got != "line 4998\nline 4999" {
		t.Errorf("last lines = %q", got)
	}
}
