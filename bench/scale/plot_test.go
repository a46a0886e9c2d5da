package main

import (
	"path/filepath"
	"testing"

	"github.com/dnsroll/dnsroll/bench/internal/canvas"
)

// The plot has a panel per cost, each with the points of its series, and
// marks a size whose rollout failed.
func TestPlot(t *testing.T) {
	var rows []row
	for i, z := range []int{1, 1000, 10000, 100000} {
		r := row{Zones: z, OK: i < 3, WorkerPeakKB: 50000 + z*2, Seconds: timings{Rollout: 40 + float64(z)/1000}}
		r.History = historyFigures{Events: 120, Bytes: 50000 + z/2, MaxPayload: 7000 + z/20}
		rows = append(rows, r)
	}
	path := filepath.Join(t.TempDir(), "scale.png")
	if err := writePlot(path, rows); err != nil {
		t.Fatal(err)
	}
	img, err := canvas.ReadPNG(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.Bounds().Dy(), headerH+3*blockH; got != want {
		t.Errorf("height %d, want %d: a panel per cost", got, want)
	}
	for i := range 3 {
		top := headerH + i*blockH + titleH
		if n := canvas.Count(img, top, top+panelH, colors[0]); n < 4*49 {
			t.Errorf("panel %d: %d pixels of its first series, want at least four 7×7 points", i, n)
		}
	}
	if n := canvas.Count(img, headerH+titleH+panelH-4, headerH+titleH+panelH+5, failRed); n < 81 {
		t.Errorf("%d red pixels on the zone axis, want the failed size marked", n)
	}
}
