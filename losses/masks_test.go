package losses

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

	"github.com/reelml/reel/internal/gradcheck"
)

const (
	lossTol    = 1e-5
	fdEps      = 1e-6 // central-difference step (float64)
	gradRelTol = 1e-5
	gradAbsTol = 1e-8
)

func goBackend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	t.Cleanup(b.Finalize)
	return b
}

func scalarOf(t *testing.T, x *tensors.Tensor) float64 {
	t.Helper()
	v, ok := x.Value().(float64)
	require.True(t, ok, "expected a float64 scalar, got %s", x.Shape())
	return v
}

func flatOf(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	v, err := tensors.CopyFlatData[float64](x)
	require.NoError(t, err)
	return v
}

// maskCase is a [B, K, N] prediction/target pair with [B, K] weights, flattened row-major.
type maskCase struct {
	b, k, n              int
	pred, target, weight []float64
}

func randomMaskCase(rng *rand.Rand, b, k, n int) *maskCase {
	c := &maskCase{b: b, k: k, n: n,
		pred: make([]float64, b*k*n), target: make([]float64, b*k*n), weight: make([]float64, b*k)}
	for i := range c.pred {
		c.pred[i] = 0.02 + 0.96*rng.Float64()
		if rng.IntN(2) == 0 {
			c.target[i] = 1
		}
	}
	for i := range c.weight {
		c.weight[i] = 1
		if rng.IntN(3) == 0 {
			c.weight[i] = 0
		}
	}
	c.weight[0] = 1
	return c
}

func (c *maskCase) tensors() []any {
	return []any{
		tensors.FromFlatDataAndDimensions(c.pred, c.b, c.k, c.n),
		tensors.FromFlatDataAndDimensions(c.target, c.b, c.k, c.n),
		tensors.FromFlatDataAndDimensions(c.weight, c.b, c.k),
	}
}

// refWeightedMean is Σ w·ℓ / Σ w over pairs (0 when Σ w = 0), with ℓ(pair) from perPair.
func (c *maskCase) refWeightedMean(perPair func(p, t []float64) float64) float64 {
	var num, den float64
	for pair := 0; pair < c.b*c.k; pair++ {
		p := c.pred[pair*c.n : (pair+1)*c.n]
		tt := c.target[pair*c.n : (pair+1)*c.n]
		num += c.weight[pair] * perPair(p, tt)
		den += c.weight[pair]
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func refDice(p, t []float64) float64 {
	var inter, sp, st float64
	for i := range p {
		inter += p[i] * t[i]
		sp += p[i]
		st += t[i]
	}
	return 1 - (2*inter+1)/(sp+st+1)
}

func refFocal(alpha, gamma float64) func(p, t []float64) float64 {
	return func(p, t []float64) float64 {
		var sum float64
		for i := range p {
			pc := math.Min(math.Max(p[i], 1e-6), 1-1e-6)
			sum -= t[i]*alpha*math.Pow(1-pc, gamma)*math.Log(pc) + (1-t[i])*(1-alpha)*math.Pow(pc, gamma)*math.Log(1-pc)
		}
		return sum / float64(len(p))
	}
}

// maskLosses executes DiceLoss and FocalLoss with (α, γ) = (0.25, 2) and (0.5, 1.5).
func maskLosses(t *testing.T, backend compute.Backend, c *maskCase) (dice, focal, focal2 float64) {
	t.Helper()
	out, err := ExecOnceN(backend, func(pred, target, weight *Node) []*Node {
		return []*Node{
			DiceLoss(pred, target, weight),
			FocalLoss(pred, target, weight, DefaultFocalAlpha, DefaultFocalGamma),
			FocalLoss(pred, target, weight, 0.5, 1.5),
		}
	}, c.tensors()...)
	require.NoError(t, err)
	return scalarOf(t, out[0]), scalarOf(t, out[1]), scalarOf(t, out[2])
}

func TestDiceAndFocalLoss(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(11, 12))
	c := randomMaskCase(rng, 2, 3, 7)
	// Exercise the clipping of the focal loss: p = 0 and p = 1, right and wrong.
	c.pred[0], c.target[0] = 0, 0
	c.pred[1], c.target[1] = 1, 1
	c.pred[2], c.target[2] = 0, 1
	c.pred[3], c.target[3] = 1, 0
	// A soft target.
	c.target[4] = 0.3

	dice, focal, focal2 := maskLosses(t, backend, c)
	require.InDelta(t, c.refWeightedMean(refDice), dice, lossTol)
	require.InDelta(t, c.refWeightedMean(refFocal(0.25, 2)), focal, lossTol)
	require.InDelta(t, c.refWeightedMean(refFocal(0.5, 1.5)), focal2, lossTol)
	require.Greater(t, dice, 0.1)
	require.Greater(t, focal, 0.01)

	// A zero-weight pair does not change the losses, whatever it holds.
	zero := -1
	for i, w := range c.weight {
		if w == 0 {
			zero = i
			break
		}
	}
	require.GreaterOrEqual(t, zero, 0, "the case must have a padding pair")
	for i := zero * c.n; i < (zero+1)*c.n; i++ {
		c.pred[i] = rng.Float64()
		c.target[i] = 1 - c.target[i]
	}
	dice2, focalB, focal2B := maskLosses(t, backend, c)
	require.InDelta(t, dice, dice2, 1e-12)
	require.InDelta(t, focal, focalB, 1e-12)
	require.InDelta(t, focal2, focal2B, 1e-12)

	// ... and the weighted mean is over the weighted pairs only: doubling every weight changes nothing.
	for i := range c.weight {
		c.weight[i] *= 2
	}
	dice3, _, _ := maskLosses(t, backend, c)
	require.InDelta(t, dice, dice3, 1e-12)

	// All weights zero: the loss is 0, not NaN.
	for i := range c.weight {
		c.weight[i] = 0
	}
	dice4, focal4, _ := maskLosses(t, backend, c)
	require.Zero(t, dice4)
	require.Zero(t, focal4)
}

func TestDiceFocalPerfectPrediction(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(13, 14))
	c := randomMaskCase(rng, 2, 2, 9)
	copy(c.pred, c.target)
	// An empty target predicted empty is perfect too.
	for i := 0; i < c.n; i++ {
		c.pred[i], c.target[i] = 0, 0
	}
	dice, focal, _ := maskLosses(t, backend, c)
	require.InDelta(t, 0, dice, 1e-12)
	// Focal at the clipped probabilities: −(1−α)·(1e-6)^γ·log(1−1e-6) per pixel, ≈ 0.
	require.InDelta(t, 0, focal, 1e-12)
}

// refInfoNCE is the symmetric CLIP loss in float64.
func refInfoNCE(a, b []float64, batch, dim int, tau float64) float64 {
	normalise := func(x []float64) [][]float64 {
		out := make([][]float64, batch)
		for i := range out {
			row := x[i*dim : (i+1)*dim]
			var s float64
			for _, v := range row {
				s += v * v
			}
			out[i] = make([]float64, dim)
			for d, v := range row {
				out[i][d] = v / math.Sqrt(s)
			}
		}
		return out
	}
	an, bn := normalise(a), normalise(b)
	logits := make([][]float64, batch)
	for i := range logits {
		logits[i] = make([]float64, batch)
		for j := range logits[i] {
			for d := 0; d < dim; d++ {
				logits[i][j] += an[i][d] * bn[j][d]
			}
			logits[i][j] /= tau
		}
	}
	logSumExp := func(xs []float64) float64 {
		mx := math.Inf(-1)
		for _, x := range xs {
			mx = math.Max(mx, x)
		}
		var s float64
		for _, x := range xs {
			s += math.Exp(x - mx)
		}
		return mx + math.Log(s)
	}
	var rows, cols float64
	for i := 0; i < batch; i++ {
		rows += logSumExp(logits[i]) - logits[i][i]
		col := make([]float64, batch)
		for j := range col {
			col[j] = logits[j][i]
		}
		cols += logSumExp(col) - logits[i][i]
	}
	return (rows/float64(batch) + cols/float64(batch)) / 2
}

func TestInfoNCE(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(15, 16))
	const batch, dim = 4, 5
	a, b := make([]float64, batch*dim), make([]float64, batch*dim)
	for i := range a {
		a[i], b[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	tau := 0.3

	exec, err := NewExec(backend, func(a, b, tau *Node) []*Node {
		loss := InfoNCE(a, b, tau)
		grads := Gradient(loss, a, tau)
		return []*Node{loss, grads[0], grads[1]}
	})
	require.NoError(t, err)
	defer exec.Finalize()
	run := func(a, b []float64, tau float64) []*tensors.Tensor {
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(a, batch, dim),
			tensors.FromFlatDataAndDimensions(b, batch, dim), tensors.FromScalar(tau))
		require.NoError(t, err)
		return out
	}

	outs := run(a, b, tau)
	require.InDelta(t, refInfoNCE(a, b, batch, dim, tau), scalarOf(t, outs[0]), lossTol)
	require.Greater(t, scalarOf(t, outs[0]), 0.5)

	// Scale invariance of the inputs (they are L2-normalised inside).
	scaled := make([]float64, len(a))
	for i := range a {
		scaled[i] = 3 * a[i]
	}
	require.InDelta(t, scalarOf(t, outs[0]), scalarOf(t, run(scaled, b, tau)[0]), 1e-12)

	// Symmetric: swapping a and b transposes the logits and leaves the loss unchanged.
	require.InDelta(t, scalarOf(t, outs[0]), scalarOf(t, run(b, a, tau)[0]), 1e-12)

	// a = b with a tiny temperature: every positive dominates its row and column, loss ≈ 0.
	tiny := run(a, a, 1e-3)
	require.InDelta(t, 0, scalarOf(t, tiny[0]), 1e-6)
	require.False(t, math.IsNaN(flatOf(t, tiny[1])[0]))

	// Gradient (graph.Gradient) w.r.t. a and τ against central differences of the graph's loss.
	tauS := []float64{tau}
	lossAt := func() float64 { return scalarOf(t, run(a, b, tauS[0])[0]) }
	requireGradClose(t, "dInfoNCE/da", flatOf(t, outs[1]), gradcheck.Numeric(a, fdEps, lossAt))
	requireGradClose(t, "dInfoNCE/dτ", []float64{scalarOf(t, outs[2])}, gradcheck.Numeric(tauS, fdEps, lossAt))
}

func TestLearnableTemperature(t *testing.T) {
	backend := goBackend(t)
	store := model.NewStore()
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, g *Graph) *Node {
		return LearnableTemperature(scope.In("clip"), g, dtypes.Float32)
	})
	require.NoError(t, err)
	out, err := exec.Exec()
	require.NoError(t, err)
	exec.Finalize()
	require.Equal(t, dtypes.Float32, out[0].DType())
	require.InDelta(t, 0.07, float64(out[0].Value().(float32)), 1e-6)

	v := store.GetVariable("/clip/logit_scale")
	require.NotNil(t, v)
	require.True(t, v.Trainable)
	require.Equal(t, dtypes.Float32, v.DType())
	require.InDelta(t, math.Log(1/0.07), float64(v.MustValue().Value().(float32)), 1e-6)

	// Beyond the clamp: 1/τ = 100 at most. (A fresh executor: on the Go backend inference graphs
	// embed variable values as constants.)
	require.NoError(t, v.SetValue(tensors.FromScalar(float32(10))))
	out, err = model.CallOnceN(backend, store, func(scope *model.Scope, g *Graph) *Node {
		return LearnableTemperature(scope.In("clip"), g, dtypes.Float32)
	})
	require.NoError(t, err)
	require.InDelta(t, 0.01, float64(out[0].Value().(float32)), 1e-7)

	// The temperature is trainable: the gradient of a loss in τ reaches logit_scale.
	store2 := model.NewStore()
	out, err = model.CallOnceN(backend, store2, func(scope *model.Scope, g *Graph) []*Node {
		scope.SetTraining(g, true)
		tau := LearnableTemperature(scope, g, dtypes.Float64)
		return scope.BuildTrainableVariablesGradientsGraph(tau)
	})
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.InDelta(t, -0.07, scalarOf(t, out[0]), 1e-12, "dτ/d logit_scale = −τ")
}

func requireGradClose(t *testing.T, name string, analytic, numeric []float64) {
	t.Helper()
	gradcheck.RequireClose(t, name, analytic, numeric, gradcheck.Tolerance{Rel: gradRelTol, Abs: gradAbsTol})
}
