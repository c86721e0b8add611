package losses

// Real-time chunking's guided inpainting ("Real-Time Execution of Action Chunking Flow Policies",
// Black et al., arXiv:2506.07339, Algorithm 1; the authors' code is
// Physical-Intelligence/real-time-chunking-kinetix src/model.py FlowPolicy.realtime_action, which
// LeRobot ports in huggingface/lerobot src/lerobot/policies/rtc/modeling_rtc.py). In the paper's
// time τ (0 noise, 1 data, MolmoBot's convention) each Euler step of the flow becomes
//
//	Â¹   = A^τ + (1 − τ)·v(A^τ, τ)                       (the one-step estimate of the clean chunk)
//	e    = (Y − Â¹) ⊙ W                                   (Y the committed actions, W their weights)
//	g    = eᵀ · ∂Â¹/∂A^τ                                  (a vector-Jacobian product)
//	A^{τ+Δ} = A^τ + Δ·(v + min(β, (1 − τ)/τ · 1/r_τ²)·g),  r_τ² = (1 − τ)² / (τ² + (1 − τ)²)
//
// so the weight is min(β, (τ² + (1 − τ)²) / (τ(1 − τ))), β at τ = 0 (the kinetix code's
// nan_to_num(posinf=β)). In pi0's convention (t = 1 noise, u = ε − a) τ = 1 − t and the field is
// −v, so Â¹ = x − t·v and the correction is subtracted (LeRobot's "inverted" form).

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph"
)

// Guidance is what a chunk is inpainted toward: the committed actions and how much each counts.
type Guidance struct {
	// Target holds the committed actions aligned with the chunk being sampled, in the shape of the
	// sampled x (normalised units); its values where Weights is 0 do not matter.
	Target *Node
	// Weights (x's shape) is W: 1 on the actions executed while the chunk is computed, a decaying
	// schedule over the rest of the overlap, 0 after it (and on padded action dimensions).
	Weights *Node
	// MaxWeight is β, a scalar of x's dtype: the clip of the guidance weight.
	MaxWeight *Node
}

// GuidanceScale is the paper's unclipped guidance weight (1 − τ)/τ · 1/r_τ² =
// (τ² + (1 − τ)²) / (τ(1 − τ)) at the paper's time τ (0 noise, 1 data); +Inf at τ = 0 and 1.
func GuidanceScale(tau float64) float64 {
	if tau <= 0 || tau >= 1 {
		return math.Inf(1)
	}
	return (tau*tau + (1-tau)*(1-tau)) / (tau * (1 - tau))
}

// PaperTime maps a time of the convention to the paper's τ (0 noise, 1 data).
func (c FlowConvention) PaperTime(t float64) float64 {
	if c == FlowPi0 {
		return 1 - t
	}
	return t
}

// GuidedVelocity is field's velocity at (x, t) corrected toward g (tv is t's value): the guided
// velocity of one Euler step of Algorithm 1, in the convention's own units.
func (c FlowConvention) GuidedVelocity(x, t *Node, tv float64, field func(x, t *Node) *Node, g *Guidance) *Node {
	v := field(x, t)
	left, sign := 1-tv, 1.0 // time left to the data end, and the direction of the paper's field
	if c == FlowPi0 {
		left, sign = -tv, -1
	}
	clean := Add(x, MulScalar(v, left)) // Â¹
	e := StopGradient(Mul(Sub(g.Target, clean), g.Weights))
	vjp := Gradient(ReduceAllSum(Mul(e, clean)), x)[0] // eᵀ ∂Â¹/∂x
	w := Min(Scalar(x.Graph(), x.DType(), GuidanceScale(c.PaperTime(tv))), g.MaxWeight)
	return Add(v, MulScalar(Mul(vjp, w), sign))
}

// GuidedEulerSample is EulerSample with every step's velocity guided toward g (real-time
// chunking); g nil is EulerSample.
func (c FlowConvention) GuidedEulerSample(x0 *Node, n int, field func(x, t *Node) *Node, g *Guidance) *Node {
	if g == nil {
		return c.EulerSample(x0, n, field)
	}
	x, dt := x0, c.Step(n)
	for i := range n {
		tv := c.Start() + float64(i)*dt
		t := Scalar(x0.Graph(), x0.DType(), tv)
		x = Add(x, MulScalar(c.GuidedVelocity(x, t, tv, field, g), dt))
	}
	return x
}
