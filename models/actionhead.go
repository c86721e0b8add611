package models

// The action heads of the MolmoBot backbone (MolmoBotPolicy, RDVLAPolicy): what a head reads
// (ActionContext), the ActionHead interface, and the heads over the DiT action expert
// (ActionExpert): flow matching and chunk regression. The recurrent-depth head is in rdvla.go.

import (
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

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

// FlowMatchingHead trains the action expert as a velocity field by flow matching ("Flow Matching
// for Generative Modeling", Lipman et al., arXiv:2210.02747) and samples chunks by integrating
// it with Euler steps from noise, in either time convention (losses.FlowConvention: MolmoBot's
// t = 0 noise, or pi0's t = 1 noise).
type FlowMatchingHead struct {
	Net        VLAConfig
	Convention losses.FlowConvention
	// TimeSamples is the number K of flow times drawn per example in training: the K noisy
	// chunks share one backbone pass (MolmoBot trains with 8).
	TimeSamples int
	EulerSteps  int // integration steps when sampling (10 in MolmoBot and pi0)
}

// Noise implements ActionHead: for training, the noise ε [B, K, H, A] and flow times t [B, K]
// from the convention's distribution; for sampling, the starting noise [B, H, A].
func (h FlowMatchingHead) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	n, a := h.Net.Horizon, h.Net.ActionDim
	if !train {
		return []HeadInput{{"noise", NormalTensor(rng, b, n, a)}}
	}
	k := h.TimeSamples
	noise := NormalTensor(rng, b, k, n, a)
	times := make([]float32, b*k)
	for i := range times {
		times[i] = float32(h.Convention.SampleTime(rng))
	}
	return []HeadInput{{"noise", noise}, {"time", tensors.FromFlatDataAndDimensions(times, b, k)}}
}

// Loss implements ActionHead: the MSE between the expert's velocity at x_t and the target
// velocity u, over K flow times per example.
func (h FlowMatchingHead) Loss(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node {
	return losses.MSE(h.velocities(scope, c, actions, noise))
}

// velocities are the expert's predicted and the target velocities at the K flow times of each
// example, [B, K, H, A] each.
func (h FlowMatchingHead) velocities(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) (pred, target *Node) {
	eps, times := noise["noise"], noise["time"]
	d := actions.Shape().Dimensions
	k := eps.Shape().Dimensions[1]
	ak := BroadcastToDims(InsertAxes(actions, 1), d[0], k, d[1], d[2])
	xt, target := h.Convention.Interpolate(ak, eps, times)
	return ActionExpert(scope.In("expert"), h.Net, c.Hidden, c.Valid, c.Cond, xt, times), target
}

// SampleLosses implements SampleLosser: each example's MSE over its K flow times.
func (h FlowMatchingHead) SampleLosses(scope *model.Scope, c ActionContext, actions *Node, noise map[string]*Node) *Node {
	return losses.SampleMSE(h.velocities(scope, c, actions, noise))
}

// Sample implements ActionHead: EulerSteps Euler steps of the learned field from the noise end of
// the convention, over one backbone pass.
func (h FlowMatchingHead) Sample(scope *model.Scope, c ActionContext, noise map[string]*Node) *Node {
	return h.SampleGuided(scope, c, noise, nil)
}

// SampleGuided implements GuidedHead: Sample with every Euler step guided toward g (real-time
// chunking, losses.Guidance over [B, 1, H, A]); g nil is Sample.
func (h FlowMatchingHead) SampleGuided(scope *model.Scope, c ActionContext, noise map[string]*Node, g *losses.Guidance) *Node {
	x0 := InsertAxes(noise["noise"], 1) // [B, 1, H, A]
	b := x0.Shape().Dimensions[0]
	calls := 0
	x := h.Convention.GuidedEulerSample(x0, h.EulerSteps, func(x, t *Node) *Node {
		expert := scope.In
		if calls > 0 {
			expert = scope.Shared // the same weights at every Euler step
		}
		calls++
		return ActionExpert(expert("expert"), h.Net, c.Hidden, c.Valid, c.Cond, x, BroadcastToDims(Reshape(t, 1, 1), b, 1))
	}, g)
	return Squeeze(x, 1)
}

// ChunkRegressionHead is the regression baseline: the same action expert, given a zero chunk and
// time 0, predicts the chunk directly and is trained with its MSE. It averages the modes of a
// multi-solution task, which flow matching does not.
type ChunkRegressionHead struct {
	Net VLAConfig
}

// Noise implements ActionHead: the regression head draws nothing.
func (ChunkRegressionHead) Noise(*rand.Rand, int, bool) []HeadInput { return nil }

// Loss implements ActionHead: the MSE of the predicted chunk.
func (h ChunkRegressionHead) Loss(scope *model.Scope, c ActionContext, actions *Node, _ map[string]*Node) *Node {
	return losses.MSE(h.predict(scope, c), actions)
}

// SampleLosses implements SampleLosser: each example's MSE.
func (h ChunkRegressionHead) SampleLosses(scope *model.Scope, c ActionContext, actions *Node, _ map[string]*Node) *Node {
	return losses.SampleMSE(h.predict(scope, c), actions)
}

// Sample implements ActionHead: the predicted chunk.
func (h ChunkRegressionHead) Sample(scope *model.Scope, c ActionContext, _ map[string]*Node) *Node {
	return h.predict(scope, c)
}

func (h ChunkRegressionHead) predict(scope *model.Scope, c ActionContext) *Node {
	b := c.Cond.Shape().Dimensions[0]
	x := zerosAs(c.Cond, b, 1, h.Net.Horizon, h.Net.ActionDim)
	return Squeeze(ActionExpert(scope.In("expert"), h.Net, c.Hidden, c.Valid, c.Cond, x, zerosAs(c.Cond, b, 1)), 1)
}
