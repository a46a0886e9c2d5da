package workflows

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// The `temporal workflow signal` and `tctl workflow signal` command lines
// in the README and docs/ send a signal some workflow of ours listens to,
// to one of our workflow IDs, with an input that signal takes: an operator
// copies them when the API is down, and a misspelt name or field would be
// ignored, or refused, just then.
func TestDocsSignalCommandsAreTheWorkflows(t *testing.T) {
	signals := []string{SignalAbort, SignalRollback, SignalApprove, SignalGlueUpdated, SignalForceDrain, SignalZoneRevision}
	prefixes := []string{WorkflowID(""), LBUpdateWorkflowID(""), LBReplaceWorkflowID("")}
	checked := 0
	for file, text := range testfiles.UserDocs(t, "..") {
		for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
			name := docSignalFlag.FindStringSubmatch(line)
			if !strings.Contains(line, "workflow signal ") || name == nil {
				continue // prose, or a flag named alone
			}
			id := docSignalID.FindStringSubmatch(line)
			if id == nil {
				t.Errorf("%s: no workflow ID: %s", file, line)
				continue
			}
			checked++
			if !slices.Contains(signals, name[1]) {
				t.Errorf("%s: signal %q, which no workflow listens to (%v): %s", file, name[1], signals, line)
			}
			if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(id[1], p) }) {
				t.Errorf("%s: workflow ID %q is none of ours (%v...): %s", file, id[1], prefixes, line)
			}
			if in := docSignalInput.FindStringSubmatch(line); in != nil {
				if _, err := decodeSignal(rawPayload(t, json.RawMessage(in[1])), signalFields[name[1]]...); err != nil {
					t.Errorf("%s: %s refuses the input: %v: %s", file, name[1], err, line)
				}
			}
		}
	}
	if checked < 5 {
		t.Errorf("checked %d signal command lines in the docs; the parsing has gone wrong", checked)
	}
}

var (
	docSignalFlag  = regexp.MustCompile(`--name (\S+)`)
	docSignalID    = regexp.MustCompile(`--workflow[-_]id (\S+)`)
	docSignalInput = regexp.MustCompile(`--input '([^']*)'`)
)
