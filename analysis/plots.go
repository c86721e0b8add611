package analysis

import (
	"fmt"
	"image/color"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/reelml/reel/train"
)

// grid adapts a [row][col] matrix to plotter.GridXYZ.
type grid struct {
	z        [][]float64
	min, max float64
}

func (g grid) Dims() (c, r int)   { return len(g.z[0]), len(g.z) }
func (g grid) Z(c, r int) float64 { return g.z[r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Min() float64       { return g.min }
func (g grid) Max() float64       { return g.max }

type labelTicks []string

func (t labelTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, l := range t {
		out = append(out, plot.Tick{Value: float64(i), Label: l})
	}
	return out
}

// PlotPatching draws the restoration heat map: sites (rows, input at the bottom) × image-token
// positions (columns, plus "all"), on a diverging scale centred at 0, with a colour bar.
func PlotPatching(path string, r *PatchingResult) error {
	lim := 1.0
	for _, row := range r.Restoration {
		for _, v := range row {
			lim = max(lim, v, -v)
		}
	}
	cm := moreland.SmoothBlueRed()
	cm.SetMin(-lim)
	cm.SetMax(lim)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("activation patching: restoration of logit(n) − logit(n−1), %d pairs", r.Pairs)
	p.X.Label.Text = "image token (row-major patch grid)"
	hm := plotter.NewHeatMap(grid{z: r.Restoration, min: -lim, max: lim}, cm.Palette(255))
	p.Add(hm)
	cols := make(labelTicks, len(r.Restoration[0]))
	for i := range cols {
		cols[i] = strconv.Itoa(i)
	}
	cols[len(cols)-1] = "all"
	p.X.Tick.Marker = cols
	p.Y.Tick.Marker = labelTicks(r.Sites)
	p.X.Min, p.X.Max = -0.5, float64(len(cols))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(r.Sites))-0.5

	bar := plot.New()
	bar.Title.Text = "restoration"
	bar.HideX()
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.Y.Min, bar.Y.Max = -lim, lim

	w, h := 11*vg.Inch, 4.5*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	left := draw.Crop(dc, 0, -1.3*vg.Inch, 0, 0)
	right := draw.Crop(dc, w-1.2*vg.Inch, 0, 0, 0)
	p.Draw(left)
	bar.Draw(right)
	return train.WritePNG(path, img.Image())
}

// PlotHeads draws the head scores (sorted) and the ablation accuracies side by side.
func PlotHeads(path string, r *HeadsResult) error {
	scores := plot.New()
	scores.Title.Text = "direct logit attribution to the correct count"
	scores.Y.Label.Text = "mean score"
	vals := make(plotter.Values, len(r.Scores))
	names := make([]string, len(r.Scores))
	for i, s := range r.Scores {
		vals[i], names[i] = s.Score, s.Name
	}
	b1, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return err
	}
	b1.Color = color.RGBA{R: 60, G: 110, B: 200, A: 255}
	scores.Add(b1)
	scores.NominalX(names...)

	abl := plot.New()
	abl.Title.Text = fmt.Sprintf("counting accuracy with %d heads zero-ablated", len(r.TopK.Heads))
	abl.Y.Label.Text = "accuracy"
	acc := plotter.Values{r.Accuracy, r.TopK.Accuracy, r.RandomMean}
	b2, err := plotter.NewBarChart(acc, vg.Points(30))
	if err != nil {
		return err
	}
	b2.Color = color.RGBA{R: 200, G: 90, B: 50, A: 255}
	abl.Add(b2)
	abl.NominalX("none", "top-k", fmt.Sprintf("random (mean of %d)", len(r.Random)))
	abl.Y.Min = 0

	img := vgimg.New(12*vg.Inch, 4.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 3, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8}
	c := plot.Align([][]*plot.Plot{{scores, abl}}, tiles, dc)
	scores.Draw(c[0][0])
	abl.Draw(c[0][1])
	return train.WritePNG(path, img.Image())
}
