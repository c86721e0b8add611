package models

// RD-VLA: a recurrent-depth action head ("Recurrent-Depth VLA: Implicit Test-Time Compute Scaling
// of Vision-Language-Action Models via Latent Iterative Reasoning", rd-vla.github.io). Instead of
// a fixed stack of layers, one weight-tied core is iterated r times on a latent state:
//
//   e   = Prelude([robot state ‖ H action queries], h)        (one block, cross-attends to h)
//   s_0 ~ TruncNormal(0, 1)                                   (latent state, [B, 1+H, E])
//   s_k = Core(s_{k−1}, e, h)     k = 1…r                     (2 blocks, shared weights)
//   a_k = Coda(s_k)                                           (the action chunk [B, H, A])
//
// where h is the backbone's last hidden state (PolicyContext). Training samples the depth per
// step, r = Poisson(exp(τ)) + 1 with τ ~ N(ln r̄ − 0.125, 0.5), clamped to [1, 64] (so E[r] ≈ r̄+1,
// with a long tail), runs the first r − 8 iterations on a gradient-stopped state and
// backpropagates through the last 8 only: truncated BPTT, so training memory does not grow with
// depth; the depth enters the graph as two masks (RecurTruncated), so a handful of compiled graphs
// serve every r. At inference the host iterates the core until the chunk stops changing,
// MSE(a_k, a_{k−1}) < ε (default 1e-3), or a cap (default 32): easy states stop early, hard ones
// think longer.

import (
	"math"
	"math/bits"
	"math/rand/v2"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// RDConfig sizes the recurrent-depth head on top of a policy backbone.
type RDConfig struct {
	Net        VLAConfig // backbone, action/state sizes, ExpertDim/ExpertHeads for the head
	CoreLayers int       // blocks in the weight-tied core (2 in RD-VLA)
	BPTT       int       // iterations backpropagated through (8 in RD-VLA)
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
// whole batch and returns each example's readout (its flattened chunk in normalised units, which
// the stopping rule compares) and its output (what the caller keeps, e.g. the chunk in raw
// units). An example stops at the first k ≥ 2 with MSE(a_k, a_{k−1}) < threshold, and its output
// is frozen there; the loop ends when every example has stopped or k = maxIters. A negative
// threshold gives a fixed depth of maxIters. It returns the final outputs and the iterations each
// example used.
func AdaptiveIterate(step func(k int) (readout, output [][]float32, err error), maxIters int, threshold float64) (out [][]float32, iters []int, err error) {
	var done []bool
	var last [][]float32
	for k := 1; k <= maxIters; k++ {
		a, o, err := step(k)
		if err != nil {
			return nil, nil, err
		}
		if k == 1 {
			last, out, iters, done = a, o, make([]int, len(a)), make([]bool, len(a))
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
				d := float64(a[i][j] - last[i][j])
				mse += d * d
			}
			mse /= float64(max(1, len(a[i])))
			last[i], out[i], iters[i] = a[i], o[i], k
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

// rdGraph holds what the recurrent iterations of one graph share: the backbone context and the
// prelude's output e. Build it with newRDGraph, then use step/coda.
type rdGraph struct {
	cfg       RDConfig
	scope     *model.Scope
	ctx, mask *Node // backbone last hidden state [B, N, D] and cross mask [B, 1+H, N]
	e         *Node // prelude output [B, 1+H, E]
	coreBuilt bool
	codaBuilt bool
}

// newRDGraph runs the prelude: a token of the robot state (with the point) plus the instruction
// summary, H learned action queries, and one block that cross-attends to the backbone's last
// hidden state.
func newRDGraph(scope *model.Scope, cfg RDConfig, c ActionContext) *rdGraph {
	scope = WithInit(scope)
	p := cfg.Net
	e, h := p.ExpertDim, p.Horizon
	state := c.Cond
	b := state.Shape().Dimensions[0]
	ctx := c.Hidden[len(c.Hidden)-1]
	st := Linear(scope.In("state_in"), state, e, true) // [B, E], plus the instruction (see InstructionSummary)
	st = InsertAxes(Add(st, Linear(scope.In("instruction_in"), InstructionSummary(p, ctx, c.Valid), e, true)), 1)
	q := scope.VariableWithShape("action_queries", shapes.Make(state.DType(), h, e)).NodeValue(state.Graph())
	x := Concatenate([]*Node{st, BroadcastToDims(InsertAxes(q, 0), b, h, e)}, 1)
	x = PositionEmbedding(scope.In("pos_embed"), x)
	mask := BroadcastToDims(InsertAxes(c.Valid, 1), b, 1+h, c.Valid.Shape().Dimensions[1])
	x = rdBlock(scope.In("prelude"), x, ctx, mask, p.ExpertHeads, p.MLPRatio)
	return &rdGraph{cfg: cfg, scope: scope, ctx: ctx, mask: mask, e: x}
}

// step is one core iteration s ↦ Core(s, e, h): an adapter Linear(concat(s, e)) then CoreLayers
// blocks, all weight-tied across iterations.
func (r *rdGraph) step(s *Node) *Node {
	sc := r.sub("core", &r.coreBuilt)
	p := r.cfg.Net
	x := Linear(sc.In("adapter"), Concatenate([]*Node{s, r.e}, -1), p.ExpertDim, true)
	for i := range r.cfg.CoreLayers {
		x = rdBlock(sc.In("block_%d", i), x, r.ctx, r.mask, p.ExpertHeads, p.MLPRatio)
	}
	return LayerNorm(sc.In("ln_out"), x)
}

// coda reads the action chunk [B, H, A] (normalised units) from a latent state: LayerNorm and a
// linear map of the H action tokens.
func (r *rdGraph) coda(s *Node) *Node {
	sc := r.sub("coda", &r.codaBuilt)
	x := Slice(s, AxisRange(), AxisRangeToEnd(1))
	return Linear(sc.In("out"), LayerNorm(sc.In("ln"), x), r.cfg.Net.ActionDim, true)
}

// sub enters the named sub-scope the first time and shares it afterwards (weight tying).
func (r *rdGraph) sub(name string, built *bool) *model.Scope {
	if *built {
		return r.scope.Shared("%s", name)
	}
	*built = true
	return r.scope.In("%s", name)
}

// RecurrentDepthHead is the RD-VLA action head: prelude, weight-tied core iterated to a depth
// drawn per training step (truncated BPTT), coda. Sample runs a fixed depth in one graph; the
// adaptive-depth inference of a deployed policy runs the prelude once and the core one iteration
// per call (RDVLAPolicy.RecurrentPrelude, RecurrentStep), the host deciding when to stop.
type RecurrentDepthHead struct {
	RDConfig
	MeanDepth  float64 // r̄ of the training depth sampler (SampleDepth)
	FixedDepth int     // > 0: train at this depth instead of sampling it (benchmarks)
	EvalDepth  int     // the depth of Sample (offline evaluation)
}

// Noise implements ActionHead: the training depth r (sampled, or FixedDepth) or EvalDepth encoded
// as the masks of RecurTruncated ("depth_no_grad", "depth_grad"), and the initial latent state
// s₀ ~ TruncNormal(0, 1) on [−2, 2] ("s0", [B, 1+H, E]).
func (h RecurrentDepthHead) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	depth := h.EvalDepth
	if train {
		depth = h.FixedDepth
		if depth <= 0 {
			depth = SampleDepth(rng, h.MeanDepth)
		}
	}
	ng, g := DepthMasks(max(1, depth), h.BPTT)
	return []HeadInput{{"s0", InitialState(rng, b, h.Net)}, {"depth_no_grad", tensors.FromFlatDataAndDimensions(ng, len(ng))},
		{"depth_grad", tensors.FromFlatDataAndDimensions(g, len(g))}}
}

// InitialState draws the latent state s₀ [b, 1+H, E] ~ TruncNormal(0, 1) on [−2, 2].
func InitialState(rng *rand.Rand, b int, net VLAConfig) *tensors.Tensor {
	s0 := make([]float32, b*(1+net.Horizon)*net.ExpertDim)
	for i := range s0 {
		x := rng.NormFloat64()
		for x < -2 || x > 2 {
			x = rng.NormFloat64()
		}
		s0[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(s0, b, 1+net.Horizon, net.ExpertDim)
}

// Loss implements ActionHead: the MSE of the chunk after the depth the masks encode.
func (h RecurrentDepthHead) Loss(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node {
	return losses.MSE(h.Sample(scope, c, noise), actions)
}

// SampleLosses implements SampleLosser: each example's MSE.
func (h RecurrentDepthHead) SampleLosses(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node {
	return losses.SampleMSE(h.Sample(scope, c, noise), actions)
}

// Sample implements ActionHead: the chunk after the depth the masks encode.
func (h RecurrentDepthHead) Sample(scope *model.Scope, c ActionContext, noise map[string]*Node) *Node {
	r := newRDGraph(scope.In("rd"), h.RDConfig, c)
	return r.coda(RecurTruncated(r.step, noise["s0"], noise["depth_no_grad"], noise["depth_grad"], nil))
}

// RDVLAPolicy is the RD-VLA policy (model.arch rdvla): MolmoBotPolicy's backbone and pointing
// head with the recurrent-depth head in place of the flow expert. Loss, Sample and ActionErrors
// are MolmoBotPolicy's with this head (a fixed depth in one graph); it implements Recurrent for
// adaptive-depth inference.
type RDVLAPolicy struct {
	Net         VLAConfig
	Head        RecurrentDepthHead
	Norm        Normalization
	PointWeight float64 // see MolmoBotPolicy.PointWeight
}

// molmoBot is the policy as a MolmoBotPolicy with the recurrent-depth head.
func (p RDVLAPolicy) molmoBot() MolmoBotPolicy {
	return MolmoBotPolicy{Net: p.Net, Head: p.Head, Norm: p.Norm, PointWeight: p.PointWeight}
}

// Validate implements Policy.
func (p RDVLAPolicy) Validate() error { return p.molmoBot().Validate() }

// Noise implements Policy (RecurrentDepthHead.Noise).
func (p RDVLAPolicy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return p.Head.Noise(rng, b, train)
}

// Points implements Pointing.
func (p RDVLAPolicy) Points() bool { return p.PointWeight > 0 }

// Loss implements Policy: the MSE of the chunk after the sampled depth, plus the pointing loss.
func (p RDVLAPolicy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	return p.molmoBot().Loss(scope, b)
}

// Sample implements Policy: the chunk after Head.EvalDepth iterations, in one graph.
func (p RDVLAPolicy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	return p.molmoBot().Sample(scope, b)
}

// ActionErrors implements Policy.
func (p RDVLAPolicy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	return p.molmoBot().ActionErrors(scope, b)
}

// InitialState implements Recurrent (see the package function InitialState).
func (p RDVLAPolicy) InitialState(rng *rand.Rand, b int) *tensors.Tensor {
	return InitialState(rng, b, p.Net)
}

// WithFixedDepth implements Recurrent.
func (p RDVLAPolicy) WithFixedDepth(depth int) Recurrent {
	p.Head.FixedDepth = depth
	return p
}

// DepthSlots implements Recurrent.
func (p RDVLAPolicy) DepthSlots(depth int) (noGrad, grad int) {
	ng, g := DepthMasks(depth, p.Head.BPTT)
	return len(ng), len(g)
}

// RecurrentPrelude implements Recurrent: the prelude output e [B, 1+H, E], and the backbone
// context the core attends to, [B, N, D] with its cross mask [B, 1+H, N].
func (p RDVLAPolicy) RecurrentPrelude(scope *model.Scope, b PolicyBatch) (e, ctx, mask *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	net := scope.In("policy")
	c, _ := p.molmoBot().context(net, n, b)
	r := newRDGraph(net.In("rd"), p.Head.RDConfig, c)
	return r.e, r.ctx, r.mask
}

// RecurrentStep implements Recurrent: s ↦ Core(s, e, ctx), and the chunk Coda(s) in normalised
// units (what the stopping rule compares) and in raw units.
func (p RDVLAPolicy) RecurrentStep(scope *model.Scope, e, ctx, mask, s *Node) (next, chunk, raw *Node) {
	n := p.Norm.build(scope, e.Graph())
	r := &rdGraph{cfg: p.Head.RDConfig, scope: WithInit(scope.In("policy").In("rd")), ctx: ctx, mask: mask, e: e}
	next = r.step(s)
	chunk = r.coda(next)
	return next, chunk, n.actionRaw(chunk)
}
