package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// tinyPi0 is a PaliGemma 1 shaped like hf/testdata/paligemma (SigLIP 8×8 images of 4×4 patches,
// a 2-layer Gemma with 2 query heads and 1 kv head) with a narrower expert.
func tinyPi0() Pi0Config {
	text := DecoderConfig{Arch: "gemma", VocabSize: 24, Hidden: 16, Intermediate: 32, Layers: 2, Heads: 2, KVHeads: 1,
		HeadDim: 8, Eps: 1e-6, Act: "gelu_pytorch_tanh", Rope: Rope{Theta: 10000, Dim: 8, Type: "default"},
		TieEmbeddings: true, OffsetNorm: true, ScaleInputs: true}
	vis := VisionConfig{Arch: "siglip", EncoderConfig: EncoderConfig{Hidden: 12, Intermediate: 24, Layers: 1, Heads: 2,
		Eps: 1e-6, Act: "gelu_pytorch_tanh"}, ImageSize: 8, PatchSize: 4, Channels: 3}
	return Pi0Config{PaliGemma: PaliGemmaConfig{Vision: vis, Text: text, ImageToken: 23}, Expert: Pi0Expert(text, 12, 20),
		Cameras: 2, StateDim: 3, ActionDim: 5, Horizon: 4, EulerSteps: 3}
}

func f32Tensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return tensors.FromFlatDataAndDimensions(randFlat32(rng, n), dims...)
}

// The block-causal mask is openpi's make_attn_mask in closed form: with prefix tokens p0 p1 and a
// padded p2, the state token s and actions a0 a1, a prefix query sees p0 p1 only; s sees the
// prefix and itself; the actions see everything real.
func TestPi0BlockCausalMask(t *testing.T) {
	backend := goBackend(t)
	require.Equal(t, []int{0, 0, 0, 1, 2, 2}, Pi0Blocks(3, 2))
	valid := tensors.FromFlatDataAndDimensions([]bool{true, true, false, true, true, true}, 1, 6)
	blocks := Pi0Blocks(3, 2)
	out := model.MustCallOnce(backend, model.NewStore(), func(_ *model.Scope, v *Node) *Node {
		return ConvertDType(Pi0Mask(v, blocks, blocks), dtypes.Int32)
	}, valid)
	want := [][]int32{
		{1, 1, 0, 0, 0, 0}, // p0
		{1, 1, 0, 0, 0, 0}, // p1
		{1, 1, 0, 0, 0, 0}, // p2 (padding)
		{1, 1, 0, 1, 0, 0}, // s
		{1, 1, 0, 1, 1, 1}, // a0
		{1, 1, 0, 1, 1, 1}, // a1
	}
	got := tensors.MustCopyFlatData[int32](out)
	for i := range want {
		require.Equal(t, want[i], got[i*6:(i+1)*6], "query %d", i)
	}
}

// With an empty suffix the joint transformer is PaliGemma: the prefix's hidden states equal those
// of the plain PaliGemma decoder (image placeholders replaced by the image features, the whole
// input a bidirectional prefix, transformers' 1-based positions; RoPE makes the offset irrelevant).
func TestPi0EmptySuffixIsPaliGemma(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyPi0()
	rng := rand.New(rand.NewPCG(1, 2))
	b, l := 2, 3
	img := f32Tensor(rng, b, 2, 8, 8, 3)
	tok := tensors.FromFlatDataAndDimensions([]int32{5, 6, 7, 1, 9, 4}, b, l)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		h, _, _, _ := Pi0PrefixHidden(scope, cfg, in[0], in[1])
		// The reference: models.PaliGemma's decoder over [placeholders of both cameras ‖ tokens],
		// each camera its own image (so the features go in camera order).
		pg := cfg.PaliGemma
		n := pg.Vision.NumPatches()
		ids := Concatenate([]*Node{BroadcastToDims(Scalar(g, dtypes.Int32, pg.ImageToken), b, 2*n), in[1]}, 1)
		px := TransposeAllAxes(AddScalar(MulScalar(Reshape(in[0], b*2, 8, 8, 3), 2), -1), 0, 3, 1, 2)
		x := PaliGemmaEmbeds(WithInit(scope), pg, ids, px)
		ref := Decoder(WithInit(scope).At("model").At("language_model"), pg.Text, x, Positions(g, b, 2*n+l, 1), PaliGemmaPrefix(ids, nil), nil)
		return []*Node{h, ref}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(img, tok)
	require.NoError(t, err)
	got, want := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
	require.Equal(t, []int{b, 2*4 + l, 16}, out[0].Shape().Dimensions)
	for i := range want {
		require.InDelta(t, want[i], got[i], 1e-4, "element %d", i)
	}
}

// Sampling with the prefix's keys and values cached gives the same chunk as recomputing the whole
// sequence at every Euler step (padding in the instruction included).
func TestPi0CachedSamplingEqualsRecomputation(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyPi0()
	rng := rand.New(rand.NewPCG(3, 4))
	b := 2
	img := f32Tensor(rng, b, 2, 8, 8, 3)
	tok := tensors.FromFlatDataAndDimensions([]int32{5, 6, 0, 9, 0, 0}, b, 3)
	st := f32Tensor(rng, b, 3)
	noise := f32Tensor(rng, b, cfg.Horizon, Pi0PadDim)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(5))
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{Pi0Sample(scope, cfg, in[0], in[1], in[2], in[3], true), Pi0Sample(scope, cfg, in[0], in[1], in[2], in[3], false)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(img, tok, st, noise)
	require.NoError(t, err)
	require.Equal(t, []int{b, cfg.Horizon, cfg.ActionDim}, out[0].Shape().Dimensions)
	cached, full := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
	var moved float64
	for i := range full {
		require.InDelta(t, full[i], cached[i], 1e-5, "element %d", i)
		moved += math.Abs(float64(full[i]))
	}
	require.Greater(t, moved, 0.0)
}

// tinyPi0Policy is a VLA policy of tinyPi0 (3-D state, 5-D actions, identity normalisation) and
// the batch size of tinyPi0Batch.
func tinyPi0Policy(t *testing.T) (p Pi0Policy, cfg Pi0Config, b int) {
	cfg = tinyPi0()
	p = Pi0Policy{Config: cfg,
		Norm: Normalization{StateOffset: make([]float32, 3), StateScale: []float32{1, 1, 1},
			ActionOffset: make([]float32, 5), ActionScale: []float32{1, 1, 1, 1, 1}}}
	require.NoError(t, p.Validate())
	return p, cfg, 2
}

// tinyPi0Batch draws a training batch of b examples for p: images, instruction tokens (with
// padding), state, actions and the flow noise and times.
func tinyPi0Batch(rng *rand.Rand, p Pi0Policy, b int) (img, tok, st, act *tensors.Tensor, noise []HeadInput) {
	img = f32Tensor(rng, b, 2, 8, 8, 3)
	tok = tensors.FromFlatDataAndDimensions([]int32{5, 6, 0, 9, 0, 0}, b, 3)
	st = f32Tensor(rng, b, 3)
	act = f32Tensor(rng, b, p.Config.Horizon, p.Config.ActionDim)
	return img, tok, st, act, p.Noise(rng, b, true)
}

// The flow loss's gradient reaches the expert (its layers and the action projections) and the
// PaliGemma backbone (vision tower and decoder) through the joint attention.
func TestPi0GradientReachesExpertAndBackbone(t *testing.T) {
	backend := goBackend(t)
	p, cfg, b := tinyPi0Policy(t)
	img, tok, st, act, noise := tinyPi0Batch(rand.New(rand.NewPCG(5, 6)), p, b)
	require.Equal(t, []int{b, cfg.Horizon, Pi0PadDim}, noise[0].Value.Shape().Dimensions)
	require.Equal(t, []int{b}, noise[1].Value.Shape().Dimensions)
	layout := Layout(true, true, false, noise)
	names := []string{"/gemma_expert/model/layers/1/self_attn/q_proj/weights", "/action_in_proj/weights", "/state_proj/weights",
		"/action_time_mlp_in/weights", "/model/language_model/layers/0/mlp/up_proj/weights",
		"/model/vision_tower/vision_model/encoder/layers/0/mlp/fc1/weights", "/model/language_model/embed_tokens/weight"}
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(7))
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		loss := p.Loss(scope, layout.Bind(in))
		var vars []*Node
		for _, n := range names {
			vars = append(vars, store.GetVariable(n).NodeValue(g))
		}
		out := []*Node{loss}
		for _, gr := range Gradient(loss, vars...) {
			out = append(out, ReduceAllSum(Abs(gr)))
		}
		return out
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(img, tok, st, act, noise[0].Value, noise[1].Value)
	require.NoError(t, err)
	require.Greater(t, tensors.MustCopyFlatData[float32](out[0])[0], float32(0))
	for i, n := range names {
		require.Greater(t, tensors.MustCopyFlatData[float32](out[i+1])[0], float32(0), n)
	}
}

// Sample weights (RA-BC) reach pi0's flow loss: weights [1, 0] give the loss of the first
// example alone, computed as a batch of one, and equal weights give the plain loss.
func TestPi0SampleWeights(t *testing.T) {
	backend := goBackend(t)
	p, _, b := tinyPi0Policy(t)
	img, tok, st, act, noise := tinyPi0Batch(rand.New(rand.NewPCG(8, 9)), p, b)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(7))
	layout := Layout(true, true, false, noise)
	loss := func(weighted bool, in ...any) float32 {
		l := layout
		if weighted {
			l = append(slices.Clone(layout), "weights")
		}
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			return []*Node{p.Loss(scope, l.Bind(in))}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		out, err := e.Exec(in...)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out[0])[0]
	}
	first := func(x *tensors.Tensor) *tensors.Tensor {
		d := x.Shape().Dimensions
		n := x.Shape().Size() / d[0]
		if x.DType() == dtypes.Int32 {
			return tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[int32](x)[:n], append([]int{1}, d[1:]...)...)
		}
		return tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](x)[:n], append([]int{1}, d[1:]...)...)
	}
	plain := loss(false, img, tok, st, act, noise[0].Value, noise[1].Value)
	equal := loss(true, img, tok, st, act, noise[0].Value, noise[1].Value, tensors.FromFlatDataAndDimensions([]float32{0.5, 0.5}, b))
	require.InDelta(t, plain, equal, 1e-5*float64(plain))
	one := loss(false, first(img), first(tok), first(st), first(act), first(noise[0].Value), first(noise[1].Value))
	w10 := loss(true, img, tok, st, act, noise[0].Value, noise[1].Value, tensors.FromFlatDataAndDimensions([]float32{1, 0}, b))
	require.InDelta(t, one, w10, 1e-5*float64(one))
	require.Greater(t, math.Abs(float64(one-plain)), 1e-4*float64(plain), "the two examples' losses differ")
}

// With train.remat (GraphOptions.Remat) each joint layer is recomputed in the backward pass: the
// loss and the gradient of every variable are those of the plain graph (within 1e-6 of each
// gradient's largest element), and the graph holds the recomputation (more nodes: the cloned
// forward of every layer, so the equality is not that of one graph built twice).
func TestPi0RematSameLossAndGradients(t *testing.T) {
	backend := goBackend(t)
	p, _, b := tinyPi0Policy(t)
	img, tok, st, act, noise := tinyPi0Batch(rand.New(rand.NewPCG(11, 12)), p, b)
	layout := Layout(true, true, false, noise)
	run := func(remat bool) (loss float64, grads map[string][]float64, nodes int) {
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(7))
		var names []string
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			Configure(g, GraphOptions{Remat: remat})
			loss := p.Loss(scope, layout.Bind(in))
			var vars []*Node
			for v := range store.IterVariables() {
				if v.Trainable && v.DType() == dtypes.Float32 && v.InUseByGraph(g) {
					names = append(names, v.Path())
				}
			}
			slices.Sort(names)
			for _, n := range names {
				vars = append(vars, store.GetVariable(n).NodeValue(g))
			}
			out := append([]*Node{loss}, Gradient(loss, vars...)...)
			nodes = len(g.Nodes())
			return out
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		out, err := e.Exec(img, tok, st, act, noise[0].Value, noise[1].Value)
		require.NoError(t, err)
		grads = map[string][]float64{}
		for i, n := range names {
			grads[n] = f64(out[i+1])
		}
		return f64(out[0])[0], grads, nodes
	}
	l0, g0, n0 := run(false)
	l1, g1, n1 := run(true)
	require.Greater(t, n1, n0, "the remat graph recomputes the layers")
	require.InDelta(t, l0, l1, 1e-6*math.Abs(l0))
	require.Len(t, g1, len(g0))
	require.Greater(t, len(g0), 40)
	for n, a := range g0 {
		bs := g1[n]
		require.Len(t, bs, len(a), n)
		top := 0.0
		for _, x := range a {
			top = math.Max(top, math.Abs(x))
		}
		for i := range a {
			require.InDelta(t, a[i], bs[i], 1e-6*top+1e-30, "%s[%d]", n, i)
		}
	}
	require.Greater(t, maxAbs(g0["/gemma_expert/model/layers/0/self_attn/q_proj/weights"]), 0.0)
	require.Greater(t, maxAbs(g0["/model/language_model/layers/0/mlp/up_proj/weights"]), 0.0)
}

func f64(x *tensors.Tensor) []float64 {
	var out []float64
	for _, v := range tensors.MustCopyFlatData[float32](x) {
		out = append(out, float64(v))
	}
	return out
}

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
