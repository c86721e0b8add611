package bench

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
	"github.com/reelml/reel/train"
	"github.com/reelml/reel/videotok"
)

// VideoClassifier is the video reference model of `reel bench video`: the ViViT baseline's
// tubelet tokenizer and the TrajViT2/ViViT video encoder tower (models.VideoEncoder: input
// projection, CLS token, masked pre-norm blocks, final LayerNorm, CLS projected to the classes),
// cross-entropy on fixed random clips and labels. The PyTorch twin is bench/video_torch.py.
type VideoClassifier struct {
	fixedBatch
	Tub            videotok.TubeletConfig
	Enc            models.VideoCLIPConfig // video tower only; EmbedDim = classes
	Batch, Classes int
}

// NewVideoClassifier builds the benchmark task with one fixed random batch of clips
// [B, Frames, S, S, 3]; the encoder has dim Tub.Dim, `layers` blocks of `heads` heads.
func NewVideoClassifier(tub videotok.TubeletConfig, layers, heads, batch, classes int) *VideoClassifier {
	enc := models.VideoCLIPConfig{VideoDim: tub.Dim, VideoLayers: layers, VideoHeads: heads, MLPRatio: 4, EmbedDim: classes}
	return &VideoClassifier{Tub: tub, Enc: enc, Batch: batch, Classes: classes,
		fixedBatch: randomBatch(3, classes, batch, tub.Frames, tub.ImageSize, tub.ImageSize, 3)}
}

// Loss implements train.Task.
func (t *VideoClassifier) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[ClassifierBatch](in)
	tokens := videotok.Tubelets(scope.In("tubelets"), t.Tub, b.Inputs)
	logits := models.VideoEncoder(scope.In("video"), t.Enc, tokens, nil) // [B, classes]
	return b.loss(logits)
}

// Params is the number of trainable parameters (for the table).
func (t *VideoClassifier) Params() int {
	d, n := t.Tub.Dim, t.Tub.NumTokens()
	in := t.Tub.Tubelet * t.Tub.Patch * t.Tub.Patch * 3
	h := 4 * d
	block := 4*d + (d*3*d + 3*d) + (d*d + d) + (d*h + h) + (h*d + d)
	return (in*d + d) + n*d + (d*d + d) + d + t.Enc.VideoLayers*block + 2*d + d*t.Classes
}

// STTSClassifier is the STTS reference model of `reel bench video --arch stts`: the video VLM's
// vision side (models.VideoVisionTokens: per-frame ViT blocks, 3×3 attention pooling into group
// tokens, time embedding, then with pruning "stts" the scorer, the score-biased video-wide block
// and top-k pruning, and the remaining video-wide blocks on the kept tokens), mean-pooled into a
// linear classifier; cross-entropy plus 0.5 × the STTS auxiliary loss on fixed random clips. The
// PyTorch twin is bench/stts_torch.py.
type STTSClassifier struct {
	fixedBatch
	Cfg     models.VideoVLMConfig
	Sel     pruning.Selector // Mode none or stts
	Classes int
}

// NewSTTSClassifier builds the benchmark task with one fixed random batch of clips.
func NewSTTSClassifier(cfg models.VideoVLMConfig, sel pruning.Selector, batch, classes int) *STTSClassifier {
	s := cfg.Vision.ImageSize
	return &STTSClassifier{Cfg: cfg, Sel: sel, Classes: classes, fixedBatch: randomBatch(5, classes, batch, cfg.Frames, s, s, 3)}
}

// Loss implements train.Task.
func (t *STTSClassifier) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[ClassifierBatch](in)
	scope = models.WithInit(scope)
	sel := t.Sel // a fresh selector per graph (it carries the graph's scores)
	tokens, _, aux := models.VideoVisionTokens(scope, t.Cfg, sel.TokenSelector(), b.Inputs)
	logits := models.Linear(scope.In("head"), ReduceMean(tokens, 1), t.Classes, true)
	loss := b.loss(logits)
	if aux != nil {
		loss = Add(loss, MulScalar(aux, 0.5))
	}
	return loss
}

// Tokens is the number of group tokens per clip (before pruning).
func (t *STTSClassifier) Tokens() int { return t.Cfg.Frames * t.Sel.GroupTokens() }

// TrajViTClassifier is the TrajViT2 reference model of `reel bench video --arch trajvit2`: the
// TrajTok tokenizer (conv backbone, Perceiver grouping over the detached features, soft masks,
// mask-weighted tokens with motion descriptors, active flags) and the video encoder tower over the
// active tokens, as a classifier trained with cross-entropy (without TrajViT2's mask losses, whose
// Hungarian matching runs on the host) on fixed random clips. The PyTorch twin is
// bench/trajvit_torch.py.
type TrajViTClassifier struct {
	fixedBatch
	Tok videotok.TrajTokConfig
	Enc models.VideoCLIPConfig // video tower only; EmbedDim = classes
}

// NewTrajViTClassifier builds the benchmark task with one fixed random batch of clips; the
// encoder has `layers` blocks of width dim, and tokenizer and encoder use `heads` heads.
func NewTrajViTClassifier(tok videotok.TrajTokConfig, dim, layers, batch, classes int) *TrajViTClassifier {
	s := tok.ImageSize
	enc := models.VideoCLIPConfig{VideoDim: dim, VideoLayers: layers, VideoHeads: tok.Heads, MLPRatio: 4, EmbedDim: classes}
	return &TrajViTClassifier{Tok: tok, Enc: enc, fixedBatch: randomBatch(7, classes, batch, tok.Frames, s, s, 3)}
}

// Loss implements train.Task.
func (t *TrajViTClassifier) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[ClassifierBatch](in)
	out := videotok.TrajTok(scope.In("trajtok"), t.Tok, b.Inputs)
	logits := models.VideoEncoder(scope.In("video"), t.Enc, out.Tokens, out.Active)
	return b.loss(logits)
}
