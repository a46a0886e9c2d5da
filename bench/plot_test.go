package main

import (
	"image"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnsroll/dnsroll/bench/internal/canvas"
)

// The plot draws the data: each run's answered and latency panels hold a
// line in the driver's colour across most of their width, and the second
// that lost queries has its red mark. Frame, axes and markers alone (the
// plot of a run without data) hold none of those pixels.
func TestPlot(t *testing.T) {
	t0 := time.Now()
	secs := make([]second, 20)
	for i := range secs {
		secs[i] = second{Answered: 5000, LatAvgMS: 0.1}
	}
	secs[10].Lost = 7
	run := runPlot{
		Title: "udp rollout, revision r1 to r2", Start: t0,
		Timeline: timeline{Promote: t0.Add(5 * time.Second)}, Green: t0.Add(9 * time.Second),
		Series: []series{{Driver: "nginx", Seconds: secs}},
	}
	img := drawPlot(t, []runPlot{run, run})
	if got, want := img.Bounds().Dy(), headerH+2*blockH; got != want {
		t.Errorf("height %d, want %d", got, want)
	}
	nginx := driverColors["nginx"]
	for i := range 2 {
		qTop := headerH + i*blockH + titleH
		lTop := qTop + qpsH + gapH
		// The line spans seconds 1 to 18 of 20: most of the panel.
		if got, min := canvas.Count(img, qTop, qTop+qpsH, nginx), plotInnerW*3/4; got < min {
			t.Errorf("run %d: answered panel has %d nginx pixels, want at least %d: the data is not drawn", i, got, min)
		}
		if got, min := canvas.Count(img, lTop, lTop+latH, nginx), plotInnerW*3/4; got < min {
			t.Errorf("run %d: latency panel has %d nginx pixels, want at least %d: the data is not drawn", i, got, min)
		}
		if got := canvas.Count(img, qTop, qTop+qpsH, lostRed); got < 6*12 {
			t.Errorf("run %d: answered panel has %d red pixels: the lost queries are not marked", i, got)
		}
	}

	empty := run
	empty.Series = []series{{Driver: "nginx"}}
	blank := drawPlot(t, []runPlot{empty})
	if got := canvas.Count(blank, headerH, headerH+blockH, nginx) + canvas.Count(blank, headerH, headerH+blockH, lostRed); got != 0 {
		t.Errorf("a run without data has %d pixels of data colours: the check above proves nothing", got)
	}
}

// drawPlot writes runs' plot to a PNG and reads it back.
func drawPlot(t *testing.T, runs []runPlot) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plot.png")
	if err := writePlot(path, runs, 5000); err != nil {
		t.Fatal(err)
	}
	img, err := canvas.ReadPNG(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
