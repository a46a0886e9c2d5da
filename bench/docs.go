package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// The in-place table of docs/benchmarks.md is rendered from results.json
// between these markers (-docs), so that its figures come from a run.
const (
	docsBegin = "<!-- bench:inplace begin: written by `go run ./bench -docs`, do not edit -->"
	docsEnd   = "<!-- bench:inplace end -->"
)

// renderDocs rewrites the in-place table in the markdown file at path.
func renderDocs(path string, results []Result) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceInPlaceTable(text, inplaceTable(results))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// replaceInPlaceTable puts table between the markers of text.
func replaceInPlaceTable(text []byte, table string) ([]byte, error) {
	begin, end := bytes.Index(text, []byte(docsBegin)), bytes.Index(text, []byte(docsEnd))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("no in-place table: want a line %q and, after it, a line %q where it goes", docsBegin, docsEnd)
	}
	var b bytes.Buffer
	b.Write(text[:begin+len(docsBegin)])
	b.WriteString("\n" + table)
	b.Write(text[end:])
	return b.Bytes(), nil
}

// inplaceTable is a markdown table of results' in-place scenarios, in
// scenario order, and the commands and dates they were measured with.
func inplaceTable(results []Result) string {
	var rows []Result
	for _, s := range inplaceScenarios {
		for _, r := range results {
			if r.Scenario == s.name {
				rows = append(rows, r)
			}
		}
	}
	if len(rows) == 0 {
		return "No in-place results in results.json yet: run `make bench-inplace`.\n"
	}
	var b strings.Builder
	b.WriteString("| update | driver | protocol | queries/s | updates | outcome | sent | lost | failed | worst second | each update | load average |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | ---: |\n")
	var runs []string
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s | **%s** | %s | %s | %s | %.2f |\n",
			r.Scenario, r.Driver, r.Protocol, r.TargetQPS, len(r.UpdateMS), r.Outcome, thousands(r.Sent), thousands(r.Lost), thousands(r.Failed),
			fmt.Sprintf("%d lost, max %.1f ms", r.Worst.Lost+r.Worst.Failed, r.Worst.LatMaxMS), spread(r.UpdateMS), r.LoadAvg)
		run := fmt.Sprintf("`%s` on %s (%s)", r.Command, r.Date.UTC().Format(time.RFC3339), r.Host)
		if !slices.Contains(runs, run) {
			runs = append(runs, run)
		}
	}
	b.WriteString("\nMeasured by " + strings.Join(runs, "; ") + ".\n")
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(&b, "\n%s over %s did not go as planned: %s\n", r.Scenario, r.Protocol, strings.Join(strings.Fields(r.Error), " "))
		}
	}
	return b.String()
}

// thousands writes n with comma separators, as the docs' tables do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
