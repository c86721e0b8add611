package losses

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
)

// rtcPaperReference integrates Algorithm 1 of "Real-Time Execution of Action Chunking Flow
// Policies" (arXiv:2506.07339) on the host for the linear field v(A, τ) = m⊙A + b (paper time τ: 0
// noise, 1 data), where the denoised estimate Â¹ = A + (1−τ)(m⊙A + b) has the diagonal Jacobian
// 1 + (1−τ)m, so the vector-Jacobian product is e⊙(1 + (1−τ)m).
func rtcPaperReference(a0, m, b, y, w []float64, n int, beta float64) []float64 {
	a := append([]float64(nil), a0...)
	dt := 1 / float64(n)
	for i := range n {
		tau := float64(i) * dt
		r2 := (1 - tau) * (1 - tau) / (tau*tau + (1-tau)*(1-tau))
		weight := beta
		if tau > 0 {
			weight = math.Min(beta, (1-tau)/tau/r2)
		}
		next := make([]float64, len(a))
		for j := range a {
			v := m[j]*a[j] + b[j]
			clean := a[j] + (1-tau)*v
			g := (y[j] - clean) * w[j] * (1 + (1-tau)*m[j])
			next[j] = a[j] + dt*(v+weight*g)
		}
		a = next
	}
	return a
}

// The guided Euler sampler reproduces the paper's formula on a linear field whose VJP is known in
// closed form, in both time conventions (pi0's field is the paper's negated, at t = 1 − τ).
func TestGuidedEulerMatchesPaperOnLinearField(t *testing.T) {
	backend := goBackend(t)
	a0 := []float64{0.3, -1.2, 0.8, 2.0, -0.4}
	m := []float64{-0.5, 0.3, -1.0, 0.1, 0.7}
	b := []float64{0.2, -0.1, 0.5, -0.3, 0.05}
	y := []float64{1.0, -0.5, 0.0, 0.4, 9.0}
	w := []float64{1, 1, 0.6, 0.2, 0}
	const n, beta = 10, 5.0
	want := rtcPaperReference(a0, m, b, y, w, n, beta)
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		out := MustExecOnce(backend, func(x, mm, bb, yy, ww *Node) *Node {
			sign := 1.0
			if c == FlowPi0 {
				sign = -1
			}
			field := func(x, _ *Node) *Node { return MulScalar(Add(Mul(mm, x), bb), sign) }
			return c.GuidedEulerSample(x, n, field, &Guidance{Target: yy, Weights: ww, MaxWeight: Scalar(x.Graph(), x.DType(), beta)})
		}, a0, m, b, y, w)
		got := flatOf(t, out)
		for j := range want {
			require.InDelta(t, want[j], got[j], 1e-9, "%s element %d", c, j)
		}
	}
	// The weights themselves: β at the noise end, the paper's expression inside, e.g. τ = 1/2: 2.
	require.True(t, math.IsInf(GuidanceScale(0), 1))
	require.InDelta(t, 2.0, GuidanceScale(0.5), 1e-15)
	require.InDelta(t, (0.01+0.81)/0.09, GuidanceScale(0.1), 1e-12)
}

// With every weight 0 (no overlap with a previous chunk) the guided sampler is plain sampling,
// bit for bit, on a nonlinear field.
func TestGuidedEulerZeroOverlapIsPlain(t *testing.T) {
	backend := goBackend(t)
	x0 := []float32{0.3, -1.2, 0.8, 2.0, -0.4, 1.1}
	y := []float32{1, 2, 3, 4, 5, 6}
	zero := make([]float32, len(x0))
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		field := func(x, t *Node) *Node { return Add(Tanh(Mul(x, t)), Sin(x)) }
		plain := MustExecOnce(backend, func(x *Node) *Node { return c.EulerSample(x, 10, field) }, x0)
		guided := MustExecOnce(backend, func(x, yy, ww *Node) *Node {
			return c.GuidedEulerSample(x, 10, field, &Guidance{Target: yy, Weights: ww, MaxWeight: Scalar(x.Graph(), x.DType(), 5)})
		}, x0, y, zero)
		p, g := tensors.MustCopyFlatData[float32](plain), tensors.MustCopyFlatData[float32](guided)
		for j := range p {
			require.Equal(t, math.Float32bits(p[j]), math.Float32bits(g[j]), "%s element %d: %v vs %v", c, j, p[j], g[j])
		}
	}
}

// A hard mask (weights 1 on a prefix, 0 after, the paper's "zeros" schedule) pulls the prefix onto
// the committed actions, and leaves the rest of an element-wise field's chunk exactly as plain
// sampling makes it. The guidance is soft: with β = 10 = 1/Δτ the prefix ends within 5% of its
// unguided distance from the committed actions (about 2%); the kinetix evaluation's β = 5 leaves
// about 13%.
func TestGuidedEulerHardMaskReproducesPrefix(t *testing.T) {
	backend := goBackend(t)
	x0 := []float32{0.3, -1.2, 0.8, 2.0, -0.4, 1.1}
	y := []float32{2.5, -2.0, -1.0, 9, 9, 9}
	w := []float32{1, 1, 1, 0, 0, 0}
	for _, c := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		field := func(x, t *Node) *Node { return Add(MulScalar(Tanh(x), 0.5), AddScalar(t, 0.3)) }
		plain := tensors.MustCopyFlatData[float32](MustExecOnce(backend, func(x *Node) *Node { return c.EulerSample(x, 10, field) }, x0))
		got := tensors.MustCopyFlatData[float32](MustExecOnce(backend, func(x, yy, ww *Node) *Node {
			return c.GuidedEulerSample(x, 10, field, &Guidance{Target: yy, Weights: ww, MaxWeight: Scalar(x.Graph(), x.DType(), 10)})
		}, x0, y, w))
		for j := range x0 {
			if w[j] == 1 {
				require.InDelta(t, y[j], got[j], 0.05*math.Abs(float64(plain[j]-y[j])), "%s: committed action %d (plain sampling gives %v)", c, j, plain[j])
				require.Greater(t, math.Abs(float64(plain[j]-y[j])), 0.2, "%s: the test must not pass by accident", c)
			} else {
				require.Equal(t, plain[j], got[j], "%s: free action %d", c, j)
			}
		}
	}
}

// The same on a coupled nonlinear field v(A, τ) = tanh(M·A + τ·c) with a full matrix M, whose
// Jacobian is not diagonal: the host reference computes the VJP in closed form,
// eᵀ(I + (1−τ)·diag(1 − v²)·M) = e + (1−τ)·Mᵀ((1 − v²) ⊙ e), independently of GoMLX's autodiff.
func TestGuidedEulerMatchesPaperOnCoupledField(t *testing.T) {
	backend := goBackend(t)
	const k, n, beta = 6, 8, 5.0
	m := make([]float64, k*k)
	for i := range m {
		m[i] = 0.6 * math.Sin(float64(7*i+3))
	}
	c := []float64{0.5, -0.3, 0.2, 0.9, -0.7, 0.1}
	a0 := []float64{0.3, -1.2, 0.8, 2.0, -0.4, 1.1}
	y := []float64{1.0, -0.5, 0.3, 0.4, 9, 9}
	w := []float64{1, 1, 0.57, 0.11, 0, 0}
	want := append([]float64(nil), a0...)
	dt := 1 / float64(n)
	for i := range n {
		tau := float64(i) * dt
		weight := beta
		if tau > 0 {
			r2 := (1 - tau) * (1 - tau) / (tau*tau + (1-tau)*(1-tau))
			weight = math.Min(beta, (1-tau)/tau/r2)
		}
		v, e := make([]float64, k), make([]float64, k)
		for r := range k {
			s := tau * c[r]
			for j := range k {
				s += m[r*k+j] * want[j]
			}
			v[r] = math.Tanh(s)
			e[r] = (y[r] - (want[r] + (1-tau)*v[r])) * w[r]
		}
		next := make([]float64, k)
		for j := range k {
			g := e[j]
			for r := range k {
				g += (1 - tau) * m[r*k+j] * (1 - v[r]*v[r]) * e[r]
			}
			next[j] = want[j] + dt*(v[j]+weight*g)
		}
		want = next
	}
	for _, conv := range []FlowConvention{FlowMolmoBot, FlowPi0} {
		out := MustExecOnce(backend, func(x, mm, cc, yy, ww *Node) *Node {
			field := func(x, t *Node) *Node {
				tau := t
				if conv == FlowPi0 {
					tau = OneMinus(t)
				}
				v := Tanh(Add(Dot(Reshape(mm, k, k), x).Product(), Mul(cc, BroadcastToDims(tau, k))))
				if conv == FlowPi0 {
					return Neg(v)
				}
				return v
			}
			return conv.GuidedEulerSample(x, n, field, &Guidance{Target: yy, Weights: ww, MaxWeight: Scalar(x.Graph(), x.DType(), beta)})
		}, a0, m, c, y, w)
		got := flatOf(t, out)
		for j := range want {
			require.InDelta(t, want[j], got[j], 1e-9, "%s element %d", conv, j)
		}
	}
}
