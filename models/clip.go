package models

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
// arXiv:2103.00020) as huggingface/transformers src/transformers/models/clip/modeling_clip.py
// implements it: CLIPVisionModel (vision_model/…) and CLIPModel (vision_model/…, text_model/…,
// visual_projection, text_projection, logit_scale). Its vision tower is LLaVA's image encoder.

// CLIPVisionTransformer encodes pixels [B, C, H, W] (scope: vision_model): a class token
// (class_embedding) before the bias-free patch embedding, learned positions, pre_layrnorm (sic),
// the encoder; pooler_output is post_layernorm of the class token. last_hidden_state is the
// encoder's output (no final norm).
func CLIPVisionTransformer(scope *model.Scope, cfg VisionConfig, pixels *Node) VisionOutput {
	g := pixels.Graph()
	emb := scope.In("embeddings")
	patches := PatchEmbedHF(emb.In("patch_embedding"), pixels, cfg.PatchSize, cfg.Hidden, false)
	b := patches.Shape().Dimensions[0]
	cls := emb.VariableWithShape("class_embedding", shapes.Make(patches.DType(), cfg.Hidden)).NodeValue(g)
	x := Concatenate([]*Node{BroadcastToDims(Reshape(cls, 1, 1, cfg.Hidden), b, 1, cfg.Hidden), patches}, 1)
	pos := EmbeddingTable(emb.In("position_embedding"), cfg.Tokens(), cfg.Hidden, x.DType(), g)
	x = Add(x, InsertAxes(pos, 0))
	x = LayerNormHF(scope.In("pre_layrnorm"), x, cfg.Eps)
	states := EncoderHF(scope.In("encoder"), cfg.EncoderConfig, x, nil)
	last := states[len(states)-1]
	cls0 := Squeeze(Slice(last, AxisRange(), AxisRange(0, 1), AxisRange()), 1)
	return VisionOutput{HiddenStates: states, Last: last, Pooled: LayerNormHF(scope.In("post_layernorm"), cls0, cfg.Eps)}
}

// CLIPTextTransformer encodes token ids [B, T] (scope: text_model) with a causal mask and returns
// the final-normed hidden state at each text's end-of-text token [B, D]: the first eos_token_id,
// or, for the legacy eos_token_id 2, the largest id (CLIPTextTransformer.forward).
func CLIPTextTransformer(scope *model.Scope, cfg TextConfig, ids *Node) *Node {
	g := ids.Graph()
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	x := textEmbeddings(scope.In("embeddings"), cfg, ids)
	mask := VisibleMask(g, b, t, t, nil, nil, 0)
	states := EncoderHF(scope.In("encoder"), cfg.EncoderConfig, x, mask)
	h := LayerNormHF(scope.In("final_layer_norm"), states[len(states)-1], cfg.Eps)
	var at *Node // [B] int32 position to pool
	if cfg.EOS == 2 {
		at = ArgMax(ids, 1, dtypes.Int32)
	} else {
		at = ArgMax(ConvertDType(Equal(ids, Scalar(g, ids.DType(), cfg.EOS)), dtypes.Int32), 1, dtypes.Int32) // first match
	}
	onehot := OneHot(at, t, h.DType())                                   // [B, T]
	return DotGeneral(onehot, []int{1}, []int{0}, h, []int{1}, []int{0}) // [B, D]
}
