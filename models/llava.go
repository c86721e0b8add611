package models

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// LLaVA (Liu et al., "Visual Instruction Tuning", arXiv:2304.08485; "Improved Baselines with
// Visual Instruction Tuning", arXiv:2310.03744) as huggingface/transformers
// src/transformers/models/llava/modeling_llava.py implements LlavaForConditionalGeneration: a CLIP
// or SigLIP vision tower read at vision_feature_layer (before any final norm), its class token
// dropped for the "default" select strategy, a two-layer GELU projector (linear_1, linear_2) and a
// Llama or Qwen2 decoder over the prompt with the image placeholders replaced by the projected
// image tokens, causal throughout. Scopes (transformers 5.x names): model/vision_tower/vision_model,
// model/multi_modal_projector/linear_{1,2}, model/language_model, lm_head.

// LlavaConfig configures LlavaForConditionalGeneration.
type LlavaConfig struct {
	Vision         VisionConfig
	Text           DecoderConfig
	ImageToken     int    // image_token_index
	FeatureLayers  []int  // vision_feature_layer (one or several, concatenated; negative from the end)
	SelectStrategy string // vision_feature_select_strategy: "default" (drop the first token) or "full"
	ProjectorAct   string // projector_hidden_act
	ProjectorBias  bool   // multimodal_projector_bias
}

// ImageTokens is the number of image tokens per image the projector produces.
func (c LlavaConfig) ImageTokens() int {
	n := c.Vision.Tokens()
	if c.SelectStrategy == "default" {
		n--
	}
	return n
}

// LlavaImageFeatures is get_image_features: [B, N, D] projected image tokens.
func LlavaImageFeatures(scope *model.Scope, cfg LlavaConfig, pixels *Node) *Node {
	m := scope.At("model")
	out := VisionTower(m.In("vision_tower").In("vision_model"), cfg.Vision, pixels)
	var sel []*Node
	for _, l := range cfg.FeatureLayers {
		if l < 0 {
			l += len(out.HiddenStates)
		}
		h := out.HiddenStates[l]
		if cfg.SelectStrategy == "default" {
			h = Slice(h, AxisRange(), AxisRangeToEnd(1), AxisRange())
		}
		sel = append(sel, h)
	}
	x := sel[0]
	if len(sel) > 1 {
		x = Concatenate(sel, -1)
	}
	p := m.In("multi_modal_projector")
	x = ActivationHF(cfg.ProjectorAct, Linear(p.In("linear_1"), x, cfg.Text.Hidden, cfg.ProjectorBias))
	return Linear(p.In("linear_2"), x, cfg.Text.Hidden, cfg.ProjectorBias)
}

// LlavaEmbeds is the decoder input: token embeddings with the image features scattered in.
func LlavaEmbeds(scope *model.Scope, cfg LlavaConfig, ids, pixels *Node) *Node {
	x := DecoderEmbed(scope.At("model").In("language_model"), cfg.Text, ids, dtypes.Float32)
	if pixels == nil {
		return x
	}
	return ScatterImageFeatures(x, ids, LlavaImageFeatures(scope, cfg, pixels), cfg.ImageToken)
}

// Llava is the forward pass: logits [B, T, V] for ids [B, T] (int32) with image placeholders and
// pixels [B, C, H, W] (nil: text only).
func Llava(scope *model.Scope, cfg LlavaConfig, ids, pixels *Node) *Node {
	scope = WithInit(scope)
	dec := scope.At("model").In("language_model")
	x := LlavaEmbeds(scope, cfg, ids, pixels)
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	h := Decoder(dec, cfg.Text, x, Positions(ids.Graph(), b, t, 0), nil, nil)
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h)
}
