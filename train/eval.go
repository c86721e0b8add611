package train

import (
	"fmt"

	"github.com/gomlx/compute"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/errline"
)

// EvaluateCheckpoint loads the checkpoint in dir and evaluates task on it, its products in the
// given precision (the recipe's train.precision).
func EvaluateCheckpoint(backend compute.Backend, task Task, dir, precision string) (rep Report, st checkpoints.State, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("evaluating %s: %s", dir, errline.First(r))
		}
	}()
	store, err := NewStore(0)
	if err != nil {
		return rep, st, err
	}
	if st, err = checkpoints.Load(dir, store); err != nil {
		return rep, st, err
	}
	loaded := checkpoints.Paths(store)
	e, err := NewEvalExec(backend, store, task, precision)
	if err != nil {
		return rep, st, err
	}
	defer e.Finalize()
	rep, err = EvaluateReport(e, task)
	if err != nil {
		return rep, st, fmt.Errorf("evaluating %s: %v (does the recipe still match the checkpoint's model?)", dir, err)
	}
	return rep, st, checkpoints.CheckNoNewVariables(dir, store, loaded)
}
