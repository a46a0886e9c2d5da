// Package benchdoc puts a benchmark's figures into its markdown page: the
// benchmark rewrites a generated part of the page, between two marker
// lines, so that the page's figures come from a run.
package benchdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Replace puts content between the line begin and the line end of text,
// instead of what was there.
func Replace(text []byte, begin, end, content string) ([]byte, error) {
	b, e := bytes.Index(text, []byte(begin)), bytes.Index(text, []byte(end))
	if b < 0 || e < b {
		return nil, fmt.Errorf("no generated part: want a line %q and, after it, a line %q where it goes", begin, end)
	}
	var out bytes.Buffer
	out.Write(text[:b+len(begin)])
	out.WriteString("\n" + content)
	out.Write(text[e:])
	return out.Bytes(), nil
}

// Thousands writes n with comma separators, as the docs' tables do:
// 100000 is "100,000".
func Thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages, or
// "unknown": the conditions a page states beside its figures, since other
// work on the machine skews them.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// WriteJSON writes v to path, making its directory, as the results files
// beside the pages are kept: indented, ending in a newline.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
