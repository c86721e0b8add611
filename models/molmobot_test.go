package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

func tinyPolicy() VLAConfig {
	return VLAConfig{Vision: ViTConfig{ImageSize: 8, PatchSize: 4, Dim: 8, Layers: 1, Heads: 2, MLPRatio: 2},
		Cameras: 2, Dim: 8, Layers: 2, Heads: 2, MLPRatio: 2, MaxTextLen: 3, VocabSize: 7,
		StateDim: 4, ActionDim: 3, Horizon: 5, ExpertDim: 8, ExpertHeads: 2}
}

// AdaLN-Zero: every expert block starts as the identity and the read-out is zero, so the initial
// velocity is exactly 0 whatever the input; the gradient still reaches the read-out and the gates.
func TestActionExpertZeroInitAndShapes(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyPolicy()
	require.NoError(t, cfg.Validate())
	rng := rand.New(rand.NewPCG(1, 2))
	b, k := 2, 3
	img := tensors.FromFlatDataAndDimensions(randFlat(rng, b*2*8*8*3), b, 2, 8, 8, 3)
	tok := tensors.FromFlatDataAndDimensions([]int32{5, 6, 0, 1, 0, 0}, b, 3)
	st := tensors.FromFlatDataAndDimensions(randFlat(rng, b*4), b, 4)
	xt := tensors.FromFlatDataAndDimensions(randFlat(rng, b*k*5*3), b, k, 5, 3)
	tm := tensors.FromFlatDataAndDimensions([]float64{0.1, 0.5, 0.9, 0.2, 0.3, 0.4}, b, k)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope.SetTraining(g, true)
		p := scope.In("p")
		hidden, valid := PolicyContext(p, cfg, in[0], in[1])
		v := ActionExpert(p.In("expert"), cfg, hidden, valid, in[2], in[3], in[4])
		loss := ReduceAllSum(Mul(v, in[3]))
		out := store.GetVariable("/p/expert/action_out/weights")
		gate := store.GetVariable("/p/expert/block_1/adaln/weights")
		grads := Gradient(loss, out.NodeValue(g), gate.NodeValue(g))
		return []*Node{v, ConvertDType(valid, dtypes.Float64), ReduceAllSum(Abs(grads[0])), ReduceAllSum(Abs(grads[1]))}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(img, tok, st, xt, tm)
	require.NoError(t, err)
	require.Equal(t, []int{b, k, 5, 3}, out[0].Shape().Dimensions)
	for _, v := range flat(t, out[0]) {
		require.Zero(t, v)
	}
	// Keys: 2 cameras × 4 patches, then the instruction without its padding.
	valid := flat(t, out[1])
	require.Len(t, valid, b*(8+3))
	require.Equal(t, []float64{1, 1, 0}, valid[8:11])
	require.Equal(t, []float64{1, 0, 0}, valid[19:22])
	require.Greater(t, flat(t, out[2])[0], 0.0, "read-out gets a gradient at init")
	require.Zero(t, flat(t, out[3])[0], "inner gates see no gradient while the read-out is zero")
}

// A masked-out context token cannot change the cross-attention output; a visible one does.
func TestCrossAttentionMask(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	x := tensors.FromFlatDataAndDimensions(randFlat(rng, 1*2*4), 1, 2, 4)
	ctx := randFlat(rng, 1*3*6)
	mask := tensors.FromFlatDataAndDimensions([]bool{true, true, false, true, true, false}, 1, 2, 3)
	store := model.NewStore()
	run := func(c []float64) []float64 {
		out := model.MustCallOnce(backend, store, func(scope *model.Scope, x, c, m *Node) *Node {
			return CrossAttention(WithInit(scope.In("x")), x, c, 2, m)
		}, x, tensors.FromFlatDataAndDimensions(c, 1, 3, 6), mask)
		return flat(t, out)
	}
	base := run(ctx)
	hidden := append([]float64(nil), ctx...)
	for j := 12; j < 18; j++ { // token 2 is masked for both queries
		hidden[j] += 5
	}
	require.InDeltaSlice(t, base, run(hidden), 1e-12)
	seen := append([]float64(nil), ctx...)
	seen[0] += 5
	require.NotEqual(t, base, run(seen))
}

// The point is a soft-argmax over the first camera's patch centres: inside the image, and equal
// to a patch centre when the attention is one-hot on it.
func TestPointHeadAndSinCos(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyPolicy()
	rng := rand.New(rand.NewPCG(9, 9))
	b := 3
	last := tensors.FromFlatDataAndDimensions(randFlat(rng, b*(8+3)*8), b, 8+3, 8)
	valid := tensors.FromFlatDataAndDimensions([]bool{
		true, true, true, true, true, true, true, true, true, true, false,
		true, true, true, true, true, true, true, true, true, false, false,
		true, true, true, true, true, true, true, true, true, true, true}, b, 11)
	store := model.NewStore()
	out := model.MustCallOnce(backend, store, func(scope *model.Scope, last, valid *Node) *Node {
		return PointHead(WithInit(scope.In("point")), cfg, last, valid)
	}, last, valid)
	pts := flat(t, out)
	require.Len(t, pts, b*2)
	for _, v := range pts {
		require.Greater(t, v, 0.25-1e-9) // 2×2 patch grid: centres at 0.25 and 0.75
		require.Less(t, v, 0.75+1e-9)
	}
	// SinCos2D: row/column 0 encode as sin 0 = 0, cos 0 = 1; rows differ, columns differ.
	sc := SinCos2D(4, 8)
	require.Len(t, sc, 16)
	require.Equal(t, []float64{0, 0, 1, 1, 0, 0, 1, 1}, sc[0])
	require.NotEqual(t, sc[1], sc[4])
	require.InDelta(t, math.Sin(1), sc[1][4], 1e-12) // column 1, first frequency
	require.InDelta(t, math.Sin(1), sc[4][0], 1e-12) // row 1
}

// The convolutional stem gives one token per patch at the model width.
func TestConvStemShape(t *testing.T) {
	backend := goBackend(t)
	cfg := ViTConfig{ImageSize: 16, PatchSize: 4, Dim: 12, Layers: 1, Heads: 2, MLPRatio: 2, ConvStem: true, SinCos: true}
	rng := rand.New(rand.NewPCG(1, 3))
	img := tensors.FromFlatDataAndDimensions(randFlat(rng, 2*16*16*3), 2, 16, 16, 3)
	out := model.MustCallOnce(backend, model.NewStore(), func(scope *model.Scope, x *Node) *Node {
		return ViT(WithInit(scope), cfg, x)
	}, img)
	require.Equal(t, []int{2, 16, 12}, out.Shape().Dimensions)
}
