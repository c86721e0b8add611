package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// Under SetPrecision(g, "bf16") a transformer block's products run in bf16 while its parameters,
// output and gradients stay f32: outputs and weight gradients agree with f32 to bf16's precision
// (relative error ~2⁻⁸ per rounding), and differ from it (so bf16 was really used).
func TestBF16BlockMatchesF32(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const b, tt, d = 2, 8, 32
	x := make([]float32, b*tt*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xT := tensors.FromFlatDataAndDimensions(x, b, tt, d)
	run := func(precision string) (out, grad []float32, dts []dtypes.DType) {
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(7))
		e, err := model.NewExec(backend, store, func(scope *model.Scope, x *Node) []*Node {
			g := x.Graph()
			SetPrecision(g, precision)
			y := Block(WithInit(scope), x, 4, 2, nil)
			loss := ReduceAllSum(Mul(y, y))
			grads := scope.BuildTrainableVariablesGradientsGraph(loss)
			for v := range store.IterVariables() {
				if v.Trainable {
					dts = append(dts, v.DType())
				}
			}
			return []*Node{y, grads[0]}
		})
		require.NoError(t, err)
		defer e.Finalize()
		outs, err := e.Exec(xT)
		require.NoError(t, err)
		o, err := tensors.CopyFlatData[float32](outs[0])
		require.NoError(t, err)
		gr, err := tensors.CopyFlatData[float32](outs[1])
		require.NoError(t, err)
		return o, gr, dts
	}
	y32, g32, _ := run("f32")
	y16, g16, dts := run("bf16")
	for _, dt := range dts {
		require.Equal(t, dtypes.Float32, dt, "parameters stay f32 under bf16")
	}
	relErr := func(a, b []float32) float64 {
		var num, den float64
		for i := range a {
			num += float64(a[i]-b[i]) * float64(a[i]-b[i])
			den += float64(b[i]) * float64(b[i])
		}
		return math.Sqrt(num / den)
	}
	ey, eg := relErr(y16, y32), relErr(g16, g32)
	t.Logf("bf16 vs f32: output rel. error %.2g, gradient rel. error %.2g", ey, eg)
	require.Less(t, ey, 2e-2)
	require.Less(t, eg, 5e-2)
	require.Greater(t, ey, 1e-5, "bf16 products must differ from f32")
	require.Greater(t, eg, 1e-5)
}
