// Package train is reel's generic training loop: optimizer setup (AdamW, warmup + cosine,
// global-norm clipping, gradient accumulation), prefetched data, metrics, plots, checkpoints,
// exact resume, NaN and signal handling. Models plug in through the small Task interface.
package train

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Task is what a recipe trains: data, a loss graph and evaluation.
type Task interface {
	// MicroBatch returns training micro-batch number i. It must be a pure function of the recipe
	// and i: that is what makes resuming exact and lets batches be generated ahead, in parallel.
	MicroBatch(i int64) ([]*tensors.Tensor, error)
	// MicroBatchSize is the number of examples in one micro-batch.
	MicroBatchSize() int
	// Loss builds the scalar training loss from a micro-batch's inputs.
	Loss(scope *model.Scope, inputs []*graph.Node) *graph.Node
	// EvalSets names the fixed evaluation sets, in report order.
	EvalSets() []string
	// EvalSet returns the (deterministic) data of one evaluation set.
	EvalSet(name string) (EvalData, error)
	// EvalGraph builds per-example outputs for an evaluation batch; EvalData.Metrics reduces them.
	EvalGraph(scope *model.Scope, inputs []*graph.Node) []*graph.Node
}

// EvalData is one evaluation set.
type EvalData interface {
	NumBatches() int
	Batch(i int) []*tensors.Tensor
	// Metrics reduces the EvalGraph outputs of every batch (outputs[batch][output]) to named values.
	Metrics(outputs [][]*tensors.Tensor) map[string]float64
}
