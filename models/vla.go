package models

// The policy abstraction every VLA in reel shares, in the spirit of openpi's BaseModel
// (Physical-Intelligence/openpi src/openpi/models/model.py): a Policy reads a typed batch (images
// per camera, instruction tokens, robot state, and for training the target action chunk) and owns
// its loss (compute_loss) and its sampler (sample_actions). The families are MolmoBotPolicy
// (molmobot.go: a backbone and an ActionHead — flow matching in either time convention or chunk
// regression), RDVLAPolicy (rdvla.go: the same backbone with the recurrent-depth head; the
// optional Recurrent interface) and Pi0Policy (pi0.go: PaliGemma and the Gemma action expert).

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Policy is a VLA network, one type per family (MolmoBotPolicy, RDVLAPolicy, Pi0Policy). Its
// graph functions read a typed batch in raw units and return raw action chunks: normalisation
// happens inside the graph. A new family is a new type implementing Policy (docs/policies.md),
// never a field or a branch in another family's methods.
type Policy interface {
	// Validate checks the network's sizes and that its normalisation fits them.
	Validate() error
	// Noise draws the policy's random inputs for b examples on the host, for a training step
	// (train) or for sampling; they reach the graph as PolicyBatch.Noise.
	Noise(rng *rand.Rand, b int, train bool) []HeadInput
	// Loss is the scalar training loss of a batch with target actions.
	Loss(scope *model.Scope, b PolicyBatch) *Node
	// Sample returns action chunks [B, H, A] in raw units.
	Sample(scope *model.Scope, b PolicyBatch) *Node
	// ActionErrors compares sampled chunks with the batch's target chunks in normalised units:
	// the per-example mean squared error over the chunk and over its first action, [B] each.
	ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node)
}

// Pointing is an optional interface of a Policy whose Loss reads PolicyBatch.Focus (MolmoBot's
// pointing loss): Points reports whether it does.
type Pointing interface {
	Points() bool
}

// Recurrent is the optional interface of a recurrent-depth policy (RD-VLA, rdvla.go): a deployed
// policy runs RecurrentPrelude once and RecurrentStep once per core iteration, the host deciding
// when to stop (AdaptiveIterate).
type Recurrent interface {
	Policy
	// RecurrentPrelude runs the backbone and the prelude: the prelude output e, the context the
	// core attends to and its cross mask.
	RecurrentPrelude(scope *model.Scope, b PolicyBatch) (e, ctx, mask *Node)
	// RecurrentStep is one core iteration s ↦ next, and the chunk read out of next in normalised
	// units (what the stopping rule compares) and in raw units.
	RecurrentStep(scope *model.Scope, e, ctx, mask, s *Node) (next, chunk, raw *Node)
	// InitialState draws the latent state s₀ of b examples.
	InitialState(rng *rand.Rand, b int) *tensors.Tensor
	// WithFixedDepth is the policy training at depth instead of a sampled one (benchmarks).
	WithFixedDepth(depth int) Recurrent
	// DepthSlots is the number of gradient-stopped and backpropagated unrolled core slots of the
	// training graph for a depth (see RecurTruncated).
	DepthSlots(depth int) (noGrad, grad int)
}

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
	// Noise holds the policy's random inputs, drawn on the host by its Noise method.
	Noise map[string]*Node
}

// HeadInput is one random input of a policy (its action head's), drawn on the host from the run's seed so
// that a resumed run replays the same noise.
type HeadInput struct {
	Name  string
	Value *tensors.Tensor
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

// Check checks that the normalisation has one offset and scale per state and action dimension.
func (n Normalization) Check(stateDim, actionDim int) error {
	switch {
	case len(n.StateOffset) != stateDim || len(n.StateScale) != stateDim:
		return fmt.Errorf("policy: state normalisation has %d/%d values for %d state dimensions", len(n.StateOffset), len(n.StateScale), stateDim)
	case len(n.ActionOffset) != actionDim || len(n.ActionScale) != actionDim:
		return fmt.Errorf("policy: action normalisation has %d/%d values for %d action dimensions", len(n.ActionOffset), len(n.ActionScale), actionDim)
	}
	return nil
}

// actionErrors is ActionErrors of a sampled normalised chunk against the normalised target.
func actionErrors(sample, target *Node) (chunk, first *Node) {
	d := Square(Sub(sample, target)) // [B, H, A]
	return ReduceMean(d, 1, 2), ReduceMean(Slice(d, AxisRange(), AxisRange(0, 1)), 1, 2)
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

// The families implement Policy, and RD-VLA the optional interfaces.
var (
	_ Policy    = MolmoBotPolicy{}
	_ Pointing  = MolmoBotPolicy{}
	_ Policy    = Pi0Policy{}
	_ Recurrent = RDVLAPolicy{}
	_ Pointing  = RDVLAPolicy{}
)
