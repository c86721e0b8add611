package models

// A MolmoBot-style vision-language-action policy ("MolmoBot: Large-Scale Simulation Enables
// Zero-Shot Manipulation", allenai; the pi0 lineage: "π0: A Vision-Language-Action Flow Model for
// General Robot Control", arXiv:2410.24164): a VLM backbone reads the camera images and the
// instruction, and an action expert — a small DiT — turns noise into an action chunk by flow
// matching, cross-attending to the backbone's hidden state at every layer.
//
//   backbone:  ViT per camera → MLP projector → [image tokens ‖ instruction tokens] → L
//              bidirectional blocks; h_l is the output of block l (the "per layer" context).
//   expert:    tokens [robot-state token ‖ H noisy action tokens x_t], per layer l:
//                x += gate_msa·SelfAttn(LN(x)·(1+scale_msa) + shift_msa)
//                x += gate_cross·CrossAttn(LN(x)·(1+scale_cross) + shift_cross, h_l)
//                x += gate_mlp·MLP(LN(x)·(1+scale_mlp) + shift_mlp)
//              (AdaLN-Zero, "Scalable Diffusion Models with Transformers", Peebles & Xie,
//              arXiv:2212.09748), where the nine modulation vectors (shift, scale, gate) of the
//              three sublayers = Linear(SiLU(c)) with zero-initialised weights and c an MLP of
//              the sinusoidal embedding of the flow time t; the gates start at 0, so every
//              expert block starts as the identity. A final AdaLN and a zero-initialised linear
//              read out the velocity v_θ(x_t, t) for each action token.
//
// The same expert with x_t = 0 and t = 0 is the chunk-regression baseline (MSE on the chunk).
// The action heads that train and sample with the expert are in actionhead.go; MolmoBotPolicy
// (below) puts a backbone and a head together; RDVLAPolicy (rdvla.go) puts the backbone with the
// recurrent-depth head.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"

	"github.com/reelml/reel/losses"
)

// VLAConfig sizes a VLA policy network: the backbone, the action expert, and the state, action
// and chunk sizes they read and write.
type VLAConfig struct {
	Vision      ViTConfig // shared by all cameras
	Cameras     int
	Dim         int // backbone width
	Layers      int // backbone blocks after the projector; the expert has as many
	Heads       int
	MLPRatio    float64
	MaxTextLen  int
	VocabSize   int
	StateDim    int // 0: the robot sends no state
	ActionDim   int
	Horizon     int // actions per chunk
	ExpertDim   int
	ExpertHeads int
}

// Validate checks the sizes that the graph code relies on.
func (c VLAConfig) Validate() error {
	switch {
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("policy: width %d is not divisible by %d heads", c.Dim, c.Heads)
	case c.ExpertDim%c.ExpertHeads != 0:
		return fmt.Errorf("policy: expert width %d is not divisible by %d heads", c.ExpertDim, c.ExpertHeads)
	case c.Cameras < 1 || c.StateDim < 0 || c.ActionDim < 1 || c.Horizon < 1:
		return fmt.Errorf("policy: cameras, action and horizon sizes must be ≥ 1 and the state size ≥ 0")
	}
	return nil
}

// PolicyContext runs the backbone on images [B, C, S, S, 3] and instruction tokens [B, L] int32
// (0 = padding). It returns the hidden states after each block, [B, N, Dim] with N = C·P + L, and
// the keys the expert may read [B, N] (padding tokens are not).
func PolicyContext(scope *model.Scope, cfg VLAConfig, images, tokens *Node) (hidden []*Node, valid *Node) {
	scope = WithInit(scope)
	g := images.Graph()
	d := images.Shape().Dimensions
	b, cams, s := d[0], d[1], d[2]
	vis := ViT(scope.In("vision"), cfg.Vision, Reshape(images, b*cams, s, s, 3)) // [B·C, P, Dv]
	p := vis.Shape().Dimensions[1]
	vis = Reshape(vis, b, cams*p, cfg.Vision.Dim)
	proj := scope.In("projector")
	x := Linear(proj.In("fc1"), vis, cfg.Dim, true)
	x = Linear(proj.In("fc2"), activation.Apply(activation.TypeGelu, x), cfg.Dim, true)
	txt := Embedding(scope.In("tok_embed"), tokens, cfg.VocabSize, cfg.Dim, images.DType())
	x = PositionEmbedding(scope.In("pos_embed"), Concatenate([]*Node{x, txt}, 1))
	valid = Concatenate([]*Node{Ones(g, shapes.Make(dtypes.Bool, b, cams*p)), NotEqual(tokens, ZerosLike(tokens))}, 1)
	mask := KeyMask(valid)
	bb := scope.In("backbone")
	for i := range cfg.Layers {
		x = Block(bb.In("block_%d", i), x, cfg.Heads, cfg.MLPRatio, mask)
		hidden = append(hidden, x)
	}
	return hidden, valid
}

// ActionExpert returns the velocity field v_θ [B, K, H, A] at noisy chunks xt [B, K, H, A] and
// flow times t [B, K]: K time samples share one backbone pass (MolmoBot trains with 8). state is
// [B, StateDim] (normalised); hidden and valid come from PolicyContext. To call it again in the
// same graph (Euler steps), pass the parent's Shared scope of the same name.
func ActionExpert(scope *model.Scope, cfg VLAConfig, hidden []*Node, valid, state, xt, t *Node) *Node {
	scope = WithInit(scope)
	d := xt.Shape().Dimensions
	b, k, h, a := d[0], d[1], d[2], d[3]
	e := cfg.ExpertDim
	n := b * k
	// Tokens: the robot state, then the H noisy actions.
	st := Linear(scope.In("state_in"), state, e, true)                              // [B, E]
	st = Reshape(BroadcastToDims(InsertAxes(st, 1), b, k, e), n, 1, e)              // [B·K, 1, E]
	act := Linear(scope.In("action_in"), Reshape(xt, n, h, a), e, true)             // [B·K, H, E]
	x := PositionEmbedding(scope.In("pos_embed"), Concatenate([]*Node{st, act}, 1)) // [B·K, 1+H, E]
	// Time conditioning c [B·K, E]: sinusoidal features of t, then an MLP.
	c := TimeEmbedding(Reshape(t, n), e)
	tm := scope.In("time_mlp")
	c = Linear(tm.In("fc1"), c, e, true)
	c = Linear(tm.In("fc2"), activation.Apply(activation.TypeSilu, c), e, true)
	instr := Linear(scope.In("instruction_in"), InstructionSummary(cfg, hidden[len(hidden)-1], valid), e, true) // [B, E]
	c = Add(c, Reshape(BroadcastToDims(InsertAxes(instr, 1), b, k, e), n, e))
	cs := activation.Apply(activation.TypeSilu, c)
	mlpHidden := max(1, int(math.Round(float64(e)*cfg.MLPRatio)))
	crossMask := BroadcastToDims(InsertAxes(valid, 1), b, k*(1+h), valid.Shape().Dimensions[1]) // [B, K·(1+H), N]
	for i, ctx := range hidden {
		blk := scope.In("block_%d", i)
		m := adaLNZero(zeroLinear(blk.In("adaln"), cs, 9*e), e) // [B·K, 9E] → 3 sublayers × (shift, scale, gate)
		// Self-attention among the chunk's tokens.
		y := Attention(blk.In("attn"), modulate(x, m.msa.shift, m.msa.scale), cfg.ExpertHeads, nil)
		x = Add(x, Mul(m.msa.gate, y))
		// Cross-attention to backbone layer i: all K samples of an example query the same keys.
		q := Reshape(modulate(x, m.cross.shift, m.cross.scale), b, k*(1+h), e)
		y = Reshape(CrossAttention(blk.In("cross"), q, ctx, cfg.ExpertHeads, crossMask), n, 1+h, e)
		x = Add(x, Mul(m.cross.gate, y))
		x = Add(x, Mul(m.mlp.gate, MLP(blk.In("mlp"), modulate(x, m.mlp.shift, m.mlp.scale), mlpHidden)))
	}
	final := zeroLinear(scope.In("final_adaln"), cs, 2*e) // shift, scale
	x = modulate(x, modulation(final, e, 0), modulation(final, e, 1))
	x = Slice(x, AxisRange(), AxisRangeToEnd(1)) // the action tokens
	v := zeroLinear(scope.In("action_out"), x, a)
	return Reshape(v, b, k, h, a)
}

// PointHead points at the image location the instruction is about (Molmo-style pointing): a
// query made from the instruction summary attends over the first camera's tokens of the last
// hidden state, and the point is the attention-weighted mean of the tokens' patch centres
// (a spatial soft-argmax), (x, y) in [0, 1] image coordinates, [B, 2]. Policies feed it to their
// action head next to the robot state, so steering towards the target is a difference of two
// coordinates; trained with the simulator's focus points it binds words to objects quickly.
func PointHead(scope *model.Scope, cfg VLAConfig, last, valid *Node) *Node {
	g := last.Graph()
	d := last.Shape().Dimensions[2]
	p := cfg.Vision.NumPatches()
	grid := cfg.Vision.ImageSize / cfg.Vision.PatchSize
	q := Linear(scope.In("query"), InstructionSummary(cfg, last, valid), d, true) // [B, D]
	img := Slice(last, AxisRange(), AxisRange(0, p))                              // [B, P, D]
	k := Linear(scope.In("key"), LayerNorm(scope.In("ln"), img), d, true)
	logits := MulScalar(Einsum("bd,bpd->bp", q, k), 1/math.Sqrt(float64(d)))
	w := Softmax(logits, -1) // [B, P]
	xy := make([][]float64, p)
	for i := range xy {
		xy[i] = []float64{(float64(i%grid) + 0.5) / float64(grid), (float64(i/grid) + 0.5) / float64(grid)}
	}
	centres := ConvertDType(Const(g, xy), last.DType()) // [P, 2]
	return Einsum("bp,pc->bc", w, centres)
}

// InstructionSummary is the mean of the backbone's last hidden state over the instruction's
// (non-padding) tokens, [B, D]. The action expert adds it to its AdaLN conditioning, so that its
// queries know what the task asks for before they cross-attend to the image tokens; without it
// the tiny policy went to an object but rarely to the one named in the instruction.
func InstructionSummary(cfg VLAConfig, last, valid *Node) *Node {
	n := last.Shape().Dimensions[1]
	first := cfg.Cameras * cfg.Vision.NumPatches() // text tokens follow the image tokens
	pos := Iota(last.Graph(), shapes.Make(dtypes.Int32, n), 0)
	text := LogicalAnd(valid, ExpandLeftToRank(GreaterOrEqual(pos, Scalar(last.Graph(), dtypes.Int32, first)), 2))
	w := ConvertDType(text, last.DType())                          // [B, N]
	sum := ReduceSum(Mul(last, InsertAxes(w, -1)), 1)              // [B, D]
	return Div(sum, InsertAxes(MaxScalar(ReduceSum(w, 1), 1), -1)) // mean over text tokens
}

// sublayerModulation is the AdaLN-Zero modulation of one sublayer, each [N, 1, E]: the input is
// normalised to LN(x)·(1 + scale) + shift and the sublayer's output multiplied by gate.
type sublayerModulation struct{ shift, scale, gate *Node }

// blockModulation holds the modulations of a DiT block's three sublayers.
type blockModulation struct{ msa, cross, mlp sublayerModulation }

// adaLNZero splits a block's [N, 9E] modulation into DiT's (shift, scale, gate) per sublayer, in
// the order shift_msa, scale_msa, gate_msa, shift_cross, … gate_mlp.
func adaLNZero(mod *Node, e int) blockModulation {
	sub := func(j int) sublayerModulation {
		return sublayerModulation{modulation(mod, e, 3*j), modulation(mod, e, 3*j+1), modulation(mod, e, 3*j+2)}
	}
	return blockModulation{sub(0), sub(1), sub(2)}
}

// modulation is the j-th E-wide slice of mod [N, k·E], as [N, 1, E] to broadcast over tokens.
func modulation(mod *Node, e, j int) *Node {
	return InsertAxes(Slice(mod, AxisRange(), AxisRange(j*e, (j+1)*e)), 1)
}

// modulate is AdaLN: LayerNorm without affine parameters, then x·(1 + scale) + shift.
func modulate(x, shift, scale *Node) *Node {
	return Add(Mul(nn.LayerNorm(x, []int{-1}, 1e-6, nil, nil, nil), OnePlus(scale)), shift)
}

// zeroLinear is a Linear layer whose weights and bias start at zero (AdaLN-Zero, DiT).
func zeroLinear(scope *model.Scope, x *Node, out int) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	zs := scope.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Zeros(g, s) })
	w := zs.VariableWithShape("weights", shapes.Make(x.DType(), in, out)).NodeValue(x.Graph())
	bias := zs.VariableWithShape("biases", shapes.Make(x.DType(), out)).NodeValue(x.Graph())
	return Add(DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil), ExpandLeftToRank(bias, x.Rank()))
}

// TimeEmbedding maps times t [N] (in [0, 1]) to [N, dim] sinusoidal features
// (sin(1000·t·ω_j), cos(1000·t·ω_j)) with ω_j = 10000^(−j/(dim/2)), as for diffusion timesteps.
func TimeEmbedding(t *Node, dim int) *Node {
	half := dim / 2
	g := t.Graph()
	freqs := make([]float64, half)
	for j := range freqs {
		freqs[j] = 1000 * math.Pow(10000, -float64(j)/float64(half))
	}
	w := ConvertDType(Const(g, freqs), t.DType())
	arg := Mul(InsertAxes(t, -1), InsertAxes(w, 0)) // [N, half]
	emb := Concatenate([]*Node{Sin(arg), Cos(arg)}, -1)
	if dim%2 == 1 {
		emb = Concatenate([]*Node{emb, ZerosLike(Slice(emb, AxisRange(), AxisRange(0, 1)))}, -1)
	}
	return emb
}

// CrossAttention lets queries x [B, Tq, D] attend to context [B, Tk, Dc] (projected to D);
// mask [B, Tq, Tk] (true = may attend) may be nil.
func CrossAttention(scope *model.Scope, x, context *Node, heads int, mask *Node) *Node {
	dims := x.Shape().Dimensions
	b, tq, d := dims[0], dims[1], dims[2]
	tk := context.Shape().Dimensions[1]
	hd := d / heads
	q := Reshape(Linear(scope.In("q"), x, d, true), b, tq, heads, hd)
	kv := Reshape(Linear(scope.In("kv"), context, 2*d, true), b, tk, 2, heads, hd)
	k := Squeeze(Slice(kv, AxisRange(), AxisRange(), AxisElem(0)), 2)
	v := Squeeze(Slice(kv, AxisRange(), AxisRange(), AxisElem(1)), 2)
	out := Reshape(AttentionCore(q, k, v, mask), b, tq, d)
	return Linear(scope.In("out"), out, d, true)
}

// MolmoBotPolicy is the MolmoBot-style policy (model.arch policy): the backbone (a ViT per camera
// and the instruction, PolicyContext), its pointing head (PointHead), and an action head (flow
// matching or chunk regression, actionhead.go).
type MolmoBotPolicy struct {
	Net  VLAConfig
	Head ActionHead
	Norm Normalization
	// PointWeight weighs the pointing loss (squared distance of the point to the nearer focus
	// point) in batches that carry focus points.
	PointWeight float64
}

// Noise implements Policy: the action head's random inputs (ActionHead.Noise).
func (p MolmoBotPolicy) Noise(rng *rand.Rand, b int, train bool) []HeadInput {
	return p.Head.Noise(rng, b, train)
}

// Points implements Pointing.
func (p MolmoBotPolicy) Points() bool { return p.PointWeight > 0 }

// Validate implements Policy.
func (p MolmoBotPolicy) Validate() error {
	if err := p.Net.Validate(); err != nil {
		return err
	}
	if err := p.Norm.Check(p.Net.StateDim, p.Net.ActionDim); err != nil {
		return err
	}
	if p.Head == nil {
		return fmt.Errorf("policy: no action head")
	}
	return nil
}

// context runs the backbone and the pointing head in the network's scope net ("policy").
func (p MolmoBotPolicy) context(net *model.Scope, n normalizer, b PolicyBatch) (c ActionContext, point *Node) {
	c.Hidden, c.Valid = PolicyContext(net, p.Net, b.Images, b.Tokens)
	point = PointHead(net.In("point"), p.Net, c.Hidden[len(c.Hidden)-1], c.Valid)
	c.Cond = point
	if b.State != nil {
		c.Cond = Concatenate([]*Node{n.state(b.State), point}, -1)
	}
	return c, point
}

// Loss implements Policy: the action head's loss on the normalised target chunk, plus the
// pointing loss when the batch has focus points.
func (p MolmoBotPolicy) Loss(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
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

// Sample implements Policy.
func (p MolmoBotPolicy) Sample(scope *model.Scope, b PolicyBatch) *Node {
	n := p.Norm.build(scope, b.Images.Graph())
	net := scope.In("policy")
	c, _ := p.context(net, n, b)
	return n.actionRaw(p.Head.Sample(net, c, b.Noise))
}

// ActionErrors implements Policy.
func (p MolmoBotPolicy) ActionErrors(scope *model.Scope, b PolicyBatch) (chunk, first *Node) {
	n := p.Norm.build(scope, b.Images.Graph())
	net := scope.In("policy")
	c, _ := p.context(net, n, b)
	return actionErrors(p.Head.Sample(net, c, b.Noise), n.action(b.Actions))
}
