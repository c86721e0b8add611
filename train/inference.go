package train

import (
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// Inference is a compiled inference graph over a store's variables: the training flag off, the
// recipe's graph options (GraphOptions: train.precision, train.lora), run on the backend's first
// device. Every evaluation, closed-loop, serving and analysis graph in reel is built with
// NewInference, so a policy trained in bf16 is evaluated, rolled out and served in bf16 alike.
// It is safe for concurrent use.
type Inference struct {
	exec *model.Exec
	mu   sync.Mutex
	last flopCount
}

// NewInference compiles fn (one graph per distinct input shape, on first use) in inference mode
// with the graph options of the recipe's train section c.
func NewInference(backend compute.Backend, store *model.Store, c recipes.TrainConfig, fn func(scope *model.Scope, in []*graph.Node) []*graph.Node) (*Inference, error) {
	opts := GraphOptions(c)
	opts.Remat = false // no backward pass
	e, err := model.NewExecCanonical(backend, store, counted(func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		scope.SetTraining(g, false)
		models.Configure(g, opts)
		return fn(scope, in)
	}), -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	return &Inference{exec: e}, nil
}

// Call runs the graph on inputs, turning GoMLX panics into one-line errors.
func (e *Inference) Call(inputs ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	out, flops, err := callFLOPs(e.exec, inputs)
	if err == nil {
		e.mu.Lock()
		e.last = flops
		e.mu.Unlock()
	}
	return out, err
}

// FLOPs are the matrix-product FLOPs of the graph the last Call ran, and how many of them ran in
// a half-precision dtype (bf16/f16).
func (e *Inference) FLOPs() (total, half float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last.total, e.last.half
}

// Finalize releases the compiled graphs.
func (e *Inference) Finalize() { e.exec.Finalize() }
