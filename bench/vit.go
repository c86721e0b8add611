package bench

import (
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/train"
)

// ViTClassifier is the reference model of `reel bench vit`: models.ViT, mean-pooled, a linear
// head, cross-entropy on fixed random images and labels (the PyTorch twin is bench/vit_torch.py).
type ViTClassifier struct {
	fixedBatch
	Cfg            models.ViTConfig
	Batch, Classes int
}

// NewViTClassifier builds the benchmark task with one fixed random batch.
func NewViTClassifier(cfg models.ViTConfig, batch, classes int) *ViTClassifier {
	return &ViTClassifier{Cfg: cfg, Batch: batch, Classes: classes,
		fixedBatch: randomBatch(1, classes, batch, cfg.ImageSize, cfg.ImageSize, 3)}
}

// fixedBatch is the data side of the benchmark tasks: one fixed batch, trained on at every step,
// and no evaluation sets.
type fixedBatch struct{ batch []*tensors.Tensor }

// ClassifierBatch is the graph side of a benchmark task's fixed batch (randomBatch), bound once
// from the graph's inputs by train.Bind.
type ClassifierBatch struct {
	Inputs *Node // [B, ...] float32 in [0, 1): images or clips
	Labels *Node // [B] int32 classes
}

// loss is the mean cross-entropy of logits [B, classes] against the batch's labels.
func (b ClassifierBatch) loss(logits *Node) *Node {
	return losses.MaskedCrossEntropy(logits, b.Labels, OnesLike(ConvertDType(b.Labels, dtypes.Float32)))
}

// randomBatch is a fixed batch of uniform [0, 1) inputs of the given dimensions (the first is the
// batch size) and labels in [0, classes), drawn from a PCG stream seeded by (seed, seed+1).
func randomBatch(seed uint64, classes int, dims ...int) fixedBatch {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	n := 1
	for _, d := range dims {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()
	}
	lab := make([]int32, dims[0])
	for i := range lab {
		lab[i] = int32(rng.IntN(classes))
	}
	return fixedBatch{[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, dims...), tensors.FromFlatDataAndDimensions(lab, dims[0])}}
}

func (f fixedBatch) MicroBatch(int64) ([]*tensors.Tensor, error) { return f.batch, nil }
func (f fixedBatch) MicroBatchSize() int                         { return f.batch[0].Shape().Dimensions[0] }
func (fixedBatch) EvalSets() []string                            { return nil }
func (fixedBatch) EvalSet(string) (train.EvalData, error)        { return nil, nil }
func (fixedBatch) EvalGraph(*model.Scope, []*Node) []*Node       { return nil }

// Loss implements train.Task.
func (t *ViTClassifier) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[ClassifierBatch](in)
	scope = models.WithInit(scope)
	x := ReduceMean(models.ViT(scope.In("vit"), t.Cfg, b.Inputs), 1)
	logits := models.Linear(scope.In("head"), x, t.Classes, true) // [B, C]
	return b.loss(logits)
}

// Params is the number of trainable parameters (for the table).
func (t *ViTClassifier) Params() int {
	c := t.Cfg
	d, p := c.Dim, c.PatchSize
	n := (c.ImageSize / p) * (c.ImageSize / p)
	h := int(float64(d) * c.MLPRatio)
	block := 4*d + (d*3*d + 3*d) + (d*d + d) + (d*h + h) + (h*d + d)
	return (p*p*3*d + d) + n*d + c.Layers*block + 2*d + (d*t.Classes + t.Classes)
}
