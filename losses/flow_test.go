package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/stretchr/testify/require"
)

func TestFlowInterpolateConventions(t *testing.T) {
	backend := goBackend(t)
	a := [][]float64{{1, 2}, {3, -1}}
	eps := [][]float64{{0.5, 0.5}, {-1, 2}}
	times := []float64{0.25, 0.75}
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		out := MustExecOnceN(backend, func(a, e, tt *Node) (*Node, *Node) { return c.Interpolate(a, e, tt) }, a, eps, times)
		xt, u := flatOf(t, out[0]), flatOf(t, out[1])
		for i := range 2 {
			for j := range 2 {
				tm := times[i]
				wantX, wantU := (1-tm)*eps[i][j]+tm*a[i][j], a[i][j]-eps[i][j]
				if c == FlowPi0 {
					wantX, wantU = tm*eps[i][j]+(1-tm)*a[i][j], eps[i][j]-a[i][j]
				}
				require.InDelta(t, wantX, xt[2*i+j], 1e-12, "%s x_t[%d,%d]", c, i, j)
				require.InDelta(t, wantU, u[2*i+j], 1e-12, "%s u[%d,%d]", c, i, j)
			}
		}
	}
}

// A constant-velocity field moves every point by exactly ±c over the unit time interval.
func TestEulerConstantField(t *testing.T) {
	backend := goBackend(t)
	x0 := []float64{0.3, -0.7}
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		out := MustExecOnce(backend, func(x *Node) *Node {
			return c.EulerSample(x, 7, func(x, _ *Node) *Node { return AddScalar(ZerosLike(x), 2) })
		}, x0)
		got := flatOf(t, out)
		sign := 1.0
		if c == FlowPi0 {
			sign = -1
		}
		for i := range x0 {
			require.InDelta(t, x0[i]+sign*2, got[i], 1e-12, "%s", c)
		}
	}
}

// With the exact conditional field of a single target a (constant along the straight path),
// 10 Euler steps from any noise land on a, and the field the network must learn at (x_t, t) is the
// Interpolate target.
func TestEulerExactFieldReachesTarget(t *testing.T) {
	backend := goBackend(t)
	a := []float64{1.5, -0.5, 0.25}
	eps := []float64{-0.3, 0.8, 2}
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		out := MustExecOnce(backend, func(x, target *Node) *Node {
			return c.EulerSample(x, 10, func(x, tt *Node) *Node {
				if c == FlowPi0 { // u = ε − a = (x − a)/t
					return Div(Sub(x, target), tt)
				}
				return Div(Sub(target, x), OneMinus(tt)) // u = a − ε = (a − x)/(1 − t)
			})
		}, eps, a)
		got := flatOf(t, out)
		for i := range a {
			require.InDelta(t, a[i], got[i], 1e-12, "%s", c)
		}
	}
}

func TestFlowTimeDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		c        FlowConvention
		mean     float64
		min, max float64
	}{
		{FlowMolmoBot, 0.999 * 0.4, 0, 0.999},    // Beta(1, 1.5) mean 1/2.5
		{FlowPi0, 0.999*0.6 + 0.001, 0.001, 1.0}, // Beta(1.5, 1) mean 1.5/2.5
	} {
		const n = 40000
		sum := 0.0
		for range n {
			v := tc.c.SampleTime(rng)
			require.GreaterOrEqual(t, v, tc.min)
			require.LessOrEqual(t, v, tc.max)
			sum += v
		}
		require.InDelta(t, tc.mean, sum/n, 0.006, "%s mean", tc.c)
	}
	// Beta(2, 5) through the general Gamma path: mean 2/7, variance 10/392.
	var s, s2 float64
	const n = 40000
	for range n {
		v := SampleBeta(rng, 2, 5)
		s += v
		s2 += v * v
	}
	mean := s / n
	require.InDelta(t, 2.0/7, mean, 0.004)
	require.InDelta(t, math.Sqrt(10.0/392), math.Sqrt(s2/n-mean*mean), 0.004)
	_, err := ParseFlowConvention("rectified")
	require.ErrorContains(t, err, "molmobot or pi0")
}

func TestMSE(t *testing.T) {
	backend := goBackend(t)
	out := MustExecOnce(backend, MSE, [][]float64{{1, 2}, {3, 4}}, [][]float64{{0, 2}, {3, 6}})
	require.InDelta(t, (1.0+0+0+4)/4, scalarOf(t, out), 1e-12)
}
