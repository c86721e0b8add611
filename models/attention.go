package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Attention layers and transformer encoder layers are built with one builder each, in the style
// of GoMLX's layer builders (ml/layers/attention.MultiHeadAttention(...).WithX().Done()):
//
//	y := MultiHeadAttention(scope, x, heads).WithMask(mask).WithKeyBias(bias).Done()
//	y := EncoderLayer(scope, x, heads).WithMLPRatio(4).WithMask(mask).WithTap(tap, site).Remat().Done()
//	y := EncoderLayerHF(scope, cfg, x).WithKeyBias(bias).Done()
//	y := DecoderAttention(scope, cfg, x).WithRope(cos, sin).WithMask(mask).WithCache(cache, i).Done()
//
// DecoderAttention (decoder.go) is MultiHeadAttention configured from a DecoderConfig
// (transformers' projections, grouped-query heads, q/k norms, scale, soft-capping); a decoder with
// its own position scheme (e.g. multimodal RoPE) passes its own cos and sin to WithRope.
//
// Every option is off until set; the options compose (an STTS key bias on a transformers-layout
// SigLIP layer, a tap on a grouped-query decoder attention, ...). Attention and Block are the
// shorthands of the common case. All of them end in the same kernel, AttentionCoreBias (or
// ScaledAttention for a non-default scale or logit soft-capping).
//
// pi0's joint attention (pi0Joint in pi0.go) is kept separate on purpose: it mirrors openpi's
// gemma.py Module, where each of the prefix and suffix streams projects its own q, k, v with its
// own weights and one attention runs over their concatenation; a single-stream builder would
// hide that. Its per-stream projections are DecoderAttention's, written out.

// AttentionBuilder builds one multi-head attention layer over x [B, T, D]; start one with
// MultiHeadAttention, set options, and call Done.
type AttentionBuilder struct {
	scope          *model.Scope
	x              *Node
	heads, kvHeads int
	headDim        int

	// Projections: reel's fused "qkv" [D, 3D] and "out" (both biased) unless hf is set.
	hf               bool
	qkvBias, outBias bool
	outName          string

	mask, keyBias *Node
	tap           Tap
	site          string
	qkNorm        func(scope *model.Scope, x *Node) *Node
	cos, sin      *Node
	scale         float64
	softcap       float64
	cache         *KVCache
	layer         int
}

// MultiHeadAttention starts building multi-head self-attention over x [B, T, D] with the given
// number of heads, in scope. By default queries, keys and values come from one fused biased
// [D, 3D] projection ("qkv"), each head is D/heads wide, every query sees every key, and a biased
// output projection ("out") maps the heads back to D.
func MultiHeadAttention(scope *model.Scope, x *Node, heads int) *AttentionBuilder {
	d := x.Shape().Dimensions[2]
	return &AttentionBuilder{scope: scope, x: x, heads: heads, kvHeads: heads, headDim: d / heads}
}

// WithMask sets the boolean attention mask: [Tq, Tk] or [B, Tq, Tk], true where query q may attend
// to key k.
func (a *AttentionBuilder) WithMask(mask *Node) *AttentionBuilder { a.mask = mask; return a }

// WithKeyBias adds a key-side bias [B, Tk] to the attention logits of every query and head (STTS's
// log(score): a low-scored key receives less attention from every query). nil is no bias.
func (a *AttentionBuilder) WithKeyBias(bias *Node) *AttentionBuilder { a.keyBias = bias; return a }

// WithTap taps the per-head outputs [B, T, H, hd] at site+"/heads", before the output projection
// (the head's write to the residual stream is heads[..., h, :] times rows h·hd…(h+1)·hd of the
// output weights): interpretability tools capture, patch or ablate heads there.
func (a *AttentionBuilder) WithTap(tap Tap, site string) *AttentionBuilder {
	a.tap, a.site = tap, site
	return a
}

// WithHFProjections uses transformers' projections: separate q_proj, k_proj and v_proj (biased
// when qkvBias) and the output projection out (biased when outBias): "out_proj" in CLIP/SigLIP's
// attention, "o_proj" in Llama's.
func (a *AttentionBuilder) WithHFProjections(qkvBias bool, out string, outBias bool) *AttentionBuilder {
	a.hf, a.qkvBias, a.outName, a.outBias = true, qkvBias, out, outBias
	return a
}

// WithKVHeads sets grouped-query attention's number of key/value heads, each shared by
// heads/kvHeads query heads (transformers' repeat_kv); default heads. It needs WithHFProjections.
func (a *AttentionBuilder) WithKVHeads(kvHeads int) *AttentionBuilder { a.kvHeads = kvHeads; return a }

// WithHeadDim sets the width of a head (default D/heads; Gemma's differs). It needs
// WithHFProjections.
func (a *AttentionBuilder) WithHeadDim(headDim int) *AttentionBuilder { a.headDim = headDim; return a }

// WithQKNorm normalises each head's queries and keys with norm, in scopes "q_norm" and "k_norm"
// (Gemma 3, Qwen3).
func (a *AttentionBuilder) WithQKNorm(norm func(scope *model.Scope, x *Node) *Node) *AttentionBuilder {
	a.qkNorm = norm
	return a
}

// WithRope rotates queries and keys by the rotary embedding's cos and sin [B, T, hd] (RopeCosSin).
func (a *AttentionBuilder) WithRope(cos, sin *Node) *AttentionBuilder {
	a.cos, a.sin = cos, sin
	return a
}

// WithScale sets the logits' scale (0: the default 1/√hd) and soft-capping (Gemma 2: logits ←
// cap·tanh(logits/cap); ≤ 0: none).
func (a *AttentionBuilder) WithScale(scale, softcap float64) *AttentionBuilder {
	a.scale, a.softcap = scale, softcap
	return a
}

// WithCache writes the new keys and values into layer's slots of a static KV cache at
// cache.Start and attends to the whole cache (the keys are the cache's slots).
func (a *AttentionBuilder) WithCache(cache *KVCache, layer int) *AttentionBuilder {
	a.cache, a.layer = cache, layer
	return a
}

// Done builds the layer and returns its output [B, T, D].
func (a *AttentionBuilder) Done() *Node {
	x, scope := a.x, a.scope
	dims := x.Shape().Dimensions
	b, t, d := dims[0], dims[1], dims[2]
	h, kvh, hd := a.heads, a.kvHeads, a.headDim
	var q, k, v *Node
	if a.hf {
		q = Reshape(Linear(scope.In("q_proj"), x, h*hd, a.qkvBias), b, t, h, hd)
		k = Reshape(Linear(scope.In("k_proj"), x, kvh*hd, a.qkvBias), b, t, kvh, hd)
		v = Reshape(Linear(scope.In("v_proj"), x, kvh*hd, a.qkvBias), b, t, kvh, hd)
	} else {
		if kvh != h || hd*h != d {
			panic(fmt.Sprintf("models.MultiHeadAttention: the fused qkv projection needs kv heads = heads (%d, %d) and head width D/heads (%d, %d/%d)", kvh, h, hd, d, h))
		}
		qkv := LinearSplit(scope.In("qkv"), x, 3*d, 3, true) // 3 × [B, T, D]
		q, k, v = Reshape(qkv[0], b, t, h, hd), Reshape(qkv[1], b, t, h, hd), Reshape(qkv[2], b, t, h, hd)
	}
	if a.qkNorm != nil {
		q, k = a.qkNorm(scope.In("q_norm"), q), a.qkNorm(scope.In("k_norm"), k)
	}
	if a.cos != nil {
		q, k = ApplyRope(q, a.cos, a.sin), ApplyRope(k, a.cos, a.sin)
	}
	if c := a.cache; c != nil {
		zero := ScalarZero(x.Graph(), dtypes.Int32)
		idx := []*Node{zero, c.Start, zero, zero}
		c.K[a.layer] = DynamicUpdateSlice(c.K[a.layer], k, idx)
		c.V[a.layer] = DynamicUpdateSlice(c.V[a.layer], v, idx)
		k, v = c.K[a.layer], c.V[a.layer]
	}
	k, v = RepeatKV(k, h), RepeatKV(v, h)
	var out *Node // [B, T, H, hd]
	if a.scale != 0 || a.softcap > 0 {
		if a.keyBias != nil {
			panic("models.MultiHeadAttention: a key bias with a non-default scale or soft-capping is not implemented")
		}
		out = ScaledAttention(q, k, v, a.mask, a.scale, a.softcap)
	} else {
		out = AttentionCoreBias(q, k, v, a.mask, a.keyBias)
	}
	out = a.tap.At(a.site+"/heads", out)
	out = Reshape(out, b, t, h*hd)
	if a.hf {
		return Linear(scope.In("%s", a.outName), out, d, a.outBias)
	}
	return Linear(scope.In("out"), out, d, true)
}

// Attention is multi-head self-attention over x [B, T, D] with an optional boolean mask [T, T] or
// [B, T, T]: shorthand for MultiHeadAttention(scope, x, heads).WithMask(mask).Done().
func Attention(scope *model.Scope, x *Node, heads int, mask *Node) *Node {
	return MultiHeadAttention(scope, x, heads).WithMask(mask).Done()
}

// EncoderLayerBuilder builds one pre-norm transformer encoder layer over x [B, T, D]:
// x + Attn(Norm(x)), then x + MLP(Norm(x)). Start one with EncoderLayer (reel's layout) or
// EncoderLayerHF (transformers' CLIP/SigLIP layout), set options, and call Done.
type EncoderLayerBuilder struct {
	scope    *model.Scope
	x        *Node
	heads    int
	mlpRatio float64
	hf       *EncoderConfig

	mask, keyBias *Node
	tap           Tap
	site          string
	remat         bool
}

// EncoderLayer starts building reel's pre-norm transformer block (ViT, the tiny VLM's decoder, the
// video towers): LayerNorm "ln1", MultiHeadAttention "attn" (fused qkv), LayerNorm "ln2", MLP
// "mlp" (fc1 → GELU → fc2, hidden 4·D unless WithMLPRatio).
func EncoderLayer(scope *model.Scope, x *Node, heads int) *EncoderLayerBuilder {
	return &EncoderLayerBuilder{scope: scope, x: x, heads: heads, mlpRatio: 4}
}

// EncoderLayerHF starts building CLIPEncoderLayer (src/transformers/models/clip/modeling_clip.py),
// which SiglipEncoderLayer copies: x + self_attn(layer_norm1(x)), then x + mlp(layer_norm2(x)),
// with separate biased q/k/v/out projections and an fc1 → act → fc2 MLP, sized by cfg.
func EncoderLayerHF(scope *model.Scope, cfg EncoderConfig, x *Node) *EncoderLayerBuilder {
	return &EncoderLayerBuilder{scope: scope, x: x, heads: cfg.Heads, hf: &cfg}
}

// WithMLPRatio sets the MLP's hidden width to round(ratio·D) (at least 1); reel's layout only.
func (l *EncoderLayerBuilder) WithMLPRatio(ratio float64) *EncoderLayerBuilder {
	l.mlpRatio = ratio
	return l
}

// WithMask sets the attention mask (see AttentionBuilder.WithMask).
func (l *EncoderLayerBuilder) WithMask(mask *Node) *EncoderLayerBuilder { l.mask = mask; return l }

// WithKeyBias adds a key-side bias [B, T] to the attention logits (see AttentionBuilder.WithKeyBias).
func (l *EncoderLayerBuilder) WithKeyBias(bias *Node) *EncoderLayerBuilder {
	l.keyBias = bias
	return l
}

// WithTap taps the attention's per-head outputs at site+"/attn/heads" and the layer's output
// residual stream [B, T, D] at site.
func (l *EncoderLayerBuilder) WithTap(tap Tap, site string) *EncoderLayerBuilder {
	l.tap, l.site = tap, site
	return l
}

// Remat recomputes the layer in the backward pass when the graph checkpoints activations
// (train.remat; see the Remat function).
func (l *EncoderLayerBuilder) Remat() *EncoderLayerBuilder { l.remat = true; return l }

// Done builds the layer and returns its output [B, T, D].
func (l *EncoderLayerBuilder) Done() *Node {
	if !l.remat {
		return l.layer(l.x)
	}
	return Remat(l.x, l.layer)
}

func (l *EncoderLayerBuilder) layer(x *Node) *Node {
	scope := l.scope
	if c := l.hf; c != nil {
		attn := scope.In("self_attn")
		h := LayerNormHF(scope.In("layer_norm1"), x, c.Eps)
		x = Add(x, l.attention(attn, h).WithHFProjections(true, "out_proj", true).Done())
		h = LayerNormHF(scope.In("layer_norm2"), x, c.Eps)
		mlp := scope.In("mlp")
		h = Linear(mlp.In("fc2"), ActivationHF(c.Act, Linear(mlp.In("fc1"), h, c.Intermediate, true)), c.Hidden, true)
		return l.tap.At(l.site, Add(x, h))
	}
	d := x.Shape().Dimensions[2]
	attn := scope.In("attn")
	x = Add(x, l.attention(attn, LayerNorm(scope.In("ln1"), x)).Done())
	hidden := max(1, int(math.Round(float64(d)*l.mlpRatio)))
	x = Add(x, MLP(scope.In("mlp"), LayerNorm(scope.In("ln2"), x), hidden))
	return l.tap.At(l.site, x)
}

// attention is the layer's attention over its normed input h, with the layer's options.
func (l *EncoderLayerBuilder) attention(scope *model.Scope, h *Node) *AttentionBuilder {
	a := MultiHeadAttention(scope, h, l.heads).WithMask(l.mask).WithKeyBias(l.keyBias)
	if l.tap != nil {
		a.WithTap(l.tap, l.site+"/attn")
	}
	return a
}

// Block is reel's pre-norm transformer block with an optional attention mask: shorthand for
// EncoderLayer(scope, x, heads).WithMLPRatio(mlpRatio).WithMask(mask).Remat().Done().
func Block(scope *model.Scope, x *Node, heads int, mlpRatio float64, mask *Node) *Node {
	return EncoderLayer(scope, x, heads).WithMLPRatio(mlpRatio).WithMask(mask).Remat().Done()
}
