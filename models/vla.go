package models

// The policy abstraction every VLA in reel shares, in the spirit of openpi's Pi0.compute_loss /
// sample_actions (Physical-Intelligence/openpi src/openpi/models/model.py, pi0.py): a policy reads
// a typed batch (images per camera, instruction tokens, robot state, and for training the target
// action chunk), a backbone turns it into a context, and an action head trains on that context
// (Loss) or samples an action chunk from it (Sample). The heads — flow matching in either time
// convention, chunk regression, the recurrent-depth head — differ only in their loss, their
// sampler and the random inputs they draw on the host (Noise).

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// PolicyBatch is the typed batch of a VLA policy, in raw (unnormalised) units.
type PolicyBatch struct {
	Images  *Node // [B, C, S, S, 3] in [0, 1]: every camera of the spec, in its order
	Tokens  *Node // [B, L] int32 instruction tokens, 0 = padding
	State   *Node // [B, StateDim] robot state; nil when the robot has none
	Actions *Node // [B, H, A] target chunk (training, offline evaluation); nil when sampling
	Focus   *Node // [B, 4] two (x, y) points the task is about (simulator data); nil if unknown
	// Weights [B] weigh each example's action loss (reward-aligned behaviour cloning): the loss
	// is Σ w·loss / Σ w; nil is the plain mean.
	Weights *Node
	// Noise holds the action head's random inputs, drawn on the host by its Noise method.
	Noise map[string]*Node
}

// HeadInput is one random input of an action head, drawn on the host from the run's seed so
// that a resumed run replays the same noise.
type HeadInput struct {
	Name  string
	Value *tensors.Tensor
}

// ActionContext is what the backbone hands an action head.
type ActionContext struct {
	Hidden []*Node // the backbone's hidden state after each block, [B, N, D]
	Valid  *Node   // [B, N]: the tokens the head may read (padding is not)
	Cond   *Node   // [B, StateDim+2]: the normalised robot state and the backbone's point
}

// ActionHead trains on and samples from a backbone's context, in normalised action units.
type ActionHead interface {
	// Noise draws the head's random inputs for b examples: for a training step (train) or for
	// sampling.
	Noise(rng *rand.Rand, b int, train bool) []HeadInput
	// Loss is the scalar training loss for target chunks actions [B, H, A].
	Loss(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node
	// Sample returns action chunks [B, H, A].
	Sample(scope *model.Scope, c ActionContext, noise map[string]*Node) *Node
}

// SampleLosser is an action head that can give each example's loss, [B] (its Loss is their
// mean), for sample-weighted training.
type SampleLosser interface {
	SampleLosses(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node
}

// Normalization maps states and actions to the units the network works in, x ↦ (x − offset) /
// scale per dimension. The task derives offset and scale from the data's statistics and the
// normalisation mode (mean/std, min/max or quantiles); they live in non-trainable variables
// (scope "norm"), so every checkpoint carries them and a policy always acts with the statistics
// it was trained on.
type Normalization struct {
	StateOffset, StateScale   []float32
	ActionOffset, ActionScale []float32
}

// normalizer is a Normalization's graph side.
type normalizer struct{ stateOff, stateScale, actOff, actScale *Node }

func (n Normalization) build(scope *model.Scope, g *Graph) normalizer {
	ns := scope.In("norm")
	v := func(name string, init []float32) *Node {
		if len(init) == 0 {
			return nil
		}
		return ns.VariableWithValue(name, init).SetTrainable(false).NodeValue(g)
	}
	return normalizer{v("state_offset", n.StateOffset), v("state_scale", n.StateScale),
		v("action_offset", n.ActionOffset), v("action_scale", n.ActionScale)}
}

func (n normalizer) state(x *Node) *Node { return affineInv(x, n.stateOff, n.stateScale) }
func (n normalizer) action(x *Node) *Node {
	return affineInv(x, n.actOff, n.actScale)
}
func (n normalizer) actionRaw(x *Node) *Node {
	return Add(Mul(x, ExpandLeftToRank(n.actScale, x.Rank())), ExpandLeftToRank(n.actOff, x.Rank()))
}

func affineInv(x, off, scale *Node) *Node {
	return Div(Sub(x, ExpandLeftToRank(off, x.Rank())), ExpandLeftToRank(scale, x.Rank()))
}

// VLAPolicy is a MolmoBot-style policy: the backbone (a ViT per camera and the instruction,
// PolicyContext), its pointing head (PointHead), and an action head. Its graph functions take raw
// states and actions and return raw action chunks: normalisation happens inside the graph.
type VLAPolicy struct {
	Net  VLAConfig
	Head ActionHead
	Norm Normalization
	// PointWeight weighs the pointing loss (squared distance of the point to the nearer focus
	// point) in batches that carry focus points.
	PointWeight float64
	// Pi0, when set, replaces the backbone and head by π0's PaliGemma + action expert (pi0.go);
	// Net then only carries the robot's dimensions.
	Pi0 *Pi0Config
}

// Noise draws the policy's random inputs for b examples (see ActionHead.Noise).
func (p VLAPolicy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	if p.Pi0 != nil {
		return p.Pi0.Noise(rng, b, train)
	}
	return p.Head.Noise(rng, b, train)
}

// Validate checks the network sizes and that the normalisation fits them.
func (p VLAPolicy) Validate() error {
	if p.Pi0 != nil {
		if err := p.Pi0.Validate(); err != nil {
			return err
		}
	} else if err := p.Net.Validate(); err != nil {
		return err
	}
	n := p.Norm
	switch {
	case len(n.StateOffset) != p.Net.StateDim || len(n.StateScale) != p.Net.StateDim:
		return fmt.Errorf("policy: state normalisation has %d/%d values for %d state dimensions", len(n.StateOffset), len(n.StateScale), p.Net.StateDim)
	case len(n.ActionOffset) != p.Net.ActionDim || len(n.ActionScale) != p.Net.ActionDim:
		return fmt.Errorf("policy: action normalisation has %d/%d values for %d action dimensions", len(n.ActionOffset), len(n.ActionScale), p.Net.ActionDim)
	case p.Head == nil && p.Pi0 == nil:
		return fmt.Errorf("policy: no action head")
	}
	return nil
}

// context runs the backbone and the pointing head in the network's scope net ("policy").
func (p VLAPolicy) context(net *model.Scope, n normalizer, b PolicyBatch) (c ActionContext, point *Node) {
	c.Hidden, c.Valid = PolicyContext(net, p.Net, b.Images, b.Tokens)
	point = PointHead(net.In("point"), p.Net, c.Hidden[len(c.Hidden)-1], c.Valid)
	c.Cond = point
	if b.State != nil {
		c.Cond = Concatenate([]*Node{n.state(b.State), point}, -1)
	}
	return c, point
}

// Loss is the action head's loss on the normalised target chunk, plus the pointing loss when the
// batch has focus points.
func (p VLAPolicy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	if p.Pi0 != nil {
		return p.Pi0.loss(scope, n, b)
	}
	net := scope.In("policy")
	c, point := p.context(net, n, b)
	var loss *Node
	if b.Weights != nil {
		h, ok := p.Head.(SampleLosser)
		if !ok {
			panic(fmt.Sprintf("policy: the %T action head has no per-example losses for sample weights", p.Head))
		}
		loss = losses.WeightedMean(h.SampleLosses(net, c, n.action(b.Actions), b.Noise), b.Weights)
	} else {
		loss = p.Head.Loss(net, c, n.action(b.Actions), b.Noise)
	}
	if b.Focus != nil && p.PointWeight > 0 { // squared distance to the nearer valid focus point
		d1 := ReduceSum(Square(Sub(point, Slice(b.Focus, AxisRange(), AxisRange(0, 2)))), -1)
		d2 := ReduceSum(Square(Sub(point, Slice(b.Focus, AxisRange(), AxisRange(2, 4)))), -1)
		loss = Add(loss, MulScalar(ReduceAllMean(Min(d1, d2)), p.PointWeight/2))
	}
	return loss
}

// Sample returns action chunks [B, H, A] in raw units.
func (p VLAPolicy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	if p.Pi0 != nil {
		return n.actionRaw(p.pi0Sample(scope, n, b))
	}
	net := scope.In("policy")
	c, _ := p.context(net, n, b)
	return n.actionRaw(p.Head.Sample(net, c, b.Noise))
}

// ActionErrors compares sampled chunks with the batch's target chunks in normalised units: the
// per-example mean squared error over the chunk and over its first action, [B] each.
func (p VLAPolicy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	var sample *Node
	if p.Pi0 != nil {
		sample = p.pi0Sample(scope, n, b)
	} else {
		net := scope.In("policy")
		c, _ := p.context(net, n, b)
		sample = p.Head.Sample(net, c, b.Noise)
	}
	d := Square(Sub(sample, n.action(b.Actions))) // [B, H, A]
	return ReduceMean(d, 1, 2), ReduceMean(Slice(d, AxisRange(), AxisRange(0, 1)), 1, 2)
}

// pi0Sample is π0's normalised chunk, the prefix cached over the Euler steps.
func (p VLAPolicy) pi0Sample(scope *model.Scope, n normalizer, b PolicyBatch) *Node {
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	return Pi0Sample(scope, *p.Pi0, b.Images, b.Tokens, st, b.Noise["noise"], true)
}

// BatchLayout names the positional inputs of a policy graph, in order: "images", "tokens",
// optionally "state", "actions" and "focus", then the head's noise inputs (and "weights", the
// sample weights, where a task adds them).
type BatchLayout []string

// Bind maps a graph's positional inputs to a PolicyBatch.
func (l BatchLayout) Bind(in []*Node) PolicyBatch {
	if len(in) != len(l) {
		panic(fmt.Sprintf("policy batch: %d inputs for the %d of layout %v", len(in), len(l), []string(l)))
	}
	b := PolicyBatch{Noise: map[string]*Node{}}
	for i, name := range l {
		switch name {
		case "images":
			b.Images = in[i]
		case "tokens":
			b.Tokens = in[i]
		case "state":
			b.State = in[i]
		case "actions":
			b.Actions = in[i]
		case "focus":
			b.Focus = in[i]
		case "weights":
			b.Weights = in[i]
		default:
			b.Noise[name] = in[i]
		}
	}
	return b
}

// Layout returns the names of inputs of a batch with the given fields present, followed by the
// noise inputs.
func Layout(state, actions, focus bool, noise []HeadInput) BatchLayout {
	l := BatchLayout{"images", "tokens"}
	for _, f := range []struct {
		on   bool
		name string
	}{{state, "state"}, {actions, "actions"}, {focus, "focus"}} {
		if f.on {
			l = append(l, f.name)
		}
	}
	for _, h := range noise {
		l = append(l, h.Name)
	}
	return l
}

// NormalTensor draws a tensor of standard normal float32 values of the given dimensions.
func NormalTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

// zerosAs returns a zero node of x's dtype with the given dimensions.
func zerosAs(x *Node, dims ...int) *Node {
	return Zeros(x.Graph(), shapes.Make(x.DType(), dims...))
}
