package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
)

// VideoVLMConfig configures a video VLM: a per-frame ViT whose patch tokens are pooled into
// group tokens and pruned part-way (see TokenSelector), a video-wide encoder over the kept
// tokens, an MLP projector and a causal text decoder (the foundation's VLM, with a video prefix).
type VideoVLMConfig struct {
	Vision     ViTConfig // per-frame patching; Layers counts every encoder block
	Frames     int
	ScoreAfter int // per-frame blocks before grouping/scoring (paper: 3 of 27, STTSPaperScoreAfter)
	// Motion adds a learned projection of each group token's change since the previous frame,
	// x_{t,i} − x_{t−1,i} (zero in frame 0), to the token before the video-wide blocks.
	Motion     bool
	TextDim    int
	TextLayers int
	TextHeads  int
	MLPRatio   float64
	MaxTextLen int
	VocabSize  int
}

// TokenSelector is the token-reduction stage of a video VLM (pruning.Selector implements
// STTS, random pruning and no pruning).
type TokenSelector interface {
	// Group pools per-frame patch tokens [B·T, P, D] into group tokens [B·T, G, D].
	Group(scope *model.Scope, x *Node) *Node
	// Score sees the group tokens [B, T, G, D]; it returns the key-side attention bias of the next
	// (video-wide) block [B, T·G] (nil for none) and an auxiliary loss (nil for none).
	Score(scope *model.Scope, x *Node) (bias, aux *Node)
	// Select keeps a subset of the tokens x [B, T·G, D] after that block and lays them out in
	// rows [R, L, D] for the remaining blocks, with their attention mask [R, L, L] (nil: every
	// row is one video and attends fully, e.g. [B, k, D] for a fixed keep count).
	Select(x *Node) (rows, mask *Node)
	// Unpack brings the rows [R, L, D] back to per-video tokens [B, K, D] with their valid flags
	// [B, K] (nil: all valid).
	Unpack(rows *Node) (tokens, valid *Node)
}

// VideoVLM returns next-token logits [B, L, V] for text tokens [B, L] given video [B, T, S, S, 3],
// and the selector's auxiliary loss (nil if none).
//
// Blocks 0…ScoreAfter−1 run per frame on patch tokens; the selector groups and scores; block
// ScoreAfter runs video-wide with the score bias; the selector prunes; the remaining blocks run
// video-wide on the kept tokens, which then form the decoder's prefix.
func VideoVLM(scope *model.Scope, cfg VideoVLMConfig, sel TokenSelector, video, tokens *Node) (logits, aux *Node) {
	scope = WithInit(scope)
	g := video.Graph()
	x, valid, aux := VideoVisionTokens(scope, cfg, sel, video)

	proj := scope.In("projector")
	p := activation.Apply(activation.TypeGelu, Linear(proj.In("fc1"), x, cfg.TextDim, true))
	p = Linear(proj.In("fc2"), p, cfg.TextDim, true)
	txt := Embedding(scope.In("tok_embed"), tokens, cfg.VocabSize, cfg.TextDim, video.DType())
	// Video tokens carry their own space-time positions; learned decoder positions are for the
	// text only, so the prefix length may change with pruning.
	txt = PositionEmbedding(scope.In("dec_pos_embed"), txt)
	y := Concatenate([]*Node{p, txt}, 1)
	prefix, total := p.Shape().Dimensions[1], y.Shape().Dimensions[1]
	mask := PrefixLMMask(g, prefix, total)
	if valid != nil { // no query attends to a padding video token
		b := valid.Shape().Dimensions[0]
		keys := Concatenate([]*Node{valid, Ones(g, shapes.Make(dtypes.Bool, b, total-prefix))}, 1) // [B, total]
		mask = LogicalAnd(BroadcastToDims(InsertAxes(mask, 0), b, total, total),
			BroadcastToDims(InsertAxes(keys, 1), b, total, total))
	}
	dec := scope.In("decoder")
	for i := range cfg.TextLayers {
		y = Block(dec.In("block_%d", i), y, cfg.TextHeads, cfg.MLPRatio, mask)
	}
	y = LayerNorm(scope.In("ln_final"), y)
	y = Slice(y, AxisRange(), AxisRangeToEnd(prefix))
	return Linear(scope.In("lm_head"), y, cfg.VocabSize, false), aux
}

// VideoVisionTokens is the vision side of VideoVLM: the kept, encoded video tokens [B, K, D]
// (after the final LayerNorm), their valid flags [B, K] (nil: all valid) and the selector's
// auxiliary loss. scope must already carry the model's initialiser (WithInit).
func VideoVisionTokens(scope *model.Scope, cfg VideoVLMConfig, sel TokenSelector, video *Node) (tokens, valid, aux *Node) {
	g := video.Graph()
	d := video.Shape().Dimensions
	b, t, s := d[0], d[1], d[2]
	vc := cfg.Vision
	if cfg.ScoreAfter < 0 || cfg.ScoreAfter >= vc.Layers {
		panic(fmt.Sprintf("models.VideoVLM: score_after %d must be in [0, vision_layers=%d)", cfg.ScoreAfter, vc.Layers))
	}
	vis := scope.In("vision")
	x := PatchEmbed(vis, vc, Reshape(video, b*t, s, s, 3)) // [B·T, P, D]
	for i := range cfg.ScoreAfter {
		x = Block(vis.In("block_%d", i), x, vc.Heads, vc.MLPRatio, nil)
	}
	x = sel.Group(vis.In("group"), x) // [B·T, G, D]
	gN := x.Shape().Dimensions[1]
	x = Reshape(x, b, t, gN, vc.Dim)
	var motion *Node
	if cfg.Motion { // content change only: taken before the time embedding
		diff := Sub(Slice(x, AxisRange(), AxisRangeToEnd(1)), Slice(x, AxisRange(), AxisRange(0, t-1)))
		diff = Concatenate([]*Node{ZerosLike(Slice(x, AxisRange(), AxisRange(0, 1))), diff}, 1)
		motion = Linear(vis.In("motion"), diff, vc.Dim, false)
	}
	tpos := vis.VariableWithShape("time_embed", shapes.Make(x.DType(), t, 1, vc.Dim)).NodeValue(g)
	x = Add(x, InsertAxes(tpos, 0))
	if motion != nil {
		x = Add(x, motion)
	}
	x, aux = ScoredLayer(vis.In("score"), sel, x, nil, func() *EncoderLayerBuilder {
		return EncoderLayer(vis.In("block_%d", cfg.ScoreAfter), Reshape(x, b, t*gN, vc.Dim), vc.Heads).WithMLPRatio(vc.MLPRatio)
	})
	x, mask := sel.Select(x) // [R, L, D]: e.g. [B, k, D], or packed rows
	for i := cfg.ScoreAfter + 1; i < vc.Layers; i++ {
		x = Block(vis.In("block_%d", i), x, vc.Heads, vc.MLPRatio, mask)
	}
	tokens, valid = sel.Unpack(LayerNorm(vis.In("ln_final"), x))
	return tokens, valid, aux

}

// ScoredLayer is the scoring step of STTS ("Unified Spatio-Temporal Token Scoring for Efficient
// Video VLMs", arXiv:2603.18004), the one place a video VLM wires the selector's score into
// attention: sel scores the group tokens groups [B, T, G, D] (in scope), and the encoder layer
// right after the scorer (built by layer, after scoring) runs with the returned bias, log(score),
// added to its attention logits on the keys (EncoderLayerBuilder.WithKeyBias). keys lays the bias
// [B, T·G] out over the layer's keys where they are not the group tokens themselves (nil: they
// are). It returns the layer's output and sel's auxiliary loss (nil if none). A selector without
// scores (no pruning, random pruning) returns no bias, and the layer runs unbiased.
func ScoredLayer(scope *model.Scope, sel TokenSelector, groups *Node, keys func(bias *Node) *Node, layer func() *EncoderLayerBuilder) (x, aux *Node) {
	bias, aux := sel.Score(scope, groups)
	if bias != nil && keys != nil {
		bias = keys(bias)
	}
	return layer().WithKeyBias(bias).Done(), aux
}

// STTSPaperScoreAfter is the number of per-frame ViT blocks before scoring that puts the scorer
// of a ViT with the given number of blocks at the paper's relative depth: after block 3 of 27
// ("Unified Spatio-Temporal Token Scoring for Efficient Video VLMs", arXiv:2603.18004), rounded.
func STTSPaperScoreAfter(blocks int) int {
	return min(blocks-1, max(0, int(math.Round(3*float64(blocks)/27))))
}
