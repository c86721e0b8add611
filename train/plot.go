package train

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/reelml/reel/internal/atomicfile"
)

// PlotRun draws RUN/plots/loss.png from RUN/metrics.jsonl: the training loss (raw and smoothed)
// and every evaluation loss against step.
func PlotRun(runDir string) error {
	rows, err := ReadMetrics(filepath.Join(runDir, MetricsFile))
	if err != nil {
		return err
	}
	var train plotter.XYs
	evals := map[string]plotter.XYs{}
	for _, r := range rows {
		step, _ := r["step"].(float64)
		switch r["split"] {
		case "train":
			if l, ok := r["loss"].(float64); ok {
				train = append(train, plotter.XY{X: step, Y: l})
			}
		case "eval":
			for k, v := range r {
				if f, ok := v.(float64); ok && strings.HasSuffix(k, "/loss") {
					evals[k] = append(evals[k], plotter.XY{X: step, Y: f})
				}
			}
		}
	}
	if len(train) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = filepath.Base(runDir) + ": loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	raw, err := plotter.NewLine(train)
	if err != nil {
		return err
	}
	raw.Color = color.RGBA{R: 160, G: 190, B: 230, A: 255}
	p.Add(raw)
	p.Legend.Add("train", raw)
	smooth, err := plotter.NewLine(ema(train, 0.95))
	if err != nil {
		return err
	}
	smooth.Color = color.RGBA{B: 200, A: 255}
	smooth.Width = vg.Points(1.5)
	p.Add(smooth)
	p.Legend.Add("train (smoothed)", smooth)
	names := make([]string, 0, len(evals))
	for k := range evals {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		l, pts, err := plotter.NewLinePoints(evals[k])
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i + 1)
		pts.Color = l.Color
		p.Add(l, pts)
		p.Legend.Add("eval "+strings.TrimSuffix(k, "/loss"), l, pts)
	}
	p.Legend.Top = true
	return save(p, filepath.Join(runDir, "plots", "loss.png"))
}

// PlotSeries draws one metric against step (used by `reel eval --all`).
func PlotSeries(path, title string, pts plotter.XYs) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = title
	l, sc, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	p.Add(l, sc)
	return save(p, path)
}

// PlotLines draws named point series (each a line with markers, x sorted as given) on one plot,
// with the y axis starting at 0 (and reaching at least 1), so rates are drawn to scale.
func PlotLines(path, title, xLabel, yLabel string, series map[string][]plotter.XY) error {
	p := plot.New()
	p.Y.Min, p.Y.Max = 0, 1
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, name := range names {
		l, sc, err := plotter.NewLinePoints(plotter.XYs(series[name]))
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(name, l, sc)
	}
	return save(p, path)
}

func save(p *plot.Plot, path string) error {
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err == nil {
		err = atomicfile.Write(path, func(w *bufio.Writer) error { _, err := wt.WriteTo(w); return err })
	}
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

func ema(xy plotter.XYs, a float64) plotter.XYs {
	out := make(plotter.XYs, len(xy))
	v := xy[0].Y
	for i, p := range xy {
		v = a*v + (1-a)*p.Y
		out[i] = plotter.XY{X: p.X, Y: v}
	}
	return out
}

// GroupSeries is one line of a grouped plot, e.g. the per-count results of one checkpoint.
type GroupSeries struct {
	Name   string
	Groups []Group
}

// PlotGroups draws one panel per metric, side by side, with one line per series against the
// groups' numeric keys (e.g. the numerosity plot: accuracy and MAE per true count, before and
// after fine-tuning). Groups whose key is not a number are skipped.
func PlotGroups(path, title, xLabel string, metrics []string, series []GroupSeries) error {
	plots := make([][]*plot.Plot, 1)
	for _, m := range metrics {
		p := plot.New()
		p.Title.Text = title + ": " + m
		p.X.Label.Text = xLabel
		p.Y.Label.Text = m
		for i, s := range series {
			var pts plotter.XYs
			for _, g := range s.Groups {
				x, err := strconv.ParseFloat(g.Key, 64)
				v, ok := g.Metrics[m]
				if err == nil && ok {
					pts = append(pts, plotter.XY{X: x, Y: v})
				}
			}
			if len(pts) == 0 {
				continue
			}
			sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(i)
			sc.Color = l.Color
			sc.Shape = plotutil.Shape(i)
			p.Add(l, sc)
			p.Legend.Add(s.Name, l, sc)
		}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		plots[0] = append(plots[0], p)
	}
	if len(plots[0]) == 0 {
		return nil
	}
	w, h := vg.Length(len(plots[0]))*6*vg.Inch, 4.5*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots[0]), PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8}
	canvases := plot.Align(plots, tiles, dc)
	for j, p := range plots[0] {
		p.Draw(canvases[0][j])
	}
	return WritePNG(path, img.Image())
}

// WritePNG writes an image to path as PNG atomically (temporary file + rename), creating the
// directory.
func WritePNG(path string, img image.Image) error {
	if err := atomicfile.Write(path, func(w *bufio.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
