package models

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// PaliGemma (Beyer et al., "PaliGemma: A versatile 3B VLM for transfer", arXiv:2407.07726) as
// huggingface/transformers src/transformers/models/paligemma/modeling_paligemma.py implements
// PaliGemmaForConditionalGeneration: a SigLIP vision tower (no pooling head), one linear
// multi_modal_projector, and a Gemma (PaliGemma 2: Gemma 2) decoder whose input is the prompt with
// each image placeholder token (image_token_index) replaced by one projected image token. The
// image and the prompt (token_type_ids 0) form a prefix that attends bidirectionally; the suffix
// (token_type_ids 1) is causal. Scopes (transformers 5.x names): model/vision_tower/vision_model,
// model/multi_modal_projector/linear, model/language_model, lm_head.

// PaliGemmaConfig configures PaliGemmaForConditionalGeneration.
type PaliGemmaConfig struct {
	Vision     VisionConfig
	Text       DecoderConfig
	ImageToken int // image_token_index
}

// PaliGemmaImageFeatures is get_image_features: the vision tower's last_hidden_state through the
// projector, divided by √(text hidden size): [B, N, D].
func PaliGemmaImageFeatures(scope *model.Scope, cfg PaliGemmaConfig, pixels *Node) *Node {
	m := scope.At("model")
	v := SiglipVisionTransformer(m.In("vision_tower").In("vision_model"), cfg.Vision, pixels)
	f := Linear(m.In("multi_modal_projector").In("linear"), v.Last, cfg.Text.Hidden, true)
	return DivScalar(f, float64(float32(math.Sqrt(float64(cfg.Text.Hidden)))))
}

// PaliGemmaPrefix is the bidirectional-prefix mask [B, T] from token_type_ids [B, T] (int32):
// true where the type is 0; nil token types make the whole input the prefix (transformers'
// inference-time mask over the prompt).
func PaliGemmaPrefix(ids, tokenTypes *Node) *Node {
	if tokenTypes == nil {
		return OnesLike(ConvertDType(ids, dtypes.Bool))
	}
	return Equal(tokenTypes, ZerosLike(tokenTypes))
}

// PaliGemmaEmbeds is the decoder input: token embeddings with the image features scattered in at
// the image placeholders (ids [B, T] int32, pixels [B, C, H, W]).
func PaliGemmaEmbeds(scope *model.Scope, cfg PaliGemmaConfig, ids, pixels *Node) *Node {
	x := DecoderEmbed(scope.At("model").In("language_model"), cfg.Text, ids, dtypes.Float32)
	if pixels == nil {
		return x
	}
	return ScatterImageFeatures(x, ids, PaliGemmaImageFeatures(scope, cfg, pixels), cfg.ImageToken)
}

// PaliGemma is the forward pass: logits [B, T, V] for ids [B, T] (int32) with image placeholders,
// pixels [B, C, H, W] and token_type_ids [B, T] (int32, or nil). Positions start at 1
// ("PaliGemma positions are 1-indexed").
func PaliGemma(scope *model.Scope, cfg PaliGemmaConfig, ids, pixels, tokenTypes *Node) *Node {
	scope = WithInit(scope)
	dec := scope.At("model").In("language_model")
	x := PaliGemmaEmbeds(scope, cfg, ids, pixels)
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	h := Decoder(dec, cfg.Text, x, Positions(ids.Graph(), b, t, 1), PaliGemmaPrefix(ids, tokenTypes), nil)
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h)
}

// ScatterImageFeatures replaces the rows of x [B, T, D] where ids == token by the rows of feats
// [Bi, N, D] in order (transformers' inputs_embeds.masked_scatter(special_image_mask, features)).
// The caller checks that the placeholders number Bi·N.
func ScatterImageFeatures(x, ids, feats *Node, token int) *Node {
	d := x.Shape().Dimensions
	b, t, dim := d[0], d[1], d[2]
	fd := feats.Shape().Dimensions
	flat := Reshape(feats, fd[0]*fd[1], dim)
	isImg := Equal(ids, Scalar(ids.Graph(), ids.DType(), token)) // [B, T]
	idx := CumSum(Reshape(ConvertDType(isImg, dtypes.Int32), b*t), 0)
	idx = MinScalar(MaxScalar(AddScalar(idx, -1), 0), float64(fd[0]*fd[1]-1))
	rows := Reshape(Gather(flat, InsertAxes(idx, -1)), b, t, dim)
	return Where(BroadcastToDims(InsertAxes(isImg, -1), b, t, dim), rows, x)
}
