package tasks

import (
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/tokenizers"
)

// VideoClassifier is the video reference model of `reel bench video`: the ViViT baseline's
// tubelet tokenizer and the TrajViT2/ViViT video encoder tower (models.VideoEncoder: input
// projection, CLS token, masked pre-norm blocks, final LayerNorm, CLS projected to the classes),
// cross-entropy on fixed random clips and labels. The PyTorch twin is bench/video_torch.py.
type VideoClassifier struct {
	fixedBatch
	Tub            tokenizers.TubeletConfig
	Enc            models.VideoCLIPConfig // video tower only; EmbedDim = classes
	Batch, Classes int
}

// NewVideoClassifier builds the benchmark task with one fixed random batch of clips
// [B, Frames, S, S, 3]; the encoder has dim Tub.Dim, `layers` blocks of `heads` heads.
func NewVideoClassifier(tub tokenizers.TubeletConfig, layers, heads, batch, classes int) *VideoClassifier {
	rng := rand.New(rand.NewPCG(3, 4))
	vid := make([]float32, batch*tub.Frames*tub.ImageSize*tub.ImageSize*3)
	for i := range vid {
		vid[i] = rng.Float32()
	}
	lab := make([]int32, batch)
	for i := range lab {
		lab[i] = int32(rng.IntN(classes))
	}
	enc := models.VideoCLIPConfig{VideoDim: tub.Dim, VideoLayers: layers, VideoHeads: heads, MLPRatio: 4, EmbedDim: classes}
	return &VideoClassifier{Tub: tub, Enc: enc, Batch: batch, Classes: classes, fixedBatch: fixedBatch{[]*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(vid, batch, tub.Frames, tub.ImageSize, tub.ImageSize, 3),
		tensors.FromFlatDataAndDimensions(lab, batch)}}}
}

// Loss implements train.Task.
func (t *VideoClassifier) Loss(scope *model.Scope, in []*Node) *Node {
	tokens := tokenizers.Tubelets(scope.In("tubelets"), t.Tub, in[0])
	logits := models.VideoEncoder(scope.In("video"), t.Enc, tokens, nil) // [B, classes]
	ones := OnesLike(ConvertDType(in[1], dtypes.Float32))
	return losses.MaskedCrossEntropy(logits, in[1], ones)
}

// Params is the number of trainable parameters (for the table).
func (t *VideoClassifier) Params() int {
	d, n := t.Tub.Dim, t.Tub.NumTokens()
	in := t.Tub.Tubelet * t.Tub.Patch * t.Tub.Patch * 3
	h := 4 * d
	block := 4*d + (d*3*d + 3*d) + (d*d + d) + (d*h + h) + (h*d + d)
	return (in*d + d) + n*d + (d*d + d) + d + t.Enc.VideoLayers*block + 2*d + d*t.Classes
}
