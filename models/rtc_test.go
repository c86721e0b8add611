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

// Real-time chunking on a random π0 (every Euler step's VJP runs through the joint attention):
// with no overlap (weights 0) SampleInpainting is Sample bit for bit; with a hard mask on the first
// two actions (β = 1/Δτ) the chunk starts on the committed actions (within 0.05, and ten times
// closer than plain sampling) and the free actions move too (the guidance reaches them through the
// network), as the paper intends.
func TestPi0InpaintingContinuesCommittedActions(t *testing.T) {
	backend := goBackend(t)
	p, cfg, b := tinyPi0Policy(t)
	p.Config.EulerSteps = 10
	cfg.EulerSteps = 10
	rng := rand.New(rand.NewPCG(11, 12))
	img, tok, st, _, _ := tinyPi0Batch(rng, p, b)
	noise := p.Noise(rng, b, false)
	h, a := cfg.Horizon, cfg.ActionDim
	prev := make([]float32, b*h*a)
	for i := range prev {
		prev[i] = float32(2 * math.Sin(float64(i)))
	}
	hard := make([]float32, b*h)
	for i := range b {
		hard[i*h], hard[i*h+1] = 1, 1
	}
	layout := Layout(true, false, false, noise)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(7))
	run := func(weights []float32) []float32 { // nil: plain sampling
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			batch := layout.Bind(in[:len(layout)])
			if weights == nil {
				return []*Node{p.Sample(scope, batch)}
			}
			prev, w := in[len(layout)], in[len(layout)+1]
			return []*Node{p.SampleInpainting(scope, batch, Inpainting{Prev: prev, Weights: w, MaxGuidance: Scalar(g, prev.DType(), 10)})}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		in := []any{img, tok, st, noise[0].Value}
		if weights != nil {
			in = append(in, tensors.FromFlatDataAndDimensions(prev, b, h, a), tensors.FromFlatDataAndDimensions(weights, b, h))
		}
		out, err := e.Exec(in...)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out[0])
	}
	plain, zero, guided := run(nil), run(make([]float32, b*h)), run(hard)
	require.Equal(t, plain, zero, "no overlap: plain sampling")
	var free, before, after float64
	for i := range b {
		for k := range h {
			for j := range a {
				x := i*h*a + k*a + j
				if k < 2 {
					require.InDelta(t, prev[x], guided[x], 0.05, "example %d action %d dim %d (plain %v)", i, k, j, plain[x])
					before += math.Abs(float64(plain[x] - prev[x]))
					after += math.Abs(float64(guided[x] - prev[x]))
				} else {
					free += math.Abs(float64(guided[x] - plain[x]))
				}
			}
		}
	}
	require.Less(t, after, 0.1*before, "the committed prefix: mean distance %g guided, %g plain", after/float64(2*a*b), before/float64(2*a*b))
	require.Greater(t, free, 1e-3, "the free actions follow the guided prefix")
}

// A chunk-regression head samples no flow and cannot be inpainted.
func TestInpaintsOnlyFlows(t *testing.T) {
	cfg := tinyPolicy()
	require.True(t, MolmoBotPolicy{Net: cfg, Head: FlowMatchingHead{Net: cfg}}.Inpaints())
	require.False(t, MolmoBotPolicy{Net: cfg, Head: ChunkRegressionHead{Net: cfg}}.Inpaints())
	require.True(t, Pi0Policy{}.Inpaints())
}
