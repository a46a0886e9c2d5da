package main

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"github.com/dnsroll/dnsroll/bench/internal/canvas"
)

// series is one load balancer's per-second load in a run; Offset is when
// its first second began, relative to the run's start.
type series struct {
	Driver  string
	Offset  time.Duration
	Seconds []second
}

// runPlot is everything one run's panels show.
type runPlot struct {
	Title    string
	Start    time.Time
	Timeline timeline
	Series   []series
	// Green and Blue are when every measured load balancer served green
	// for good, and (after a rollback) blue again; zero if never.
	Green, Blue time.Time
}

var (
	ink       = color.RGBA{40, 40, 40, 255}
	grid      = color.RGBA{225, 225, 225, 255}
	lostRed   = color.RGBA{220, 30, 30, 255}
	markGray  = color.RGBA{120, 120, 120, 255}
	markGreen = color.RGBA{30, 150, 60, 255}
	markBlue  = color.RGBA{40, 90, 200, 255}
	markPurp  = color.RGBA{150, 60, 170, 255}
	// driverColors tell the drivers apart in every panel.
	driverColors = map[string]color.RGBA{"nginx": {230, 120, 20, 255}, "dnsdist": {20, 110, 200, 255}}
)

// Layout in pixels.
const (
	plotW      = 1100
	marginL    = 90
	marginR    = 20
	titleH     = 34
	qpsH       = 150
	gapH       = 14
	latH       = 110
	axisH      = 34
	blockH     = titleH + qpsH + gapH + latH + axisH
	headerH    = 60
	plotInnerW = plotW - marginL - marginR
)

// writePlot draws, for every run, queries answered per second and the mean
// latency per second of each driver, lost queries in red, and the switch
// marked: the promote decision, when the probes saw green for good, and
// for rollbacks the signal and when they saw blue again.
func writePlot(path string, runs []runPlot, qps int) error {
	img := canvas.New(plotW, headerH+blockH*len(runs))
	canvas.Text(img, marginL, 8, fmt.Sprintf("dnsroll rollouts under %d queries/s per load balancer", qps), ink)
	x := marginL
	for _, d := range []string{"nginx", "dnsdist"} {
		canvas.FillRect(img, x, 34, x+24, 38, driverColors[d])
		canvas.Text(img, x+30, 30, d, ink)
		x += 30 + canvas.TextWidth(d) + 30
	}
	for _, m := range []struct {
		label string
		c     color.RGBA
	}{{"lost", lostRed}, {"promote", markGray}, {"serves green", markGreen}, {"rollback", markPurp}, {"serves blue", markBlue}} {
		canvas.FillRect(img, x, 28, x+3, 44, m.c)
		canvas.Text(img, x+10, 30, m.label, ink)
		x += 10 + canvas.TextWidth(m.label) + 24
	}
	for i, r := range runs {
		drawRun(img, headerH+i*blockH, r, qps)
	}
	return canvas.SavePNG(path, img)
}

func drawRun(img *image.RGBA, top int, r runPlot, qps int) {
	canvas.Text(img, marginL, top+8, r.Title, ink)
	span := 1.0
	latMax := 0.5
	for _, s := range r.Series {
		span = max(span, s.Offset.Seconds()+float64(len(s.Seconds)))
		for _, sec := range s.Seconds {
			latMax = max(latMax, sec.LatAvgMS)
		}
	}
	latMax = canvas.NiceCeil(latMax * 1.15)
	qTop := top + titleH
	lTop := qTop + qpsH + gapH
	xOf := func(sec float64) int { return marginL + int(sec/span*float64(plotInnerW)) }
	yMax := canvas.NiceCeil(float64(qps) * 1.2)
	axes(img, qTop, qpsH, yMax, "answered/s")
	axes(img, lTop, latH, latMax, "latency ms")
	for t := 0.0; t <= span; t += 5 {
		x := xOf(t)
		canvas.VLine(img, x, lTop+latH, lTop+latH+4, ink)
		label := fmt.Sprintf("%.0fs", t)
		canvas.Text(img, x-canvas.TextWidth(label)/2, lTop+latH+8, label, ink)
	}
	// Markers first, so the data draws over them.
	for _, m := range []struct {
		at time.Time
		c  color.RGBA
	}{{r.Timeline.Promote, markGray}, {r.Green, markGreen}, {r.Timeline.Signal, markPurp}, {r.Blue, markBlue}} {
		if m.at.IsZero() {
			continue
		}
		x := xOf(m.at.Sub(r.Start).Seconds())
		for y := qTop; y < lTop+latH; y += 6 {
			canvas.VLine(img, x, y, y+3, m.c)
			canvas.VLine(img, x+1, y, y+3, m.c)
		}
	}
	for _, s := range r.Series {
		c := driverColors[s.Driver]
		var pq, pl image.Point
		for i, sec := range s.Seconds {
			// Partial first and last seconds would dip for no reason.
			if i == 0 || i == len(s.Seconds)-1 {
				continue
			}
			x := xOf(s.Offset.Seconds() + float64(i) + 0.5)
			q := image.Pt(x, qTop+qpsH-int(float64(sec.Answered)/yMax*qpsH))
			l := image.Pt(x, lTop+latH-int(math.Min(sec.LatAvgMS/latMax, 1)*latH))
			if pq != (image.Point{}) {
				canvas.Line(img, pq, q, c)
				canvas.Line(img, pl, l, c)
			}
			pq, pl = q, l
			if lost := sec.Lost + sec.Failed; lost > 0 {
				canvas.FillRect(img, x-3, qTop+qpsH-12, x+3, qTop+qpsH, lostRed)
				label := fmt.Sprintf("%s %d lost", s.Driver, lost)
				lx := x + 6
				if lx+canvas.TextWidth(label) > plotW-marginR {
					lx = x - 6 - canvas.TextWidth(label)
				}
				canvas.Text(img, lx, qTop+qpsH-20, label, lostRed)
			}
		}
	}
}

// axes draws a panel's frame, grid and y labels from 0 to yMax.
func axes(img *image.RGBA, top, h int, yMax float64, label string) {
	for i := 0; i <= 4; i++ {
		y := top + h - i*h/4
		canvas.HLine(img, marginL, plotW-marginR, y, grid)
		v := yMax * float64(i) / 4
		text := fmt.Sprintf("%g", math.Round(v*100)/100)
		canvas.Text(img, marginL-8-canvas.TextWidth(text), y-7, text, ink)
	}
	canvas.VLine(img, marginL, top, top+h, ink)
	canvas.HLine(img, marginL, plotW-marginR, top+h, ink)
	canvas.Text(img, plotW-marginR-canvas.TextWidth(label), top+2, label, markGray)
}
