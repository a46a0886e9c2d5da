package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"time"
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
	white     = color.RGBA{255, 255, 255, 255}
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
	img := image.NewRGBA(image.Rect(0, 0, plotW, headerH+blockH*len(runs)))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	drawText(img, marginL, 8, fmt.Sprintf("dnsroll rollouts under %d queries/s per load balancer", qps), ink)
	x := marginL
	for _, d := range []string{"nginx", "dnsdist"} {
		fillRect(img, x, 34, x+24, 38, driverColors[d])
		drawText(img, x+30, 30, d, ink)
		x += 30 + textWidth(d) + 30
	}
	for _, m := range []struct {
		label string
		c     color.RGBA
	}{{"lost", lostRed}, {"promote", markGray}, {"serves green", markGreen}, {"rollback", markPurp}, {"serves blue", markBlue}} {
		fillRect(img, x, 28, x+3, 44, m.c)
		drawText(img, x+10, 30, m.label, ink)
		x += 10 + textWidth(m.label) + 24
	}
	for i, r := range runs {
		drawRun(img, headerH+i*blockH, r, qps)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawRun(img *image.RGBA, top int, r runPlot, qps int) {
	drawText(img, marginL, top+8, r.Title, ink)
	span := 1.0
	latMax := 0.5
	for _, s := range r.Series {
		span = max(span, s.Offset.Seconds()+float64(len(s.Seconds)))
		for _, sec := range s.Seconds {
			latMax = max(latMax, sec.LatAvgMS)
		}
	}
	latMax = niceCeil(latMax * 1.15)
	qTop := top + titleH
	lTop := qTop + qpsH + gapH
	xOf := func(sec float64) int { return marginL + int(sec/span*float64(plotInnerW)) }
	yMax := niceCeil(float64(qps) * 1.2)
	axes(img, qTop, qpsH, yMax, "answered/s")
	axes(img, lTop, latH, latMax, "latency ms")
	for t := 0.0; t <= span; t += 5 {
		x := xOf(t)
		vline(img, x, lTop+latH, lTop+latH+4, ink)
		label := fmt.Sprintf("%.0fs", t)
		drawText(img, x-textWidth(label)/2, lTop+latH+8, label, ink)
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
			vline(img, x, y, y+3, m.c)
			vline(img, x+1, y, y+3, m.c)
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
				line(img, pq, q, c)
				line(img, pl, l, c)
			}
			pq, pl = q, l
			if lost := sec.Lost + sec.Failed; lost > 0 {
				fillRect(img, x-3, qTop+qpsH-12, x+3, qTop+qpsH, lostRed)
				label := fmt.Sprintf("%s %d lost", s.Driver, lost)
				lx := x + 6
				if lx+textWidth(label) > plotW-marginR {
					lx = x - 6 - textWidth(label)
				}
				drawText(img, lx, qTop+qpsH-20, label, lostRed)
			}
		}
	}
}

// axes draws a panel's frame, grid and y labels from 0 to yMax.
func axes(img *image.RGBA, top, h int, yMax float64, label string) {
	for i := 0; i <= 4; i++ {
		y := top + h - i*h/4
		hline(img, marginL, plotW-marginR, y, grid)
		v := yMax * float64(i) / 4
		text := fmt.Sprintf("%g", math.Round(v*100)/100)
		drawText(img, marginL-8-textWidth(text), y-7, text, ink)
	}
	vline(img, marginL, top, top+h, ink)
	hline(img, marginL, plotW-marginR, top+h, ink)
	drawText(img, plotW-marginR-textWidth(label), top+2, label, markGray)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{c}, image.Point{}, draw.Src)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	for y := y0; y <= y1; y++ {
		img.Set(x, y, c)
	}
}

// line draws a 2-pixel line from a to b (Bresenham).
func line(img *image.RGBA, a, b image.Point, c color.Color) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := sign(b.X-a.X), sign(b.Y-a.Y)
	e := dx + dy
	for {
		img.Set(a.X, a.Y, c)
		img.Set(a.X, a.Y+1, c)
		if a == b {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			a.X += sx
		}
		if e2 <= dx {
			e += dx
			a.Y += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
