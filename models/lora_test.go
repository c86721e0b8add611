package models

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// A fresh adapter changes nothing (B = 0), freezes the layer's base weights, and once B is set the
// output is exactly x·W + b + (α/r)·x·A·B; layers the targets do not name get no adapter.
func TestLoRALinear(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	x := tensors.FromFlatDataAndDimensions(randFlat(rng, 2*3*5), 2, 3, 5)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	lora := LoRAConfig{Rank: 2, Alpha: 8, Targets: []string{"q_proj"}}
	run := func() []*tensors.Tensor {
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			Configure(g, GraphOptions{LoRA: lora})
			scope = WithInit(scope)
			return []*Node{Linear(scope.In("q_proj"), in[0], 4, true), Linear(scope.In("other"), in[0], 4, true)}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		out, err := e.Exec(x)
		require.NoError(t, err)
		return out
	}
	value := func(path string) []float64 {
		v := store.GetVariable(path)
		require.NotNil(t, v, path)
		val, err := v.Value()
		require.NoError(t, err)
		return flat(t, val)
	}
	out := run()
	w, b, a := value("/q_proj/weights"), value("/q_proj/biases"), value("/q_proj/lora/a")
	require.Nil(t, store.GetVariable("/other/lora/a"), "other is not a target")
	require.False(t, store.GetVariable("/q_proj/weights").Trainable, "the base weights are frozen")
	require.True(t, store.GetVariable("/other/weights").Trainable)
	require.True(t, store.GetVariable("/q_proj/lora/b").Trainable)
	xs := flat(t, x)
	want := func(bb []float64) []float64 { // x·W + b + 4·x·A·B for x [6, 5]
		out := make([]float64, 6*4)
		for n := range 6 {
			for o := range 4 {
				y := b[o]
				for i := range 5 {
					y += xs[n*5+i] * w[i*4+o]
				}
				for r := range 2 {
					xa := 0.0
					for i := range 5 {
						xa += xs[n*5+i] * a[i*2+r]
					}
					y += 4 * xa * bb[r*4+o]
				}
				out[n*4+o] = y
			}
		}
		return out
	}
	require.InDeltaSlice(t, want(make([]float64, 8)), flat(t, out[0]), 1e-9, "B = 0 at init")
	bb := randFlat(rng, 8)
	require.NoError(t, store.GetVariable("/q_proj/lora/b").SetValue(tensors.FromFlatDataAndDimensions(bb, 2, 4)))
	require.InDeltaSlice(t, want(bb), flat(t, run()[0]), 1e-9)
}

// With activation checkpointing a block stack computes the same loss and gradients.
func TestRematSameGradients(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	x := tensors.FromFlatDataAndDimensions(randFlat(rng, 2*4*8), 2, 4, 8)
	grads := func(remat bool) []float64 {
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(7))
		out := model.MustCallOnce(backend, store, func(scope *model.Scope, x *Node) *Node {
			Configure(x.Graph(), GraphOptions{Remat: remat})
			scope = WithInit(scope)
			y := x
			for i := range 2 {
				y = Block(scope.In("block_%d", i), y, 2, 2, nil)
			}
			loss := ReduceAllSum(Square(y))
			w := store.GetVariable("/block_0/attn/qkv/weights")
			g := Gradient(loss, w.NodeValue(x.Graph()), x)
			return Concatenate([]*Node{Reshape(loss, 1), Reshape(g[0], -1), Reshape(g[1], -1)}, 0)
		}, x)
		return flat(t, out)
	}
	require.InDeltaSlice(t, grads(false), grads(true), 1e-9)
}

// MergeLoRA folds an adapter into its layer's weights: a hand-computed W + (α/r)·A·B, the
// adapter's variables gone, every other variable untouched; a broken adapter is an error.
func TestMergeLoRA(t *testing.T) {
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 3, 2) // [in 3, out 2]
	a := tensors.FromFlatDataAndDimensions([]float32{1, 0, 2}, 3, 1)          // [in, r 1]
	b := tensors.FromFlatDataAndDimensions([]float32{1, -1}, 1, 2)            // [r, out]
	other := tensors.FromFlatDataAndDimensions([]float32{7}, 1)
	vars := map[string]*tensors.Tensor{"/x/q_proj/weights": w, "/x/q_proj/lora/a": a, "/x/q_proj/lora/b": b, "/x/norm/scale": other}
	out, merged, err := MergeLoRA(vars, LoRAConfig{Rank: 1, Alpha: 2}) // scale 2: A·B = [[1,-1],[0,0],[2,-2]]
	require.NoError(t, err)
	require.Equal(t, []string{"/x/q_proj/weights"}, merged)
	require.Equal(t, []float32{3, 0, 3, 4, 9, 2}, tensors.MustCopyFlatData[float32](out["/x/q_proj/weights"]))
	require.Equal(t, []int{3, 2}, out["/x/q_proj/weights"].Shape().Dimensions)
	require.Len(t, out, 2)
	require.Same(t, other, out["/x/norm/scale"])
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6}, tensors.MustCopyFlatData[float32](w), "the input is not modified")
	require.Len(t, vars, 4)
	// Alpha 0 means 2·Rank: the same scale 2.
	out, _, err = MergeLoRA(vars, LoRAConfig{Rank: 1})
	require.NoError(t, err)
	require.Equal(t, []float32{3, 0, 3, 4, 9, 2}, tensors.MustCopyFlatData[float32](out["/x/q_proj/weights"]))

	_, _, err = MergeLoRA(map[string]*tensors.Tensor{"/x/q_proj/weights": w, "/x/q_proj/lora/a": a}, LoRAConfig{Rank: 1})
	require.ErrorContains(t, err, "no /x/q_proj/lora/b")
	_, _, err = MergeLoRA(map[string]*tensors.Tensor{"/x/q_proj/weights": w, "/x/q_proj/lora/a": b, "/x/q_proj/lora/b": a}, LoRAConfig{Rank: 1})
	require.ErrorContains(t, err, "do not factor")
}
