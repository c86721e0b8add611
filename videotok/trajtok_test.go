package videotok

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

var tiny = TrajTokConfig{Frames: 2, ImageSize: 8, Stride: 2, FeatDim: 8, Latents: 5, GroupDim: 4, Heads: 2, Layers: 1}

func backend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	t.Cleanup(b.Finalize)
	return b
}

func randomVideo(rng *rand.Rand, b int, c TrajTokConfig) *tensors.Tensor {
	v := make([]float32, b*c.Frames*c.ImageSize*c.ImageSize*3)
	for i := range v {
		v[i] = rng.Float32()
	}
	return tensors.FromFlatDataAndDimensions(v, b, c.Frames, c.ImageSize, c.ImageSize, 3)
}

// run executes TrajTok on a random video and returns masks, logits, features, tokens' appearance
// part (TokenMeans) and active flags.
func runTrajTok(t *testing.T) (masks, logits, feats, means []float32, active []bool) {
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		o := TrajTok(scope, tiny, in[0])
		return []*Node{o.Masks, o.Logits, o.Features, TokenMeans(o.Masks, o.Features), o.Active}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randomVideo(rand.New(rand.NewPCG(1, 2)), 2, tiny))
	require.NoError(t, err)
	return tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1]),
		tensors.MustCopyFlatData[float32](out[2]), tensors.MustCopyFlatData[float32](out[3]),
		tensors.MustCopyFlatData[bool](out[4])
}

func TestTrajTokMasksTokensActive(t *testing.T) {
	masks, logits, feats, means, active := runTrajTok(t)
	B, K, N, C := 2, tiny.Latents, tiny.Pixels(), tiny.FeatDim
	require.Len(t, masks, B*K*N)
	for b := range B {
		owned := make([]bool, K)
		for p := range N {
			// Soft masks: a softmax over the K trajectories at every pixel.
			sum, best := 0.0, 0
			for k := range K {
				sum += float64(masks[(b*K+k)*N+p])
				if logits[(b*K+k)*N+p] > logits[(b*K+best)*N+p] {
					best = k
				}
			}
			require.InDelta(t, 1, sum, 1e-5, "video %d pixel %d", b, p)
			owned[best] = true
		}
		// Active = owns at least one pixel under the hard (argmax) assignment.
		require.Equal(t, owned, active[b*K:(b+1)*K])
		// Tokens are the mask-weighted means of the features.
		for k := range K {
			mass := 0.0
			want := make([]float64, C)
			for p := range N {
				m := float64(masks[(b*K+k)*N+p])
				mass += m
				for c := range C {
					want[c] += m * float64(feats[(b*N+p)*C+c])
				}
			}
			for c := range C {
				require.InDelta(t, want[c]/(mass+1e-6), means[(b*K+k)*C+c], 1e-4, "video %d token %d channel %d", b, k, c)
			}
		}
	}
}

// TestTrajTokGroupingReadsDetachedFeatures: the grouping (masks) has no gradient path into the
// backbone; the tokens do (through the mask-weighted means).
func TestTrajTokGroupingReadsDetachedFeatures(t *testing.T) {
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		o := TrajTok(scope, tiny, in[0])
		stem := scope.Store().GetVariable("/backbone/stem/kernel").NodeValue(g)
		w := Iota(g, o.Masks.Shape(), 2) // a fixed, non-uniform weighting of the masks
		w = ConvertDType(w, dtypes.Float32)
		gm := Gradient(ReduceAllSum(Mul(o.Masks, w)), stem)[0]
		gt := Gradient(ReduceAllSum(Mul(o.Tokens, o.Tokens)), stem)[0]
		return []*Node{ReduceAllSum(Abs(gm)), ReduceAllSum(Abs(gt))}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randomVideo(rand.New(rand.NewPCG(1, 2)), 2, tiny))
	require.NoError(t, err)
	require.Zero(t, out[0].Value().(float32), "masks must not depend on the backbone through gradients")
	require.Greater(t, out[1].Value().(float32), float32(0), "tokens must train the backbone")
}

func TestGroupingScaleClamp(t *testing.T) {
	out, err := ExecOnce(backend(t), func(g *Graph) *Node {
		return GroupingScale(Const(g, []float32{float32(InitLogScale), -50, 50}))
	})
	require.NoError(t, err)
	v := out.Value().([]float32)
	require.InDelta(t, math.Log1p(16)+1, v[0], 1e-5) // softplus(ln 16) + 1 = ln 17 + 1
	require.InDelta(t, 1, v[1], 1e-6)                // never below 1
	require.Equal(t, float32(20), v[2])              // clamped at 20
}

func TestTubelets(t *testing.T) {
	c := TubeletConfig{Frames: 4, ImageSize: 8, Tubelet: 2, Patch: 4, Dim: 6}
	require.Equal(t, 8, c.NumTokens())
	store := model.NewStore()
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{Tubelets(scope, c, in[0])}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randomVideo(rand.New(rand.NewPCG(1, 2)), 3, TrajTokConfig{Frames: 4, ImageSize: 8}))
	require.NoError(t, err)
	require.Equal(t, []int{3, 8, 6}, out[0].Shape().Dimensions)
}
