package models

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// The state bins are numpy's: np.digitize(x, np.linspace(-1, 1, 257)[:-1]) - 1 on these float32
// values gives [-1 0 1 127 128 166 254 255 255 129 128] (numpy 1.24), and on NaN, +Inf, -Inf
// [255 255 -1].
func TestPi05DiscretizeStateIsNumpyDigitize(t *testing.T) {
	x := []float32{-1.5, -1, -0.99, -0.0001, 0, 0.3, 0.99, 1, 1.5, 0.0078125, 0.0078124}
	require.Equal(t, []int{-1, 0, 1, 127, 128, 166, 254, 255, 255, 129, 128}, Pi05DiscretizeState(x))
	inf := float32(math.Inf(1))
	require.Equal(t, []int{255, 255, -1}, Pi05DiscretizeState([]float32{float32(math.NaN()), inf, -inf}))
	require.Equal(t, "Task: pick the cube up, State: 0 128 255;\nAction: ", Pi05Prompt("  pick_the cube\nup ", []float32{-1, 0, 1}))
}

// tinyPi05Policy is tinyPi0's network as π0.5 (identity normalisation).
func tinyPi05Policy(t *testing.T, ki bool) Pi05Policy {
	cfg := tinyPi0()
	p := Pi05Policy{Config: Pi05Config{Pi0Config: cfg, KnowledgeInsulation: ki},
		Norm: Normalization{StateOffset: make([]float32, 3), StateScale: []float32{1, 1, 1},
			ActionOffset: make([]float32, 5), ActionScale: []float32{1, 1, 1, 1, 1}}}
	require.NoError(t, p.Validate())
	return p
}

// Knowledge insulation: with it the action loss's gradient with respect to every VLM variable
// (vision tower, projector, decoder layers, embeddings) is exactly zero, while the expert, its
// adaptive norms, the time MLP and the projections get one; without it the VLM's are non-zero.
func TestPi05KnowledgeInsulationStopsVLMGradient(t *testing.T) {
	backend := goBackend(t)
	vlm := []string{"/model/language_model/layers/0/mlp/up_proj/weights", "/model/language_model/layers/1/self_attn/k_proj/weights",
		"/model/vision_tower/vision_model/encoder/layers/0/mlp/fc1/weights", "/model/multi_modal_projector/linear/weights",
		"/model/language_model/embed_tokens/weight"}
	expert := []string{"/gemma_expert/model/layers/1/self_attn/q_proj/weights", "/gemma_expert/model/layers/0/input_layernorm/dense/weights",
		"/gemma_expert/model/norm/dense/weights", "/action_in_proj/weights", "/time_mlp_in/weights", "/time_mlp_out/weights", "/action_out_proj/weights"}
	for _, ki := range []bool{false, true} {
		p := tinyPi05Policy(t, ki)
		rng := rand.New(rand.NewPCG(5, 6))
		b := 2
		img := f32Tensor(rng, b, 2, 8, 8, 3)
		tok := tensors.FromFlatDataAndDimensions([]int32{5, 6, 0, 9, 0, 0}, b, 3)
		act := f32Tensor(rng, b, p.Config.Horizon, p.Config.ActionDim)
		noise := p.Noise(rng, b, true)
		layout := Layout(false, true, false, noise)
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(7))
		names := append(append([]string(nil), vlm...), expert...)
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			loss := p.Loss(scope, layout.Bind(in))
			var vars []*Node
			for _, n := range names {
				v := store.GetVariable(n)
				require.NotNil(t, v, n)
				vars = append(vars, v.NodeValue(g))
			}
			out := []*Node{loss}
			for _, gr := range Gradient(loss, vars...) {
				out = append(out, ReduceAllMax(Abs(gr)))
			}
			return out
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		out, err := e.Exec(img, tok, act, noise[0].Value, noise[1].Value)
		require.NoError(t, err)
		e.Finalize()
		require.Greater(t, tensors.MustCopyFlatData[float32](out[0])[0], float32(0))
		for i, n := range names {
			g := tensors.MustCopyFlatData[float32](out[i+1])[0]
			if i < len(vlm) && ki {
				require.Equal(t, float32(0), g, "knowledge insulation: %s", n)
			} else {
				require.Greater(t, g, float32(0), "knowledge insulation %v: %s", ki, n)
			}
		}
	}
}

// Sampling gives chunks of the robot's action dimensions that depend on the prompt (the state
// reaches the network only through it) and not on PolicyBatch.State.
func TestPi05SampleReadsPromptNotState(t *testing.T) {
	backend := goBackend(t)
	p := tinyPi05Policy(t, false)
	rng := rand.New(rand.NewPCG(3, 4))
	b := 2
	img := f32Tensor(rng, b, 2, 8, 8, 3)
	noise := p.Noise(rng, b, false)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(5))
	layout := Layout(true, false, false, noise)
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{p.Sample(scope, layout.Bind(in))}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	run := func(tok []int32, st *tensors.Tensor) []float32 {
		out, err := e.Exec(img, tensors.FromFlatDataAndDimensions(tok, b, 3), st, noise[0].Value)
		require.NoError(t, err)
		require.Equal(t, []int{b, p.Config.Horizon, p.Config.ActionDim}, out[0].Shape().Dimensions)
		return tensors.MustCopyFlatData[float32](out[0])
	}
	a := run([]int32{5, 6, 0, 9, 0, 0}, f32Tensor(rng, b, 3))
	require.Equal(t, a, run([]int32{5, 6, 0, 9, 0, 0}, f32Tensor(rng, b, 3)))
	require.NotEqual(t, a, run([]int32{5, 7, 0, 9, 0, 0}, f32Tensor(rng, b, 3)))
}
