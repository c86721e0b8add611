package models

// RD-VLA: a recurrent-depth action head. Instead of a fixed stack of layers, one weight-tied
// core is iterated r times on a latent state:
//
//   e   = Prelude([robot state ‖ H action queries], h)        (one block, cross-attends to h)
//   s_0 ~ TruncNormal(0, 1)                                   (latent state, [B, 1+H, E])
//   s_k = Core(s_{k−1}, e, h)     k = 1…r                     (2 blocks, shared weights)
//   a_k = Coda(s_k)                                           (the action chunk [B, H, A])
//
// where h is the backbone's last hidden state (PolicyContext). Training samples the depth per
// step, r = Poisson(exp(τ)) + 1 with τ ~ N(ln r̄ − 0.125, 0.5), clamped to [1, 64] (so E[r] ≈ r̄+1,
// with a long tail), runs the first r − 8 iterations without gradient inside one While loop and
// backpropagates through the last 8 only: truncated BPTT, so training memory does not grow with
// depth and one compiled graph serves every r. At inference the core iterates until the chunk
// stops changing, MSE(a_k, a_{k−1}) < ε (default 1e-3), or a cap (default 32): easy states stop
// early, hard ones think longer.

import (
	"math"
	"math/bits"
	"math/rand/v2"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// RDConfig sizes the recurrent-depth head on top of a policy backbone.
type RDConfig struct {
	Policy     PolicyConfig // backbone, action/state sizes, ExpertDim/ExpertHeads for the head
	CoreLayers int          // blocks in the weight-tied core (2 in RD-VLA)
	BPTT       int          // iterations backpropagated through (8 in RD-VLA)
}

// MaxTrainDepth is the clamp of the training depth sampler.
const MaxTrainDepth = 64

// SampleDepth draws a training depth r = Poisson(exp(τ)) + 1, τ ~ N(ln mean − 0.125, 0.5²),
// clamped to [1, MaxTrainDepth]. The −σ²/2 shift makes E[exp(τ)] = mean.
func SampleDepth(rng *rand.Rand, mean float64) int {
	tau := math.Log(mean) - 0.125 + 0.5*rng.NormFloat64()
	return min(MaxTrainDepth, max(1, samplePoisson(rng, math.Exp(tau))+1))
}

// samplePoisson is Knuth's multiplication method (λ here is at most a few hundred).
func samplePoisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// SplitDepth splits a training depth r into the iterations run without gradient and those
// backpropagated through: (r − bptt, bptt) when r > bptt, else (0, r).
func SplitDepth(r, bptt int) (noGrad, grad int) {
	if r > bptt {
		return r - bptt, bptt
	}
	return 0, r
}

// RecurTruncated applies step to s0 a sampled number of times with truncated BPTT, in a graph
// whose shape depends only on two mask inputs, so a handful of compiled graphs serve every depth:
//
//   - noGrad [Bn] bool: the first Bn unrolled iterations run on a gradient-stopped state, and
//     iteration j is applied only where noGrad[j] (the others pass the state through). Callers
//     round Bn up to a power of two (DepthMasks), so at most 8 graphs cover depths 1…64.
//   - grad [maxGrad] bool: then maxGrad unrolled iterations with gradient, applied where grad[j];
//     the applied ones are the last ones, so gradients flow through exactly the final iterations.
//
// Activations of the gradient-stopped iterations are not kept for the backward pass, so training
// memory does not grow with depth. probe, if not nil, is called on the state entering each
// gradient iteration (tests use it to read per-iteration gradients).
//
// (GoMLX's While would avoid the masked padding, but on the Go backend v0.1.14 a While body that
// uses scalar constants also used outside it fails at run time — GoMLX caches scalar constants
// per graph, not per closure — and every transformer layer uses such constants.)
func RecurTruncated(step func(s *Node) *Node, s0, noGrad, grad *Node, probe func(j int, s *Node) *Node) *Node {
	s := StopGradient(s0)
	apply := func(mask *Node, j int, s *Node) *Node {
		m := Squeeze(Slice(mask, AxisElem(j)))
		return Where(BroadcastToDims(m, s.Shape().Dimensions...), step(s), s)
	}
	if n := noGrad.Shape().Dimensions[0]; n > 0 {
		for j := range n {
			s = apply(noGrad, j, s)
		}
		s = StopGradient(s)
	} else {
		s = s0
	}
	for j := range grad.Shape().Dimensions[0] {
		if probe != nil {
			s = probe(j, s)
		}
		s = apply(grad, j, s)
	}
	return s
}

// DepthMasks encodes a training depth r for RecurTruncated: noGrad has length
// max(0, r − bptt) rounded up to a power of two, true for its first r − bptt entries, and grad has
// length bptt, true for its last min(r, bptt) entries.
func DepthMasks(r, bptt int) (noGrad, grad []bool) {
	ng, gr := SplitDepth(r, bptt)
	n := 0
	if ng > 0 {
		n = 1 << bits.Len(uint(ng-1))
	}
	noGrad = make([]bool, n)
	for j := range ng {
		noGrad[j] = true
	}
	grad = make([]bool, bptt)
	for j := bptt - gr; j < bptt; j++ {
		grad[j] = true
	}
	return noGrad, grad
}

// AdaptiveIterate drives adaptive depth on the host. step(k) runs iteration k (1-based) for the
// whole batch and returns each example's readout (e.g. its flattened action chunk). An example
// stops at the first k ≥ 2 with MSE(a_k, a_{k−1}) < threshold, and its readout is frozen there;
// the loop ends when every example has stopped or k = maxIters. A negative threshold gives a
// fixed depth of maxIters. It returns the final readouts and the iterations each example used.
func AdaptiveIterate(step func(k int) ([][]float32, error), maxIters int, threshold float64) (out [][]float32, iters []int, err error) {
	var done []bool
	for k := 1; k <= maxIters; k++ {
		a, err := step(k)
		if err != nil {
			return nil, nil, err
		}
		if k == 1 {
			out, iters, done = a, make([]int, len(a)), make([]bool, len(a))
			for i := range iters {
				iters[i] = 1
			}
			continue
		}
		all := true
		for i := range a {
			if done[i] {
				continue
			}
			var mse float64
			for j := range a[i] {
				d := float64(a[i][j] - out[i][j])
				mse += d * d
			}
			mse /= float64(max(1, len(a[i])))
			out[i], iters[i] = a[i], k
			done[i] = mse < threshold
			all = all && done[i]
		}
		if all {
			break
		}
	}
	return out, iters, nil
}

// rdBlock is a pre-norm block with self-attention, cross-attention to context and an MLP.
func rdBlock(scope *model.Scope, x, ctx, crossMask *Node, heads int, mlpRatio float64) *Node {
	d := x.Shape().Dimensions[2]
	x = Add(x, Attention(scope.In("attn"), LayerNorm(scope.In("ln1"), x), heads, nil))
	x = Add(x, CrossAttention(scope.In("cross"), LayerNorm(scope.In("ln2"), x), ctx, heads, crossMask))
	hidden := max(1, int(math.Round(float64(d)*mlpRatio)))
	return Add(x, MLP(scope.In("mlp"), LayerNorm(scope.In("ln3"), x), hidden))
}

// RDHead holds what the recurrent iterations share: the backbone context and the prelude's
// output e. Build it with NewRDHead, then use Step/Coda (or Train/Act).
type RDHead struct {
	cfg       RDConfig
	scope     *model.Scope
	ctx, mask *Node // backbone last hidden state [B, N, D] and cross mask [B, 1+H, N]
	e         *Node // prelude output [B, 1+H, E]
	coreBuilt bool
	codaBuilt bool
}

// NewRDHead runs the prelude: a token of the robot state plus the instruction summary, H learned
// action queries, and one block that cross-attends to the backbone's last hidden state.
func NewRDHead(scope *model.Scope, cfg RDConfig, hidden []*Node, valid, state *Node) *RDHead {
	scope = WithInit(scope)
	p := cfg.Policy
	e, h := p.ExpertDim, p.Horizon
	b := state.Shape().Dimensions[0]
	ctx := hidden[len(hidden)-1]
	st := Linear(scope.In("state_in"), state, e, true) // [B, E], plus the instruction (see InstructionSummary)
	st = InsertAxes(Add(st, Linear(scope.In("instruction_in"), InstructionSummary(p, ctx, valid), e, true)), 1)
	q := scope.VariableWithShape("action_queries", shapes.Make(state.DType(), h, e)).NodeValue(state.Graph())
	x := Concatenate([]*Node{st, BroadcastToDims(InsertAxes(q, 0), b, h, e)}, 1)
	x = PositionEmbedding(scope.In("pos_embed"), x)
	mask := BroadcastToDims(InsertAxes(valid, 1), b, 1+h, valid.Shape().Dimensions[1])
	x = rdBlock(scope.In("prelude"), x, ctx, mask, p.ExpertHeads, p.MLPRatio)
	return &RDHead{cfg: cfg, scope: scope, ctx: ctx, mask: mask, e: x}
}

// Step is one core iteration s ↦ Core(s, e, h): an adapter Linear(concat(s, e)) then CoreLayers
// blocks, all weight-tied across iterations.
func (r *RDHead) Step(s *Node) *Node {
	sc := r.sub("core", &r.coreBuilt)
	p := r.cfg.Policy
	x := Linear(sc.In("adapter"), Concatenate([]*Node{s, r.e}, -1), p.ExpertDim, true)
	for i := range r.cfg.CoreLayers {
		x = rdBlock(sc.In("block_%d", i), x, r.ctx, r.mask, p.ExpertHeads, p.MLPRatio)
	}
	return LayerNorm(sc.In("ln_out"), x)
}

// Coda reads the action chunk [B, H, A] (normalised units) from a latent state: LayerNorm and a
// linear map of the H action tokens.
func (r *RDHead) Coda(s *Node) *Node {
	sc := r.sub("coda", &r.codaBuilt)
	x := Slice(s, AxisRange(), AxisRangeToEnd(1))
	return Linear(sc.In("out"), LayerNorm(sc.In("ln"), x), r.cfg.Policy.ActionDim, true)
}

// sub enters the named sub-scope the first time and shares it afterwards (weight tying).
func (r *RDHead) sub(name string, built *bool) *model.Scope {
	if *built {
		return r.scope.Shared("%s", name)
	}
	*built = true
	return r.scope.In("%s", name)
}

// Train returns the chunk after the depth encoded by the masks (see RecurTruncated).
func (r *RDHead) Train(s0, noGrad, grad *Node) *Node {
	return r.Coda(RecurTruncated(r.Step, s0, noGrad, grad, nil))
}

// Prelude returns the prelude output e [B, 1+H, E] and the backbone context the core attends to,
// [B, N, D] with its cross mask [B, 1+H, N]: what an inference step graph takes as inputs.
func (r *RDHead) Prelude() (e, ctx, mask *Node) { return r.e, r.ctx, r.mask }

// RDStep is one inference iteration from saved prelude outputs: s ↦ Core(s, e, ctx), and the
// chunk Coda(s). Host code loops it (AdaptiveIterate) for adaptive depth.
func RDStep(scope *model.Scope, cfg RDConfig, e, ctx, mask, s *Node) (next, chunk *Node) {
	r := &RDHead{cfg: cfg, scope: WithInit(scope), ctx: ctx, mask: mask, e: e}
	next = r.Step(s)
	return next, r.Coda(next)
}
