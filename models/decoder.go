package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Decoder-only language models of the Llama family, as transformers implements them:
//
//   - LlamaForCausalLM (Touvron et al., "LLaMA: Open and Efficient Foundation Language Models",
//     arXiv:2302.13971; SmolLM2, Allal et al., arXiv:2502.02737: tied embeddings, grouped-query
//     attention), huggingface/transformers src/transformers/models/llama/modeling_llama.py;
//   - Qwen2ForCausalLM (Yang et al., "Qwen2 Technical Report", arXiv:2407.10671): Llama with biases
//     on q, k and v, src/transformers/models/qwen2/modeling_qwen2.py;
//   - Qwen3ForCausalLM (Qwen Team, "Qwen3 Technical Report", arXiv:2505.09388): Llama with RMSNorm
//     on each head's queries and keys before RoPE (QKNorm) and no biases,
//     src/transformers/models/qwen3/modeling_qwen3.py;
//   - GemmaForCausalLM (Gemma Team, "Gemma: Open Models Based on Gemini Research and Technology",
//     arXiv:2403.08295): (1+w) RMSNorm, inputs scaled by √hidden, GeGLU (tanh GELU),
//     src/transformers/models/gemma/modeling_gemma.py;
//   - Gemma2ForCausalLM (Gemma Team, "Gemma 2: Improving Open Language Models at a Practical
//     Size", arXiv:2408.00118): norms before and after attention and MLP, attention-logit and
//     final-logit soft-capping, alternating sliding-window layers, query_pre_attn_scalar,
//     src/transformers/models/gemma2/modeling_gemma2.py;
//   - Gemma3ForCausalLM (Gemma Team, "Gemma 3 Technical Report", arXiv:2503.19786): Gemma 2's
//     layer with RMSNorm on queries and keys, 5 local : 1 global layers with their own RoPE base,
//     the token embedding (not the inputs) scaled, src/transformers/models/gemma3/modeling_gemma3.py.
//
// Scopes follow transformers' module names: the decoder in scope (model or model/language_model):
// embed_tokens, layers/<i>/{input_layernorm, self_attn/{q,k,v,o}_proj, self_attn/{q,k}_norm,
// post_attention_layernorm, pre_feedforward_layernorm, mlp/{gate,up,down}_proj,
// post_feedforward_layernorm}, norm; the output projection lm_head (absent when tied).

// DecoderConfig is a decoder LM's configuration (config.json's text fields, parsed by package hf).
type DecoderConfig struct {
	Arch                      string // model_type: llama, qwen2, qwen3, gemma, gemma2, gemma3
	VocabSize, Hidden         int
	Intermediate, Layers      int
	Heads, KVHeads, HeadDim   int
	Eps                       float64 // rms_norm_eps
	Act                       string  // MLP activation (hidden_act / hidden_activation)
	Rope                      Rope    // global layers
	LocalRope                 Rope    // sliding layers (Gemma 3: rope_local_base_freq); zero: Rope
	AttnBias, OBias, MLPBias  bool    // biases on q/k/v, o_proj, the MLP
	TieEmbeddings             bool    // lm_head reads embed_tokens
	OffsetNorm                bool    // Gemma's (1+w) RMSNorm
	SandwichNorm              bool    // Gemma 2/3: post_attention, pre/post_feedforward norms
	QKNorm                    bool    // Gemma 3, Qwen3: q_norm, k_norm over the head dimension
	ScaleInputs               bool    // Gemma 1/2: inputs_embeds × √hidden inside the model
	ScaleTokens               bool    // Gemma 3: token embeddings × √hidden
	QueryPreAttnScalar        float64 // attention scale 1/√query_pre_attn_scalar (0: 1/√head_dim)
	AttnSoftcap, FinalSoftcap float64 // 0: none
	SlidingWindow             int     // keys within the window on sliding layers
	LayerTypes                []string
	BOS, EOS                  []int // generation: begin and end ids (config / generation_config)
	MaxPositions              int   // max_position_embeddings
}

// LayerSliding reports whether layer i is a sliding-window layer.
func (c DecoderConfig) LayerSliding(i int) bool {
	return c.SlidingWindow > 0 && i < len(c.LayerTypes) && c.LayerTypes[i] == "sliding_attention"
}

// KVCache is a static key/value cache: one [B, L, KVH, hd] tensor pair per layer, the new tokens'
// keys and values written at Start (int32 scalar), queries attending over all L slots (the mask
// hides the unwritten ones).
type KVCache struct {
	Start *Node
	K, V  []*Node
}

// DecoderEmbed is the decoder's token embedding (embed_tokens) of ids [B, T] (int32): [B, T, D],
// scaled by √hidden for Gemma 3 (Gemma3TextScaledWordEmbedding).
func DecoderEmbed(scope *model.Scope, cfg DecoderConfig, ids *Node, dtype dtypes.DType) *Node {
	x := EmbeddingHF(scope.In("embed_tokens"), ids, cfg.VocabSize, cfg.Hidden, dtype)
	if cfg.ScaleTokens {
		x = MulScalar(x, float64(float32(math.Sqrt(float64(cfg.Hidden)))))
	}
	return x
}

// Decoder runs the decoder (scope: model, or model/language_model in a VLM) over input embeddings
// x [B, T, D] at positions [B, T] (int32; RoPE) and returns the final-normed hidden states
// [B, T, D]. prefix [B, Tk] (bool, or nil) marks bidirectional keys (see VisibleMask); with a cache
// the keys are the cache's slots and the cache's K, V are replaced by the updated ones.
func Decoder(scope *model.Scope, cfg DecoderConfig, x, positions, prefix *Node, cache *KVCache) *Node {
	if cfg.ScaleInputs { // GemmaModel: hidden_states * normalizer (√hidden in the hidden dtype)
		x = MulScalar(x, float64(float32(math.Sqrt(float64(cfg.Hidden)))))
	}
	cosG, sinG := RopeCosSin(cfg.Rope, positions)
	cosL, sinL := cosG, sinG
	if cfg.LocalRope.Theta > 0 {
		cosL, sinL = RopeCosSin(cfg.LocalRope, positions)
	}
	return decoderLayers(scope, cfg, x, cosG, sinG, cosL, sinL, prefix, nil, cache, nil)
}

// DecoderRotary is Decoder with the rotary cos and sin [B, T, head_dim] given (every layer's):
// for position schemes other than one index per token, such as Qwen2-VL's M-RoPE (MRopeCosSin).
// after (or nil) maps each layer's output (layer i) before the next layer reads it: Qwen3-VL's
// DeepStack adds vision features there.
func DecoderRotary(scope *model.Scope, cfg DecoderConfig, x, cos, sin, prefix *Node, cache *KVCache, after func(i int, h *Node) *Node) *Node {
	if cfg.ScaleInputs {
		x = MulScalar(x, float64(float32(math.Sqrt(float64(cfg.Hidden)))))
	}
	return decoderLayers(scope, cfg, x, cos, sin, cos, sin, prefix, nil, cache, after)
}

// DecoderRotaryKeys is DecoderRotary (causal, no cache) with keys [B, T] (bool, or nil: all
// true): a token marked false is hidden as a key from every other token in every layer (it
// still attends to itself, so that its row stays finite; no other output depends on it). The
// other tokens' outputs are those of the sequence without the hidden ones at unchanged
// positions — how a batch of pruned sequences of different lengths runs in one graph.
func DecoderRotaryKeys(scope *model.Scope, cfg DecoderConfig, x, cos, sin, keys *Node, after func(i int, h *Node) *Node) *Node {
	if cfg.ScaleInputs {
		x = MulScalar(x, float64(float32(math.Sqrt(float64(cfg.Hidden)))))
	}
	return decoderLayers(scope, cfg, x, cos, sin, cos, sin, nil, keys, nil, after)
}

// hideKeys restricts the visibility mask vis [B, T, T] to the keys marked true in keys [B, T]
// and each token itself.
func hideKeys(vis, keys *Node) *Node {
	if keys == nil {
		return vis
	}
	d := vis.Shape().Dimensions
	g := vis.Graph()
	self := Equal(Iota(g, shapesInt32(d[1], d[2]), 0), Iota(g, shapesInt32(d[1], d[2]), 1))
	return LogicalAnd(vis, LogicalOr(BroadcastToDims(InsertAxes(keys, 1), d...), BroadcastToDims(InsertAxes(self, 0), d...)))
}

// decoderLayers runs the layers and the final norm with the global and sliding layers' rotary
// tables.
func decoderLayers(scope *model.Scope, cfg DecoderConfig, x, cosG, sinG, cosL, sinL, prefix, keys *Node, cache *KVCache, after func(int, *Node) *Node) *Node {
	g := x.Graph()
	b, t := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	tk := t
	var start *Node
	if cache != nil {
		tk, start = cache.K[0].Shape().Dimensions[1], cache.Start
	}
	full := hideKeys(VisibleMask(g, b, t, tk, start, prefix, 0), keys)
	var sliding *Node
	layers := scope.In("layers")
	for i := range cfg.Layers {
		mask, cos, sin := full, cosG, sinG
		if cfg.LayerSliding(i) {
			if sliding == nil {
				sliding = hideKeys(VisibleMask(g, b, t, tk, start, prefix, cfg.SlidingWindow), keys)
			}
			mask, cos, sin = sliding, cosL, sinL
		}
		layer := func(x *Node) *Node { return decoderLayer(layers.In("%d", i), cfg, i, x, cos, sin, mask, cache) }
		if cache == nil { // training graphs: train.remat recomputes the layer in the backward pass
			x = Remat(x, layer)
		} else {
			x = layer(x)
		}
		if after != nil {
			x = after(i, x)
		}
	}
	return RMSNorm(scope.In("norm"), x, cfg.Eps, cfg.OffsetNorm)
}

// decoderLayer is LlamaDecoderLayer / Gemma2DecoderLayer: pre-norm attention and MLP with
// residuals, with Gemma 2/3's extra norms on the branches' outputs.
func decoderLayer(scope *model.Scope, cfg DecoderConfig, i int, x, cos, sin, mask *Node, cache *KVCache) *Node {
	norm := func(name string, h *Node) *Node { return RMSNorm(scope.In("%s", name), h, cfg.Eps, cfg.OffsetNorm) }
	h := DecoderAttention(scope.In("self_attn"), cfg, norm("input_layernorm", x)).
		WithRope(cos, sin).WithMask(mask).WithCache(cache, i).Done()
	if cfg.SandwichNorm {
		h = norm("post_attention_layernorm", h)
	}
	x = Add(x, h)
	if cfg.SandwichNorm {
		h = norm("pre_feedforward_layernorm", x)
	} else {
		h = norm("post_attention_layernorm", x)
	}
	h = decoderMLP(scope.In("mlp"), cfg, h)
	if cfg.SandwichNorm {
		h = norm("post_feedforward_layernorm", h)
	}
	return Add(x, h)
}

// DecoderAttention starts LlamaAttention (src/transformers/models/llama/modeling_llama.py) over x
// [B, T, Hidden] as a MultiHeadAttention builder: grouped-query heads, the optional q/k norms (Gemma 3,
// Qwen3) and the attention scale and soft-capping (Gemma 2) of cfg; the caller adds RoPE, the
// mask and the KV cache.
func DecoderAttention(scope *model.Scope, cfg DecoderConfig, x *Node) *AttentionBuilder {
	scale := 0.0
	if cfg.QueryPreAttnScalar > 0 {
		scale = 1 / math.Sqrt(cfg.QueryPreAttnScalar)
	}
	a := MultiHeadAttention(scope, x, cfg.Heads).WithHFProjections(cfg.AttnBias, "o_proj", cfg.OBias).
		WithKVHeads(cfg.KVHeads).WithHeadDim(cfg.HeadDim).WithScale(scale, cfg.AttnSoftcap)
	if cfg.QKNorm {
		a.WithQKNorm(func(s *model.Scope, x *Node) *Node { return RMSNorm(s, x, cfg.Eps, cfg.OffsetNorm) })
	}
	return a
}

// decoderMLP is LlamaMLP: down_proj(act(gate_proj(x)) · up_proj(x)).
func decoderMLP(scope *model.Scope, cfg DecoderConfig, x *Node) *Node {
	gate := Linear(scope.In("gate_proj"), x, cfg.Intermediate, cfg.MLPBias)
	up := Linear(scope.In("up_proj"), x, cfg.Intermediate, cfg.MLPBias)
	return Linear(scope.In("down_proj"), Mul(ActivationHF(cfg.Act, gate), up), cfg.Hidden, cfg.MLPBias)
}

// LMHead is the output projection of hidden states h [B, T, D] to logits [B, T, V]: lm_head
// (scope head), or with tied embeddings the decoder's embed_tokens table (scope decoder),
// followed by Gemma 2's final soft-capping.
func LMHead(head, decoder *model.Scope, cfg DecoderConfig, h *Node) *Node {
	var logits *Node
	if cfg.TieEmbeddings {
		table := EmbeddingTable(decoder.At("embed_tokens"), cfg.VocabSize, cfg.Hidden, h.DType(), h.Graph())
		d := h.Shape().Dimensions
		logits = mixedDotGeneral(Reshape(h, -1, d[2]), []int{1}, nil, table, []int{1}, nil)
		logits = Reshape(logits, d[0], d[1], cfg.VocabSize)
	} else {
		logits = Linear(head, h, cfg.VocabSize, false)
	}
	return SoftCap(logits, cfg.FinalSoftcap)
}

// CausalLM is *ForCausalLM's forward pass: logits [B, T, V] of token ids [B, T] (int32) at
// positions 0…T−1. Variables: model/… and lm_head/… in scope.
func CausalLM(scope *model.Scope, cfg DecoderConfig, ids *Node) *Node {
	scope = WithInit(scope)
	dec := scope.In("model")
	x := DecoderEmbed(dec, cfg, ids, dtypes.Float32)
	h := Decoder(dec, cfg, x, Positions(ids.Graph(), ids.Shape().Dimensions[0], ids.Shape().Dimensions[1], 0), nil, nil)
	return LMHead(scope.In("lm_head"), dec, cfg, h)
}

// Positions is [B, T] int32 positions offset, offset+1, ….
func Positions(g *Graph, b, t, offset int) *Node {
	p := Iota(g, shapesInt32(b, t), 1)
	if offset != 0 {
		p = AddScalar(p, float64(offset))
	}
	return p
}

// Validate checks the configuration's consistency (one error naming the field).
func (c DecoderConfig) Validate() error {
	switch {
	case c.VocabSize <= 0 || c.Hidden <= 0 || c.Intermediate <= 0 || c.Layers <= 0:
		return fmt.Errorf("vocab_size, hidden_size, intermediate_size and num_hidden_layers must be > 0 (got %d, %d, %d, %d)",
			c.VocabSize, c.Hidden, c.Intermediate, c.Layers)
	case c.Heads <= 0 || c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("num_attention_heads %d must be a positive multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("head_dim %d must be positive and even (rotary embeddings)", c.HeadDim)
	case !KnownActivation(c.Act):
		return fmt.Errorf("hidden_act %q is not supported", c.Act)
	case c.Rope.Theta <= 0:
		return fmt.Errorf("rope_theta %v must be > 0", c.Rope.Theta)
	}
	for _, r := range []Rope{c.Rope, c.LocalRope} {
		switch r.Type {
		case "", "default", "linear", "llama3":
		default:
			return fmt.Errorf("rope_scaling type %q is not supported (default, linear, llama3)", r.Type)
		}
	}
	return nil
}
