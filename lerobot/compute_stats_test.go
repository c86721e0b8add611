package lerobot

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// rows1 makes a one-dimensional vector feature of the values.
func rows1(v []float64) [][]float64 {
	out := make([][]float64, len(v))
	for i, x := range v {
		out[i] = []float64{x}
	}
	return out
}

// TestStatsClosedForms checks the statistics of known sequences against closed forms.
func TestStatsClosedForms(t *testing.T) {
	t.Parallel()
	const n = 1000
	seq := make([]float64, n) // 0, 1, ..., 999
	for i := range seq {
		seq[i] = float64(i)
	}
	s := vectorFeatureStats(rows1(seq))
	require.Equal(t, []float64{0}, s.Min)
	require.Equal(t, []float64{999}, s.Max)
	require.InDelta(t, 499.5, s.Mean[0], 1e-12)
	require.InDelta(t, math.Sqrt((n*n-1)/12.0), s.Std[0], 1e-9) // std of a discrete uniform sequence
	require.EqualValues(t, n, s.Count)
	// LeRobot's histogram quantile: the first 5000-bin bin whose cumulative count reaches q·n,
	// interpolated within it. With one value per occupied bin that is the upper edge of the bin
	// holding the (q·n)-th smallest value k = q·n − 1: a value in [k, k + (999/5000)].
	width := 999.0 / statBins
	for i, q := range statQuantileValues {
		k := q*n - 1
		got := s.Quantile(StatQuantiles[i])[0]
		require.GreaterOrEqual(t, got, k, StatQuantiles[i])
		require.LessOrEqual(t, got, k+width+1e-9, StatQuantiles[i])
	}
	// A dense uniform sample of [0, 1]: the quantiles are q within a bin.
	dense := make([]float64, 100001)
	for i := range dense {
		dense[i] = float64(i) / 100000
	}
	ds := vectorFeatureStats(rows1(dense))
	for i, q := range statQuantileValues {
		require.InDelta(t, q, ds.Quantile(StatQuantiles[i])[0], 1.0/statBins, StatQuantiles[i])
	}
	// A constant: std 0, every quantile the constant (within the histogram's 1e-10 padding).
	c := vectorFeatureStats(rows1([]float64{2.5, 2.5, 2.5, 2.5}))
	require.Equal(t, []float64{0}, c.Std)
	for _, q := range StatQuantiles {
		require.InDelta(t, 2.5, c.Quantile(q)[0], 1e-9)
	}
	// One frame: quantiles are the mean (LeRobot's _compute_basic_stats).
	one := vectorFeatureStats([][]float32{{1, -2}})
	require.Equal(t, []float64{1, -2}, one.Q01)
	require.Equal(t, []float64{1, -2}, one.Q99)

	// Aggregating the two halves gives the whole's count, mean, std, min and max exactly, and
	// the quantiles' envelope: the lower half's q01, the upper half's q99.
	a, b := vectorFeatureStats(rows1(seq[:500])), vectorFeatureStats(rows1(seq[500:]))
	agg, err := AggregateStats([]Stats{a, b})
	require.NoError(t, err)
	require.EqualValues(t, n, agg.Count)
	require.InDelta(t, s.Mean[0], agg.Mean[0], 1e-12)
	require.InDelta(t, s.Std[0], agg.Std[0], 1e-9)
	require.Equal(t, s.Min, agg.Min)
	require.Equal(t, s.Max, agg.Max)
	require.Equal(t, a.Q01, agg.Q01)
	require.Equal(t, a.Q50, agg.Q50)
	require.Equal(t, b.Q90, agg.Q90)
	require.Equal(t, b.Q99, agg.Q99)
	// Without quantiles in one input, the aggregate has none.
	b.Q99 = nil
	agg, err = AggregateStats([]Stats{a, b})
	require.NoError(t, err)
	require.Nil(t, agg.Q99)
	require.NotNil(t, agg.Q01)
	_, err = AggregateStats([]Stats{a, vectorFeatureStats([][]float32{{1, 2}})})
	require.ErrorContains(t, err, "statistics 1 have 2 values, the first have 1")

	// Normalisation pairs.
	m1, m2, err := s.Norm(policy.NormMeanStd)
	require.NoError(t, err)
	require.Equal(t, s.Mean, m1)
	require.Equal(t, s.Std, m2)
	q1, q2, err := s.Norm(policy.NormQuantiles)
	require.NoError(t, err)
	require.Equal(t, s.Q01, q1)
	require.Equal(t, s.Q99, q2)
	_, _, err = s.Norm("z")
	require.Error(t, err)
}

func TestImageStatsClosedForms(t *testing.T) {
	t.Parallel()
	// Half the pixels black, half white in every channel: mean 0.5, std 0.5, min 0, max 1.
	w, h := 20, 10
	pix := make([]uint8, w*h*3)
	for i := range pix[:len(pix)/2] {
		pix[i] = 255
	}
	var acc imageStatsAccumulator
	acc.addFrame(pix, w, h)
	acc.addFrame(pix, w, h)
	s := acc.stats()
	require.Equal(t, []int{3, 1, 1}, s.Shape)
	require.EqualValues(t, 2, s.Count, "count is the number of frames")
	for c := range 3 {
		require.InDelta(t, 0.5, s.Mean[c], 1e-12)
		require.InDelta(t, 0.5, s.Std[c], 1e-12)
		require.Equal(t, 0.0, s.Min[c])
		require.Equal(t, 1.0, s.Max[c])
		require.InDelta(t, 0, s.Q01[c], 1.0/statBins) // within a histogram bin
		require.InDelta(t, 1, s.Q99[c], 1.0/statBins)
	}
	// One colour per channel.
	flat := make([]uint8, w*h*3)
	for i := range flat {
		flat[i] = uint8(10 * (1 + i%3))
	}
	acc = imageStatsAccumulator{}
	acc.addFrame(flat, w, h)
	s = acc.stats()
	require.InDeltaSlice(t, []float64{10.0 / 255, 20.0 / 255, 30.0 / 255}, s.Mean, 1e-12)
	require.Equal(t, []float64{0, 0, 0}, s.Std)
	// JSON as LeRobot's stats.json: nested [3, 1, 1], count [n].
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"std":[[[0]],[[0]],[[0]]],"count":[1]`)
	var back Stats
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, s, back)

	// LeRobot's subsampling and frame sampling.
	require.Equal(t, 1, imageStatsStride(299, 200))
	require.Equal(t, 4, imageStatsStride(640, 480))
	require.Equal(t, 6, imageStatsStride(720, 960))
	require.Equal(t, []int{0}, imageSampleIndices(1))
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, imageSampleIndices(10))
	for n, want := range map[int]int{100: 100, 500: 105, 1000: 177, 2000: 299, 5000: 594, 10000: 1000} { // estimate_num_samples' docstring
		idx := imageSampleIndices(n)
		require.Len(t, idx, want, "n=%d", n)
		require.Equal(t, 0, idx[0])
		require.Equal(t, n-1, idx[len(idx)-1])
	}
}
