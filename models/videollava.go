package models

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// A pretrained LLaVA (llava.go: SigLIP tower, projector, Llama/Qwen2 decoder) answering about a
// video, with STTS token scoring and pruning inside its vision tower ("Unified Spatio-Temporal
// Token Scoring for Efficient Video VLMs", Zhang et al., arXiv:2603.18004; allenai/STTS
// olmo/nn/temporal_image_vit.py). Each frame goes through the tower's embeddings and its first
// ScoreAfter encoder layers alone (the pretrained per-frame computation). Then a side branch with
// new parameters (scope stts/) pools Group×Group patch groups (pruning.GroupPool) and scores each
// group against the same group of the previous frame; layer ScoreAfter, still per frame, adds the
// log-score of each key's group to its attention logits. The video's groups are then ranked
// globally and the top ones kept (frame 0 always), whole groups of patches. As in the paper's code,
// the remaining layers stay per frame at patch level: all kept patches of a video form one
// sequence whose attention mask lets a patch attend only to the kept patches of its own frame, so
// the tower computes what it would on each frame's kept patches alone, with static shapes. The kept
// patches at vision_feature_layer go through the projector and prefix the text in the decoder
// (causal throughout, as LlavaForConditionalGeneration). The pruned layers, the projector and
// the decoder see keep·T·P of the T·P patch tokens.

// VideoLlavaConfig configures VideoLlava.
type VideoLlavaConfig struct {
	Llava      LlavaConfig
	Frames     int
	ScoreAfter int // tower layers run before the scorer; layer ScoreAfter attends with its bias
	Group      int // side of the scored and pruned patch groups (the paper: 3)
}

// featureLayer is the index into the tower's hidden states (0: the embeddings, i: layer i's
// output) that the projector reads.
func (c VideoLlavaConfig) featureLayer() int {
	l := c.Llava.FeatureLayers[0]
	if l < 0 {
		l += c.Llava.Vision.Layers + 1
	}
	return l
}

// Validate checks that the LLaVA can take STTS (one error naming the field).
func (c VideoLlavaConfig) Validate() error {
	v := c.Llava.Vision
	grid := v.ImageSize / v.PatchSize
	switch {
	case v.Arch != "siglip":
		return fmt.Errorf("vision_config: STTS needs a SigLIP tower (no class token), got %s", v.Arch)
	case len(c.Llava.FeatureLayers) != 1:
		return fmt.Errorf("vision_feature_layer: STTS reads one layer, got %v", c.Llava.FeatureLayers)
	case c.Llava.SelectStrategy != "full":
		return fmt.Errorf("vision_feature_select_strategy: STTS keeps every patch token (full), got %s", c.Llava.SelectStrategy)
	case c.Group < 1 || grid%c.Group != 0:
		return fmt.Errorf("model.group: %d must divide the tower's %d×%d patch grid", c.Group, grid, grid)
	case c.ScoreAfter < 0 || c.ScoreAfter >= c.featureLayer():
		return fmt.Errorf("model.score_after: %d must be in [0, %d): the biased layer must come before vision_feature_layer %d",
			c.ScoreAfter, c.featureLayer(), c.Llava.FeatureLayers[0])
	case c.Frames < 2:
		return fmt.Errorf("model.frames: STTS scores frames against their predecessor, need ≥ 2, got %d", c.Frames)
	}
	return nil
}

// VideoLlava returns next-token logits [B, L, V] for text ids [B, L] (int32) that follow the video
// pixels [B, T, C, H, W] (normalised as the tower's processor does), and sel's auxiliary loss (nil
// if none). sel groups, scores and selects as pruning.Selector does; its Select must keep a
// fixed number of tokens per video (no packed rows).
func VideoLlava(scope *model.Scope, cfg VideoLlavaConfig, sel TokenSelector, pixels, ids *Node) (logits, aux *Node) {
	scope = WithInit(scope)
	dec := scope.At("model").In("language_model")
	txt := DecoderEmbed(dec, cfg.Llava.Text, ids, dtypes.Float32)
	v, aux := VideoLlavaFeatures(scope, cfg, sel, pixels)
	y := Concatenate([]*Node{v, txt}, 1)
	b, total := y.Shape().Dimensions[0], y.Shape().Dimensions[1]
	h := Decoder(dec, cfg.Llava.Text, y, Positions(ids.Graph(), b, total, 0), nil, nil)
	h = Slice(h, AxisRange(), AxisRangeToEnd(v.Shape().Dimensions[1]))
	return LMHead(scope.In("lm_head"), dec, cfg.Llava.Text, h), aux
}

// VideoLlavaFeatures is VideoLlava's vision side: the projected features [B, K·Group², text hidden]
// of the kept patches (per video: frame by frame, each frame's kept groups in raster order, each
// group's patches in raster order) and sel's auxiliary loss.
func VideoLlavaFeatures(scope *model.Scope, cfg VideoLlavaConfig, sel TokenSelector, pixels *Node) (feats, aux *Node) {
	scope = WithInit(scope)
	g := pixels.Graph()
	pd := pixels.Shape().Dimensions
	b, t := pd[0], pd[1]
	vc := cfg.Llava.Vision
	dim, grid, gs := vc.Hidden, vc.ImageSize/vc.PatchSize, cfg.Group
	n := grid / gs // groups per side
	m := scope.At("model")
	vm := m.In("vision_tower").In("vision_model")
	emb := vm.In("embeddings")
	x := PatchEmbedHF(emb.In("patch_embedding"), Reshape(pixels, b*t, pd[2], pd[3], pd[4]), vc.PatchSize, dim, true)
	x = Add(x, InsertAxes(EmbeddingTable(emb.In("position_embedding"), vc.NumPatches(), dim, x.DType(), g), 0)) // [B·T, P, D]
	layers := vm.In("encoder").In("layers")
	for i := range cfg.ScoreAfter {
		x = EncoderLayerHF(layers.In("%d", i), vc.EncoderConfig, x).Done()
	}

	// STTS: group, score against the previous frame, bias the next layer's keys by log(score).
	st := scope.In("stts")
	groups := sel.Group(st.In("group"), x) // [B·T, G, D]
	// Each patch's key gets its group's bias: [B·T, n, n] → [B·T, P] row-major.
	patchKeys := func(bias *Node) *Node {
		bias = Reshape(bias, b*t, n, 1, n, 1)
		return Reshape(BroadcastToDims(bias, b*t, n, gs, n, gs), b*t, grid*grid)
	}
	x, aux = ScoredLayer(st.In("score"), sel, Reshape(groups, b, t, n*n, dim), patchKeys, func() *EncoderLayerBuilder {
		return EncoderLayerHF(layers.In("%d", cfg.ScoreAfter), vc.EncoderConfig, x)
	})

	// Prune whole groups: each group's patches side by side in one row [B, T·G, g²·D], with the
	// frame index as one more channel, so that the kept rows say which frame they came from.
	x = Reshape(x, b*t, n, gs, n, gs, dim)
	x = Reshape(TransposeAllAxes(x, 0, 1, 3, 2, 4, 5), b, t, n*n, gs*gs*dim)
	frame := ConvertDType(Iota(g, shapes.Make(dtypes.Int32, b, t, n*n, 1), 1), x.DType())
	rows, mask := sel.Select(Reshape(Concatenate([]*Node{x, frame}, -1), b, t*n*n, gs*gs*dim+1))
	if mask != nil {
		panic("models.VideoLlava: the token selector packs rows; only a fixed number of tokens per video is supported")
	}
	k := rows.Shape().Dimensions[1]
	np := k * gs * gs
	x = Reshape(Slice(rows, AxisRange(), AxisRange(), AxisRange(0, gs*gs*dim)), b, np, dim)
	fr := Round(Slice(rows, AxisRange(), AxisRange(), AxisRange(gs*gs*dim, gs*gs*dim+1))) // [B, k, 1], exact
	fr = Reshape(BroadcastToDims(fr, b, k, gs*gs), b, np)
	same := Equal(InsertAxes(fr, 2), InsertAxes(fr, 1)) // [B, np, np]: a patch sees its frame's kept patches
	states := make([]*Node, vc.Layers+1)
	states[cfg.ScoreAfter+1] = x
	for i := cfg.ScoreAfter + 1; i < vc.Layers; i++ {
		x = EncoderLayerHF(layers.In("%d", i), vc.EncoderConfig, x).WithMask(same).Remat().Done() // train.remat
		states[i+1] = x
	}
	LayerNormHF(vm.In("post_layernorm"), x, vc.Eps) // a checkpoint's weights, unused by LLaVA (as transformers)
	p := m.In("multi_modal_projector")
	v := ActivationHF(cfg.Llava.ProjectorAct, Linear(p.In("linear_1"), states[cfg.featureLayer()], cfg.Llava.Text.Hidden, cfg.Llava.ProjectorBias))
	return Linear(p.In("linear_2"), v, cfg.Llava.Text.Hidden, cfg.Llava.ProjectorBias), aux
}
