package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	jsonresults "github.com/apenella/go-ansible/v2/pkg/execute/result/json"
)

const (
	// maxMessage bounds each failure message so Results stay small enough
	// for workflow history.
	maxMessage = 500
	// maxFailures bounds how many failures a Result carries.
	maxFailures = 20
	// stderrLines is how much of ansible's stderr an error quotes.
	stderrLines = 10
)

// playbookJSON is the part of the json stdout callback's document that
// Run reports. go-ansible's AnsiblePlaybookJSONResults has no field for a
// loop's per-item results, where a failed loop keeps its real message (its
// own msg is only "One or more items failed"), and its typed fields fail
// the whole decode on an odd value; task results here are kept loose.
type playbookJSON struct {
	Plays []struct {
		Tasks []struct {
			Task struct {
				Name string `json:"name"`
			} `json:"task"`
			Hosts map[string]taskResult `json:"hosts"`
		} `json:"tasks"`
	} `json:"plays"`
	Stats map[string]jsonresults.AnsiblePlaybookJSONResultsStats `json:"stats"`
}

// taskResult is one task's result on one host, or one item of a loop.
type taskResult struct {
	Failed      bool         `json:"failed"`
	Unreachable bool         `json:"unreachable"`
	Msg         any          `json:"msg"`
	Stderr      any          `json:"stderr"`
	Stdout      any          `json:"stdout"`
	ItemLabel   any          `json:"_ansible_item_label"`
	Results     []taskResult `json:"results"`
}

// parseOutput decodes the JSON document that ansible-playbook printed on
// stdout. Anything before the document (a plugin's chatter) is skipped.
func parseOutput(stdout []byte) (Result, error) {
	start := bytes.IndexByte(stdout, '{')
	if start < 0 {
		return Result{}, errNoOutput
	}
	var doc playbookJSON
	if err := json.NewDecoder(bytes.NewReader(stdout[start:])).Decode(&doc); err != nil {
		return Result{}, fmt.Errorf("decode JSON result: %w", err)
	}
	res := Result{Hosts: make(map[string]HostStats, len(doc.Stats))}
	for host, s := range doc.Stats {
		res.Hosts[host] = HostStats{OK: s.Ok, Changed: s.Changed, Failed: s.Failures, Unreachable: s.Unreachable, Skipped: s.Skipped}
	}
	for _, play := range doc.Plays {
		for _, task := range play.Tasks {
			for _, host := range sortedKeys(task.Hosts) {
				r := task.Hosts[host]
				// Failures that were rescued or ignored do not count.
				if st := res.Hosts[host]; (!r.Failed || st.Failed == 0) && (!r.Unreachable || st.Unreachable == 0) {
					continue
				}
				if len(res.Failures) < maxFailures {
					res.Failures = append(res.Failures, Failure{Host: host, Task: task.Task.Name, Message: r.message()})
				}
			}
		}
	}
	return res, nil
}

// sshClosed is all the stderr of a command that ssh ran on a terminal
// (ssh -tt, as Ansible runs script tasks): the command's own stderr is in
// its stdout then, with the terminal's line ends.
var sshClosed = regexp.MustCompile(`^Shared connection to \S+ closed\.$`)

// message is the most useful text of a failed result: the first failed
// loop item's, and the command's stderr (or stdout, where validators such
// as named-checkzone write, and where a terminal puts stderr) after the
// module's msg.
func (r taskResult) message() string {
	for _, item := range r.Results {
		if item.Failed || item.Unreachable {
			return truncate(text(item.ItemLabel) + ": " + item.message())
		}
	}
	msg := text(r.Msg)
	detail := text(r.Stderr)
	if out := text(r.Stdout); (detail == "" || sshClosed.MatchString(detail)) && out != "" && !r.Unreachable {
		detail = strings.ReplaceAll(out, "\r\n", "\n")
	}
	if detail != "" {
		msg += ": " + detail
	}
	return truncate(msg)
}

// runError explains a failed run: per failed host its last failure (the
// one that stopped it), else the exit status, then the end of stderr.
func runError(name string, res Result, run outcome, parseErr error) error {
	last := map[string]Failure{}
	for _, f := range res.Failures {
		last[f.Host] = f
	}
	var parts []string
	for _, host := range sortedKeys(last) {
		f := last[host]
		if res.Hosts[host].Unreachable > 0 && res.Hosts[host].Failed == 0 {
			parts = append(parts, fmt.Sprintf("failed on %s: host unreachable: %s", host, f.Message))
		} else {
			parts = append(parts, fmt.Sprintf("failed on %s: task %q: %s", host, f.Task, f.Message))
		}
	}
	msg := "ansible: " + name + " " + strings.Join(parts, "; ")
	if len(parts) == 0 {
		msg = fmt.Sprintf("ansible: %s: ansible-playbook exited with status %d", name, run.exit)
		if parseErr != nil {
			msg += " (" + parseErr.Error() + ")"
		}
	}
	if s := run.stderr.lastLines(stderrLines); s != "" {
		msg += "\nansible-playbook stderr (last lines):\n" + s
	}
	return errors.New(msg)
}

// text renders a JSON value from a result as one trimmed string.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case []any:
		lines := make([]string, 0, len(v))
		for _, l := range v {
			lines = append(lines, text(l))
		}
		return strings.TrimSpace(strings.Join(lines, "\n"))
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// truncate cuts s to maxMessage bytes on a rune boundary.
func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// sortedKeys makes results and errors deterministic.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
