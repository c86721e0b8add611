package models

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
)

// VLMConfig configures a small vision-language model: ViT → MLP projector → causal text decoder
// (the LLaVA layout, scaled down). Image tokens form a prefix that every text token can attend to;
// text tokens attend causally among themselves.
type VLMConfig struct {
	Vision     ViTConfig
	TextDim    int
	TextLayers int
	TextHeads  int
	MLPRatio   float64
	MaxTextLen int
	VocabSize  int
}

// PrefixLMMask returns the boolean [P+L, P+L] mask: query q may see key k when k is an image
// token (k < P) or an earlier/equal text position (k ≤ q).
func PrefixLMMask(g *Graph, prefix, total int) *Node {
	q := Iota(g, shapes.Make(dtypes.Int32, total, total), 0)
	k := Iota(g, shapes.Make(dtypes.Int32, total, total), 1)
	return LogicalOr(LessThan(k, Scalar(g, dtypes.Int32, prefix)), LessOrEqual(k, q))
}

// VLM returns next-token logits [B, L, V] for text tokens [B, L] (int32) given images [B, H, W, 3].
func VLM(scope *model.Scope, cfg VLMConfig, images, tokens *Node) *Node {
	return VLMTapped(scope, cfg, images, tokens, nil)
}

// VLM sites, in graph order: "vision/block_<i>" (ViT block outputs [B, P, Dv]), "projector"
// (image tokens entering the decoder [B, P, Dt]), "decoder/block_<i>/attn/heads" (per-head
// attention outputs [B, P+L, H, hd]), "decoder/block_<i>" (decoder residual stream
// [B, P+L, Dt], image tokens first) and "final" (the residual stream before ln_final).
// Their names match the variable scopes.
func VLMSites(cfg VLMConfig) []string {
	var s []string
	for i := range cfg.Vision.Layers {
		s = append(s, fmt.Sprintf("vision/block_%d", i))
	}
	s = append(s, "projector")
	for i := range cfg.TextLayers {
		s = append(s, fmt.Sprintf("decoder/block_%d/attn/heads", i), fmt.Sprintf("decoder/block_%d", i))
	}
	return append(s, "final")
}

// VLMTapped is VLM with a Tap at each of VLMSites.
func VLMTapped(scope *model.Scope, cfg VLMConfig, images, tokens *Node, tap Tap) *Node {
	scope = WithInit(scope)
	g := images.Graph()
	vis := ViTTapped(scope.In("vision"), cfg.Vision, images, tap, "vision") // [B, P, Dv]
	// Two-layer MLP projector into the decoder's width.
	proj := scope.In("projector")
	p := Linear(proj.In("fc1"), vis, cfg.TextDim, true)
	p = activation.Apply(activation.TypeGelu, p)
	p = Linear(proj.In("fc2"), p, cfg.TextDim, true)
	p = tap.At("projector", p)

	txt := Embedding(scope.In("tok_embed"), tokens, cfg.VocabSize, cfg.TextDim, images.DType())
	x := Concatenate([]*Node{p, txt}, 1) // [B, P+L, Dt]
	x = PositionEmbedding(scope.In("dec_pos_embed"), x)
	prefix := p.Shape().Dimensions[1]
	total := x.Shape().Dimensions[1]
	mask := PrefixLMMask(g, prefix, total)
	dec := scope.In("decoder")
	for i := range cfg.TextLayers {
		x = EncoderLayer(dec.In("block_%d", i), x, cfg.TextHeads).WithMLPRatio(cfg.MLPRatio).WithMask(mask).
			WithTap(tap, fmt.Sprintf("decoder/block_%d", i)).Remat().Done()
	}
	x = tap.At("final", x)
	x = LayerNorm(scope.In("ln_final"), x)
	x = Slice(x, AxisRange(), AxisRangeToEnd(prefix)) // text positions only: [B, L, Dt]
	return Linear(scope.In("lm_head"), x, cfg.VocabSize, false)
}
