package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
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
	return benchdoc.Replace(text, docsBegin, docsEnd, table)
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
			r.Scenario, r.Driver, r.Protocol, r.TargetQPS, len(r.UpdateMS), r.Outcome, benchdoc.Thousands(r.Sent), benchdoc.Thousands(r.Lost), benchdoc.Thousands(r.Failed),
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
