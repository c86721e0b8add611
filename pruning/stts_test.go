package pruning

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

	"github.com/reelml/reel/models"
)

func randTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	return models.NormalTensor(rng, dims...)
}

func TestSTTSScores(t *testing.T) {
	const B, T, G, D = 2, 4, 3, 8
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		s, raw := Score(scope, in[0])
		return []*Node{s, raw}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randTensor(rand.New(rand.NewPCG(1, 1)), B, T, G, D))
	require.NoError(t, err)
	s := tensors.MustCopyFlatData[float32](out[0])
	for b := range B {
		lo, hi := math.Inf(1), math.Inf(-1)
		for ti := range T {
			for gi := range G {
				v := float64(s[(b*T+ti)*G+gi])
				if ti == 0 {
					require.Equal(t, 1.0, v, "frame-0 tokens score exactly 1")
					continue
				}
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		require.InDelta(t, math.Exp(-2), lo, 1e-5, "normalised minimum is e⁻²")
		require.InDelta(t, 1, hi, 1e-4, "normalised maximum is 1")
	}
}

// TestSTTSGradientPaths: the scorer learns from the attention bias and the auxiliary loss only;
// the pruning decision passes no gradient.
func TestSTTSGradientPaths(t *testing.T) {
	const B, T, G, D = 2, 3, 4, 8
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		x := in[0]
		scores, raw := Score(scope.In("score"), x)
		w := scope.Store().GetVariable("/score/fc1/weights").NodeValue(g)
		flat := Reshape(x, B, T*G, D)
		rank := Reshape(scores, B, T*G)
		kept, _ := Prune(flat, rank, 5, G)
		weights := ConvertDType(Iota(g, kept.Shape(), 2), dtypes.Float32)
		viaPrune := Gradient(ReduceAllSum(Mul(kept, weights)), w)[0]
		biased := models.EncoderLayer(scope.In("block"), flat, 2).WithMLPRatio(2).WithKeyBias(Log(rank)).Done()
		viaBias := Gradient(ReduceAllSum(Mul(biased, ConvertDType(Iota(g, biased.Shape(), 2), dtypes.Float32))), w)[0]
		viaAux := Gradient(AuxLoss(raw, x), w)[0]
		abs := func(n *Node) *Node { return ReduceAllSum(Abs(n)) }
		return []*Node{abs(viaPrune), abs(viaBias), abs(viaAux)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randTensor(rand.New(rand.NewPCG(2, 2)), B, T, G, D))
	require.NoError(t, err)
	require.Zero(t, out[0].Value().(float32), "top-k selection must not pass gradients to the scorer")
	require.Greater(t, out[1].Value().(float32), float32(0), "log(score) attention bias trains the scorer")
	require.Greater(t, out[2].Value().(float32), float32(0), "the auxiliary loss trains the scorer")
}

func TestPruneKeepsTopKInOrderAndFirstFrame(t *testing.T) {
	const N, D, k, first = 8, 2, 4, 2
	x := make([]float32, N*D)
	for i := range N {
		x[i*D], x[i*D+1] = float32(i), float32(10*i)
	}
	// Ranks: the first-frame tokens (0, 1) are ranked lowest but must be kept.
	rank := []float32{0.1, 0.2, 0.3, 0.3, 0.95, 0.5, 0.5, 0.2}
	out, err := ExecOnceN(backend(t), func(g *Graph) []*Node {
		kept, mask := Prune(Const(g, [][][]float32{reshape2(x, N, D)}), Const(g, [][]float32{rank}), k, first)
		return []*Node{kept, mask}
	})
	require.NoError(t, err)
	mask := tensors.MustCopyFlatData[bool](out[1])
	require.Equal(t, []bool{true, true, false, false, true, true, false, false}, mask, "frame 0 + top-2 of the rest (0.95, then 0.5 at the earlier index)")
	require.Equal(t, []float32{0, 0, 1, 10, 4, 40, 5, 50}, tensors.MustCopyFlatData[float32](out[0]), "kept rows, original order")
	require.Equal(t, 4, KeepCount(8, 2, 0.5))
	require.Equal(t, 2, KeepCount(8, 2, 0.1), "never fewer than the first frame")
	require.Equal(t, 8, KeepCount(8, 2, 1))
}

func reshape2(v []float32, r, c int) [][]float32 {
	out := make([][]float32, r)
	for i := range out {
		out[i] = v[i*c : (i+1)*c]
	}
	return out
}

func TestGroupPoolShape(t *testing.T) {
	store := model.NewStore()
	e, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{GroupPool(scope, in[0], 6, 3)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(randTensor(rand.New(rand.NewPCG(3, 3)), 2, 36, 8))
	require.NoError(t, err)
	require.Equal(t, []int{2, 4, 8}, out[0].Shape().Dimensions)
}

func backend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	t.Cleanup(b.Finalize)
	return b
}
