package losses

// Flow matching for action chunks (Lipman et al. 2023), in the two time conventions used by VLA
// action experts:
//
//   - MolmoBot: t = 0 is noise, t = 1 data.  x_t = (1−t)·ε + t·a,  target u = a − ε,
//     t = 0.999·Beta(1, 1.5) (more weight near the noisy end); sampling integrates
//     dx/dt = v(x, t) from t = 0 to 1 with Euler steps dt = +1/N.
//   - pi0 (openpi): t = 1 is noise, t = 0 data.  x_t = t·ε + (1−t)·a,  target u = ε − a,
//     t = 0.999·Beta(1.5, 1) + 0.001; sampling integrates from t = 1 to 0 with dt = −1/N.
//
// In both, the network v_θ(x_t, t, context) regresses u with a mean squared error (MSE), and along a
// straight path x_t the target u is constant, so N Euler steps with the exact field land on a.

import (
	"fmt"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph"
)

// FlowConvention is the time convention of a flow-matching head: "molmobot" or "pi0".
type FlowConvention string

// The two supported conventions.
const (
	FlowMolmoBot FlowConvention = "molmobot"
	FlowPi0      FlowConvention = "pi0"
)

// ParseFlowConvention validates a recipe value.
func ParseFlowConvention(s string) (FlowConvention, error) {
	switch c := FlowConvention(s); c {
	case FlowMolmoBot, FlowPi0:
		return c, nil
	}
	return "", fmt.Errorf("flow convention %q: expected molmobot or pi0", s)
}

// SampleTime draws a training time t from the convention's distribution.
func (c FlowConvention) SampleTime(rng *rand.Rand) float64 {
	if c == FlowPi0 {
		return 0.999*SampleBeta(rng, 1.5, 1) + 0.001
	}
	return 0.999 * SampleBeta(rng, 1, 1.5)
}

// Start is the time sampling starts from (the noise end), and Step the Euler dt for n steps.
func (c FlowConvention) Start() float64 {
	if c == FlowPi0 {
		return 1
	}
	return 0
}

// Step is the signed Euler step for n integration steps.
func (c FlowConvention) Step(n int) float64 {
	if c == FlowPi0 {
		return -1 / float64(n)
	}
	return 1 / float64(n)
}

// Interpolate returns the noisy point x_t and the velocity target u for clean actions a and noise
// eps (same shape, [B, ..., H, A]) and times t of shape [B, ...] (the leading axes of a).
func (c FlowConvention) Interpolate(a, eps, t *Node) (xt, target *Node) {
	dims := append([]int(nil), t.Shape().Dimensions...)
	for len(dims) < a.Rank() {
		dims = append(dims, 1)
	}
	tt := BroadcastToDims(Reshape(t, dims...), a.Shape().Dimensions...)
	if c == FlowPi0 {
		return Add(Mul(tt, eps), Mul(OneMinus(tt), a)), Sub(eps, a)
	}
	return Add(Mul(OneMinus(tt), eps), Mul(tt, a)), Sub(a, eps)
}

// EulerSample integrates dx/dt = field(x, t) from the convention's noise end with n Euler steps,
// starting at x0 (noise): x ← x + dt·v(x, t), t ← t + dt. field receives t as a scalar node of
// x0's dtype. The loop is unrolled into the graph (n is small: 10 by default).
func (c FlowConvention) EulerSample(x0 *Node, n int, field func(x, t *Node) *Node) *Node {
	x, dt := x0, c.Step(n)
	for i := range n {
		t := Scalar(x0.Graph(), x0.DType(), c.Start()+float64(i)*dt)
		x = Add(x, MulScalar(field(x, t), dt))
	}
	return x
}

// SampleBeta draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func SampleBeta(rng *rand.Rand, a, b float64) float64 {
	x, y := sampleGamma(rng, a), sampleGamma(rng, b)
	return x / (x + y)
}

// sampleGamma draws from Gamma(k, 1) (Marsaglia & Tsang 2000; k < 1 via the U^(1/k) boost).
func sampleGamma(rng *rand.Rand, k float64) float64 {
	if k < 1 {
		return sampleGamma(rng, k+1) * math.Pow(rng.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
