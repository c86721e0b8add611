package lerobot

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/reelml/reel/policy"
)

// CameraStats computes a camera's statistics from the data as LeRobot computes image
// statistics (compute_stats.py): per episode, the sampled frames (imageSampleIndices), each
// subsampled to about 150 pixels a side, per channel in [0, 1]; then aggregated over episodes.
// Every episode's video is decoded, so this is slow for large datasets.
func (d *Dataset) CameraStats(camera string) (Stats, error) {
	c := d.camIndex(camera)
	if c < 0 {
		return Stats{}, fmt.Errorf("lerobot dataset %s: no camera %q (cameras: %q)", d.dir, camera, d.Cameras())
	}
	cam := d.cams[c]
	var per []Stats
	for i := range d.episodes {
		v, err := d.Vectors(i)
		if err != nil {
			return Stats{}, err
		}
		idx := imageSampleIndices(v.Len())
		acc := &imageStatsAccumulator{}
		add := func(_ int, rgb []uint8, w, h int) error {
			acc.addFrame(rgb, w, h)
			return nil
		}
		if cam.video {
			ref := d.episodes[i].videos[c]
			stamps := make([]float64, len(idx))
			for k, t := range idx {
				stamps[k] = ref.from + v.Timestamp[t]
			}
			if _, _, err := decodeVideoAt(d.path(ref.file), stamps, d.info.FPS, videoFit{}, add); err != nil {
				return Stats{}, err
			}
		} else {
			sampled := map[int]bool{}
			for _, t := range idx {
				sampled[t] = true
			}
			err := d.readImageFrames(i, cam, v.Len(), func(t int, rgb []uint8, w, h int) error {
				if sampled[t] {
					acc.addFrame(rgb, w, h)
				}
				return nil
			})
			if err != nil {
				return Stats{}, err
			}
		}
		per = append(per, acc.stats())
	}
	return AggregateStats(per)
}

// StatsReportFeature is one feature of a StatsReport.
type StatsReportFeature struct {
	Key    string   `json:"key"`
	Kind   string   `json:"kind"` // "state", "action" or "camera"
	Names  []string `json:"names,omitempty"`
	Source string   `json:"source"` // where the statistics come from
	Stats  Stats    `json:"stats"`
	// Normalization gives, per mode (policy.NormMeanStd, NormMinMax, NormQuantiles), the two
	// statistics it uses, by name (absent when the dataset lacks them).
	Normalization map[string]map[string][]float64 `json:"normalization"`
}

// StatsReport describes the statistics a policy trained on a dataset would normalise with.
type StatsReport struct {
	Dir      string               `json:"dir"`
	Version  string               `json:"codebase_version"`
	Episodes int                  `json:"episodes"`
	Frames   int                  `json:"frames"`
	Features []StatsReportFeature `json:"features"`
}

// StatsReport returns the state, action and camera statistics (Stats) and what each
// normalisation mode uses of them. Cameras without stored statistics are computed from the
// data (CameraStats) when images is set, and left out otherwise.
func (d *Dataset) StatsReport(images bool) (StatsReport, error) {
	all, err := d.Stats()
	if err != nil {
		return StatsReport{}, err
	}
	rep := StatsReport{Dir: d.dir, Version: d.Version(), Episodes: d.NumEpisodes(), Frames: d.NumFrames()}
	stored := func(key string) string {
		s, ok := d.stats[key]
		rel, _ := filepath.Rel(d.dir, d.statsFile)
		switch {
		case !ok:
			return "computed from the data"
		case !s.HasQuantiles() && (key == d.stateKey || key == d.actionKey):
			return rel + " (quantiles computed from the data)"
		case !s.HasQuantiles():
			return rel + " (no quantiles)"
		}
		return rel
	}
	f := d.Features()
	add := func(key, kind string, names []string, s Stats, source string) {
		r := StatsReportFeature{Key: key, Kind: kind, Names: names, Source: source, Stats: s, Normalization: map[string]map[string][]float64{}}
		for _, m := range []struct{ mode, a, b string }{
			{policy.NormMeanStd, "mean", "std"}, {policy.NormMinMax, "min", "max"}, {policy.NormQuantiles, "q01", "q99"}} {
			if a, b, err := s.Norm(m.mode); err == nil {
				r.Normalization[m.mode] = map[string][]float64{m.a: a, m.b: b}
			}
		}
		rep.Features = append(rep.Features, r)
	}
	if d.stateDim > 0 {
		add(d.stateKey, "state", f.StateNames, all[d.stateKey], stored(d.stateKey))
	}
	add(d.actionKey, "action", f.ActionNames, all[d.actionKey], stored(d.actionKey))
	for _, c := range d.cams {
		s, ok := all[c.key]
		source := stored(c.key)
		if !ok {
			if !images {
				continue
			}
			if s, err = d.CameraStats(c.name); err != nil {
				return StatsReport{}, err
			}
			source = "computed from the data (sampled frames)"
		}
		add(c.key, "camera", []string{"r", "g", "b"}, s, source)
	}
	return rep, nil
}

// WriteText prints the report as 'reel data stats' does: the dataset, what each normalisation
// mode uses, then one table per feature (a row per dimension).
func (r StatsReport) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "%s: LeRobot %s, %d episodes, %d frames\n", r.Dir, r.Version, r.Episodes, r.Frames)
	fmt.Fprintf(out, "normalisation: %s uses MEAN and STD, %s uses MIN and MAX, %s uses Q01 and Q99\n",
		policy.NormMeanStd, policy.NormMinMax, policy.NormQuantiles)
	for _, f := range r.Features {
		fmt.Fprintf(out, "\n%s (%s, %d values, count %d; %s)\n", f.Key, f.Kind, f.Stats.Dim(), f.Stats.Count, f.Source)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "DIM\tNAME\tMEAN\tSTD\tMIN\tMAX\tQ01\tQ10\tQ50\tQ90\tQ99\t")
		for j := range f.Stats.Dim() {
			name := "-"
			if j < len(f.Names) {
				name = f.Names[j]
			}
			cell := func(v []float64) string {
				if j >= len(v) {
					return "-"
				}
				return strconv.FormatFloat(v[j], 'g', 5, 64)
			}
			s := f.Stats
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", j, name, cell(s.Mean), cell(s.Std), cell(s.Min), cell(s.Max),
				cell(s.Q01), cell(s.Q10), cell(s.Q50), cell(s.Q90), cell(s.Q99))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
