package models

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// SigLIP (Zhai et al., "Sigmoid Loss for Language Image Pre-Training", arXiv:2303.15343) as
// huggingface/transformers src/transformers/models/siglip/modeling_siglip.py implements it:
// SiglipVisionModel (vision_model/…) and SiglipModel (vision_model/…, text_model/…, logit_scale,
// logit_bias). The vision tower is PaliGemma's and SmolVLM's image encoder.

// VisionConfig configures a CLIP or SigLIP vision tower.
type VisionConfig struct {
	Arch string // "siglip" or "clip"
	EncoderConfig
	ImageSize, PatchSize, Channels int
	UseHead                        bool // SigLIP: the attention-pooling head (vision_use_head)
}

// NumPatches is the number of patch tokens per image.
func (c VisionConfig) NumPatches() int { n := c.ImageSize / c.PatchSize; return n * n }

// Tokens is the tower's sequence length: the patches, plus CLIP's class token.
func (c VisionConfig) Tokens() int {
	if c.Arch == "clip" {
		return c.NumPatches() + 1
	}
	return c.NumPatches()
}

// VisionOutput is what a vision tower returns (transformers' BaseModelOutputWithPooling).
type VisionOutput struct {
	HiddenStates []*Node // the encoder's input, then each layer's output [B, N, D]
	Last         *Node   // last_hidden_state [B, N, D]
	Pooled       *Node   // pooler_output [B, D] (nil: SigLIP without its head)
}

// SiglipVisionTransformer encodes pixels [B, C, H, W] (scope: vision_model): patch and position
// embeddings, the encoder, post_layernorm, and the attention-pooling head when configured.
func SiglipVisionTransformer(scope *model.Scope, cfg VisionConfig, pixels *Node) VisionOutput {
	emb := scope.In("embeddings")
	x := PatchEmbedHF(emb.In("patch_embedding"), pixels, cfg.PatchSize, cfg.Hidden, true)
	pos := EmbeddingTable(emb.In("position_embedding"), cfg.NumPatches(), cfg.Hidden, x.DType(), x.Graph())
	x = Add(x, InsertAxes(pos, 0))
	states := EncoderHF(scope.In("encoder"), cfg.EncoderConfig, x, nil)
	out := VisionOutput{HiddenStates: states, Last: LayerNormHF(scope.In("post_layernorm"), states[len(states)-1], cfg.Eps)}
	if cfg.UseHead {
		out.Pooled = siglipPoolingHead(scope.In("head"), cfg.EncoderConfig, out.Last)
	}
	return out
}

// siglipPoolingHead is SiglipMultiheadAttentionPoolingHead: a learned probe attends to the
// tokens (torch.nn.MultiheadAttention: in_proj_weight [3D, D], in_proj_bias, out_proj), then
// x + mlp(layernorm(x)); returns [B, D].
func siglipPoolingHead(scope *model.Scope, cfg EncoderConfig, x *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	b, t, dim := d[0], d[1], d[2]
	hd := dim / cfg.Heads
	probe := scope.VariableWithShape("probe", shapes.Make(x.DType(), 1, 1, dim)).NodeValue(g)
	attn := scope.In("attention")
	w := attn.VariableWithShape("in_proj_weight", shapes.Make(x.DType(), 3*dim, dim)).NodeValue(g)
	bias := attn.WithInitializer(Zeros).VariableWithShape("in_proj_bias", shapes.Make(x.DType(), 3*dim)).NodeValue(g)
	proj := func(in *Node, part int) *Node { // in · W_partᵀ + b_part
		wp := Slice(w, AxisRange(part*dim, (part+1)*dim), AxisRange())
		bp := Slice(bias, AxisRange(part*dim, (part+1)*dim))
		y := DotGeneral(in, []int{2}, nil, wp, []int{1}, nil)
		return Add(y, ExpandLeftToRank(bp, 3))
	}
	p := BroadcastToDims(probe, b, 1, dim)
	q := Reshape(proj(p, 0), b, 1, cfg.Heads, hd)
	k := Reshape(proj(x, 1), b, t, cfg.Heads, hd)
	v := Reshape(proj(x, 2), b, t, cfg.Heads, hd)
	h := Linear(attn.In("out_proj"), Reshape(AttentionCore(q, k, v, nil), b, 1, dim), dim, true)
	mlp := scope.In("mlp")
	m := LayerNormHF(scope.In("layernorm"), h, cfg.Eps)
	m = Linear(mlp.In("fc2"), ActivationHF(cfg.Act, Linear(mlp.In("fc1"), m, cfg.Intermediate, true)), dim, true)
	return Reshape(Add(h, m), b, dim)
}

// TextConfig configures a CLIP or SigLIP text tower.
type TextConfig struct {
	Arch string // "siglip" or "clip"
	EncoderConfig
	VocabSize, MaxPositions int
	ProjectionSize          int // SigLIP: the head's output width (projection_size)
	EOS                     int // CLIP: eos_token_id (2: the legacy argmax pooling)
}

// SiglipTextTransformer encodes token ids [B, T] (scope: text_model): token and position
// embeddings, the encoder (no mask: SigLIP pads texts to a fixed length and attends to the
// padding), final_layer_norm, then the last token through the head: [B, ProjectionSize].
func SiglipTextTransformer(scope *model.Scope, cfg TextConfig, ids *Node) *Node {
	x := textEmbeddings(scope.In("embeddings"), cfg, ids)
	states := EncoderHF(scope.In("encoder"), cfg.EncoderConfig, x, nil)
	h := LayerNormHF(scope.In("final_layer_norm"), states[len(states)-1], cfg.Eps)
	t := h.Shape().Dimensions[1]
	last := Squeeze(Slice(h, AxisRange(), AxisRange(t-1, t), AxisRange()), 1)
	return Linear(scope.In("head"), last, cfg.ProjectionSize, true)
}

// textEmbeddings is CLIPTextEmbeddings: token_embedding(ids) + position_embedding(0…T−1).
func textEmbeddings(scope *model.Scope, cfg TextConfig, ids *Node) *Node {
	t := ids.Shape().Dimensions[1]
	x := EmbeddingHF(scope.In("token_embedding"), ids, cfg.VocabSize, cfg.Hidden, dtypes.Float32)
	pos := EmbeddingTable(scope.In("position_embedding"), cfg.MaxPositions, cfg.Hidden, x.DType(), x.Graph())
	return Add(x, InsertAxes(Slice(pos, AxisRange(0, t), AxisRange()), 0))
}

// ContrastiveConfig configures SiglipModel or CLIPModel.
type ContrastiveConfig struct {
	Arch          string // "siglip" or "clip"
	Vision        VisionConfig
	Text          TextConfig
	ProjectionDim int // CLIP: visual_projection / text_projection width
}

// ContrastiveOutput holds SiglipOutput's / CLIPOutput's embeddings and logits.
type ContrastiveOutput struct {
	ImageEmbeds, TextEmbeds *Node // L2-normalised [Bi, E], [Bt, E]
	LogitsPerImage          *Node // [Bi, Bt]
}

// Contrastive is SiglipModel.forward / CLIPModel.forward for pixels [Bi, C, H, W] and token ids
// [Bt, T]: normalised embeddings and logits_per_image = (image·textᵀ)·exp(logit_scale)
// (+ logit_bias for SigLIP).
func Contrastive(scope *model.Scope, cfg ContrastiveConfig, pixels, ids *Node) ContrastiveOutput {
	scope = WithInit(scope)
	g := pixels.Graph()
	var img, txt, scale, bias *Node
	if cfg.Arch == "clip" {
		img = Linear(scope.In("visual_projection"), CLIPVisionTransformer(scope.In("vision_model"), cfg.Vision, pixels).Pooled, cfg.ProjectionDim, false)
		txt = Linear(scope.In("text_projection"), CLIPTextTransformer(scope.In("text_model"), cfg.Text, ids), cfg.ProjectionDim, false)
		scale = scope.VariableWithValue("logit_scale", float32(math.Log(1/0.07))).NodeValue(g) // CLIP's logit_scale_init_value 2.6592
	} else {
		img = SiglipVisionTransformer(scope.In("vision_model"), cfg.Vision, pixels).Pooled
		txt = SiglipTextTransformer(scope.In("text_model"), cfg.Text, ids)
		scale = Reshape(scope.VariableWithValue("logit_scale", []float32{float32(math.Log(10))}).NodeValue(g))
		bias = Reshape(scope.VariableWithValue("logit_bias", []float32{-10}).NodeValue(g))
	}
	img = Div(img, Sqrt(ReduceAndKeep(Square(img), ReduceSum, -1)))
	txt = Div(txt, Sqrt(ReduceAndKeep(Square(txt), ReduceSum, -1)))
	perText := Mul(DotGeneral(txt, []int{1}, nil, img, []int{1}, nil), Exp(scale)) // [Bt, Bi]
	if bias != nil {
		perText = Add(perText, bias)
	}
	return ContrastiveOutput{ImageEmbeds: img, TextEmbeds: txt, LogitsPerImage: Transpose(perText, 0, 1)}
}

// VisionTower dispatches to the SigLIP or CLIP vision transformer (scope: vision_model).
func VisionTower(scope *model.Scope, cfg VisionConfig, pixels *Node) VisionOutput {
	if cfg.Arch == "clip" {
		return CLIPVisionTransformer(scope, cfg, pixels)
	}
	return SiglipVisionTransformer(scope, cfg, pixels)
}
