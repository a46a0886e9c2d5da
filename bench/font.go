package main

import (
	"image"
	"image/color"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// face is the plot's one typeface: a fixed 7×13 bitmap that needs no font
// file, so the benchmark draws the same PNG on every machine.
var face = basicfont.Face7x13

// textWidth is the width in pixels of s drawn with drawText.
func textWidth(s string) int { return font.MeasureString(face, s).Ceil() }

// drawText draws s with its top-left corner at (x, y). Characters the face
// lacks are drawn as its replacement box.
func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{
		Dst:  img,
		Src:  image.NewUniform(c),
		Face: face,
		Dot:  fixed.P(x, y+face.Metrics().Ascent.Ceil()),
	}
	d.DrawString(s)
}
