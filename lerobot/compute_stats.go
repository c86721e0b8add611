package lerobot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/reelml/reel/policy"
)

// Statistics of LeRobot features, computed and aggregated as LeRobot does
// (huggingface/lerobot src/lerobot/datasets/compute_stats.py): per episode, min, max, mean,
// population std, count and the quantiles q01, q10, q50, q90, q99 of every dimension, the
// quantiles read off a 5000-bin histogram; per dataset, the episodes' statistics aggregated
// (count-weighted mean, pooled variance, min of mins, max of maxes, and for the quantiles the
// envelope: the smallest q01…q50 and the largest q90, q99 of the episodes).

// StatQuantiles are the quantile statistics LeRobot computes, in the order of their keys.
var StatQuantiles = []string{"q01", "q10", "q50", "q90", "q99"}

var statQuantileValues = []float64{0.01, 0.10, 0.50, 0.90, 0.99}

// statBins is the number of histogram bins quantiles are estimated from.
const statBins = 5000

// Stats are the statistics of one feature, per dimension: a vector feature of shape [d]
// has d values per statistic, a camera 3 (one per RGB channel, pixel values in [0, 1]). The
// quantiles are nil when the dataset does not record them (LeRobot v2.1 and older).
type Stats struct {
	Min, Max, Mean, Std []float64
	Count               int64 // frames (for cameras: sampled frames) the statistics summarise
	Q01, Q10, Q50       []float64
	Q90, Q99            []float64
	// Shape is the shape of each statistic in stats.json: [d] for vectors, [3, 1, 1] for
	// cameras (nil means [len(Mean)]).
	Shape []int
}

// Dim is the number of values of each statistic.
func (s Stats) Dim() int { return len(s.Mean) }

// HasQuantiles reports whether all five quantiles are present.
func (s Stats) HasQuantiles() bool {
	for _, q := range s.quantiles() {
		if *q == nil {
			return false
		}
	}
	return true
}

func (s *Stats) quantiles() []*[]float64 {
	return []*[]float64{&s.Q01, &s.Q10, &s.Q50, &s.Q90, &s.Q99}
}

// Quantile returns the statistic named "q01", "q10", "q50", "q90" or "q99" (nil if absent).
func (s Stats) Quantile(name string) []float64 {
	if i := slices.Index(StatQuantiles, name); i >= 0 {
		return *s.quantiles()[i]
	}
	return nil
}

// Norm returns the pair of statistics a normalisation mode uses: mean and std for
// policy.NormMeanStd, min and max for policy.NormMinMax, q01 and q99 for policy.NormQuantiles.
func (s Stats) Norm(mode string) (a, b []float64, err error) {
	switch mode {
	case policy.NormMeanStd:
		return s.Mean, s.Std, nil
	case policy.NormMinMax:
		return s.Min, s.Max, nil
	case policy.NormQuantiles:
		if s.Q01 == nil || s.Q99 == nil {
			return nil, nil, errors.New("no q01/q99 statistics")
		}
		return s.Q01, s.Q99, nil
	}
	return nil, nil, fmt.Errorf("normalization %q is not one of %s, %s, %s", mode, policy.NormMeanStd, policy.NormMinMax, policy.NormQuantiles)
}

// check reports a statistic of the wrong length or a non-finite value.
func (s Stats) check(dim int) error {
	named := []struct {
		name string
		v    []float64
	}{{"mean", s.Mean}, {"std", s.Std}, {"min", s.Min}, {"max", s.Max}}
	for i, q := range s.quantiles() {
		if *q != nil {
			named = append(named, struct {
				name string
				v    []float64
			}{StatQuantiles[i], *q})
		}
	}
	for _, n := range named {
		if len(n.v) != dim {
			return fmt.Errorf("%s has %d values, want %d", n.name, len(n.v), dim)
		}
		for j, x := range n.v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%s[%d] is %v", n.name, j, x)
			}
		}
	}
	if s.Count < 0 {
		return fmt.Errorf("count %d is negative", s.Count)
	}
	return nil
}

func (s Stats) clone() Stats {
	out := s
	for _, p := range []*[]float64{&out.Min, &out.Max, &out.Mean, &out.Std, &out.Q01, &out.Q10, &out.Q50, &out.Q90, &out.Q99} {
		*p = slices.Clone(*p)
	}
	out.Shape = slices.Clone(s.Shape)
	return out
}

// MarshalJSON writes the statistics as LeRobot's stats.json does: min, max, mean, std, count
// ([n]) and the quantiles present, each nested to Shape ([[[r]], [[g]], [[b]]] for cameras).
func (s Stats) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	put := func(key string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:", key)
		b.Write(raw)
		return nil
	}
	for _, f := range []struct {
		k string
		v []float64
	}{{"min", s.Min}, {"max", s.Max}, {"mean", s.Mean}, {"std", s.Std}} {
		if err := put(f.k, nestStat(f.v, s.Shape)); err != nil {
			return nil, err
		}
	}
	if err := put("count", []int64{s.Count}); err != nil {
		return nil, err
	}
	for i, q := range s.quantiles() {
		if *q != nil {
			if err := put(StatQuantiles[i], nestStat(*q, s.Shape)); err != nil {
				return nil, err
			}
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// nestStat shapes v as a nested JSON array of shape (only the [c, 1, 1] image shape nests).
func nestStat(v []float64, shape []int) any {
	if len(shape) == 3 && shape[1] == 1 && shape[2] == 1 && shape[0] == len(v) {
		out := make([][][]float64, len(v))
		for i, x := range v {
			out[i] = [][]float64{{x}}
		}
		return out
	}
	if v == nil {
		return []float64{}
	}
	return v
}

// UnmarshalJSON reads one feature's entry of stats.json (or of a line of episodes_stats.jsonl):
// each statistic a number or a nested array of numbers, flattened; count a number or [n].
func (s *Stats) UnmarshalJSON(raw []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	*s = Stats{}
	targets := map[string]*[]float64{"min": &s.Min, "max": &s.Max, "mean": &s.Mean, "std": &s.Std}
	for i, q := range s.quantiles() {
		targets[StatQuantiles[i]] = q
	}
	for _, k := range []string{"min", "max", "mean", "std"} {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("missing %q", k)
		}
	}
	for k, v := range m {
		if k == "count" {
			vals, _, err := flattenJSONNumbers(v)
			if err != nil || len(vals) != 1 || vals[0] < 0 || vals[0] != math.Trunc(vals[0]) {
				return fmt.Errorf("count: want one non-negative integer")
			}
			s.Count = int64(vals[0])
			continue
		}
		t, ok := targets[k]
		if !ok {
			continue // other statistics LeRobot may add
		}
		vals, shape, err := flattenJSONNumbers(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		*t = vals
		if k == "mean" {
			s.Shape = shape
		}
	}
	return nil
}

// flattenJSONNumbers flattens a JSON number or nested array of numbers, returning its shape.
func flattenJSONNumbers(raw json.RawMessage) ([]float64, []int, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&v); err != nil {
		return nil, nil, err
	}
	var out []float64
	var shape []int
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		switch t := x.(type) {
		case float64:
			out = append(out, t)
		case []any:
			if depth == len(shape) {
				shape = append(shape, len(t))
			}
			for _, e := range t {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case nil:
			return errors.New("null value (NaN written as null?)")
		default:
			return fmt.Errorf("want numbers, got %T", x)
		}
		return nil
	}
	if err := walk(v, 0); err != nil {
		return nil, nil, err
	}
	if out == nil {
		out = []float64{}
	}
	return out, shape, nil
}

// ---------------------------------------------------------------------------------------------
// Computing statistics

// runningStats is LeRobot's RunningQuantileStats fed with one batch (which is how its
// get_feature_stats uses it): exact min, max, mean and population std (here in float64, two
// passes), and quantiles interpolated within a statBins-bin histogram spanning
// [min - 1e-10, max + 1e-10].
type runningStats struct {
	n      int
	dim    int
	values [][]float64 // per dimension
}

func newRunningStats(dim int) *runningStats {
	return &runningStats{dim: dim, values: make([][]float64, dim)}
}

// add adds one row of dim values.
func (s *runningStats) add(row []float64) {
	s.n++
	for j, x := range row {
		s.values[j] = append(s.values[j], x)
	}
}

// stats returns the statistics of the rows added (at least one). With fewer than two rows the
// quantiles are the mean, as LeRobot's _compute_basic_stats sets them.
func (s *runningStats) stats(count int64, shape []int) Stats {
	out := newFeatureStats(s.dim, count, shape)
	for j := range s.dim {
		setDimStats(&out, j, s.values[j], nil)
	}
	return out
}

func newFeatureStats(dim int, count int64, shape []int) Stats {
	out := Stats{Count: count, Shape: shape, Min: make([]float64, dim), Max: make([]float64, dim),
		Mean: make([]float64, dim), Std: make([]float64, dim)}
	for _, q := range out.quantiles() {
		*q = make([]float64, dim)
	}
	return out
}

// setDimStats sets dimension j of out from values, each counted weights[i] times (once when
// weights is nil).
func setDimStats(out *Stats, j int, values, weights []float64) {
	w := func(i int) float64 {
		if weights == nil {
			return 1
		}
		return weights[i]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var n, sum float64
	for i, x := range values {
		if w(i) == 0 {
			continue
		}
		lo, hi = min(lo, x), max(hi, x)
		n += w(i)
		sum += w(i) * x
	}
	mean := sum / n
	var m2 float64
	for i, x := range values {
		m2 += w(i) * (x - mean) * (x - mean)
	}
	out.Min[j], out.Max[j], out.Mean[j], out.Std[j] = lo, hi, mean, math.Sqrt(m2/n)
	if n < 2 {
		for _, q := range out.quantiles() {
			(*q)[j] = mean
		}
		return
	}
	qs := histogramQuantiles(values, weights, lo, hi, n)
	for i, q := range out.quantiles() {
		(*q)[j] = qs[i]
	}
}

// histogramQuantiles estimates the StatQuantiles of values (weighted, all in [lo, hi], n in
// total) as LeRobot's RunningQuantileStats._compute_single_quantile does: the first bin where
// the cumulative count reaches q·n, interpolated linearly within it (the lower edge when that
// is the first bin).
func histogramQuantiles(values, weights []float64, lo, hi, n float64) []float64 {
	edges := linspace(lo-1e-10, hi+1e-10, statBins+1)
	hist := make([]float64, statBins)
	width := edges[statBins] - edges[0]
	for k, x := range values {
		// np.histogram: bins [e_i, e_{i+1}), the last one closed.
		i := int(float64(statBins) * (x - edges[0]) / width)
		i = min(max(i, 0), statBins-1)
		for i > 0 && x < edges[i] {
			i--
		}
		for i < statBins-1 && x >= edges[i+1] {
			i++
		}
		if weights == nil {
			hist[i]++
		} else {
			hist[i] += weights[k]
		}
	}
	out := make([]float64, len(statQuantileValues))
	for qi, q := range statQuantileValues {
		target := q * n
		cum := 0.0
		out[qi] = edges[statBins]
	bins:
		for i, c := range hist {
			before := cum
			cum += c
			if cum < target {
				continue
			}
			switch {
			case i == 0:
				out[qi] = edges[0]
			case c == 0:
				out[qi] = edges[i]
			default:
				out[qi] = edges[i] + (target-before)/c*(edges[i+1]-edges[i])
			}
			break bins
		}
	}
	return out
}

// linspace is numpy.linspace(lo, hi, n) with the endpoint.
func linspace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	step := (hi - lo) / float64(n-1)
	for i := range out {
		out[i] = lo + float64(i)*step
	}
	out[n-1] = hi
	return out
}

// VectorStats returns the statistics of rows (all of one length, at least one), quantiles
// included, as LeRobot computes them for an episode.
func VectorStats(rows [][]float32) Stats { return vectorFeatureStats(rows) }

// vectorFeatureStats computes the statistics of rows (T × d values).
func vectorFeatureStats[T float32 | float64 | int64](rows [][]T) Stats {
	d := len(rows[0])
	s := newRunningStats(d)
	buf := make([]float64, d)
	for _, r := range rows {
		for j, x := range r {
			buf[j] = float64(x)
		}
		s.add(buf)
	}
	return s.stats(int64(len(rows)), []int{d})
}

// imageSampleIndices are the frames of an n-frame episode LeRobot computes image statistics
// from (compute_stats.py sample_indices / estimate_num_samples): all of them up to 100, then
// n^0.75 of them (at most 10000), evenly spaced and rounded half to even as numpy rounds.
func imageSampleIndices(n int) []int {
	// n^0.75 nudged up by 1e-9: Go's math.Pow(10000, 0.75) is 999.9999999999998 where the C
	// library Python uses gives 1000.
	num := max(min(100, n), min(int(math.Pow(float64(n), 0.75)+1e-9), 10000))
	if num == 1 {
		return []int{0}
	}
	out := make([]int, num)
	for i, x := range linspace(0, float64(n-1), num) {
		out[i] = int(math.RoundToEven(x))
	}
	return out
}

// imageStatsStride is LeRobot's auto_downsample_height_width: images whose larger side is at
// least 300 pixels are subsampled every int(side/150) pixels along both axes.
func imageStatsStride(w, h int) int {
	if max(w, h) < 300 {
		return 1
	}
	if w > h {
		return max(1, w/150)
	}
	return max(1, h/150)
}

// imageStatsAccumulator computes a camera's statistics from sampled rgb24 frames. Pixel values
// are 8-bit, so it keeps per-channel counts of each value rather than the pixels.
type imageStatsAccumulator struct {
	counts [3][256]float64
	frames int64
}

// addFrame adds one w×h rgb24 frame, subsampled as LeRobot subsamples it.
func (a *imageStatsAccumulator) addFrame(pix []uint8, w, h int) {
	st := imageStatsStride(w, h)
	for y := 0; y < h; y += st {
		row := pix[y*w*3:]
		for x := 0; x < w; x += st {
			a.counts[0][row[x*3]]++
			a.counts[1][row[x*3+1]]++
			a.counts[2][row[x*3+2]]++
		}
	}
	a.frames++
}

// stats returns the per-channel statistics scaled to [0, 1], shape [3, 1, 1], count the
// number of sampled frames.
func (a *imageStatsAccumulator) stats() Stats {
	out := newFeatureStats(3, a.frames, []int{3, 1, 1})
	values := make([]float64, 256)
	for v := range values {
		values[v] = float64(v)
	}
	for c := range 3 {
		setDimStats(&out, c, values, a.counts[c][:])
	}
	for _, v := range [][]float64{out.Min, out.Max, out.Mean, out.Std, out.Q01, out.Q10, out.Q50, out.Q90, out.Q99} {
		for j := range v {
			v[j] /= 255
		}
	}
	return out
}

// AggregateStats combines per-episode (or per-dataset) statistics of one feature as LeRobot's
// aggregate_feature_stats does: min of mins, max of maxes, count-weighted mean, pooled variance
// (within plus between groups), and — when every input has them — the quantiles' envelope (the
// smallest value for q01…q50, the largest for q90 and q99; exact global quantiles cannot be
// recovered from per-episode ones). Inputs must have the same dimension; at least one.
func AggregateStats(list []Stats) (Stats, error) {
	if len(list) == 0 {
		return Stats{}, errors.New("no statistics to aggregate")
	}
	d := list[0].Dim()
	var total float64
	for i, s := range list {
		if s.Dim() != d || len(s.Std) != d || len(s.Min) != d || len(s.Max) != d {
			return Stats{}, fmt.Errorf("statistics %d have %d values, the first have %d", i, s.Dim(), d)
		}
		total += float64(s.Count)
	}
	out := Stats{Shape: slices.Clone(list[0].Shape), Min: slices.Clone(list[0].Min), Max: slices.Clone(list[0].Max),
		Mean: make([]float64, d), Std: make([]float64, d)}
	for _, s := range list {
		out.Count += s.Count
		for j := range d {
			out.Min[j] = min(out.Min[j], s.Min[j])
			out.Max[j] = max(out.Max[j], s.Max[j])
			if total > 0 {
				out.Mean[j] += s.Mean[j] * float64(s.Count) / total
			}
		}
	}
	if total > 0 {
		for _, s := range list {
			for j := range d {
				dm := s.Mean[j] - out.Mean[j]
				out.Std[j] += (s.Std[j]*s.Std[j] + dm*dm) * float64(s.Count) / total
			}
		}
	}
	for j := range d {
		out.Std[j] = math.Sqrt(out.Std[j])
	}
	for qi, name := range StatQuantiles {
		have := true
		for _, s := range list {
			if len(s.Quantile(name)) != d {
				have = false
			}
		}
		if !have {
			continue
		}
		agg := slices.Clone(list[0].Quantile(name))
		for _, s := range list[1:] {
			for j, x := range s.Quantile(name) {
				if statQuantileValues[qi] <= 0.5 {
					agg[j] = min(agg[j], x)
				} else {
					agg[j] = max(agg[j], x)
				}
			}
		}
		*out.quantiles()[qi] = agg
	}
	return out, nil
}

// aggregateStatsMaps aggregates per-episode statistics maps feature by feature (the union of
// their keys, each from the episodes that have it), as LeRobot's aggregate_stats does.
func aggregateStatsMaps(maps []map[string]Stats) (map[string]Stats, error) {
	keys := map[string]bool{}
	for _, m := range maps {
		for k := range m {
			keys[k] = true
		}
	}
	out := map[string]Stats{}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var list []Stats
		for _, m := range maps {
			if s, ok := m[k]; ok {
				list = append(list, s)
			}
		}
		agg, err := AggregateStats(list)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = agg
	}
	return out, nil
}

// marshalStatsJSON writes a stats.json object, features in the given order.
func marshalStatsJSON(stats map[string]Stats, order []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{\n")
	n := 0
	for _, k := range order {
		s, ok := stats[k]
		if !ok {
			continue
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", k, err)
		}
		if n > 0 {
			b.WriteString(",\n")
		}
		n++
		key, _ := json.Marshal(k)
		b.WriteString("    ")
		b.Write(key)
		b.WriteString(": ")
		b.Write(raw)
	}
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}
