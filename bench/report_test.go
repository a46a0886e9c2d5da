package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A run of some scenarios replaces their results and keeps the others.
func TestMergeResults(t *testing.T) {
	old := []Result{
		{LB: "lb-nginx", Scenario: "rollout", Protocol: "udp", Sent: 1},
		{LB: "lb-nginx", Scenario: "inplace-nginx-config", Protocol: "udp", Sent: 2},
	}
	fresh := []Result{
		{LB: "lb-nginx", Scenario: "inplace-nginx-config", Protocol: "udp", Sent: 3},
		{LB: "lb-dnsdist", Scenario: "inplace-dnsdist-config", Protocol: "udp", Sent: 4},
	}
	var got []int
	for _, r := range mergeResults(old, fresh) {
		got = append(got, r.Sent)
	}
	if want := []int{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("merged sent %v, want %v", got, want)
	}
}

func TestInPlaceTable(t *testing.T) {
	date := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	results := []Result{
		{Driver: "nginx", Scenario: "rollout", Protocol: "udp", Sent: 9},
		{Driver: "dnsdist", Scenario: "inplace-dnsdist-config", Protocol: "udp", TargetQPS: 5000, UpdateMS: []int64{300, 500}, Outcome: "succeeded", Sent: 123456, Command: "go run ./bench -x", Date: date, Host: "h"},
		{Driver: "nginx", Scenario: "inplace-nginx-config", Protocol: "udp", TargetQPS: 5000, UpdateMS: []int64{900}, Outcome: "rolled-back", Sent: 1000, Lost: 7, Error: "update 2 of 10: boom", Command: "go run ./bench -x", Date: date, Host: "h"},
	}
	table := inplaceTable(results)
	lines := strings.Split(table, "\n")
	if !strings.HasPrefix(lines[2], "| inplace-nginx-config | nginx | udp | 5000 | 1 | rolled-back | 1,000 | **7** |") {
		t.Errorf("first row, in scenario order, is\n%s", lines[2])
	}
	if !strings.Contains(lines[3], "| 123,456 | **0** |") || !strings.Contains(lines[3], "0.30 to 0.50 s") {
		t.Errorf("dnsdist row is\n%s", lines[3])
	}
	if strings.Contains(table, "| rollout |") || strings.Count(table, "`go run ./bench -x` on 2026-12-02T01:00:00Z (h)") != 1 || !strings.Contains(table, "boom") {
		t.Errorf("table:\n%s", table)
	}

	doc := []byte("# Bench\n\nbefore\n" + docsBegin + "\nold table\n" + docsEnd + "\nafter\n")
	out, err := replaceInPlaceTable(doc, table)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, "old table") || !strings.Contains(s, "before\n"+docsBegin+"\n| update |") || !strings.HasSuffix(s, docsEnd+"\nafter\n") {
		t.Errorf("rewritten doc:\n%s", s)
	}
	if _, err := replaceInPlaceTable([]byte("# no markers\n"), table); err == nil || !strings.Contains(err.Error(), "bench:inplace begin") {
		t.Errorf("a doc without markers: %v, want an error naming the marker", err)
	}
}

// results.json keeps what an earlier run measured and this one did not.
func TestWriteJSONKeepsOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	o := options{qps: 5000, protocols: []string{"udp"}, scenarios: []string{"rollout"}, timeout: 2 * time.Second}
	if _, err := writeJSON(path, []Result{{LB: "lb-nginx", Scenario: "rollout", Protocol: "udp", Sent: 1}}, o); err != nil {
		t.Fatal(err)
	}
	o.scenarios = []string{"inplace-nginx-config"}
	if _, err := writeJSON(path, []Result{{LB: "lb-nginx", Scenario: "inplace-nginx-config", Protocol: "udp", Sent: 2}}, o); err != nil {
		t.Fatal(err)
	}
	all, err := readResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Sent != 1 || all[1].Sent != 2 || !strings.Contains(all[1].Command, "-scenarios inplace-nginx-config") || !strings.Contains(all[0].Command, "-scenarios rollout") {
		t.Errorf("results.json after two runs: %+v", all)
	}
}
