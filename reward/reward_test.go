package reward

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

func TestPrefixLengths(t *testing.T) {
	// numpy: np.unique(np.linspace(1, n, p).round()) — round half to even (2.5 → 2, 3.5 → 4).
	require.Equal(t, []int{1, 2, 4}, PrefixLengths(4, 3))
	require.Equal(t, []int{1, 4, 6}, PrefixLengths(6, 3))
	require.Equal(t, []int{1, 2, 4, 5}, PrefixLengths(5, 4))
	require.Equal(t, []int{1, 4, 7, 10}, PrefixLengths(10, 4))
	require.Equal(t, []int{1, 2, 3}, PrefixLengths(3, 15)) // dense when p >= n
	require.Equal(t, []int{1, 2, 3}, PrefixLengths(3, 0))
	require.Nil(t, PrefixLengths(0, 15))
	// linspace(1, 100, 15): step 99/14 = 7.0714…; 1 + 7·99/14 = 50.5 → 50 (half to even).
	l := PrefixLengths(100, 15)
	require.Len(t, l, 15)
	require.Equal(t, 1, l[0])
	require.Equal(t, 8, l[1])
	require.Equal(t, 50, l[7])
	require.Equal(t, 100, l[14])
}

func TestNormalize(t *testing.T) {
	require.InDeltaSlice(t, []float64{0, 1, 0.5}, Normalize([]float64{1, 3, 2}), 1e-12)
	require.Equal(t, []float64{0, 0, 0}, Normalize([]float64{-2, -2, -2}))
	require.Equal(t, []float64{0}, Normalize([]float64{-7}))
	require.Empty(t, Normalize(nil))
}

func TestRanksAndSpearman(t *testing.T) {
	require.Equal(t, []float64{2, 3.5, 3.5, 1}, Ranks([]float64{10, 20, 20, 5}))
	// No ties: 1 − 6·Σd² / (n(n²−1)) = 1 − 6·2/60 = 0.8.
	require.InDelta(t, 0.8, Spearman([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}), 1e-12)
	require.InDelta(t, 1, VOC([]float64{0, 0.1, 0.5, 0.9}), 1e-12)
	require.InDelta(t, -1, VOC([]float64{3, 2, 1}), 1e-12)
	require.Zero(t, VOC([]float64{0.4, 0.4, 0.4}))
	require.Zero(t, VOC([]float64{1}))
	// Ties: ranks (1.5, 1.5, 3.5, 3.5) against (1, 2, 3, 4): 4 / √(4·5).
	require.InDelta(t, 4/math.Sqrt(20), VOC([]float64{0, 0, 1, 1}), 1e-12)
}

// lengthModel scores a clip log(len/n) and records what it was given.
type lengthModel struct {
	n     int
	clips []Clip
}

func (m *lengthModel) LogPTrue(clips []Clip) ([]float64, error) {
	m.clips = append(m.clips, clips...)
	out := make([]float64, len(clips))
	for i, c := range clips {
		out[i] = math.Log(float64(len(c.Frames)) / float64(m.n))
	}
	return out, nil
}
func (m *lengthModel) Close() {}

func TestProgress(t *testing.T) {
	frames := make([]policy.Image, 10)
	for i := range frames {
		frames[i] = policy.NewImage(2, 2)
		frames[i].Pix[0] = float32(i)
	}
	m := &lengthModel{n: 10}
	c, err := Progress(m, "pick the red cube", frames, 4)
	require.NoError(t, err)
	require.Equal(t, []int{1, 4, 7, 10}, c.Lengths)
	require.Len(t, m.clips, 4)
	for i, cl := range m.clips {
		require.Equal(t, "pick the red cube", cl.Instruction)
		require.Len(t, cl.Frames, c.Lengths[i])
		require.Equal(t, float32(c.Lengths[i]-1), cl.Frames[len(cl.Frames)-1].Pix[0]) // oldest first, a prefix
	}
	require.InDelta(t, 0, c.Final(), 1e-12)
	require.InDelta(t, 1, c.VOC, 1e-12)
	lo := math.Log(0.1)
	require.InDeltaSlice(t, []float64{0, (math.Log(0.4) - lo) / -lo, (math.Log(0.7) - lo) / -lo, 1}, c.Progress, 1e-12)
	_, err = Progress(m, "x", nil, 4)
	require.Error(t, err)
}

func TestPerFrame(t *testing.T) {
	c := Curve{Lengths: []int{1, 3, 5}, Progress: []float64{0, 0.5, 1}}
	require.InDeltaSlice(t, []float64{0, 0.25, 0.5, 0.75, 1}, c.PerFrame(5), 1e-12)
	c = Curve{Lengths: []int{2, 4}, Progress: []float64{0.2, 1}}
	require.InDeltaSlice(t, []float64{0.2, 0.2, 0.6, 1, 1}, c.PerFrame(5), 1e-12) // held outside
}

func TestDetection(t *testing.T) {
	d := Detect([]float64{1, 2, 3, 4}, []bool{false, true, false, true}, 1.5)
	require.Equal(t, Detection{TP: 2, FP: 1, TN: 1, FN: 0, Threshold: 1.5}, d)
	require.InDelta(t, 0.75, d.Accuracy(), 1e-12)
	require.InDelta(t, 2.0/3, d.Precision(), 1e-12)
	require.InDelta(t, 1, d.Recall(), 1e-12)
	require.Zero(t, Detection{}.Accuracy())

	thr := ChooseThreshold([]float64{-3, -0.5, -2, -1}, []bool{false, true, false, true})
	require.InDelta(t, -1.5, thr, 1e-12)
	// All failures: the best threshold calls nothing a success.
	labels := []bool{false, false}
	thr = ChooseThreshold([]float64{-1, -2}, labels)
	require.InDelta(t, 1, Detect([]float64{-1, -2}, labels, thr).Accuracy(), 1e-12)
	// All successes: everything above it.
	labels = []bool{true, true}
	thr = ChooseThreshold([]float64{-1, -2}, labels)
	require.InDelta(t, 1, Detect([]float64{-1, -2}, labels, thr).Accuracy(), 1e-12)
}

func TestRABCWeights(t *testing.T) {
	p := DefaultRABC(1)
	// Deltas 0.5, 0.5, 0 (the last frame looks at itself): µ = 1/3, σ = √(1/6 − 1/9) = √(1/18).
	w := p.Weights([][]float64{{0, 0.5, 1}})
	mu, sigma := 1.0/3, math.Sqrt(1.0/18)
	require.InDeltaSlice(t, []float64{1, 1, (0 - (mu - 2*sigma)) / (4*sigma + 1e-6)}, w[0], 1e-9)
	// A chunk past the end uses the last frame; going backwards weighs 0.
	p = DefaultRABC(5)
	require.Equal(t, [][]float64{{-1, 0}}, p.Deltas([][]float64{{1, 0}}))
	w = p.Weights([][]float64{{1, 0}, {0, 1}})
	require.Equal(t, 0.0, w[0][0])
	require.Equal(t, 1.0, w[1][0])
	// µ is floored at 0: mean delta −0.25 → µ = 0, σ = std(−1, 0, 1, 0) = √0.5.
	sigma = math.Sqrt(0.5)
	require.InDelta(t, 2*sigma/(4*sigma+1e-6), w[0][1], 1e-9)
}
