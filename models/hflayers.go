package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
)

// The building blocks of the Hugging Face architectures (decoder.go, siglip.go, clip.go,
// paligemma.go, llava.go): the layers transformers' modeling files share, written so that every
// reel variable path maps mechanically to the transformers parameter it holds. Scopes are named
// after transformers' module attributes (model/layers/0/self_attn/q_proj, …) and variables after
// its parameters ("weight", "bias", "probe", …), except that a dense (nn.Linear) layer is reel's
// Linear, whose "weights" [in, out] and "biases" are the transposed ".weight" [out, in] and the
// ".bias" of the module (a convolutional patch embedding is a Linear over patchified pixels; see
// PatchEmbedHF). The hf package derives the mapping from these rules.

// RMSNorm is transformers' LlamaRMSNorm (huggingface/transformers
// src/transformers/models/llama/modeling_llama.py): x / √(mean(x²) + eps) · w, computed in f32,
// w initialised to 1. With offset (GemmaRMSNorm, src/transformers/models/gemma/modeling_gemma.py)
// the scale is (1 + w) and w starts at 0.
func RMSNorm(scope *model.Scope, x *Node, eps float64, offset bool) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	var w *Node
	if offset {
		w = scope.WithInitializer(Zeros).VariableWithShape("weight", shapes.Make(x.DType(), d)).NodeValue(x.Graph())
		w = AddScalar(w, 1)
	} else {
		w = scope.VariableWithValue("weight", ones(x.DType(), d)).NodeValue(x.Graph())
	}
	ms := ReduceAndKeep(Square(x), ReduceMean, -1)
	return Mul(Div(x, Sqrt(AddScalar(ms, eps))), ExpandLeftToRank(w, x.Rank()))
}

// LayerNormHF is nn.LayerNorm over the last axis with transformers' parameter names ("weight",
// init 1; "bias", init 0) and the model's epsilon.
func LayerNormHF(scope *model.Scope, x *Node, eps float64) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions[x.Rank()-1]
	w := scope.VariableWithValue("weight", ones(x.DType(), d)).NodeValue(g)
	b := scope.WithInitializer(Zeros).VariableWithShape("bias", shapes.Make(x.DType(), d)).NodeValue(g)
	return nn.LayerNorm(x, []int{-1}, eps, w, b, nil)
}

// EmbeddingHF is nn.Embedding: rows of the table "weight" [vocab, dim] for integer ids of any
// shape (ids are clamped to the table, as placeholder ids beyond the vocabulary are replaced
// before they matter).
func EmbeddingHF(scope *model.Scope, ids *Node, vocab, dim int, dtype dtypes.DType) *Node {
	table := EmbeddingTable(scope, vocab, dim, dtype, ids.Graph())
	ids = MinScalar(MaxScalar(ids, 0), float64(vocab-1))
	return Gather(table, InsertAxes(ids, -1))
}

// EmbeddingTable is the [vocab, dim] table of EmbeddingHF (the tied output projection reads it).
func EmbeddingTable(scope *model.Scope, vocab, dim int, dtype dtypes.DType, g *Graph) *Node {
	return scope.WithInitializer(normalInit(scope.Store(), InitStd)).
		VariableWithShape("weight", shapes.Make(dtype, vocab, dim)).NodeValue(g)
}

// ActivationHF applies the activation transformers names name (ACT2FN in
// src/transformers/activations.py).
func ActivationHF(name string, x *Node) *Node {
	switch name {
	case "gelu", "gelu_python":
		return activation.Apply(activation.TypeGelu, x)
	case "gelu_pytorch_tanh", "gelu_new", "gelu_fast":
		return activation.Apply(activation.TypeGeluApprox, x)
	case "quick_gelu": // x·σ(1.702x), CLIP's
		return Mul(x, Sigmoid(MulScalar(x, 1.702)))
	case "silu", "swish":
		return Mul(x, Sigmoid(x))
	case "relu":
		return Max(x, ZerosLike(x))
	}
	panic(fmt.Sprintf("models: unsupported activation %q", name))
}

// KnownActivation reports whether ActivationHF implements name.
func KnownActivation(name string) bool {
	switch name {
	case "gelu", "gelu_python", "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "quick_gelu", "silu", "swish", "relu":
		return true
	}
	return false
}

// Rope configures rotary position embeddings (Su et al., "RoFormer: Enhanced Transformer with
// Rotary Position Embedding", arXiv:2104.09864) as transformers' ROPE_INIT_FUNCTIONS
// (src/transformers/modeling_rope_utils.py) compute their inverse frequencies.
type Rope struct {
	Theta float64
	Dim   int    // rotated channels (the head dimension)
	Type  string // "default", "linear" or "llama3"
	// Factor divides the frequencies ("linear"; "llama3": the low ones).
	Factor float64
	// llama3: the band between the wavelengths OriginalMax/LowFreqFactor and
	// OriginalMax/HighFreqFactor is interpolated.
	LowFreqFactor, HighFreqFactor float64
	OriginalMax                   int
}

// InvFreq returns the rotary inverse frequencies [Dim/2] in f32, as transformers computes them.
func (r Rope) InvFreq() []float32 {
	n := r.Dim / 2
	out := make([]float32, n)
	for i := range n {
		// base ** (arange(0, dim, 2).float() / dim), in f32 like torch
		exp := float32(2*i) / float32(r.Dim)
		f := float32(1) / float32(math.Pow(r.Theta, float64(exp)))
		switch r.Type {
		case "linear":
			f /= float32(r.Factor)
		case "llama3":
			lowWave := float64(r.OriginalMax) / r.LowFreqFactor
			highWave := float64(r.OriginalMax) / r.HighFreqFactor
			wave := 2 * math.Pi / float64(f)
			switch {
			case wave > lowWave:
				f /= float32(r.Factor)
			case wave >= highWave: // medium band: smooth interpolation
				smooth := (float64(r.OriginalMax)/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				f = float32((1-smooth)*float64(f)/r.Factor + smooth*float64(f))
			}
		}
		out[i] = f
	}
	return out
}

// RopeCosSin returns cos and sin [B, T, Dim] of positions [B, T] (int32): with freqs = pos·inv_freq,
// emb = concat(freqs, freqs) (transformers' LlamaRotaryEmbedding.forward).
func RopeCosSin(r Rope, positions *Node) (cos, sin *Node) {
	g := positions.Graph()
	inv := Const(g, r.InvFreq())                                 // [D/2]
	p := InsertAxes(ConvertDType(positions, dtypes.Float32), -1) // [B, T, 1]
	freqs := Mul(p, ExpandLeftToRank(inv, 3))                    // [B, T, D/2]
	emb := Concatenate([]*Node{freqs, freqs}, -1)                // [B, T, D]
	return Cos(emb), Sin(emb)
}

// ApplyRope rotates x [B, T, H, hd] by cos, sin [B, T, hd]: x·cos + rotate_half(x)·sin, with
// rotate_half(x) = concat(−x₂, x₁) (apply_rotary_pos_emb in modeling_llama.py).
func ApplyRope(x, cos, sin *Node) *Node {
	hd := x.Shape().Dimensions[3]
	x1 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, hd/2))
	x2 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(hd/2, hd))
	rot := Concatenate([]*Node{Neg(x2), x1}, -1)
	c, s := InsertAxes(cos, 2), InsertAxes(sin, 2) // [B, T, 1, hd]
	return Add(Mul(x, c), Mul(rot, s))
}

// RepeatKV repeats each of the KVH key/value heads of x [B, T, KVH, hd] heads/KVH times:
// [B, T, heads, hd], head h reading kv head h / (heads/KVH) (repeat_kv in modeling_llama.py).
func RepeatKV(x *Node, heads int) *Node {
	d := x.Shape().Dimensions
	b, t, kvh, hd := d[0], d[1], d[2], d[3]
	if kvh == heads {
		return x
	}
	x = BroadcastToDims(InsertAxes(x, 3), b, t, kvh, heads/kvh, hd)
	return Reshape(x, b, t, heads, hd)
}

// ScaledAttention is softmax(s·q·kᵀ (+ soft-capping) + mask)·v for q [B, Tq, H, hd] and k, v
// [B, Tk, H, hd], mask [B, Tq, Tk] (true: may attend) or nil; scale 0 means 1/√hd. Without
// soft-capping it is AttentionCore (its written-out backward, fast on the CPU), q pre-scaled to the
// model's scale; with soft-capping (Gemma 2: logits ← cap·tanh(logits/cap) before the mask,
// eager_attention_forward in src/transformers/models/gemma2/modeling_gemma2.py) autodiff's.
func ScaledAttention(q, k, v, mask *Node, scale, softcap float64) *Node {
	hd := q.Shape().Dimensions[3]
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(hd))
	}
	if softcap <= 0 {
		if c := scale * math.Sqrt(float64(hd)); c != 1 {
			q = MulScalar(q, c)
		}
		return AttentionCore(q, k, v, mask)
	}
	qh, kh, vh := headMajor(q), headMajor(k), headMajor(v)
	logits := MulScalar(mixedDotGeneral(qh, []int{3}, []int{0, 1}, kh, []int{3}, []int{0, 1}), scale) // [B, H, Tq, Tk]
	logits = MulScalar(Tanh(DivScalar(logits, softcap)), softcap)
	var probs *Node
	if mask != nil {
		probs = MaskedSoftmax(logits, BroadcastToDims(InsertAxes(mask, 1), logits.Shape().Dimensions...), -1)
	} else {
		probs = Softmax(logits, -1)
	}
	return headMajor(mixedDotGeneral(probs, []int{3}, []int{0, 1}, vh, []int{2}, []int{0, 1}))
}

// SoftCap is cap·tanh(x/cap) (Gemma 2's final logit soft-capping); cap ≤ 0 is the identity.
func SoftCap(x *Node, cap float64) *Node {
	if cap <= 0 {
		return x
	}
	return MulScalar(Tanh(DivScalar(x, cap)), cap)
}

// VisibleMask returns the boolean attention mask [B, Tq, Tk] of a decoder: query i (absolute
// position start+i in the key sequence) sees key j when j ≤ start+i, or when prefix[b, j] is true
// (a bidirectional prefix token: PaliGemma's image and prompt), and, for window > 0, only when
// start+i − j < window (a sliding-window layer). start is an int32 scalar (nil: 0); prefix [B, Tk]
// bool or nil.
func VisibleMask(g *Graph, b, tq, tk int, start, prefix *Node, window int) *Node {
	qi := Iota(g, shapes.Make(dtypes.Int32, tq, tk), 0)
	if start != nil {
		qi = Add(qi, start)
	}
	kj := Iota(g, shapes.Make(dtypes.Int32, tq, tk), 1)
	vis := BroadcastToDims(InsertAxes(LessOrEqual(kj, qi), 0), b, tq, tk)
	if prefix != nil {
		vis = LogicalOr(vis, BroadcastToDims(InsertAxes(prefix, 1), b, tq, tk))
	}
	if window > 0 {
		near := LessThan(Sub(qi, kj), Scalar(g, dtypes.Int32, window))
		vis = LogicalAnd(vis, BroadcastToDims(InsertAxes(near, 0), b, tq, tk))
	}
	return vis
}

// PatchEmbedHF is a ViT patch embedding (nn.Conv2d with kernel = stride = patch) over pixels
// [B, C, H, W] (transformers' layout), computed as reel's Linear over patchified pixels: the
// Linear's weights [p·p·C, D] are the convolution's [D, C, p, p] permuted to (py, px, c) rows.
// Returns [B, (H/p)·(W/p), D], patches row-major (the conv output flattened as transformers does).
func PatchEmbedHF(scope *model.Scope, pixels *Node, patch, dim int, bias bool) *Node {
	x := TransposeAllAxes(pixels, 0, 2, 3, 1) // [B, H, W, C]
	return Linear(scope, Patchify(x, patch), dim, bias)
}

func shapesInt32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Int32, dims...) }

// EncoderConfig is the shared shape of CLIP's and SigLIP's transformer encoders (vision or text).
type EncoderConfig struct {
	Hidden, Intermediate, Layers, Heads int
	Eps                                 float64 // layer_norm_eps
	Act                                 string  // hidden_act
}

// EncoderHF runs the encoder's layers (scope: …/encoder, layers/<i>) and returns the hidden
// states as transformers' output_hidden_states lists them: the input, then each layer's output.
func EncoderHF(scope *model.Scope, cfg EncoderConfig, x, mask *Node) []*Node {
	states := []*Node{x}
	layers := scope.In("layers")
	for i := range cfg.Layers {
		x = EncoderLayerHF(layers.In("%d", i), cfg, x).WithMask(mask).Remat().Done() // train.remat
		states = append(states, x)
	}
	return states
}

// Validate checks an encoder configuration (one error naming the field).
func (c EncoderConfig) Validate() error {
	switch {
	case c.Hidden <= 0 || c.Intermediate <= 0 || c.Layers <= 0 || c.Heads <= 0:
		return fmt.Errorf("hidden_size, intermediate_size, num_hidden_layers and num_attention_heads must be > 0 (got %d, %d, %d, %d)",
			c.Hidden, c.Intermediate, c.Layers, c.Heads)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.Hidden, c.Heads)
	case !KnownActivation(c.Act):
		return fmt.Errorf("hidden_act %q is not supported", c.Act)
	}
	return nil
}
