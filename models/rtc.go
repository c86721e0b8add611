package models

// Real-time chunking for every flow-matching policy ("Real-Time Execution of Action Chunking Flow
// Policies", Black et al., arXiv:2506.07339): the next chunk is sampled as an inpainting of the
// actions already committed from the previous one, each Euler step's velocity guided toward them
// (losses.GuidedEulerSample). The guidance wraps a family's own velocity field, so a flow family
// gets it by passing its Inpainting on to its sampler: MolmoBot's flow head (GuidedHead) and
// π0 (Pi0SampleGuided), which π0.5 and SmolVLA reuse.

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// Inpainting is what a chunk continues: the committed actions and their guidance weights.
type Inpainting struct {
	Prev        *Node // [B, H, A] committed actions (raw units), aligned with the chunk to sample
	Weights     *Node // [B, H] guidance weight of each action (1 frozen, decaying, 0 free)
	MaxGuidance *Node // scalar β, the clip of the guidance weight
}

// Inpainter is a Policy that can sample a chunk continuing committed actions (real-time chunking).
type Inpainter interface {
	Policy
	// Inpaints reports whether the policy samples by flow (a chunk-regression head does not, and
	// cannot be guided).
	Inpaints() bool
	// SampleInpainting is Sample guided toward in (raw units out).
	SampleInpainting(scope *model.Scope, b PolicyBatch, in Inpainting) *Node
}

// GuidedHead is an ActionHead whose sampler can be guided (FlowMatchingHead).
type GuidedHead interface {
	ActionHead
	SampleGuided(scope *model.Scope, c ActionContext, noise map[string]*Node, g *losses.Guidance) *Node
}

var (
	_ Inpainter  = MolmoBotPolicy{}
	_ Inpainter  = Pi0Policy{}
	_ GuidedHead = FlowMatchingHead{}
)

// guidance maps in to the normalised units and the shape dims [B, ..., H, A'] of a sampler's x:
// the committed actions normalised, padded with zeros to A' ≥ A dimensions (π0's padding), the
// weights broadcast over the robot's dimensions and 0 on the padding.
func (in Inpainting) guidance(n normalizer, dims []int) *losses.Guidance {
	prev := n.action(in.Prev)
	d := prev.Shape().Dimensions
	w := BroadcastToDims(InsertAxes(ConvertDType(in.Weights, prev.DType()), -1), d...)
	if pad := dims[len(dims)-1] - d[2]; pad > 0 {
		prev = Concatenate([]*Node{prev, zerosAs(prev, d[0], d[1], pad)}, -1)
		w = Concatenate([]*Node{w, zerosAs(w, d[0], d[1], pad)}, -1)
	}
	return &losses.Guidance{Target: Reshape(prev, dims...), Weights: Reshape(w, dims...),
		MaxWeight: ConvertDType(in.MaxGuidance, prev.DType())}
}

// Inpaints implements Inpainter: a flow head can be guided.
func (p MolmoBotPolicy) Inpaints() bool {
	_, ok := p.Head.(GuidedHead)
	return ok
}

// SampleInpainting implements Inpainter (Inpaints must be true).
func (p MolmoBotPolicy) SampleInpainting(scope *model.Scope, b PolicyBatch, in Inpainting) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	net := scope.In("policy")
	c, _ := p.context(net, n, b)
	d := in.Prev.Shape().Dimensions
	g := in.guidance(n, []int{d[0], 1, d[1], d[2]}) // the head samples [B, 1, H, A]
	return n.actionRaw(p.Head.(GuidedHead).SampleGuided(net, c, b.Noise, g))
}

// Inpaints implements Inpainter: π0 is a flow.
func (Pi0Policy) Inpaints() bool { return true }

// SampleInpainting implements Inpainter: Pi0SampleGuided on the padded chunk.
func (p Pi0Policy) SampleInpainting(scope *model.Scope, b PolicyBatch, in Inpainting) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	d := in.Prev.Shape().Dimensions
	g := in.guidance(n, []int{d[0], d[1], Pi0PadDim})
	return n.actionRaw(Pi0SampleGuided(scope, p.Config, b.Images, b.Tokens, st, b.Noise["noise"], true, g))
}
