package models

// SmolVLA ("SmolVLA: A Vision-Language-Action Model for Affordable and Efficient Robotics",
// Shukor et al., arXiv:2506.01844) as LeRobot implements it (huggingface/lerobot
// src/lerobot/policies/smolvla/modeling_smolvla.py VLAFlowMatching and smolvlm_with_expert.py
// SmolVLMWithExpertModel):
//
//   prefix:  per camera the SmolVLM2 image tokens (SigLIP tower, pixel-shuffle connector:
//            Idefics3VisionFeatures, Idefics3Connector) scaled by √D, the instruction's token
//            embeddings scaled by √D, then one state token state_proj(s) (not scaled);
//   suffix:  H action tokens action_time_mlp_out(silu(action_time_mlp_in([action_in_proj(x_t) ‖
//            sincos(t)]))) — the action expert's stream, a Llama of width
//            expert_width_multiplier·D with the VLM's heads and head width;
//   layers:  the SmolVLM2 text model cut to its first num_vlm_layers, each paired with one expert
//            layer. Layer i is self-attention (i % self_attn_every_n_layers == 0): the two
//            streams' queries, keys and values concatenated under the block-causal mask, as π0;
//            otherwise cross-attention: the VLM attends to the prefix alone, and the expert's
//            queries (positions restarted at 0) attend to the expert's k_proj/v_proj of the VLM
//            layer's keys (after RoPE) and values — the expert reads the prefix through its own
//            projections and never sees its own tokens in those layers;
//   mask:    make_att_2d_masks of att_masks 0 for images and text (one bidirectional block), 1
//            for the state token and 1 for every action token: the state is a block of its own and
//            the actions attend causally to each other (π0's actions are one block);
//   output:  v_θ = action_out_proj(the expert's final-normed action tokens).
//
// RoPE is smolvlm_with_expert.py's apply_rope: rotate-half with max_wavelength 10 000 for every
// layer of both streams, whatever the SmolVLM2 text config's rope_theta says. Flow matching and
// sampling are π0's (losses.FlowPi0: t = 1 noise, x_t = t·ε + (1−t)·a, u = ε − a, t ~
// 0.999·Beta(1.5, 1) + 0.001; 10 Euler steps from t = 1 with the prefix's keys and values cached),
// states and actions zero-padded to max_state_dim = max_action_dim = 32, the loss averaged over the
// robot's action dimensions (SmolVLAPolicy.forward).
//
// Variables: the SmolVLM2 ones under transformers' names (model/vision_model/…,
// model/connector/…, model/text_model/{embed_tokens, layers/<i>, norm}); the expert under
// lm_expert/{layers/<i>, norm}; state_proj, action_in_proj, action_time_mlp_in,
// action_time_mlp_out, action_out_proj (LeRobot's names).
//
// Where reel differs: only num_expert_layers ≤ 0 (the expert as deep as the cut VLM, LeRobot's
// default) is implemented; add_image_special_tokens, prefix_length padding and empty cameras are
// not (SmolVLAConfig.Validate and the LeRobot loader refuse them).

import (
	"fmt"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// SmolVLAPadDim is the width states and actions are zero-padded to (SmolVLAConfig max_state_dim,
// max_action_dim).
const SmolVLAPadDim = 32

// smolVLARopeTheta is apply_rope's max_wavelength in smolvlm_with_expert.py.
const smolVLARopeTheta = 10000

// SmolVLAConfig configures a SmolVLA policy.
type SmolVLAConfig struct {
	VLM           Idefics3Config // the SmolVLM2 backbone; its Text already cut to num_vlm_layers
	Expert        DecoderConfig  // the action expert: VLM.Text with its own width and MLP width
	SelfAttnEvery int            // self_attn_every_n_layers (attention_mode cross_attn); ≤ 0: every layer cross
	CrossAttn     bool           // attention_mode "cross_attn" (false: "self_attn", every layer joint)
	Cameras       int
	StateDim      int // the robot's (unpadded) state dimensions; 0: no state (a zero state)
	ActionDim     int
	Horizon       int // chunk_size
	EulerSteps    int // num_steps
}

// SmolVLAExpert is the expert's configuration for the cut text model text: width hidden, MLP
// width mlp (smolvlm_with_expert.py: hidden·expert_width_multiplier and get_intermediate_size of
// it), the same depth, heads, kv heads and head width.
func SmolVLAExpert(text DecoderConfig, hidden, mlp int) DecoderConfig {
	e := text
	e.Hidden, e.Intermediate = hidden, mlp
	e.TieEmbeddings = false
	return e
}

// SmolVLAIntermediate is smolvlm_with_expert.py's get_intermediate_size: the expert's MLP width
// for width hidden (⌊4·⌊2·hidden/3⌋⌋ rounded up to a multiple of 256).
func SmolVLAIntermediate(hidden int) int {
	h := 4 * (2 * hidden / 3)
	return 256 * ((h + 255) / 256)
}

// Validate checks what the graph relies on (one error naming the field).
func (c SmolVLAConfig) Validate() error {
	t, e := c.VLM.Text, c.Expert
	switch {
	case t.Arch != "" && t.Arch != "llama":
		return fmt.Errorf("smolvla: the SmolVLM2 text model must be a Llama, got %s", t.Arch)
	case e.Layers != t.Layers || e.Heads != t.Heads || e.KVHeads != t.KVHeads || e.HeadDim != t.HeadDim:
		return fmt.Errorf("smolvla: the action expert must have the VLM's layers, heads, kv heads and head_dim (%d, %d, %d, %d)", t.Layers, t.Heads, t.KVHeads, t.HeadDim)
	case e.Hidden <= 0 || e.Intermediate <= 0:
		return fmt.Errorf("smolvla: the action expert's width and MLP width must be > 0")
	case c.StateDim < 0 || c.StateDim > SmolVLAPadDim || c.ActionDim < 1 || c.ActionDim > SmolVLAPadDim:
		return fmt.Errorf("smolvla: state (%d) and action (%d) dimensions must be at most %d (smolvla pads them to %d)", c.StateDim, c.ActionDim, SmolVLAPadDim, SmolVLAPadDim)
	case c.Cameras < 1 || c.Horizon < 1 || c.EulerSteps < 1:
		return fmt.Errorf("smolvla: cameras, horizon and Euler steps must be ≥ 1")
	}
	return c.VLM.Validate()
}

// cross reports whether layer i is a cross-attention layer (SmolVLMWithExpertModel.forward).
func (c SmolVLAConfig) cross(i int) bool {
	return c.CrossAttn && !(c.SelfAttnEvery > 0 && i%c.SelfAttnEvery == 0)
}

// rope is the rotary configuration of both streams (apply_rope's fixed wavelength).
func (c SmolVLAConfig) rope() Rope {
	return Rope{Theta: smolVLARopeTheta, Dim: c.VLM.Text.HeadDim, Type: "default"}
}

// Noise draws SmolVLA's random inputs (π0's: sample_time_beta(1.5, 1, 0.999, 0.001), N(0, 1)
// noise [B, H, SmolVLAPadDim]).
func (c SmolVLAConfig) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return Pi0Config{Horizon: c.Horizon}.Noise(rng, b, train)
}

// SmolVLAPrefix embeds the prefix (VLAFlowMatching.embed_prefix): images [B, C, S, S, 3] in [0, 1]
// (mapped to SigLIP's [−1, 1]), instruction tokens [B, L] int32 (0 = padding) and the padded,
// normalised state [B, SmolVLAPadDim]: [B, C·N + L + 1, D] and its valid tokens.
func SmolVLAPrefix(scope *model.Scope, cfg SmolVLAConfig, images, tokens, state *Node) (x, valid *Node) {
	scope = WithInit(scope)
	g := images.Graph()
	d := images.Shape().Dimensions
	b, cams, s := d[0], d[1], d[2]
	px := AddScalar(MulScalar(Reshape(images, b*cams, s, s, 3), 2), -1)
	px = TransposeAllAxes(px, 0, 3, 1, 2) // [B·C, 3, S, S]
	img := Idefics3ImageFeatures(scope, cfg.VLM, px)
	n, dim := img.Shape().Dimensions[1], cfg.VLM.Text.Hidden
	sqrtD := float64(float32(math.Sqrt(float64(dim))))
	img = MulScalar(Reshape(img, b, cams*n, dim), sqrtD)
	txt := MulScalar(DecoderEmbed(Idefics3TextScope(scope), cfg.VLM.Text, tokens, img.DType()), sqrtD)
	st := InsertAxes(Linear(scope.At("state_proj"), state, dim, true), 1)
	x = Concatenate([]*Node{img, txt, st}, 1)
	valid = Concatenate([]*Node{Ones(g, shapesBool(b, cams*n)), NotEqual(tokens, ZerosLike(tokens)), Ones(g, shapesBool(b, 1))}, 1)
	return x, valid
}

// SmolVLASuffix embeds the noisy chunk xt [B, H, SmolVLAPadDim] at flow times t [B]
// (VLAFlowMatching.embed_suffix): [B, H, E].
func SmolVLASuffix(scope *model.Scope, cfg SmolVLAConfig, xt, t *Node) *Node {
	scope = WithInit(scope)
	e := cfg.Expert.Hidden
	h := xt.Shape().Dimensions[1]
	act := Linear(scope.At("action_in_proj"), xt, e, true)
	temb := Pi0TimeEmbedding(t, e, 4e-3, 4.0) // create_sinusoidal_pos_embedding, min/max_period
	temb = BroadcastToDims(InsertAxes(temb, 1), t.Shape().Dimensions[0], h, e)
	y := Linear(scope.At("action_time_mlp_in"), Concatenate([]*Node{act, temb}, -1), e, true)
	return Linear(scope.At("action_time_mlp_out"), Mul(y, Sigmoid(y)), e, true) // silu
}

// SmolVLABlocks are the cumulated att_masks of a prefix of tp tokens (its last the state) and h
// action tokens: 0 for images and text, 1 for the state, 2…h+1 for the actions.
func SmolVLABlocks(tp, h int) []int {
	b := make([]int, tp+h)
	b[tp-1] = 1
	for i := range h {
		b[tp+i] = 2 + i
	}
	return b
}

// smolVLAPrefixKV holds every layer's prefix keys (after RoPE) and values [B, Tp, KVH, hd]: the
// cache sample_actions fills once (forward_attn_layer's DynamicCache).
type smolVLAPrefixKV = Pi0KV

// smolVLAScopes are the two streams' decoder scopes.
func smolVLAVLM(scope *model.Scope) *model.Scope    { return Idefics3TextScope(WithInit(scope)) }
func smolVLAExpert(scope *model.Scope) *model.Scope { return WithInit(scope).At("lm_expert") }

// qkv is a stream layer's normed input projected to queries, keys and values [B, T, heads, hd].
func smolVLAQKV(ly *model.Scope, c DecoderConfig, x *Node) (q, k, v, h *Node) {
	d := x.Shape().Dimensions
	b, t, hd := d[0], d[1], c.HeadDim
	h = RMSNorm(ly.At("input_layernorm"), x, c.Eps, c.OffsetNorm)
	at := ly.At("self_attn")
	q = Reshape(Linear(at.At("q_proj"), h, c.Heads*hd, c.AttnBias), b, t, c.Heads, hd)
	k = Reshape(Linear(at.At("k_proj"), h, c.KVHeads*hd, c.AttnBias), b, t, c.KVHeads, hd)
	v = Reshape(Linear(at.At("v_proj"), h, c.KVHeads*hd, c.AttnBias), b, t, c.KVHeads, hd)
	return
}

// smolVLAFinish is a stream layer's o_proj, residual and MLP over attention output o [B, T, H, hd].
func smolVLAFinish(ly *model.Scope, c DecoderConfig, x, o *Node) *Node {
	d := x.Shape().Dimensions
	o = Reshape(o, d[0], d[1], c.Heads*c.HeadDim)
	x = Add(x, Linear(ly.At("self_attn").At("o_proj"), o, c.Hidden, c.OBias))
	h := RMSNorm(ly.At("post_attention_layernorm"), x, c.Eps, c.OffsetNorm)
	return Add(x, decoderMLP(ly.At("mlp"), c, h))
}

// smolVLALayers runs SmolVLMWithExpertModel.forward. prefix [B, Tp, D] (nil: read past, the
// prefill's cache) at positions ppos under pmask [B, Tp, Tp]; suffix [B, Ts, E] (nil: the
// prefill alone) at positions spos under smask [B, Ts, Tp + Ts]. A prefix query never sees a
// suffix key, so the prefix attends over the prefix alone in every layer (in the joint layers the
// suffix keys it would see have probability exactly 0). Returns the streams' final-normed outputs
// and the prefix's keys and values.
func smolVLALayers(scope *model.Scope, cfg SmolVLAConfig, prefix, ppos, pmask, suffix, spos, smask *Node, past *smolVLAPrefixKV) (pOut, sOut *Node, kv *smolVLAPrefixKV) {
	tc, ec := cfg.VLM.Text, cfg.Expert
	vlm, exp := smolVLAVLM(scope), smolVLAExpert(scope)
	rope := cfg.rope()
	var pcos, psin, scos, ssin, xcos, xsin *Node
	if prefix != nil {
		pcos, psin = RopeCosSin(rope, ppos)
	}
	var tp int
	if suffix != nil {
		scos, ssin = RopeCosSin(rope, spos)
		b, ts := suffix.Shape().Dimensions[0], suffix.Shape().Dimensions[1]
		// forward_cross_attn_layer: expert_position_id − min(expert_position_id) (0…Ts−1).
		xcos, xsin = RopeCosSin(rope, Positions(suffix.Graph(), b, ts, 0))
		tp = smask.Shape().Dimensions[2] - ts
	}
	kv = &smolVLAPrefixKV{}
	for i := range tc.Layers {
		var pk, pv *Node
		if prefix != nil {
			ly := vlm.At("layers").At("%d", i)
			q, k, v, _ := smolVLAQKV(ly, tc, prefix)
			q, pk, pv = ApplyRope(q, pcos, psin), ApplyRope(k, pcos, psin), v
			o := ScaledAttention(q, RepeatKV(pk, tc.Heads), RepeatKV(pv, tc.Heads), pmask, 0, 0)
			prefix = smolVLAFinish(ly, tc, prefix, o)
		} else {
			pk, pv = past.K[i], past.V[i]
		}
		kv.K, kv.V = append(kv.K, pk), append(kv.V, pv)
		if suffix == nil {
			continue
		}
		ly := exp.At("layers").At("%d", i)
		var o *Node
		if cfg.cross(i) {
			// The expert's k_proj/v_proj of the VLM's keys (after RoPE) and values.
			h := RMSNorm(ly.At("input_layernorm"), suffix, ec.Eps, ec.OffsetNorm)
			d := suffix.Shape().Dimensions
			b, ts, hd := d[0], d[1], ec.HeadDim
			at := ly.At("self_attn")
			q := Reshape(Linear(at.At("q_proj"), h, ec.Heads*hd, ec.AttnBias), b, ts, ec.Heads, hd)
			flat := func(x *Node) *Node {
				xd := x.Shape().Dimensions
				return Reshape(x, xd[0], xd[1], xd[2]*xd[3])
			}
			k := Reshape(Linear(at.At("k_proj"), flat(pk), ec.KVHeads*hd, ec.AttnBias), b, tp, ec.KVHeads, hd)
			v := Reshape(Linear(at.At("v_proj"), flat(pv), ec.KVHeads*hd, ec.AttnBias), b, tp, ec.KVHeads, hd)
			m := Slice(smask, AxisRange(), AxisRange(), AxisRange(0, tp))
			o = ScaledAttention(ApplyRope(q, xcos, xsin), RepeatKV(k, ec.Heads), RepeatKV(v, ec.Heads), m, 0, 0)
		} else {
			q, k, v, _ := smolVLAQKV(ly, ec, suffix)
			q, k = ApplyRope(q, scos, ssin), ApplyRope(k, scos, ssin)
			k, v = Concatenate([]*Node{pk, k}, 1), Concatenate([]*Node{pv, v}, 1)
			o = ScaledAttention(q, RepeatKV(k, ec.Heads), RepeatKV(v, ec.Heads), smask, 0, 0)
		}
		suffix = smolVLAFinish(ly, ec, suffix, o)
	}
	if prefix != nil {
		pOut = RMSNorm(vlm.At("norm"), prefix, tc.Eps, tc.OffsetNorm)
	}
	if suffix != nil {
		sOut = RMSNorm(exp.At("norm"), suffix, ec.Eps, ec.OffsetNorm)
	}
	return pOut, sOut, kv
}

// smolVLAMasks are the prefix's mask [B, Tp, Tp] and the suffix's [B, H, Tp + H]
// (make_att_2d_masks without its query-side padding, which only touches padded rows), with the
// prefix's positions cumsum(valid) − 1 and the suffix's, which continue from the prefix count.
func smolVLAMasks(valid *Node, h int) (pmask, ppos, smask, spos *Node) {
	tp := valid.Shape().Dimensions[1]
	b := valid.Shape().Dimensions[0]
	blocks := SmolVLABlocks(tp, h)
	all := Concatenate([]*Node{valid, Ones(valid.Graph(), shapesBool(b, h))}, 1)
	pmask = Pi0Mask(valid, blocks[:tp], blocks[:tp])
	smask = Pi0Mask(all, blocks[tp:], blocks)
	ppos, count := prefixPositions(valid)
	spos = Add(Positions(valid.Graph(), b, h, 0), count)
	return
}

// smolVLAOut is action_out_proj over the expert's output.
func smolVLAOut(scope *model.Scope, suffix *Node) *Node {
	return Linear(WithInit(scope).At("action_out_proj"), suffix, SmolVLAPadDim, true)
}

// SmolVLAVelocity is the training forward (VLAFlowMatching.forward): v_θ [B, H, SmolVLAPadDim] at
// noisy chunks xt and times t [B]; state is the padded, normalised state [B, SmolVLAPadDim].
func SmolVLAVelocity(scope *model.Scope, cfg SmolVLAConfig, images, tokens, state, xt, t *Node) *Node {
	px, valid := SmolVLAPrefix(scope, cfg, images, tokens, state)
	sfx := SmolVLASuffix(scope, cfg, xt, t)
	pmask, ppos, smask, spos := smolVLAMasks(valid, sfx.Shape().Dimensions[1])
	_, out, _ := smolVLALayers(scope, cfg, px, ppos, pmask, sfx, spos, smask, nil)
	return smolVLAOut(scope, out)
}

// SmolVLASample is sample_actions: the prefix run once (its keys and values cached), then
// EulerSteps Euler steps of denoise_step from the noise [B, H, SmolVLAPadDim] at t = 1. state is
// normalised [B, StateDim] or nil. Returns the normalised chunk [B, H, ActionDim].
func SmolVLASample(scope *model.Scope, cfg SmolVLAConfig, images, tokens, state, noise *Node) *Node {
	return SmolVLASampleGuided(scope, cfg, images, tokens, state, noise, nil)
}

// SmolVLASampleGuided is SmolVLASample with every Euler step guided toward g (real-time chunking
// over the padded chunk); g nil is SmolVLASample.
func SmolVLASampleGuided(scope *model.Scope, cfg SmolVLAConfig, images, tokens, state, noise *Node, g *losses.Guidance) *Node {
	b := images.Shape().Dimensions[0]
	st := pi0Pad(images, state, b)
	px, valid := SmolVLAPrefix(scope, cfg, images, tokens, st)
	h := noise.Shape().Dimensions[1]
	pmask, ppos, smask, spos := smolVLAMasks(valid, h)
	_, _, kv := smolVLALayers(scope, cfg, px, ppos, pmask, nil, nil, nil, nil)
	x := losses.FlowPi0.GuidedEulerSample(noise, cfg.EulerSteps, func(x, t *Node) *Node {
		tb := BroadcastToDims(Reshape(t, 1), b)
		_, out, _ := smolVLALayers(scope, cfg, nil, nil, nil, SmolVLASuffix(scope, cfg, x, tb), spos, smask, kv)
		return smolVLAOut(scope, out)
	}, g)
	return Slice(x, AxisRange(), AxisRange(), AxisRange(0, cfg.ActionDim))
}

// SmolVLAPolicy is SmolVLA as a Policy (model.arch smolvla): Config's network with the
// normalisation of the robot's states and actions; Loss is VLAFlowMatching.forward with
// SmolVLAPolicy.forward's mean over the robot's action dimensions, Sample its sample_actions.
type SmolVLAPolicy struct {
	Config SmolVLAConfig
	Norm   Normalization
}

// Validate implements Policy.
func (p SmolVLAPolicy) Validate() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	return p.Norm.Check(p.Config.StateDim, p.Config.ActionDim)
}

// Noise implements Policy.
func (p SmolVLAPolicy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return p.Config.Noise(rng, b, train)
}

// Loss implements Policy.
func (p SmolVLAPolicy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	c := p.Config
	n := p.Norm.build(scope, b.Images.Graph())
	bs := b.Images.Shape().Dimensions[0]
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	a := pi0Pad(b.Images, n.action(b.Actions), bs)
	xt, u := losses.FlowPi0.Interpolate(a, b.Noise["noise"], b.Noise["time"])
	v := SmolVLAVelocity(scope, c, b.Images, b.Tokens, pi0Pad(b.Images, st, bs), xt, b.Noise["time"])
	real := func(x *Node) *Node { return Slice(x, AxisRange(), AxisRange(), AxisRange(0, c.ActionDim)) }
	if b.Weights != nil {
		return losses.WeightedMean(losses.SampleMSE(real(v), real(u)), b.Weights)
	}
	return losses.MSE(real(v), real(u))
}

// Sample implements Policy: sample_actions in raw units.
func (p SmolVLAPolicy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	return n.actionRaw(p.sample(scope, n, b))
}

// ActionErrors implements Policy.
func (p SmolVLAPolicy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	return actionErrors(p.sample(scope, n, b), n.action(b.Actions))
}

func (p SmolVLAPolicy) sample(scope *model.Scope, n normalizer, b PolicyBatch) *Node {
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	return SmolVLASample(scope, p.Config, b.Images, b.Tokens, st, b.Noise["noise"])
}

var _ Inpainter = SmolVLAPolicy{}

// Inpaints implements Inpainter: SmolVLA is a flow (real-time chunking, rtc.go).
func (SmolVLAPolicy) Inpaints() bool { return true }

// SampleInpainting implements Inpainter: SmolVLASampleGuided on the padded chunk.
func (p SmolVLAPolicy) SampleInpainting(scope *model.Scope, b PolicyBatch, in Inpainting) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	d := in.Prev.Shape().Dimensions
	g := in.guidance(n, []int{d[0], d[1], SmolVLAPadDim})
	return n.actionRaw(SmolVLASampleGuided(scope, p.Config, b.Images, b.Tokens, st, b.Noise["noise"], g))
}
