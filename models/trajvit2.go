package models

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// VideoCLIPConfig sizes the two towers of a video-text contrastive model (TrajViT2 with
// trajectory tokens, or the ViViT baseline with tubelets): a transformer video encoder over a
// token set plus a CLS token, and a small bidirectional text encoder over caption tokens.
type VideoCLIPConfig struct {
	VideoDim, VideoLayers, VideoHeads int
	TextDim, TextLayers, TextHeads    int
	MLPRatio                          float64
	MaxTextLen, VocabSize             int
	EmbedDim                          int // shared embedding space
}

// VideoEncoder embeds a token set tokens [B, N, Din] with validity valid [B, N] (bool; nil = all
// valid) into [B, EmbedDim]: Linear → Dv, a learned CLS token in front, pre-norm blocks in which
// padded tokens are never attended to, final LayerNorm, the CLS output projected.
func VideoEncoder(scope *model.Scope, cfg VideoCLIPConfig, tokens, valid *Node) *Node {
	scope = WithInit(scope)
	g := tokens.Graph()
	b, n := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
	x := Linear(scope.In("in"), tokens, cfg.VideoDim, true)
	cls := scope.VariableWithShape("cls", shapes.Make(x.DType(), 1, 1, cfg.VideoDim)).NodeValue(g)
	x = Concatenate([]*Node{BroadcastToDims(cls, b, 1, cfg.VideoDim), x}, 1)
	if valid == nil {
		valid = Ones(g, shapes.Make(dtypes.Bool, b, n))
	}
	valid = Concatenate([]*Node{Ones(g, shapes.Make(dtypes.Bool, b, 1)), valid}, 1)
	mask := KeyMask(valid)
	for i := range cfg.VideoLayers {
		x = Block(scope.In("block_%d", i), x, cfg.VideoHeads, cfg.MLPRatio, mask)
	}
	x = LayerNorm(scope.In("ln_final"), x)
	clsOut := Squeeze(Slice(x, AxisRange(), AxisElem(0)), 1)
	return Linear(scope.In("proj"), clsOut, cfg.EmbedDim, false)
}

// TextEncoder embeds caption tokens [B, L] (int32: BOS words… EOS PAD…; PAD = 0) into
// [B, EmbedDim]: token + position embeddings, bidirectional pre-norm blocks that ignore padding,
// final LayerNorm, the BOS position projected.
func TextEncoder(scope *model.Scope, cfg VideoCLIPConfig, tokens *Node) *Node {
	scope = WithInit(scope)
	x := Embedding(scope.In("tok_embed"), tokens, cfg.VocabSize, cfg.TextDim, dtypes.Float32)
	x = PositionEmbedding(scope.In("pos_embed"), x)
	mask := KeyMask(NotEqual(tokens, ScalarZero(tokens.Graph(), tokens.DType())))
	for i := range cfg.TextLayers {
		x = Block(scope.In("block_%d", i), x, cfg.TextHeads, cfg.MLPRatio, mask)
	}
	x = LayerNorm(scope.In("ln_final"), x)
	bos := Squeeze(Slice(x, AxisRange(), AxisElem(0)), 1)
	return Linear(scope.In("proj"), bos, cfg.EmbedDim, false)
}
