package main

import (
	"strings"
	"testing"
	"time"
)

// The table has one row per size, zone counts with separators, and says
// which rows keep within the budgets; the verdict fails any that do not.
func TestTableAndVerdict(t *testing.T) {
	ok := row{Zones: 10000, OK: true, WorkerPeakKB: 100 << 10}
	ok.fill(historyFigures{Started: time.Unix(0, 0), Ended: time.Unix(50, 0), Events: 120, Bytes: 80_000, MaxPayload: 9_000})
	big := row{Zones: 100000, OK: true, WorkerPeakKB: 600 << 10}
	big.fill(historyFigures{Started: time.Unix(0, 0), Ended: time.Unix(400, 0), Events: 130, Bytes: 90_000, MaxPayload: 300_000, Where: "ActivityTaskScheduled Provision"})
	failed := row{Zones: 1, Error: "start lab: boom"}
	res := results{Rows: []row{failed, ok, big}}
	res.Growth = growthOf(res.Rows)
	table := res.table()
	lines := strings.Split(table, "\n")
	if !strings.HasPrefix(lines[2], "| 1 | **failed** |") || !strings.HasPrefix(lines[3], "| 10,000 | succeeded | 50.0 s |") || !strings.HasPrefix(lines[4], "| 100,000 | succeeded | 400.0 s |") {
		t.Errorf("table:\n%s", table)
	}
	if !strings.HasSuffix(lines[4], "| yes | **no** |") {
		t.Errorf("the 100,000 row keeps the history budget, not the payload one:\n%s", lines[4])
	}
	if !strings.Contains(table, "10,000 → 100,000 zones: wall time per zone × 0.800, worker peak memory per zone × 0.600") {
		t.Errorf("growth:\n%s", table)
	}
	err := res.verdict()
	if err == nil || !strings.Contains(err.Error(), "1 zones: the rollout failed") || !strings.Contains(err.Error(), "100,000 zones: a payload of 300000 bytes") || strings.Contains(err.Error(), "10,000 zones") {
		t.Errorf("verdict: %v", err)
	}
	if err := (results{Rows: []row{ok}}).verdict(); err != nil {
		t.Errorf("verdict of a row within budget: %v", err)
	}
}

// The results say where the run's time went, size by size.
func TestTimeSpent(t *testing.T) {
	res := results{Seconds: 543, Rows: []row{
		{Zones: 1000, Seconds: timings{Lab: 9.6, Blue: 30.2, Rollout: 45.4, Size: 88}},
		{Zones: 100000, Seconds: timings{Generate: 3, Lab: 10, Blue: 150, Rollout: 210, Size: 400}},
	}}
	want := "The run took 9.1 minutes (the build not included): 1,000 zones 88 s (lab 10 s, blue 30 s, measured rollout 45 s); 100,000 zones 400 s (lab 10 s, blue 150 s, measured rollout 210 s)."
	if got := res.timeSpent(); got != want {
		t.Errorf("timeSpent:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(res.docsPart(), want) {
		t.Error("the docs' results part does not say where the time went")
	}
}

func TestGrowthIsPerZone(t *testing.T) {
	rows := []row{
		{Zones: 1000, OK: true, Seconds: timings{Rollout: 10}, WorkerPeakKB: 1000},
		{Zones: 10000, OK: true, Seconds: timings{Rollout: 100}, WorkerPeakKB: 20000},
		{Zones: 100000, OK: false},
	}
	g := growthOf(rows)
	if len(g) != 1 || g[0].From != 1000 || g[0].To != 10000 || g[0].Time != 1 || g[0].Memory != 2 {
		t.Errorf("growth %+v, want one pair, linear time and memory per zone doubled", g)
	}
}
