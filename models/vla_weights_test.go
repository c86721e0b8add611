package models

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/losses"
)

// Sample weights (RA-BC): the weighted loss is Σ w·lᵢ / Σ w of the head's per-example losses,
// whose mean is the unweighted loss; an example of weight 0 does not change the gradients (while
// with weight 1 the same change does).
func TestPolicySampleWeights(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyPolicy()
	head := FlowMatchingHead{Net: cfg, Convention: losses.FlowPi0, TimeSamples: 2, EulerSteps: 2}
	p := MolmoBotPolicy{Net: cfg, Head: head, Norm: Normalization{StateOffset: make([]float32, 4), StateScale: []float32{1, 1, 1, 1},
		ActionOffset: make([]float32, 3), ActionScale: []float32{1, 1, 1}}}
	require.NoError(t, p.Validate())
	rng := rand.New(rand.NewPCG(4, 5))
	b := 2
	img := randFlat32(rng, b*2*8*8*3)
	tok := tensors.FromFlatDataAndDimensions([]int32{5, 6, 0, 1, 0, 0}, b, 3)
	st := randFlat32(rng, b*4)
	act := randFlat32(rng, b*5*3)
	noise := head.Noise(rng, b, true)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	batchOf := func(in []*Node) PolicyBatch {
		return PolicyBatch{Images: in[0], Tokens: in[1], State: in[2], Actions: in[3], Noise: map[string]*Node{"noise": in[4], "time": in[5]}}
	}
	weighted, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope.SetTraining(g, true)
		batch := batchOf(in)
		batch.Weights = in[6]
		loss := p.Loss(scope, batch)
		return []*Node{loss, Gradient(loss, store.GetVariable("/policy/expert/action_out/weights").NodeValue(g))[0]}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer weighted.Finalize()
	plain, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope.SetTraining(g, true)
		return []*Node{p.Loss(scope, batchOf(in))}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer plain.Finalize()
	inputs := func(img, act []float32) []any {
		return []any{tensors.FromFlatDataAndDimensions(img, b, 2, 8, 8, 3), tok, tensors.FromFlatDataAndDimensions(st, b, 4),
			tensors.FromFlatDataAndDimensions(act, b, 5, 3), noise[0].Value, noise[1].Value}
	}
	f64 := func(x *tensors.Tensor) []float64 {
		var out []float64
		for _, v := range tensors.MustCopyFlatData[float32](x) {
			out = append(out, float64(v))
		}
		return out
	}
	run := func(img, act []float32, w ...float32) (loss float64, grad []float64) {
		o, err := weighted.Exec(append(inputs(img, act), tensors.FromFlatDataAndDimensions(w, b))...)
		require.NoError(t, err)
		return f64(o[0])[0], f64(o[1])
	}
	const eps = 1e-6
	l1, gradA := run(img, act, 1, 0)
	l2, _ := run(img, act, 0, 1)
	l1, l2 = l1*(1+eps), l2*(1+eps) // the per-example losses
	o, err := plain.Exec(inputs(img, act)...)
	require.NoError(t, err)
	require.InDelta(t, (l1+l2)/2, f64(o[0])[0], 1e-5*l1) // the unweighted loss is their mean
	lw, _ := run(img, act, 0.5, 1.5)
	require.InDelta(t, (0.5*l1+1.5*l2)/(2+eps), lw, 1e-5*l1)

	// Change the second example's images and actions.
	img2, act2 := append([]float32(nil), img...), append([]float32(nil), act...)
	for i := len(img2) / 2; i < len(img2); i++ {
		img2[i] = 1 - img2[i]
	}
	for i := len(act2) / 2; i < len(act2); i++ {
		act2[i] += 3
	}
	_, gradB := run(img2, act2, 1, 0)
	require.Equal(t, gradA, gradB)
	_, gradC := run(img, act, 1, 1)
	_, gradD := run(img2, act2, 1, 1)
	require.NotEqual(t, gradC, gradD)
}
