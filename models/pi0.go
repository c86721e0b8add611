package models

// π0 ("π0: A Vision-Language-Action Flow Model for General Robot Control", Black et al.,
// arXiv:2410.24164) as openpi defines Pi0 (Physical-Intelligence/openpi src/openpi/models/pi0.py,
// with the two-expert Gemma of src/openpi/models/gemma.py; LeRobot's PyTorch port is
// huggingface/lerobot src/lerobot/policies/pi0/modeling_pi0.py):
//
//   prefix:  SigLIP image tokens of every camera (PaliGemma's vision tower and projector), then
//            the instruction's Gemma token embeddings — the PaliGemma stream;
//   suffix:  the robot-state token state_proj(s), then H action tokens
//            action_time_mlp_out(swish(action_time_mlp_in([action_in_proj(x_t) ‖ sincos(t)])))
//            — the action expert's stream, a smaller Gemma of the same depth, heads and head
//            width;
//   layers:  joint attention: each stream has its own norms, q/k/v/o projections and MLP; the
//            queries, keys and values of both streams are concatenated and attend under the
//            block-causal mask (prefix bidirectional; the state token a block; the actions a
//            block; each block attends to itself and to earlier blocks);
//   output:  v_θ(x_t, t) = action_out_proj(the suffix's action tokens after the final norm).
//
// Flow matching in pi0's convention (losses.FlowPi0: t = 1 noise, x_t = t·ε + (1−t)·a,
// u = ε − a); states and actions are zero-padded to Pi0PadDim dimensions inside the model, the
// loss averaging over the robot's action dimensions (LeRobot's choice, see loss); sampling runs
// EulerSteps Euler steps from t = 1,
// and the prefix is computed once (its keys and values are the cache every step's suffix attends
// to, openpi's sample_actions).
//
// Variables: the PaliGemma ones under transformers' names (model/vision_tower/…,
// model/multi_modal_projector/…, model/language_model/…) so a PaliGemma checkpoint loads as is;
// the expert under gemma_expert/model/{layers/<i>/…, norm}; state_proj, action_in_proj,
// action_time_mlp_in, action_time_mlp_out, action_out_proj (LeRobot's names).

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
)

// Pi0PadDim is the width states and actions are zero-padded to (openpi Pi0Config.action_dim).
const Pi0PadDim = 32

// Pi0Config configures a π0 policy.
type Pi0Config struct {
	PaliGemma  PaliGemmaConfig
	Expert     DecoderConfig // the action expert: the PaliGemma decoder with its own width and MLP
	Cameras    int
	StateDim   int // the robot's (unpadded) state dimensions; 0: no state (a zero state token)
	ActionDim  int // the robot's (unpadded) action dimensions
	Horizon    int // actions per chunk (openpi: 50)
	EulerSteps int // Euler steps when sampling (openpi: 10)
}

// Pi0Expert is the action expert's configuration for a PaliGemma decoder: the same depth, heads,
// head width, norms and RoPE (joint attention needs them), width hidden and MLP width mlp
// (openpi's gemma_300m: 1024 and 4096 beside gemma_2b's 2048 and 16384).
func Pi0Expert(text DecoderConfig, hidden, mlp int) DecoderConfig {
	e := text
	e.Hidden, e.Intermediate = hidden, mlp
	e.TieEmbeddings = false
	return e
}

// Validate checks what the graph relies on (one error naming the field).
func (c Pi0Config) Validate() error {
	t, e := c.PaliGemma.Text, c.Expert
	switch {
	case t.SandwichNorm || t.QKNorm || t.AttnSoftcap > 0 || t.SlidingWindow > 0 || t.QueryPreAttnScalar > 0:
		return fmt.Errorf("pi0: the PaliGemma decoder must be Gemma 1 (model_type gemma, as openpi's gemma_2b), got %s", t.Arch)
	case e.Layers != t.Layers || e.Heads != t.Heads || e.KVHeads != t.KVHeads || e.HeadDim != t.HeadDim:
		return fmt.Errorf("pi0: the action expert must have the decoder's layers, heads, kv heads and head_dim (%d, %d, %d, %d)", t.Layers, t.Heads, t.KVHeads, t.HeadDim)
	case e.Hidden <= 0 || e.Intermediate <= 0:
		return fmt.Errorf("pi0: the action expert's width and MLP width must be > 0")
	case c.StateDim < 0 || c.StateDim > Pi0PadDim || c.ActionDim < 1 || c.ActionDim > Pi0PadDim:
		return fmt.Errorf("pi0: state (%d) and action (%d) dimensions must be at most %d (pi0 pads them to %d)", c.StateDim, c.ActionDim, Pi0PadDim, Pi0PadDim)
	case c.Cameras < 1 || c.Horizon < 1 || c.EulerSteps < 1:
		return fmt.Errorf("pi0: cameras, horizon and Euler steps must be ≥ 1")
	}
	return nil
}

// Noise draws π0's random inputs: for training the noise ε [B, H, Pi0PadDim] and the flow times
// t [B] (0.999·Beta(1.5, 1) + 0.001); for sampling the starting noise [B, H, Pi0PadDim].
func (c Pi0Config) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	noise := NormalTensor(rng, b, c.Horizon, Pi0PadDim)
	if !train {
		return []HeadInput{{"noise", noise}}
	}
	times := make([]float32, b)
	for i := range times {
		times[i] = float32(losses.FlowPi0.SampleTime(rng))
	}
	return []HeadInput{{"noise", noise}, {"time", tensors.FromFlatDataAndDimensions(times, b)}}
}

// Pi0Prefix embeds the prefix: images [B, C, S, S, 3] in [0, 1] (mapped to SigLIP's [−1, 1]) and
// instruction tokens [B, L] int32 (0 = padding). It returns the PaliGemma stream's input
// [B, C·N + L, D] (scaled by √D as GemmaModel scales its inputs: the image features undo
// get_image_features' 1/√D, the token embeddings get openpi's √D) and its valid tokens [B, Tp].
func Pi0Prefix(scope *model.Scope, cfg Pi0Config, images, tokens *Node) (x, valid *Node) {
	scope = WithInit(scope)
	g := images.Graph()
	d := images.Shape().Dimensions
	b, cams, s := d[0], d[1], d[2]
	px := AddScalar(MulScalar(Reshape(images, b*cams, s, s, 3), 2), -1)
	px = TransposeAllAxes(px, 0, 3, 1, 2) // pixel_values [B·C, 3, S, S]
	img := PaliGemmaImageFeatures(scope, cfg.PaliGemma, px)
	n, dim := img.Shape().Dimensions[1], cfg.PaliGemma.Text.Hidden
	img = Reshape(img, b, cams*n, dim)
	txt := DecoderEmbed(scope.At("model").In("language_model"), cfg.PaliGemma.Text, tokens, img.DType())
	x = Concatenate([]*Node{img, txt}, 1)
	x = MulScalar(x, float64(float32(math.Sqrt(float64(dim)))))
	valid = Concatenate([]*Node{Ones(g, shapesBool(b, cams*n)), NotEqual(tokens, ZerosLike(tokens))}, 1)
	return x, valid
}

// Pi0Suffix embeds the suffix (openpi Pi0.embed_suffix): the state token, then the H action
// tokens of the noisy chunk xt [B, H, Pi0PadDim] at flow times t [B]: [B, 1+H, E]. state is
// [B, Pi0PadDim] (normalised, zero-padded).
func Pi0Suffix(scope *model.Scope, cfg Pi0Config, state, xt, t *Node) *Node {
	scope = WithInit(scope)
	e := cfg.Expert.Hidden
	h := xt.Shape().Dimensions[1]
	st := InsertAxes(Linear(scope.At("state_proj"), state, e, true), 1) // [B, 1, E]
	act := Linear(scope.At("action_in_proj"), xt, e, true)              // [B, H, E]
	temb := Pi0TimeEmbedding(t, e, 4e-3, 4.0)                           // [B, E]
	temb = BroadcastToDims(InsertAxes(temb, 1), t.Shape().Dimensions[0], h, e)
	y := Linear(scope.At("action_time_mlp_in"), Concatenate([]*Node{act, temb}, -1), e, true)
	y = Linear(scope.At("action_time_mlp_out"), Mul(y, Sigmoid(y)), e, true) // swish
	return Concatenate([]*Node{st, y}, 1)
}

// Pi0TimeEmbedding is openpi's posemb_sincos: for times t [B] the features
// [sin(2π·t/p_j), cos(2π·t/p_j)] over periods p_j = min·(max/min)^(j/(dim/2−1)), [B, dim].
func Pi0TimeEmbedding(t *Node, dim int, minPeriod, maxPeriod float64) *Node {
	half := dim / 2
	w := make([]float32, half)
	for j := range w {
		frac := 0.0
		if half > 1 {
			frac = float64(j) / float64(half-1)
		}
		w[j] = float32(2 * math.Pi / (minPeriod * math.Pow(maxPeriod/minPeriod, frac)))
	}
	arg := Mul(InsertAxes(t, -1), InsertAxes(ConvertDType(Const(t.Graph(), w), t.DType()), 0))
	return Concatenate([]*Node{Sin(arg), Cos(arg)}, -1)
}

// Pi0Blocks are the attention blocks of a π0 sequence (openpi's ar_mask, cumulated): 0 for the
// prefix tokens, 1 for the state token, 2 for the action tokens.
func Pi0Blocks(prefix, horizon int) []int {
	b := make([]int, prefix+1+horizon)
	for i := prefix; i < len(b); i++ {
		b[i] = 2
	}
	b[prefix] = 1
	return b
}

// Pi0Mask is π0's block-causal mask [B, Tq, Tk] (openpi make_attn_mask): query i (block
// qBlocks[i]) sees key j when the key is a real token (valid [B, Tk]) and kBlocks[j] ≤ qBlocks[i].
func Pi0Mask(valid *Node, qBlocks, kBlocks []int) *Node {
	m := make([][]bool, len(qBlocks))
	for i, qb := range qBlocks {
		m[i] = make([]bool, len(kBlocks))
		for j, kb := range kBlocks {
			m[i][j] = kb <= qb
		}
	}
	b := valid.Shape().Dimensions[0]
	dims := []int{b, len(qBlocks), len(kBlocks)}
	return LogicalAnd(BroadcastToDims(InsertAxes(Const(valid.Graph(), m), 0), dims...), BroadcastToDims(InsertAxes(valid, 1), dims...))
}

// pi0Stream is one stream of the joint transformer: its decoder scope (layers/<i>, norm), its
// configuration, its input [B, T, D] and its positions [B, T] int32.
type pi0Stream struct {
	scope    *model.Scope
	cfg      DecoderConfig
	x, pos   *Node
	cos, sin *Node
}

// Pi0KV holds the keys and values [B, T, KVH, hd] of every layer (after RoPE), the prefix's cache.
type Pi0KV struct{ K, V []*Node }

// pi0Joint runs the joint-attention layers (openpi gemma.py Module with two configs) over the
// streams, queries attending to past's keys and values (if any) followed by the streams' own,
// under mask [B, ΣT, Tpast + ΣT]. It returns each stream's final-normed output and every layer's
// keys and values (past and new).
// Mirrors openpi's joint attention; kept separate from MultiHeadAttention (attention.go) because
// each stream projects q, k, v with its own weights and one attention runs over all streams.
func pi0Joint(streams []*pi0Stream, mask *Node, past *Pi0KV) ([]*Node, *Pi0KV) {
	c0 := streams[0].cfg
	layers := c0.Layers
	for _, s := range streams {
		s.cos, s.sin = RopeCosSin(s.cfg.Rope, s.pos)
	}
	kv := &Pi0KV{}
	// train.remat: each joint layer is one checkpointed block with one input and one output per
	// stream (Remat's Checkpoint / StopCheckpoint on every stream): the backward pass keeps the
	// streams' residuals between layers and recomputes the norms, projections, attention and MLPs
	// of the layer. Only training graphs set it; the keys and values a prefix cache keeps are
	// read by inference graphs, which never checkpoint.
	remat := rematOn(streams[0].x.Graph())
	for i := range layers {
		if remat {
			for _, s := range streams {
				s.x = s.x.Checkpoint()
			}
		}
		var qs, ks, vs []*Node
		if past != nil {
			ks, vs = append(ks, past.K[i]), append(vs, past.V[i])
		}
		for _, s := range streams {
			c := s.cfg
			ly := s.scope.At("layers").At("%d", i)
			d := s.x.Shape().Dimensions
			b, t, hd := d[0], d[1], c.HeadDim
			h := RMSNorm(ly.At("input_layernorm"), s.x, c.Eps, c.OffsetNorm)
			at := ly.At("self_attn")
			q := Reshape(Linear(at.At("q_proj"), h, c.Heads*hd, c.AttnBias), b, t, c.Heads, hd)
			k := Reshape(Linear(at.At("k_proj"), h, c.KVHeads*hd, c.AttnBias), b, t, c.KVHeads, hd)
			v := Reshape(Linear(at.At("v_proj"), h, c.KVHeads*hd, c.AttnBias), b, t, c.KVHeads, hd)
			qs = append(qs, ApplyRope(q, s.cos, s.sin))
			ks, vs = append(ks, ApplyRope(k, s.cos, s.sin)), append(vs, v)
		}
		k, v := concatT(ks), concatT(vs)
		kv.K, kv.V = append(kv.K, k), append(kv.V, v)
		out := ScaledAttention(concatT(qs), RepeatKV(k, c0.Heads), RepeatKV(v, c0.Heads), mask, 0, 0)
		off := 0
		for _, s := range streams {
			c := s.cfg
			ly := s.scope.At("layers").At("%d", i)
			d := s.x.Shape().Dimensions
			b, t := d[0], d[1]
			o := Reshape(Slice(out, AxisRange(), AxisRange(off, off+t)), b, t, c.Heads*c.HeadDim)
			off += t
			x := Add(s.x, Linear(ly.At("self_attn").At("o_proj"), o, c.Hidden, c.OBias))
			h := RMSNorm(ly.At("post_attention_layernorm"), x, c.Eps, c.OffsetNorm)
			s.x = Add(x, decoderMLP(ly.At("mlp"), c, h))
			if remat {
				s.x = s.x.StopCheckpoint()
			}
		}
	}
	outs := make([]*Node, len(streams))
	for j, s := range streams {
		outs[j] = RMSNorm(s.scope.At("norm"), s.x, s.cfg.Eps, s.cfg.OffsetNorm)
	}
	return outs, kv
}

func concatT(xs []*Node) *Node {
	if len(xs) == 1 {
		return xs[0]
	}
	return Concatenate(xs, 1)
}

// prefixDecoder and expertDecoder are the two streams' decoder scopes.
func prefixDecoder(scope *model.Scope) *model.Scope {
	return WithInit(scope).At("model").At("language_model")
}
func expertDecoder(scope *model.Scope) *model.Scope {
	return WithInit(scope).At("gemma_expert").At("model")
}

// prefixPositions are openpi's positions cumsum(mask) − 1 of the prefix tokens [B, Tp], and the
// number of real prefix tokens [B, 1] the suffix positions continue from.
func prefixPositions(valid *Node) (pos, count *Node) {
	c := CumSum(ConvertDType(valid, dtypes.Int32), 1)
	t := c.Shape().Dimensions[1]
	return AddScalar(c, -1), Slice(c, AxisRange(), AxisRange(t-1, t))
}

// Pi0PrefixHidden runs the prefix alone through the joint layers (an empty suffix): the PaliGemma
// stream's final-normed hidden states [B, Tp, D] and its keys and values.
func Pi0PrefixHidden(scope *model.Scope, cfg Pi0Config, images, tokens *Node) (hidden *Node, kv *Pi0KV, valid, count *Node) {
	x, valid := Pi0Prefix(scope, cfg, images, tokens)
	pos, count := prefixPositions(valid)
	tp := x.Shape().Dimensions[1]
	blocks := make([]int, tp)
	outs, kv := pi0Joint([]*pi0Stream{{scope: prefixDecoder(scope), cfg: cfg.PaliGemma.Text, x: x, pos: pos}}, Pi0Mask(valid, blocks, blocks), nil)
	return outs[0], kv, valid, count
}

// Pi0Velocity is the full-sequence forward (openpi compute_loss): the velocity v_θ [B, H,
// Pi0PadDim] at noisy chunks xt and times t [B], prefix and suffix in one pass.
func Pi0Velocity(scope *model.Scope, cfg Pi0Config, images, tokens, state, xt, t *Node) *Node {
	px, valid := Pi0Prefix(scope, cfg, images, tokens)
	ppos, count := prefixPositions(valid)
	sfx := Pi0Suffix(scope, cfg, state, xt, t)
	b, tp, ts := px.Shape().Dimensions[0], px.Shape().Dimensions[1], sfx.Shape().Dimensions[1]
	spos := Add(Positions(px.Graph(), b, ts, 0), count)
	blocks := Pi0Blocks(tp, ts-1)
	all := Concatenate([]*Node{valid, Ones(px.Graph(), shapesBool(b, ts))}, 1)
	outs, _ := pi0Joint([]*pi0Stream{
		{scope: prefixDecoder(scope), cfg: cfg.PaliGemma.Text, x: px, pos: ppos},
		{scope: expertDecoder(scope), cfg: cfg.Expert, x: sfx, pos: spos},
	}, Pi0Mask(all, blocks, blocks), nil)
	return pi0Out(scope, outs[1])
}

// pi0Out is action_out_proj over the suffix's action tokens.
func pi0Out(scope *model.Scope, suffix *Node) *Node {
	return Linear(WithInit(scope).At("action_out_proj"), Slice(suffix, AxisRange(), AxisRangeToEnd(1)), Pi0PadDim, true)
}

// Pi0VelocityCached is one Euler step's forward (openpi sample_actions' step): the suffix alone,
// its queries attending to the prefix's cached keys and values (kv, valid [B, Tp], count from
// Pi0PrefixHidden) and to its own.
func Pi0VelocityCached(scope *model.Scope, cfg Pi0Config, kv *Pi0KV, valid, count, state, xt, t *Node) *Node {
	sfx := Pi0Suffix(scope, cfg, state, xt, t)
	g := sfx.Graph()
	b, ts := sfx.Shape().Dimensions[0], sfx.Shape().Dimensions[1]
	tp := valid.Shape().Dimensions[1]
	blocks := Pi0Blocks(tp, ts-1)
	all := Concatenate([]*Node{valid, Ones(g, shapesBool(b, ts))}, 1)
	spos := Add(Positions(g, b, ts, 0), count)
	outs, _ := pi0Joint([]*pi0Stream{{scope: expertDecoder(scope), cfg: cfg.Expert, x: sfx, pos: spos}}, Pi0Mask(all, blocks[tp:], blocks), kv)
	return pi0Out(scope, outs[0])
}

// pi0Pad zero-pads the last axis of x to Pi0PadDim (nil x: zeros [b, Pi0PadDim] like ref).
func pi0Pad(ref, x *Node, b int) *Node {
	if x == nil {
		return zerosAs(ref, b, Pi0PadDim)
	}
	d := x.Shape().Dimensions
	if n := d[len(d)-1]; n < Pi0PadDim {
		zd := append(append([]int(nil), d[:len(d)-1]...), Pi0PadDim-n)
		x = Concatenate([]*Node{x, zerosAs(x, zd...)}, -1)
	}
	return x
}

// Pi0Policy is π0 as a Policy (model.arch pi0): Config's network with the normalisation of the
// robot's states and actions; Loss is openpi's Pi0.compute_loss, Sample its sample_actions.
type Pi0Policy struct {
	Config Pi0Config
	Norm   Normalization
}

// Validate implements Policy.
func (p Pi0Policy) Validate() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	return p.Norm.Check(p.Config.StateDim, p.Config.ActionDim)
}

// Noise implements Policy (Pi0Config.Noise).
func (p Pi0Policy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return p.Config.Noise(rng, b, train)
}

// Loss implements Policy: openpi's compute_loss on the normalised, padded chunk: the MSE of
// v_θ(x_t, t) against u = ε − a, averaged over the robot's action dimensions as LeRobot's port
// does (PI0Policy.forward in huggingface/lerobot src/lerobot/policies/pi0/modeling_pi0.py
// truncates the per-dimension losses to the original action dimension); openpi averages over all
// Pi0PadDim, where for a robot with few dimensions the padding (whose target ε = x_t/t is easy)
// dominates the loss: pi0-tiny on the simulator's 3-D actions learned the padding and not the
// task (closed-loop success 0.16).
func (p Pi0Policy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	c := p.Config
	n := p.Norm.build(scope, b.Images.Graph())
	bs := b.Images.Shape().Dimensions[0]
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	a := pi0Pad(b.Images, n.action(b.Actions), bs)
	xt, u := losses.FlowPi0.Interpolate(a, b.Noise["noise"], b.Noise["time"])
	v := Pi0Velocity(scope, c, b.Images, b.Tokens, pi0Pad(b.Images, st, bs), xt, b.Noise["time"])
	real := func(x *Node) *Node { return Slice(x, AxisRange(), AxisRange(), AxisRange(0, c.ActionDim)) }
	if b.Weights != nil { // reward-aligned behaviour cloning: each example's loss weighed
		return losses.WeightedMean(losses.SampleMSE(real(v), real(u)), b.Weights)
	}
	return losses.MSE(real(v), real(u))
}

// Sample implements Policy: openpi's sample_actions, the prefix cached over the Euler steps, in
// raw units.
func (p Pi0Policy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	return n.actionRaw(p.sample(scope, n, b))
}

// ActionErrors implements Policy.
func (p Pi0Policy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	return actionErrors(p.sample(scope, n, b), n.action(b.Actions))
}

// sample is the normalised chunk of Pi0Sample for a batch.
func (p Pi0Policy) sample(scope *model.Scope, n normalizer, b PolicyBatch) *Node {
	var st *Node
	if b.State != nil {
		st = n.state(b.State)
	}
	return Pi0Sample(scope, p.Config, b.Images, b.Tokens, st, b.Noise["noise"], true)
}

// Pi0Sample integrates the chunk from the noise [B, H, Pi0PadDim] with EulerSteps Euler steps,
// the prefix computed once and cached (cached false recomputes it at every step: the reference
// the cache is tested against). state is normalised [B, StateDim] or nil. Returns the normalised
// chunk [B, H, ActionDim].
func Pi0Sample(scope *model.Scope, cfg Pi0Config, images, tokens, state, noise *Node, cached bool) *Node {
	return Pi0SampleGuided(scope, cfg, images, tokens, state, noise, cached, nil)
}

// Pi0SampleGuided is Pi0Sample with every Euler step guided toward g (real-time chunking,
// losses.Guidance over the padded chunk [B, H, Pi0PadDim]); g nil is Pi0Sample.
func Pi0SampleGuided(scope *model.Scope, cfg Pi0Config, images, tokens, state, noise *Node, cached bool, g *losses.Guidance) *Node {
	b := images.Shape().Dimensions[0]
	st := pi0Pad(images, state, b)
	var kv *Pi0KV
	var valid, count *Node
	if cached {
		_, kv, valid, count = Pi0PrefixHidden(scope, cfg, images, tokens)
	}
	x := losses.FlowPi0.GuidedEulerSample(noise, cfg.EulerSteps, func(x, t *Node) *Node {
		tb := BroadcastToDims(Reshape(t, 1), b)
		if cached {
			return Pi0VelocityCached(scope, cfg, kv, valid, count, st, x, tb)
		}
		return Pi0Velocity(scope, cfg, images, tokens, st, x, tb)
	}, g)
	return Slice(x, AxisRange(), AxisRange(), AxisRange(0, cfg.ActionDim))
}

func shapesBool(dims ...int) shapes.Shape { return shapes.Make(dtypes.Bool, dims...) }
