package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
)

// glyphs is a 3x5 pixel font for the plot's labels ('#' set).
var glyphs = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."}, '/': {"..#", "..#", ".#.", "#..", "#.."},
	'-': {"...", "...", "###", "...", "..."}, ' ': {"...", "...", "...", "...", "..."},
	':': {"...", ".#.", "...", ".#.", "..."}, ',': {"...", "...", "...", ".#.", "#.."},
	'a': {"...", "##.", "..#", "###", "###"}, 'b': {"#..", "#..", "###", "#.#", "###"},
	'c': {"...", "###", "#..", "#..", "###"}, 'd': {"..#", "..#", "###", "#.#", "###"},
	'e': {"###", "#.#", "###", "#..", "###"}, 'f': {".##", "#..", "###", "#..", "#.."},
	'g': {"###", "#.#", "###", "..#", "##."}, 'h': {"#..", "#..", "###", "#.#", "#.#"},
	'i': {".#.", "...", ".#.", ".#.", ".#."}, 'j': {"..#", "...", "..#", "#.#", "###"},
	'k': {"#..", "#.#", "##.", "#.#", "#.#"}, 'l': {"##.", ".#.", ".#.", ".#.", "###"},
	'm': {"...", "###", "###", "#.#", "#.#"}, 'n': {"...", "##.", "#.#", "#.#", "#.#"},
	'o': {"...", "###", "#.#", "#.#", "###"}, 'p': {"###", "#.#", "###", "#..", "#.."},
	'q': {"###", "#.#", "###", "..#", "..#"}, 'r': {"...", "###", "#..", "#..", "#.."},
	's': {".##", "#..", "###", "..#", "##."}, 't': {"#..", "###", "#..", "#..", "###"},
	'u': {"...", "#.#", "#.#", "#.#", "###"}, 'v': {"...", "#.#", "#.#", "#.#", ".#."},
	'w': {"...", "#.#", "###", "###", "#.#"}, 'x': {"...", "#.#", ".#.", "#.#", "#.#"},
	'y': {"#.#", "#.#", "###", "..#", "###"}, 'z': {"...", "###", ".#.", "#..", "###"},
	'B': {"##.", "#.#", "##.", "#.#", "##."}, 'K': {"#.#", "#.#", "##.", "#.#", "#.#"},
}

type canvas struct{ *image.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			c.Set(x, y, col)
		}
	}
}

// text draws s with its top left at (x, y), each font pixel scale² pixels.
func (c canvas) text(x, y, scale int, s string, col color.Color) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs[' ']
		}
		for gy, row := range g {
			for gx, ch := range row {
				if ch == '#' {
					c.rect(x+gx*scale, y+gy*scale, x+(gx+1)*scale, y+(gy+1)*scale, col)
				}
			}
		}
		x += 4 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 4 * scale }

var systemColors = map[string]color.RGBA{
	sysLiaison:   {0x1f, 0x77, 0xb4, 0xff},
	sysJSAlways:  {0xff, 0x7f, 0x0e, 0xff},
	sysJSDefault: {0x99, 0x99, 0x99, 0xff},
}

// writePlot draws the latency percentiles as grouped bars on a log scale:
// one group per payload, offered rate and percentile, one bar per system.
func writePlot(path string, res *results) error {
	type group struct {
		keys rowKey
	}
	var groups []group
	for _, k := range rows(res, mLatP50, mLatP99, mLatP999) {
		groups = append(groups, group{keys: k})
	}
	if len(groups) == 0 {
		return nil
	}
	// Order: payload, rate, percentile.
	order := map[string]int{mLatP50: 0, mLatP99: 1, mLatP999: 2}
	for i := range groups {
		for j := i + 1; j < len(groups); j++ {
			a, b := groups[i].keys, groups[j].keys
			less := b.payload < a.payload || (b.payload == a.payload && (b.rate < a.rate || (b.rate == a.rate && order[b.metric] < order[a.metric])))
			if less {
				groups[i], groups[j] = groups[j], groups[i]
			}
		}
	}
	var systems []string
	for _, s := range []string{sysLiaison, sysJSAlways, sysJSDefault} {
		for _, f := range res.Figures {
			if f.System == s && f.Metric == mLatP99 {
				systems = append(systems, s)
				break
			}
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range res.Figures {
		if (f.Metric == mLatP50 || f.Metric == mLatP99 || f.Metric == mLatP999) && f.Value > 0 {
			lo, hi = math.Min(lo, f.Value), math.Max(hi, f.Value)
		}
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	const (
		bar, gap, left, right, top, bottom = 8, 10, 70, 20, 50, 90
		height                             = 420
	)
	gw := len(systems)*bar + gap
	w := left + right + len(groups)*gw
	w = max(w, 600)
	h := top + height + bottom
	c := canvas{image.NewRGBA(image.Rect(0, 0, w, h))}
	c.rect(0, 0, w, h, color.White)
	black, grid := color.RGBA{0, 0, 0, 0xff}, color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	y := func(v float64) int {
		f := (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return top + height - int(f*height)
	}
	for d := lo; d <= hi*1.001; d *= 10 {
		yy := y(d)
		c.rect(left, yy, w-right, yy+1, grid)
		l := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", d), "0"), ".")
		c.text(left-8-textWidth(l, 2), yy-5, 2, l, black)
	}
	c.text(8, top-18, 2, "ms, log scale", black)
	c.text(left, 10, 2, "publish-to-delivery latency: p50 p99 p99.9 per payload and offered rate", black)
	for gi, g := range groups {
		x0 := left + gi*gw + gap/2
		for si, s := range systems {
			v, ok := lookup(res, s, g.keys)
			if !ok || v <= 0 {
				continue
			}
			c.rect(x0+si*bar, y(v), x0+(si+1)*bar-1, top+height, systemColors[s])
		}
		pname := map[string]string{mLatP50: "50", mLatP99: "99", mLatP999: "999"}[g.keys.metric]
		c.text(x0, top+height+6, 1, pname, black)
		if g.keys.metric == mLatP50 {
			lab := fmt.Sprintf("%dB %dk/s", g.keys.payload, g.keys.rate/1000)
			if g.keys.rate < 1000 {
				lab = fmt.Sprintf("%dB %d/s", g.keys.payload, g.keys.rate)
			}
			c.text(x0, top+height+18, 1, lab, black)
			c.rect(x0-gap/2, top+height, x0-gap/2+1, top+height+30, black)
		}
	}
	c.rect(left, top+height, w-right, top+height+1, black)
	lx := left
	for _, s := range systems {
		c.rect(lx, h-30, lx+14, h-16, systemColors[s])
		c.text(lx+20, h-28, 2, s, black)
		lx += 40 + textWidth(s, 2)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
