package main

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/dnsroll/dnsroll/bench/internal/benchdoc"
	"github.com/dnsroll/dnsroll/bench/internal/canvas"
)

var (
	ink     = color.RGBA{40, 40, 40, 255}
	grid    = color.RGBA{225, 225, 225, 255}
	gray    = color.RGBA{120, 120, 120, 255}
	budget  = color.RGBA{220, 30, 30, 255}
	colors  = []color.RGBA{{20, 110, 200, 255}, {230, 120, 20, 255}}
	failRed = color.RGBA{220, 30, 30, 255}
)

// Layout in pixels.
const (
	plotW   = 900
	marginL = 80
	marginR = 40
	headerH = 40
	titleH  = 30
	panelH  = 200
	axisH   = 36
	blockH  = titleH + panelH + axisH
	innerW  = plotW - marginL - marginR
)

// panel is one cost against zone count: one or two series, and budget
// lines.
type panel struct {
	title   string
	unit    string
	series  []plotSeries
	budgets []float64
}

type plotSeries struct {
	label string
	value func(row) float64
}

// writePlot draws each cost against the zone count, both axes
// logarithmic, so that linear growth is a line of slope 1 (the dotted
// guide through the largest size). Failed sizes are marked in red on the
// zone axis.
func writePlot(path string, rows []row) error {
	panels := []panel{
		{title: "rollout wall time", unit: "s", series: []plotSeries{{"wall time", func(r row) float64 { return r.Seconds.Rollout }}}},
		{title: "history size and largest payload (budgets: 5 MB, 256 KB)", unit: "bytes", budgets: []float64{historyBudget, payloadBudget},
			series: []plotSeries{{"history", func(r row) float64 { return float64(r.History.Bytes) }}, {"largest payload", func(r row) float64 { return float64(r.History.MaxPayload) }}}},
		{title: "worker peak memory (VmHWM)", unit: "MiB", series: []plotSeries{{"worker", func(r row) float64 { return float64(r.WorkerPeakKB) / 1024 }}}},
	}
	img := canvas.New(plotW, headerH+blockH*len(panels))
	canvas.Text(img, marginL, 6, "dnsroll: the cost of one rollout against the fleet's zone count (log-log)", ink)
	canvas.Text(img, marginL, 22, "dotted: linear growth through the largest size; red square on the zone axis: that size failed", gray)
	maxZones := 10
	for _, r := range rows {
		maxZones = max(maxZones, r.Zones)
	}
	xDecades := math.Ceil(math.Log10(float64(maxZones)))
	xOf := func(z int) int { return marginL + int(math.Log10(float64(z))/xDecades*innerW) }
	for i, p := range panels {
		drawPanel(img, headerH+i*blockH, p, rows, xOf, int(xDecades))
	}
	return canvas.SavePNG(path, img)
}

func drawPanel(img *image.RGBA, top int, p panel, rows []row, xOf func(int) int, decades int) {
	canvas.Text(img, marginL, top+8, p.title, ink)
	// The y range: whole decades around every value and budget.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, r := range rows {
			if v := s.value(r); v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	for _, b := range p.budgets {
		lo, hi = math.Min(lo, b), math.Max(hi, b)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi == yLo {
		yHi++
	}
	pTop := top + titleH
	yOf := func(v float64) int { return pTop + panelH - int((math.Log10(v)-yLo)/(yHi-yLo)*panelH) }
	for d := yLo; d <= yHi; d++ {
		y := yOf(math.Pow(10, d))
		canvas.HLine(img, marginL, plotW-marginR, y, grid)
		label := fmt.Sprintf("%g", math.Pow(10, d))
		if d >= 0 {
			label = benchdoc.Thousands(int(math.Pow(10, d)))
		}
		canvas.Text(img, marginL-8-canvas.TextWidth(label), y-7, label, ink)
	}
	for d := 0; d <= decades; d++ {
		z := int(math.Pow(10, float64(d)))
		x := xOf(z)
		canvas.VLine(img, x, pTop, pTop+panelH, grid)
		label := benchdoc.Thousands(z)
		canvas.Text(img, x-canvas.TextWidth(label)/2, pTop+panelH+8, label, ink)
	}
	canvas.VLine(img, marginL, pTop, pTop+panelH, ink)
	canvas.HLine(img, marginL, plotW-marginR, pTop+panelH, ink)
	canvas.Text(img, plotW-marginR-canvas.TextWidth(p.unit), pTop+2, p.unit, gray)
	canvas.Text(img, plotW-marginR-canvas.TextWidth("zones"), pTop+panelH+22, "zones", gray)
	for _, b := range p.budgets {
		for x := marginL; x < plotW-marginR; x += 8 {
			canvas.HLine(img, x, x+4, yOf(b), budget)
		}
	}
	legendX := marginL + canvas.TextWidth(p.title) + 30
	for i, s := range p.series {
		c := colors[i%len(colors)]
		canvas.FillRect(img, legendX, top+14, legendX+20, top+17, c)
		canvas.Text(img, legendX+26, top+8, s.label, ink)
		legendX += 26 + canvas.TextWidth(s.label) + 24
		var prev image.Point
		var last row
		for _, r := range rows {
			v := s.value(r)
			if v <= 0 {
				continue
			}
			pt := image.Pt(xOf(r.Zones), yOf(v))
			canvas.FillRect(img, pt.X-3, pt.Y-3, pt.X+4, pt.Y+4, c)
			if prev != (image.Point{}) {
				canvas.Line(img, prev, pt, c)
			}
			prev, last = pt, r
		}
		// Linear growth through the largest size: slope 1 on log-log.
		if prev != (image.Point{}) {
			v := s.value(last)
			for z := 1.0; z < float64(last.Zones); z *= 1.15 {
				if g := v * z / float64(last.Zones); g >= math.Pow(10, yLo) {
					img.Set(xOf(int(z)), yOf(g), gray)
				}
			}
		}
	}
	for _, r := range rows {
		if !r.OK {
			x := xOf(r.Zones)
			canvas.FillRect(img, x-4, pTop+panelH-4, x+5, pTop+panelH+5, failRed)
		}
	}
}
