package train

import (
	"fmt"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/recipes"
)

// StepTime measures a task's training step: it initialises the model, runs warm optimizer steps
// (which include compilation) and returns the mean wall time of the next `steps` steps on
// micro-batch 0 (data generation excluded: only the graph executions, including a
// BatchPreparer's).
func StepTime(task Task, r *recipes.Recipe, backend compute.Backend, warm, steps int) (seconds float64, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("benchmark failed: %s", panicLine(rec))
		}
	}()
	t := &Trainer{opts: Options{Recipe: r, Backend: backend}, task: task, cfg: r.Train}
	if t.store, err = NewStore(r.Train.Seed); err != nil {
		return 0, err
	}
	if err := t.buildExecs(); err != nil {
		return 0, err
	}
	if err := t.warmUp(); err != nil {
		return 0, err
	}
	batch, err := task.MicroBatch(0)
	if err != nil {
		return 0, err
	}
	lr := tensors.FromScalar(float32(r.Train.LR))
	step := func() error {
		in, err := prepare(t.prepExec, task, batch)
		if err != nil {
			return err
		}
		out, err := call(t.applyExec, append([]*tensors.Tensor{lr}, in...))
		if err != nil {
			return err
		}
		finalize(out)
		return nil
	}
	for range warm {
		if err := step(); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	for range steps {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds() / float64(max(1, steps)), nil
}
