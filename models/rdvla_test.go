package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

func TestSampleDepth(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, mean := range []float64{4, 32} {
		const n = 20000
		sum, clamped := 0.0, 0
		for range n {
			r := SampleDepth(rng, mean)
			require.GreaterOrEqual(t, r, 1)
			require.LessOrEqual(t, r, MaxTrainDepth)
			if r == MaxTrainDepth {
				clamped++
			}
			sum += float64(r)
		}
		got := sum / n
		if mean == 4 { // E[r] = E[Poisson(e^τ)] + 1 = r̄ + 1, clamping negligible
			require.InDelta(t, 5, got, 0.1)
			require.Zero(t, clamped)
		} else { // the tail above 64 is clamped: mean a bit under 33
			require.InDelta(t, 32, got, 1.5)
			require.Greater(t, clamped, 0)
		}
	}
	for _, c := range [][4]int{{3, 8, 0, 3}, {8, 8, 0, 8}, {20, 8, 12, 8}} {
		ng, g := SplitDepth(c[0], c[1])
		require.Equal(t, [2]int{c[2], c[3]}, [2]int{ng, g})
	}
}

// Truncated BPTT: gradients reach the weights only through the last `grad` iterations; the
// no-grad prefix (a While loop) and the skipped unrolled slots contribute nothing, and the weight
// gradient equals that of a plain unrolled graph started from the detached state.
func TestRecurTruncatedGradients(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(1, 1))
	s0 := tensors.FromFlatDataAndDimensions(randFlat(rng, 2*3), 2, 3)
	const maxGrad = 4
	step := func(scope *model.Scope, first bool) func(s *Node) *Node {
		built := !first
		return func(s *Node) *Node {
			var sc *model.Scope
			if built {
				sc = scope.Shared("w")
			} else {
				sc, built = scope.In("w"), true
			}
			w := sc.VariableWithShape("m", shapes.Make(dtypes.Float64, 3, 3)).NodeValue(s.Graph())
			return Tanh(AddScalar(MatMul(s, w), 0.1))
		}
	}
	for _, depth := range []int{3, 4, 9, 11} {
		noGrad, grad := SplitDepth(depth, maxGrad)
		ngMask, gMask := DepthMasks(depth, maxGrad)
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(5))
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			scope.SetTraining(g, true)
			scope = WithInit(scope)
			var probes []*Node
			probe := func(j int, s *Node) *Node {
				p := ZerosLike(s)
				probes = append(probes, p)
				return Add(s, p)
			}
			s := RecurTruncated(step(scope, true), in[0], in[1], in[2], probe)
			loss := ReduceAllSum(Square(s))
			w := store.GetVariable("/w/m").NodeValue(g)
			grads := Gradient(loss, append([]*Node{in[0], w}, probes...)...)
			out := []*Node{s, grads[1], ReduceAllSum(Abs(grads[0]))}
			for _, gp := range grads[2:] {
				out = append(out, ReduceAllSum(Abs(gp)))
			}
			// Reference: noGrad plain steps, stop gradient, grad plain steps.
			ref := in[0]
			st := step(scope, false)
			for range noGrad {
				ref = st(ref)
			}
			ref = StopGradient(ref)
			for range grad {
				ref = st(ref)
			}
			refGrad := Gradient(ReduceAllSum(Square(ref)), w)[0]
			return append(out, ref, refGrad)
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		out, err := e.Exec(s0, tensors.FromFlatDataAndDimensions(ngMask, len(ngMask)), gMask)
		require.NoError(t, err)
		e.Finalize()
		n := len(out)
		require.InDeltaSlice(t, flat(t, out[n-2]), flat(t, out[0]), 1e-12, "depth %d: state", depth)
		require.InDeltaSlice(t, flat(t, out[n-1]), flat(t, out[1]), 1e-12, "depth %d: weight gradient", depth)
		if noGrad > 0 {
			require.Zero(t, flat(t, out[2])[0], "depth %d: no gradient reaches s0 through the no-grad loop", depth)
		} else {
			require.Greater(t, flat(t, out[2])[0], 0.0)
		}
		for j := range maxGrad {
			gp := flat(t, out[3+j])[0]
			if j < maxGrad-grad { // a skipped slot passes the state through unchanged
				require.InDelta(t, flat(t, out[3+maxGrad-grad])[0], gp, 1e-12, "depth %d: skipped slot %d", depth, j)
			} else {
				require.Greater(t, gp, 0.0, "depth %d: backpropagated slot %d", depth, j)
			}
		}
	}
}

func TestDepthMasks(t *testing.T) {
	ng, g := DepthMasks(3, 8)
	require.Empty(t, ng)
	require.Equal(t, []bool{false, false, false, false, false, true, true, true}, g)
	ng, g = DepthMasks(13, 8) // 5 no-grad iterations in a bucket of 8
	require.Equal(t, []bool{true, true, true, true, true, false, false, false}, ng)
	require.Equal(t, []bool{true, true, true, true, true, true, true, true}, g)
	ng, _ = DepthMasks(64, 8)
	require.Len(t, ng, 64)
}

// On the contraction s ↦ s/2 read out as is, MSE(a_k, a_{k−1}) = c²/4^k for s0 = c: with ε = 1e-3
// an example with c = 1 stops at k = 5 (1/1024) and one with c = 4 at k = 7 (16/16384), its
// output (here the readout in "raw units", 10·s + 1) frozen there while the other goes on. A
// negative threshold runs the cap; so does a cap below convergence.
func TestAdaptiveIterateContraction(t *testing.T) {
	run := func(maxIters int, thr float64) ([][]float32, []int, int) {
		s := [][]float32{{1, 1, 1}, {4, 4, 4}}
		calls := 0
		out, iters, err := AdaptiveIterate(func(k int) ([][]float32, [][]float32, error) {
			calls++
			require.Equal(t, calls, k)
			next := make([][]float32, len(s))
			raw := make([][]float32, len(s))
			for i := range s {
				next[i] = make([]float32, len(s[i]))
				raw[i] = make([]float32, len(s[i]))
				for j := range s[i] {
					next[i][j] = s[i][j] / 2
					raw[i][j] = 10*next[i][j] + 1
				}
			}
			s = next
			return next, raw, nil
		}, maxIters, thr)
		require.NoError(t, err)
		return out, iters, calls
	}
	out, iters, calls := run(32, 1e-3)
	require.Equal(t, []int{5, 7}, iters)
	require.Equal(t, 7, calls, "the loop ends when every example has stopped")
	require.InDelta(t, 10/math.Pow(2, 5)+1, out[0][0], 1e-6)
	require.InDelta(t, 40/math.Pow(2, 7)+1, out[1][2], 1e-6)
	_, iters, _ = run(6, -1)
	require.Equal(t, []int{6, 6}, iters)
	_, iters, _ = run(4, 1e-3)
	require.Equal(t, []int{4, 4}, iters)
}
