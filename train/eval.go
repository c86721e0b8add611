package train

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/recipes"
)

// EvaluateCheckpoint loads the checkpoint in dir and evaluates task on it with the graph options
// of the recipe's train section c (precision, LoRA); with ema, on the moving average of its
// weights (train.ema).
func EvaluateCheckpoint(backend compute.Backend, task Task, dir string, c recipes.TrainConfig, ema bool) (rep Report, st checkpoints.State, err error) {
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
	if ema {
		if err := UseEMA(store, dir); err != nil {
			return rep, st, err
		}
	}
	e, err := NewEvalExec(backend, store, task, c)
	if err != nil {
		return rep, st, err
	}
	defer e.Finalize()
	rep, err = EvaluateReport(e, task)
	if err != nil {
		return rep, st, fmt.Errorf("evaluating %s: %w (does the recipe still match the checkpoint's model?)", dir, err)
	}
	return rep, st, checkpoints.CheckNoNewVariables(dir, store, loaded)
}

// UseEMA replaces the weights in store (loaded from the checkpoint in dir) by their moving average
// (checkpoints.ApplyEMA).
func UseEMA(store *model.Store, dir string) error {
	vars, _, err := checkpoints.LoadVariables(dir)
	if err != nil {
		return err
	}
	avg, err := checkpoints.ApplyEMA(vars)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for v := range store.IterVariables() {
		if t, ok := avg[v.Path()]; ok && !strings.HasPrefix(v.Path(), checkpoints.EMAScope) {
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("%s: EMA of %s: %w", dir, v.Path(), err)
			}
		}
	}
	return nil
}

// EvaluateStore evaluates task on the weights in store (e.g. a pretrained Hugging Face model's,
// the baseline of its fine-tune) with the graph options of the recipe's train section c.
func EvaluateStore(backend compute.Backend, task Task, store *model.Store, c recipes.TrainConfig) (rep Report, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("evaluating: %s", errline.First(r))
		}
	}()
	e, err := NewEvalExec(backend, store, task, c)
	if err != nil {
		return rep, err
	}
	defer e.Finalize()
	return EvaluateReport(e, task)
}
