package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot colours, one per target in order.
var palette = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// WritePlot draws the latency distribution of rs (one workload, several
// targets) as a PNG: the fraction of operations completed within a latency,
// on a logarithmic latency axis.
func WritePlot(w io.Writer, title string, rs []Result) error {
	const width, height = 900, 540
	const left, right, top, bottom = 70, 30, 40, 60
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		if len(r.Latencies) == 0 {
			continue
		}
		lo = math.Min(lo, math.Log10(us(r.Latencies[0])+1))
		hi = math.Max(hi, math.Log10(us(r.Latencies[len(r.Latencies)-1])+1))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	xOf := func(d time.Duration) int {
		return left + int((math.Log10(us(d)+1)-lo)/(hi-lo)*pw)
	}
	yOf := func(f float64) int { return top + int((1-f)*ph) }

	grey := color.RGBA{R: 0xdd, G: 0xdd, B: 0xdd, A: 0xff}
	black := color.RGBA{A: 0xff}
	for e := lo; e <= hi; e++ {
		x := left + int((e-lo)/(hi-lo)*pw)
		vline(img, x, top, height-bottom, grey)
		label(img, x-12, height-bottom+16, fmtMicros(math.Pow(10, e)), black)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		y := yOf(f)
		hline(img, left, width-right, y, grey)
		label(img, 8, y+4, fmt.Sprintf("%.2f", f), black)
	}
	hline(img, left, width-right, height-bottom, black)
	vline(img, left, top, height-bottom, black)
	label(img, left, 24, title, black)
	label(img, width/2-60, height-18, "latency (log scale)", black)

	for i, r := range rs {
		c := palette[i%len(palette)]
		n := len(r.Latencies)
		px, py := -1, -1
		for j, d := range r.Latencies {
			// Plot at most ~2000 points per curve.
			if n > 2000 && j%(n/2000) != 0 && j != n-1 {
				continue
			}
			x, y := xOf(d), yOf(float64(j+1)/float64(n))
			if px >= 0 {
				line(img, px, py, x, y, c)
			}
			px, py = x, y
		}
		label(img, width-right-260, top+20+16*i, fmt.Sprintf("%s  p50 %s  p99 %s", r.Target,
			fmtMicros(r.P50us), fmtMicros(r.P99us)), c)
	}
	return png.Encode(w, img)
}

func fmtMicros(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gms", v/1e3)
	}
	return fmt.Sprintf("%.3gµs", v)
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
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

// line draws with Bresenham's algorithm, two pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
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
