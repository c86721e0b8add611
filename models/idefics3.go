package models

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Idefics3 (Laurençon et al., "Building and better understanding vision-language models: insights
// and future directions", arXiv:2408.12637) and SmolVLM / SmolVLM2 (Marafioti et al., "SmolVLM:
// Redefining small and efficient multimodal models", arXiv:2504.05299) as huggingface/transformers
// src/transformers/models/idefics3/modeling_idefics3.py and
// src/transformers/models/smolvlm/modeling_smolvlm.py implement Idefics3ForConditionalGeneration
// and SmolVLMForConditionalGeneration: a SigLIP vision transformer (Idefics3VisionTransformer, no
// pooling head), a connector that pixel-shuffles the patch grid (scale_factor² neighbouring
// patches concatenated into one token) and projects it with one bias-free Linear
// (modality_projection.proj), and a Llama decoder whose input is the prompt with each image
// placeholder (image_token_id) replaced, in order, by one connector token. SmolVLM differs from
// Idefics3 only in its processor and in inputs_merger's check that the placeholders come in whole
// images, which the scatter here does not need. Scopes (the checkpoint's names, identical in
// transformers 4.x and 5.x): model/vision_model, model/connector/modality_projection/proj,
// model/text_model, lm_head.
//
// Where reel differs: Idefics3VisionEmbeddings supports images smaller than image_size (a
// pixel_attention_mask, fractional position ids bucketed onto the position grid); SmolVLM's
// processor always gives full tiles of the vision tower's image_size (the splits and the global
// image are resized to max_image_size, which is the tower's image_size), for which the patch mask
// is all ones and the position ids are 0…N−1, the only case reel implements. transformers drops
// all-zero padding images of a batch before the tower; reel takes the real images only.

// Idefics3Config configures Idefics3ForConditionalGeneration / SmolVLMForConditionalGeneration.
type Idefics3Config struct {
	Vision      VisionConfig // SigLIP tower (UseHead false)
	Text        DecoderConfig
	ImageToken  int // image_token_id
	ScaleFactor int // scale_factor of the pixel shuffle
}

// ImageTokens is image_seq_len: the connector tokens per image (tile).
func (c Idefics3Config) ImageTokens() int {
	return c.Vision.NumPatches() / (c.ScaleFactor * c.ScaleFactor)
}

// Validate checks that the patch grid can be pixel-shuffled.
func (c Idefics3Config) Validate() error {
	side := c.Vision.ImageSize / max(c.Vision.PatchSize, 1)
	if c.ScaleFactor <= 0 || side%c.ScaleFactor != 0 {
		return fmt.Errorf("scale_factor %d must be a positive divisor of the %d patches per side (image_size / patch_size)", c.ScaleFactor, side)
	}
	return nil
}

// TextLayers is the decoder cut to its first n layers (the final norm kept): how SmolVLA reads a
// SmolVLM2 backbone (LeRobot's src/lerobot/policies/smolvla/smolvlm_with_expert.py keeps
// num_vlm_layers of the text model). n ≤ 0 or beyond the decoder keeps all layers.
func (c Idefics3Config) TextLayers(n int) DecoderConfig {
	t := c.Text
	if n > 0 && n < t.Layers {
		t.Layers = n
		if len(t.LayerTypes) > n {
			t.LayerTypes = t.LayerTypes[:n]
		}
	}
	return t
}

// Idefics3TextScope is the decoder's scope (model/text_model): DecoderEmbed and Decoder read their
// variables there.
func Idefics3TextScope(scope *model.Scope) *model.Scope { return scope.At("model").In("text_model") }

// PixelShuffle is Idefics3Connector.pixel_shuffle: x [B, S, D] over a square √S×√S grid becomes
// [B, S/s², D·s²], each token the s×s block of neighbouring patches (transformers' order of views
// and permutes, so the concatenated features are in its order).
func PixelShuffle(x *Node, s int) *Node {
	d := x.Shape().Dimensions
	b, seq, dim := d[0], d[1], d[2]
	side := 0
	for side*side < seq {
		side++
	}
	if side*side != seq || side%s != 0 {
		panic(fmt.Sprintf("PixelShuffle: %d tokens are not a square grid divisible by %d", seq, s))
	}
	h, w := side, side
	x = Reshape(x, b, h, w/s, dim*s)
	x = TransposeAllAxes(x, 0, 2, 1, 3) // [B, w/s, h, D·s]
	x = Reshape(x, b, w/s, h/s, dim*s*s)
	x = TransposeAllAxes(x, 0, 2, 1, 3) // [B, h/s, w/s, D·s²]
	return Reshape(x, b, seq/(s*s), dim*s*s)
}

// Idefics3VisionFeatures is the vision tower alone (model/vision_model): last_hidden_state
// [Bi, N, Dv] of full-size tiles pixels [Bi, C, H, W].
func Idefics3VisionFeatures(scope *model.Scope, cfg Idefics3Config, pixels *Node) *Node {
	v := cfg.Vision
	v.UseHead = false
	return SiglipVisionTransformer(WithInit(scope).At("model").In("vision_model"), v, pixels).Last
}

// Idefics3Connector is the connector over the tower's output [Bi, N, Dv]: pixel shuffle, then
// modality_projection.proj (no bias): [Bi, N/s², D].
func Idefics3Connector(scope *model.Scope, cfg Idefics3Config, feats *Node) *Node {
	x := PixelShuffle(feats, cfg.ScaleFactor)
	return Linear(WithInit(scope).At("model").In("connector").In("modality_projection").In("proj"), x, cfg.Text.Hidden, false)
}

// Idefics3ImageFeatures is the vision tower and the connector: the image tokens [Bi, image_seq_len, D]
// the decoder reads in place of the placeholders.
func Idefics3ImageFeatures(scope *model.Scope, cfg Idefics3Config, pixels *Node) *Node {
	return Idefics3Connector(scope, cfg, Idefics3VisionFeatures(scope, cfg, pixels))
}

// Idefics3Embeds is the decoder input: the token embeddings of ids [B, T] (int32) with the image
// features of pixels [Bi, C, H, W] (nil: text only) scattered in at the placeholders, in order.
func Idefics3Embeds(scope *model.Scope, cfg Idefics3Config, ids, pixels *Node) *Node {
	x := DecoderEmbed(Idefics3TextScope(WithInit(scope)), cfg.Text, ids, dtypes.Float32)
	if pixels == nil {
		return x
	}
	return ScatterImageFeatures(x, ids, Idefics3ImageFeatures(scope, cfg, pixels), cfg.ImageToken)
}

// Idefics3 is the forward pass: logits [B, T, V] for ids [B, T] (int32) with image placeholders
// and pixels [Bi, C, H, W] (nil: text only), positions 0…T−1, causal.
func Idefics3(scope *model.Scope, cfg Idefics3Config, ids, pixels *Node) *Node {
	scope = WithInit(scope)
	dec := Idefics3TextScope(scope)
	x := Idefics3Embeds(scope, cfg, ids, pixels)
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	h := Decoder(dec, cfg.Text, x, Positions(ids.Graph(), b, t, 0), nil, nil)
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h)
}
