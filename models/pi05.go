package models

// π0.5 ("π0.5: a Vision-Language-Action Model with Open-World Generalization", Physical
// Intelligence, arXiv:2504.16054) as LeRobot's PyTorch port defines it (huggingface/lerobot
// src/lerobot/policies/pi05/modeling_pi05.py, PI05Pytorch, with the adaptive RMSNorm of
// src/lerobot/policies/pi_gemma.py; openpi's Pi0 with pi05=True in
// Physical-Intelligence/openpi src/openpi/models/pi0.py). It shares π0's network (pi0.go) and
// differs in three places:
//
//   prefix:  as π0's (SigLIP tokens of every camera, then the prompt's Gemma embeddings), the
//            prompt carrying the robot state as text: "Task: …, State: s₁ s₂ …;\nAction: " with
//            each normalised state dimension discretised into 256 bins over [−1, 1]
//            (Pi05Prompt, LeRobot's Pi05PrepareStateTokenizerProcessorStep in processor_pi05.py);
//   suffix:  no state token: the H action tokens are action_in_proj(x_t) alone, one attention
//            block (embed_suffix's att_masks [1, 0, …, 0]); the flow time enters through the
//            condition c = swish(time_mlp_out(swish(time_mlp_in(sincos(t))))) [B, E];
//   expert:  every RMSNorm of the expert (input_layernorm, post_attention_layernorm, the final
//            norm) is adaptive (PiGemmaRMSNorm with cond_dim): [scale, shift, gate] =
//            dense(c), y = x/√(mean x² + eps)·(1 + scale) + shift, and each residual add is
//            gated, x + gate·f(y) (_gated_residual); the final norm's gate is unused.
//
// Knowledge insulation ("Knowledge Insulating Vision-Language-Action Models", Driess et al.,
// arXiv:2505.23705) is a training option: the expert reads the prefix's keys and values through
// a stop-gradient, so the action loss trains the expert and the projections only and the VLM
// receives no gradient from it.
//
// The training forward runs the prefix alone (Pi0PrefixHidden) and the suffix against its keys
// and values, as sampling does: the prefix never attends to the suffix (block-causal mask), so
// this equals LeRobot's single joint pass, and it is where the stop-gradient goes.
//
// Variables: π0's PaliGemma and expert layer names (pi0.go), the expert's norms as
// gemma_expert/model/{layers/<i>/{input,post_attention}_layernorm, norm}/dense/{weights,biases};
// action_in_proj, time_mlp_in, time_mlp_out, action_out_proj (LeRobot's names). The adaptive
// norms' dense layers start from reel's normal initialisation where LeRobot zeroes their weight
// and draws their bias uniformly: a from-scratch π0.5 is for tests and tiny recipes, real ones
// start from pi05_base.

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// Pi05StateBins is the number of bins a normalised state dimension is discretised into.
const Pi05StateBins = 256

// Pi05Config configures a π0.5 policy: π0's sizes (the state only sizes the prompt) and the
// knowledge-insulation training option.
type Pi05Config struct {
	Pi0Config
	// KnowledgeInsulation stops the action loss's gradient at the prefix's keys and values.
	KnowledgeInsulation bool
}

// Validate checks what the graph relies on (Pi0Config.Validate, errors naming pi05).
func (c Pi05Config) Validate() error {
	if err := c.Pi0Config.Validate(); err != nil {
		return fmt.Errorf("pi05%s", strings.TrimPrefix(err.Error(), "pi0"))
	}
	return nil
}

// Pi05DiscretizeState maps each normalised state value to its bin in [0, 255]:
// np.digitize(x, np.linspace(−1, 1, 257)[:−1]) − 1, values below −1 going to −1 and NaN to 255
// as numpy's do.
func Pi05DiscretizeState(state []float32) []int {
	out := make([]int, len(state))
	for i, v := range state {
		if v != v { // NaN sorts after every edge
			out[i] = Pi05StateBins - 1
			continue
		}
		// the bins' left edges e_k = −1 + 2k/256, k = 0…255, in float64 as numpy computes them;
		// digitize counts the edges ≤ x.
		n := 0
		for k := range Pi05StateBins {
			if float64(v) >= -1+2*float64(k)/Pi05StateBins {
				n = k + 1
			} else {
				break
			}
		}
		out[i] = n - 1
	}
	return out
}

// Pi05Prompt is the text π0.5 reads (LeRobot's Pi05PrepareStateTokenizerProcessorStep): the
// task stripped, underscores and newlines as spaces, then the discretised normalised state.
func Pi05Prompt(task string, state []float32) string {
	task = strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(task), "_", " "), "\n", " ")
	bins := Pi05DiscretizeState(state)
	s := make([]string, len(bins))
	for i, b := range bins {
		s[i] = strconv.Itoa(b)
	}
	return "Task: " + task + ", State: " + strings.Join(s, " ") + ";\nAction: "
}

// Pi05Suffix embeds the suffix (LeRobot PI05Pytorch.embed_suffix): the action tokens
// action_in_proj(xt) [B, H, E] and the time condition [B, E].
func Pi05Suffix(scope *model.Scope, cfg Pi05Config, xt, t *Node) (x, cond *Node) {
	scope = WithInit(scope)
	e := cfg.Expert.Hidden
	x = Linear(scope.At("action_in_proj"), xt, e, true)
	c := Pi0TimeEmbedding(t, e, 4e-3, 4.0)
	c = Linear(scope.At("time_mlp_in"), c, e, true)
	c = Linear(scope.At("time_mlp_out"), Mul(c, Sigmoid(c)), e, true)
	return x, Mul(c, Sigmoid(c))
}

// AdaRMSNorm is PiGemmaRMSNorm with a condition (huggingface/lerobot
// src/lerobot/policies/pi_gemma.py): [scale, shift, gate] = dense(cond), y = x/√(mean x² + eps) ·
// (1 + scale) + shift, for x [B, T, D] and cond [B, C]; it returns y and the gate [B, 1, D] of
// the residual add that follows.
func AdaRMSNorm(scope *model.Scope, x, cond *Node, eps float64) (y, gate *Node) {
	d := x.Shape().Dimensions[x.Rank()-1]
	m := LinearSplit(scope.At("dense"), cond, 3*d, 3, true)
	scale, shift, gate := InsertAxes(m[0], 1), InsertAxes(m[1], 1), InsertAxes(m[2], 1)
	ms := ReduceAndKeep(Square(x), ReduceMean, -1)
	y = Div(x, Sqrt(AddScalar(ms, eps)))
	return Add(Mul(y, AddScalar(scale, 1)), shift), gate
}

// Pi05Expert runs the suffix x [B, H, E] through the expert's layers (LeRobot
// compute_layer_complete with adarms_cond [None, cond]), its queries attending to the prefix's
// keys and values kv (valid [B, Tp], count [B, 1] from Pi0PrefixHidden) and to its own, and
// returns the velocity action_out_proj(norm(x)) [B, H, Pi0PadDim].
func Pi05Expert(scope *model.Scope, cfg Pi05Config, kv *Pi0KV, valid, count, x, cond *Node) *Node {
	c := cfg.Expert
	dec := expertDecoder(scope)
	g := x.Graph()
	b, ts := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	tp := valid.Shape().Dimensions[1]
	blocks := make([]int, tp+ts) // the prefix block 0, the actions block 1
	for i := tp; i < len(blocks); i++ {
		blocks[i] = 1
	}
	mask := Pi0Mask(Concatenate([]*Node{valid, Ones(g, shapesBool(b, ts))}, 1), blocks[tp:], blocks)
	cos, sin := RopeCosSin(c.Rope, Add(Positions(g, b, ts, 0), count))
	hd := c.HeadDim
	for i := range c.Layers {
		ly := dec.At("layers").At("%d", i)
		h, gate := AdaRMSNorm(ly.At("input_layernorm"), x, cond, c.Eps)
		at := ly.At("self_attn")
		q := Reshape(Linear(at.At("q_proj"), h, c.Heads*hd, c.AttnBias), b, ts, c.Heads, hd)
		k := Reshape(Linear(at.At("k_proj"), h, c.KVHeads*hd, c.AttnBias), b, ts, c.KVHeads, hd)
		v := Reshape(Linear(at.At("v_proj"), h, c.KVHeads*hd, c.AttnBias), b, ts, c.KVHeads, hd)
		k = Concatenate([]*Node{kv.K[i], ApplyRope(k, cos, sin)}, 1)
		v = Concatenate([]*Node{kv.V[i], v}, 1)
		o := ScaledAttention(ApplyRope(q, cos, sin), RepeatKV(k, c.Heads), RepeatKV(v, c.Heads), mask, 0, 0)
		o = Linear(at.At("o_proj"), Reshape(o, b, ts, c.Heads*hd), c.Hidden, c.OBias)
		x = Add(x, Mul(o, gate))
		h, gate = AdaRMSNorm(ly.At("post_attention_layernorm"), x, cond, c.Eps)
		x = Add(x, Mul(decoderMLP(ly.At("mlp"), c, h), gate))
	}
	y, _ := AdaRMSNorm(dec.At("norm"), x, cond, c.Eps)
	return Linear(WithInit(scope).At("action_out_proj"), y, Pi0PadDim, true)
}

// pi05Prefix is the prefix's keys and values, stopped from the gradient with knowledge
// insulation.
func pi05Prefix(scope *model.Scope, cfg Pi05Config, images, tokens *Node) (kv *Pi0KV, valid, count *Node) {
	_, kv, valid, count = Pi0PrefixHidden(scope, cfg.Pi0Config, images, tokens)
	if cfg.KnowledgeInsulation {
		for i := range kv.K {
			kv.K[i], kv.V[i] = StopGradient(kv.K[i]), StopGradient(kv.V[i])
		}
	}
	return kv, valid, count
}

// Pi05Velocity is the velocity v_θ [B, H, Pi0PadDim] at noisy chunks xt and times t [B] (LeRobot
// PI05Pytorch.forward's network).
func Pi05Velocity(scope *model.Scope, cfg Pi05Config, images, tokens, xt, t *Node) *Node {
	kv, valid, count := pi05Prefix(scope, cfg, images, tokens)
	x, cond := Pi05Suffix(scope, cfg, xt, t)
	return Pi05Expert(scope, cfg, kv, valid, count, x, cond)
}

// Pi05Sample integrates the normalised chunk [B, H, ActionDim] from the noise [B, H, Pi0PadDim]
// with EulerSteps Euler steps from t = 1 (LeRobot sample_actions), the prefix computed once;
// g guides every step (real-time chunking), nil for none.
func Pi05Sample(scope *model.Scope, cfg Pi05Config, images, tokens, noise *Node, g *losses.Guidance) *Node {
	b := images.Shape().Dimensions[0]
	kv, valid, count := pi05Prefix(scope, cfg, images, tokens)
	x := losses.FlowPi0.GuidedEulerSample(noise, cfg.EulerSteps, func(x, t *Node) *Node {
		xe, cond := Pi05Suffix(scope, cfg, x, BroadcastToDims(Reshape(t, 1), b))
		return Pi05Expert(scope, cfg, kv, valid, count, xe, cond)
	}, g)
	return Slice(x, AxisRange(), AxisRange(), AxisRange(0, cfg.ActionDim))
}

// Pi05Policy is π0.5 as a Policy (model.arch pi05). Its graph reads the images, the prompt
// tokens (which carry the state, see Pi05Prompt) and the actions: PolicyBatch.State is not an
// input of the network. Loss is LeRobot's PI05Policy.forward (the flow MSE over the robot's
// action dimensions), Sample its select_action's chunk.
type Pi05Policy struct {
	Config Pi05Config
	Norm   Normalization
}

// Validate implements Policy.
func (p Pi05Policy) Validate() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	return p.Norm.Check(p.Config.StateDim, p.Config.ActionDim)
}

// Noise implements Policy: π0's noise and flow times (the same Beta(1.5, 1) sampling).
func (p Pi05Policy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return p.Config.Noise(rng, b, train)
}

// Loss implements Policy: ‖v_θ(x_t, t) − (ε − a)‖² on the normalised, padded chunk, averaged over
// the robot's action dimensions (PI05Policy.forward truncates the losses to them).
func (p Pi05Policy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	c := p.Config
	n := p.Norm.build(scope, b.Images.Graph())
	bs := b.Images.Shape().Dimensions[0]
	a := pi0Pad(b.Images, n.action(b.Actions), bs)
	xt, u := losses.FlowPi0.Interpolate(a, b.Noise["noise"], b.Noise["time"])
	v := Pi05Velocity(scope, c, b.Images, b.Tokens, xt, b.Noise["time"])
	real := func(x *Node) *Node { return Slice(x, AxisRange(), AxisRange(), AxisRange(0, c.ActionDim)) }
	if b.Weights != nil {
		return losses.WeightedMean(losses.SampleMSE(real(v), real(u)), b.Weights)
	}
	return losses.MSE(real(v), real(u))
}

// Sample implements Policy: the sampled chunk in raw units.
func (p Pi05Policy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	return n.actionRaw(Pi05Sample(scope, p.Config, b.Images, b.Tokens, b.Noise["noise"], nil))
}

// ActionErrors implements Policy.
func (p Pi05Policy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	return actionErrors(Pi05Sample(scope, p.Config, b.Images, b.Tokens, b.Noise["noise"], nil), n.action(b.Actions))
}

// Inpaints implements Inpainter: π0.5 samples by flow.
func (Pi05Policy) Inpaints() bool { return true }

// SampleInpainting implements Inpainter (real-time chunking): Pi05Sample guided on the padded
// chunk.
func (p Pi05Policy) SampleInpainting(scope *model.Scope, b PolicyBatch, in Inpainting) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	d := in.Prev.Shape().Dimensions
	g := in.guidance(n, []int{d[0], d[1], Pi0PadDim})
	return n.actionRaw(Pi05Sample(scope, p.Config, b.Images, b.Tokens, b.Noise["noise"], g))
}

var _ Inpainter = Pi05Policy{}
