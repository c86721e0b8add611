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

// A key bias of −1e4 on a key gives it weight exp(−1e4) = 0 in f32: the layer must then equal the
// same layer (same weights) with that key masked out, in both layouts of the encoder-layer
// builder. This checks that WithKeyBias reaches the attention logits, on the key axis.
func TestEncoderLayerKeyBiasIsASoftMask(t *testing.T) {
	backend := goBackend(t)
	const b, tt, d, heads = 2, 5, 8, 2
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, b*tt*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	valid := []bool{true, false, true, true, false, true, true, false, true, true} // [B, T]
	bias := make([]float32, len(valid))
	for i, v := range valid {
		if !v {
			bias[i] = -1e4
		}
	}
	hf := EncoderConfig{Hidden: d, Intermediate: 16, Layers: 1, Heads: heads, Eps: 1e-6, Act: "gelu_pytorch_tanh"}
	layers := map[string]func(scope *model.Scope, x *Node) *EncoderLayerBuilder{
		"reel": func(scope *model.Scope, x *Node) *EncoderLayerBuilder {
			return EncoderLayer(scope, x, heads).WithMLPRatio(2)
		},
		"hf": func(scope *model.Scope, x *Node) *EncoderLayerBuilder { return EncoderLayerHF(scope, hf, x) },
	}
	for name, layer := range layers {
		t.Run(name, func(t *testing.T) {
			store := model.NewStore()
			e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
				scope = WithInit(scope) // At: the three layers share one set of weights
				biased := layer(scope.At("layer"), in[0]).WithKeyBias(in[1]).Done()
				masked := layer(scope.At("layer"), in[0]).WithMask(KeyMask(in[2])).Done()
				plain := layer(scope.At("layer"), in[0]).Done()
				return []*Node{biased, masked, plain}
			}, -1, -1, false, true, true)
			require.NoError(t, err)
			defer e.Finalize()
			out, err := e.Exec(tensors.FromFlatDataAndDimensions(x, b, tt, d), tensors.FromFlatDataAndDimensions(bias, b, tt),
				tensors.FromFlatDataAndDimensions(valid, b, tt))
			require.NoError(t, err)
			biased, masked, plain := out[0].Value().([][][]float32), out[1].Value().([][][]float32), out[2].Value().([][][]float32)
			maxDiff, maxEffect := 0.0, 0.0
			for i := range biased {
				for j := range biased[i] {
					for k := range biased[i][j] {
						maxDiff = math.Max(maxDiff, math.Abs(float64(biased[i][j][k]-masked[i][j][k])))
						maxEffect = math.Max(maxEffect, math.Abs(float64(biased[i][j][k]-plain[i][j][k])))
					}
				}
			}
			require.Less(t, maxDiff, 1e-5, "biased vs masked")
			require.Greater(t, maxEffect, 1e-3, "the bias must change the output (else the test proves nothing)")
		})
	}
}

// WithTap sees the per-head outputs [B, T, H, hd] at site+"/attn/heads" and the layer's output at
// site; zeroing every head leaves only the output projection's bias (zero at initialisation), so
// the attention branch adds nothing: the layer is x + MLP(LN(x)).
func TestEncoderLayerTap(t *testing.T) {
	backend := goBackend(t)
	const b, tt, d, heads = 1, 3, 8, 2
	x := make([]float32, b*tt*d)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	sites := map[string][]int{}
	out, err := model.ExecOnceN(backend, model.NewStore(), func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope = WithInit(scope)
		tap := func(site string, v *Node) *Node {
			sites[site] = v.Shape().Dimensions
			if site == "blk/attn/heads" {
				return ZerosLike(v)
			}
			return v
		}
		y := EncoderLayer(scope.At("blk"), in[0], heads).WithTap(tap, "blk").Done()
		want := Add(in[0], MLP(scope.At("blk").At("mlp"), LayerNorm(scope.At("blk").At("ln2"), in[0]), 4*d))
		return []*Node{y, want}
	}, tensors.FromFlatDataAndDimensions(x, b, tt, d))
	require.NoError(t, err)
	require.Equal(t, map[string][]int{"blk/attn/heads": {b, tt, heads, d / heads}, "blk": {b, tt, d}}, sites)
	require.InDeltaSlice(t, tensors.MustCopyFlatData[float32](out[1]), tensors.MustCopyFlatData[float32](out[0]), 1e-6)
}
