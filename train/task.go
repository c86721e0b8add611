// Package train is reel's generic training loop: optimizer setup (AdamW, warmup + cosine,
// global-norm clipping, gradient accumulation), prefetched data, metrics, plots, checkpoints,
// exact resume, NaN and signal handling. Models plug in through the small Task interface.
package train

import (
	"sort"
	"strconv"

	"github.com/gomlx/compute"
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

// BatchPreparer is an optional Task extension for training inputs that depend on the current
// weights, such as TrajTok's Hungarian matching of predicted to ground-truth masks, which is
// solved exactly on the host between two graph executions. For every micro-batch the trainer runs
// PrepareGraph on it with the current weights, then trains on Prepare(batch, outputs).
type BatchPreparer interface {
	PrepareGraph(scope *model.Scope, inputs []*graph.Node) []*graph.Node
	Prepare(batch, outputs []*tensors.Tensor) ([]*tensors.Tensor, error)
}

// Initializer is an optional Task extension for weights the task brings itself, such as a
// pretrained Hugging Face checkpoint: the trainer calls InitVariables after the seeded
// initialisation of a fresh run (before train.init_from, not on --resume).
type Initializer interface {
	InitVariables(backend compute.Backend, store *model.Store) (loaded int, source string, err error)
}

// CheckpointFiler is an optional Task extension: files (name → content) written into every
// checkpoint beside the recipe, such as a policy's spec (cameras, dimensions, chunking) that
// serving and evaluation read instead of rebuilding it from the training data.
type CheckpointFiler interface {
	CheckpointFiles() (map[string][]byte, error)
}

// Group is one row of a grouped evaluation breakdown, e.g. the examples whose true count is 3.
type Group struct {
	Key     string             `json:"key"`
	N       int                `json:"n"`
	Metrics map[string]float64 `json:"metrics"`
}

// Grouper is an optional EvalData extension: breakdowns by a property of the examples (for
// example accuracy per true count), reported by `reel eval` in eval.json and plots but not
// logged at every training evaluation.
type Grouper interface {
	// Groups reduces the EvalGraph outputs (as for Metrics) to named breakdowns.
	Groups(outputs [][]*tensors.Tensor) map[string][]Group
}

// MergeGroups joins breakdowns of the same kind (e.g. per-count results of two evaluation sets):
// rows with equal keys are combined, their metrics averaged weighted by N. Numeric keys are
// sorted numerically, others after them alphabetically.
func MergeGroups(lists ...[]Group) []Group {
	byKey := map[string]*Group{}
	var keys []string
	for _, l := range lists {
		for _, g := range l {
			m := byKey[g.Key]
			if m == nil {
				m = &Group{Key: g.Key, Metrics: map[string]float64{}}
				byKey[g.Key] = m
				keys = append(keys, g.Key)
			}
			for k, v := range g.Metrics {
				m.Metrics[k] = (m.Metrics[k]*float64(m.N) + v*float64(g.N)) / float64(max(1, m.N+g.N))
			}
			m.N += g.N
		}
	}
	sort.Slice(keys, func(a, b int) bool {
		x, ex := strconv.ParseFloat(keys[a], 64)
		y, ey := strconv.ParseFloat(keys[b], 64)
		switch {
		case ex == nil && ey == nil:
			return x < y
		case ex == nil || ey == nil:
			return ex == nil
		}
		return keys[a] < keys[b]
	})
	out := make([]Group, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}
