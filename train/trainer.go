package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// Options configures one training run.
type Options struct {
	Recipe     *recipes.Recipe
	RecipeYAML []byte // fully resolved recipe, saved in the run directory and every checkpoint
	OutDir     string
	Resume     bool
	// Overwrite replaces the outputs of an earlier run in OutDir (RunOutputs). They are moved
	// aside, not deleted, and put back if the new run fails before saving a checkpoint; they
	// are deleted only once the new run has succeeded.
	Overwrite bool
	// StopAfter, when > 0, stops (with a checkpoint) once this many optimizer steps are done
	// in total, as a preemption would; a later --resume continues the same run.
	StopAfter int
	Backend   compute.Backend
	Log       io.Writer // human-readable progress (stderr)
	Progress  bool      // draw a progress bar instead of plain log lines
}

// Result summarises a finished (or stopped) run.
type Result struct {
	Steps       int64
	FinalLoss   float64
	Checkpoint  string
	Eval        map[string]float64
	Interrupted bool
}

// ErrInterrupted is returned when a signal stopped the run (after saving a checkpoint).
var ErrInterrupted = errors.New("interrupted")

// ErrNonFinite is returned when the loss became NaN or Inf.
var ErrNonFinite = errors.New("non-finite loss")

// Trainer runs a Task under a recipe.
type Trainer struct {
	opts      Options
	task      Task
	cfg       recipes.TrainConfig
	store     *model.Store
	applyExec *model.Exec
	accumExec *model.Exec
	prepExec  *model.Exec // BatchPreparer tasks only
	metrics   *MetricsLog
	ckptRoot  string
	peak      Peak              // MFU denominator
	dp        *dataParallel     // device layout of the training step
	counted   bool              // parameter counts logged
	base      *checkpoints.Base // the frozen base adapter-only checkpoints refer to (adapterBase)
}

// NewStore returns an empty variable store whose RNG (initialisation and any graph noise) is
// seeded from the recipe.
func NewStore(seed int64) (*model.Store, error) {
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	return store, nil
}

// Run trains task as the options say: fresh, fine-tuned (train.init_from) or resumed.
func Run(ctx context.Context, task Task, opts Options) (res Result, err error) {
	t := &Trainer{opts: opts, task: task, cfg: opts.Recipe.Train, ckptRoot: filepath.Join(opts.OutDir, "checkpoints")}
	if t.opts.Log == nil {
		t.opts.Log = io.Discard
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("training failed: %s", errline.First(r))
		}
	}()
	// Check the device layout before anything is written.
	if t.dp, err = newDataParallel(opts.Backend, t.cfg.Devices, task.MicroBatchSize()); err != nil {
		return res, err
	}
	if opts.Resume && opts.Overwrite {
		return res, errors.New("--resume and --overwrite exclude each other")
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return res, fmt.Errorf("--out %s: %w", opts.OutDir, err)
	}
	if opts.Overwrite {
		finish, aerr := overwriteAside(opts.OutDir)
		if aerr != nil {
			return res, aerr
		}
		defer func() {
			if r := recover(); r != nil { // settle the old outputs before the recover above reports
				err = fmt.Errorf("training failed: %s", errline.First(r))
			}
			note, ferr := finish(err != nil)
			if note != "" {
				t.logf("%s", note)
			}
			if err == nil {
				err = ferr
			}
		}()
	}
	if t.store, err = NewStore(t.cfg.Seed); err != nil {
		return res, err
	}

	// Where do we start?
	var step int64
	resumed := ""
	if opts.Resume {
		dir, st, err := checkpoints.Newest(t.ckptRoot, func(w string) { t.logf("warning: %s", w) })
		if err != nil {
			return res, fmt.Errorf("--resume: %w", err)
		}
		if dir != "" {
			if _, err := checkpoints.Load(dir, t.store); err != nil {
				return res, fmt.Errorf("--resume: %w", err)
			}
			step, resumed = st.Step, dir
			t.logf("resuming from %s (step %d)", dir, step)
		} else {
			t.logf("--resume: no checkpoint in %s yet, starting from scratch", t.ckptRoot)
		}
	} else if dirs, _ := checkpoints.List(t.ckptRoot); len(dirs) > 0 {
		return res, fmt.Errorf("--out %s already holds checkpoints: pass --resume to continue that run, --overwrite to replace it, or choose another --out", opts.OutDir)
	}
	// Written only now: a refused run leaves the recipe of the run already there untouched.
	if err := os.WriteFile(filepath.Join(opts.OutDir, "recipe.yaml"), opts.RecipeYAML, 0o644); err != nil {
		return res, fmt.Errorf("--out %s: %w", opts.OutDir, err)
	}
	if t.metrics, err = OpenMetrics(opts.OutDir, step, resumed != ""); err != nil {
		return res, err
	}
	defer t.metrics.Close()

	if err := t.buildExecs(); err != nil {
		return res, err
	}
	if resumed == "" {
		if err := initStore(t.opts.Backend, t.task, t.cfg, t.store, t.prepExec, t.logf); err != nil {
			return res, err
		}
	}
	t.freeze()
	return t.loop(ctx, step)
}

// initStore creates and initialises the model variables of task in store (seeded), then loads
// the pretrained weights (Initializer) and train.init_from: a fresh run's starting point, and
// what rebuilds the frozen base of an adapter-only checkpoint (InitBase). prepExec is the
// task's BatchPreparer graph (nil: compiled here).
func initStore(backend compute.Backend, task Task, cfg recipes.TrainConfig, store *model.Store, prepExec *model.Exec, logf func(string, ...any)) error {
	if p, ok := task.(BatchPreparer); ok && prepExec == nil {
		var err error
		if prepExec, err = newPrepExec(backend, store, p, cfg); err != nil {
			return err
		}
		defer prepExec.Finalize()
	}
	if err := warmUp(backend, task, cfg, store, prepExec); err != nil {
		return err
	}
	if in, ok := task.(Initializer); ok {
		n, src, err := in.InitVariables(backend, store)
		if err != nil {
			return err
		}
		if n > 0 {
			logf("initialised %d variables from %s", n, src)
		}
	}
	if cfg.InitFrom != "" {
		if err := initFrom(store, cfg.InitFrom, logf); err != nil {
			return err
		}
	}
	return nil
}

// InitBase returns the variables of task as a fresh run of the recipe's train section c starts
// from them (seeded initialisation, pretrained weights, train.init_from), by path: the frozen
// base of an adapter-only checkpoint, rebuilt.
func InitBase(backend compute.Backend, task Task, c recipes.TrainConfig) (vals map[string]*tensors.Tensor, err error) {
	store, err := freshStore(backend, task, c)
	if err != nil {
		return nil, err
	}
	vals = map[string]*tensors.Tensor{}
	for v := range store.IterVariables() {
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Path(), err)
		}
		if vals[v.Path()], err = val.LocalClone(); err != nil { // detached from this backend instance
			return nil, fmt.Errorf("variable %s: %w", v.Path(), err)
		}
	}
	return vals, nil
}

// freeze makes the variables matching train.freeze non-trainable (the optimizer then holds no
// state for them).
func (t *Trainer) freeze() {
	if len(t.cfg.Freeze) == 0 {
		return
	}
	n := 0
	for v := range t.store.IterVariables() {
		if frozen(t.cfg.Freeze, v.Path()) && v.Trainable {
			v.SetTrainable(false)
			n++
		}
	}
	t.logf("train.freeze: %d variables frozen", n)
}

// modelVariable reports whether a variable path (without its leading "/") is part of the model:
// not optimizer state, gradient accumulators, the RNG state or the EMA copy.
func modelVariable(name string) bool {
	_, ok := checkpoints.Weights(map[string]*tensors.Tensor{"/" + name: nil})[name]
	return ok
}

// paramCounts returns the number of trainable and of all model parameters.
func (t *Trainer) paramCounts() (trainable, total int) {
	for v := range t.store.IterVariables() {
		if !modelVariable(strings.TrimPrefix(v.Path(), "/")) {
			continue
		}
		total += v.Shape().Size()
		if v.Trainable {
			trainable += v.Shape().Size()
		}
	}
	return trainable, total
}

func (t *Trainer) buildExecs() error {
	opt := newOptimizer(t.cfg)
	var err error
	if t.dp == nil {
		if t.dp, err = newDataParallel(t.opts.Backend, t.cfg.Devices, t.task.MicroBatchSize()); err != nil {
			return err
		}
	}
	if t.dp.devices > 1 {
		t.logf("data-parallel over %d devices: micro-batch of %d, %d examples per device", t.dp.devices, t.dp.micro, t.dp.micro/t.dp.devices)
	}
	if t.applyExec, err = model.NewExecCanonical(t.opts.Backend, t.store, counted(stepGraph(t.task, t.cfg, opt, false)), -1, -1, false, true, true); err != nil {
		return err
	}
	if t.cfg.GradAccum > 1 {
		if t.accumExec, err = model.NewExecCanonical(t.opts.Backend, t.store, counted(stepGraph(t.task, t.cfg, opt, true)), -1, -1, false, true, true); err != nil {
			return err
		}
	}
	if p, ok := t.task.(BatchPreparer); ok {
		t.prepExec, err = newPrepExec(t.opts.Backend, t.store, p, t.cfg)
	}
	return err
}

// newPrepExec compiles a BatchPreparer's graph. It is marked as training so that variables are
// graph parameters that follow the updates (the Go backend embeds them as constants otherwise).
func newPrepExec(backend compute.Backend, store *model.Store, p BatchPreparer, c recipes.TrainConfig) (*model.Exec, error) {
	return model.NewExecCanonical(backend, store, counted(func(scope *model.Scope, g *model.Graph, inputs []*model.Node) []*model.Node {
		scope.SetTraining(g, true)
		models.Configure(g, GraphOptions(c))
		return p.PrepareGraph(scope, inputs)
	}), -1, -1, false, true, true)
}

// prepare applies the task's BatchPreparer (if any) to a micro-batch.
func prepare(e *model.Exec, task Task, batch []*tensors.Tensor) ([]*tensors.Tensor, error) {
	in, _, err := prepareFLOPs(e, task, batch)
	return in, err
}

// prepareFLOPs is prepare that also returns the model FLOPs of the preparer's graph.
func prepareFLOPs(e *model.Exec, task Task, batch []*tensors.Tensor) ([]*tensors.Tensor, flopCount, error) {
	p, ok := task.(BatchPreparer)
	if !ok || e == nil {
		return batch, flopCount{}, nil
	}
	out, flops, err := callFLOPs(e, batch)
	if err != nil {
		return nil, flopCount{}, err
	}
	defer finalize(out)
	in, err := p.Prepare(batch, out)
	return in, flops, err
}

// NewEvalExec returns the inference graph of task.EvalGraph with the graph options of the
// recipe's train section c.
func NewEvalExec(backend compute.Backend, store *model.Store, task Task, c recipes.TrainConfig) (*Inference, error) {
	return NewInference(backend, store, c, task.EvalGraph)
}

// warmUp is warmUp of the trainer's task, store and preparer graph.
func (t *Trainer) warmUp() error { return warmUp(t.opts.Backend, t.task, t.cfg, t.store, t.prepExec) }

// warmUp runs the loss graph once (no update) so every model variable exists and is initialised
// in a fixed order from the seeded RNG.
func warmUp(backend compute.Backend, task Task, cfg recipes.TrainConfig, store *model.Store, prepExec *model.Exec) error {
	batch, err := task.MicroBatch(0)
	if err != nil {
		return err
	}
	if batch, err = prepare(prepExec, task, batch); err != nil {
		return err
	}
	e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *model.Graph, inputs []*model.Node) []*model.Node {
		scope.SetTraining(g, false)
		models.Configure(g, GraphOptions(cfg)) // LoRA adapters are created here too
		return []*model.Node{task.Loss(scope, inputs)}
	}, -1, -1, false, true, true)
	if err != nil {
		return err
	}
	defer e.Finalize()
	_, err = call(e, batch)
	return err
}

// InitialStore returns the weights a fresh run of task with train section c starts from, before
// its first step: initialised from train.seed in the order Run initialises them, then the task's
// own weights (Initializer); train.init_from is not applied. It is the untouched model of a run
// from random weights (model.pretrained: random), the baseline `reel eval` compares it with.
func InitialStore(backend compute.Backend, task Task, c recipes.TrainConfig) (*model.Store, error) {
	c.InitFrom = ""
	return freshStore(backend, task, c)
}

// freshStore initialises a new store as a fresh run of task with train section c does.
func freshStore(backend compute.Backend, task Task, c recipes.TrainConfig) (store *model.Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("building the model: %s", errline.First(r))
		}
	}()
	if store, err = NewStore(c.Seed); err != nil {
		return nil, err
	}
	if err := initStore(backend, task, c, store, nil, func(string, ...any) {}); err != nil {
		return nil, err
	}
	return store, nil
}

// initFrom loads the weights (not optimizer state) of a run or checkpoint directory: every model
// variable the checkpoint has, frozen ones included (the base of a LoRA fine-tune), except the
// normalisation statistics ("norm/…"), which belong to the data this run trains on.
func initFrom(store *model.Store, path string, logf func(string, ...any)) error {
	dir, err := checkpoints.Resolve(path, func(w string) { logf("warning: %s", w) })
	if err != nil {
		return fmt.Errorf("train.init_from: %w", err)
	}
	vars, _, err := checkpoints.LoadVariables(dir)
	if err != nil {
		return fmt.Errorf("train.init_from: %w", err)
	}
	loaded := 0
	weights := checkpoints.Weights(vars)
	for v := range store.IterVariables() {
		name := strings.TrimPrefix(v.Path(), "/")
		if strings.HasPrefix(name, "norm/") || !modelVariable(name) {
			continue
		}
		val, ok := weights[name]
		if !ok {
			logf("warning: train.init_from %s has no variable %s; it keeps its fresh initialisation", dir, v.Path())
			continue
		}
		if !val.Shape().Equal(v.Shape()) {
			return fmt.Errorf("train.init_from %s: variable %s has shape %s in the checkpoint but %s in the model",
				dir, v.Path(), val.Shape(), v.Shape())
		}
		if err := v.SetValue(val); err != nil {
			return fmt.Errorf("train.init_from %s: variable %s: %w", dir, v.Path(), err)
		}
		loaded++
	}
	if loaded == 0 {
		return fmt.Errorf("train.init_from %s: no variable matches this model", dir)
	}
	logf("initialised %d variables from %s", loaded, dir)
	return nil
}

func (t *Trainer) loop(ctx context.Context, step int64) (Result, error) {
	cfg := t.cfg
	total := int64(cfg.Steps)
	stopAt := total
	if t.opts.StopAfter > 0 && int64(t.opts.StopAfter) < total {
		stopAt = int64(t.opts.StopAfter)
	}
	res := Result{Steps: step}
	accum := int64(cfg.GradAccum)
	workers := t.opts.Recipe.Data.Workers
	stream := data.NewStream(step*accum, t.opts.Recipe.Data.Prefetch, workers, t.task.MicroBatch)
	defer stream.Close()
	bar := newProgress(t.opts, total, step)
	defer bar.Finish()

	examples := float64(t.task.MicroBatchSize()) * float64(accum)
	t.peak = PeakFLOPS(t.opts.Backend, cfg.Precision)
	if t.peak.FLOPS > 0 {
		t.logf("MFU against the %s", t.peak.Source)
	} else if t.peak.Source != "" {
		t.logf("MFU: %s", t.peak.Source)
	}
	for step < stopAt {
		if ctx.Err() != nil {
			dir, err := t.save(step)
			if err != nil {
				return res, err
			}
			res.Checkpoint, res.Interrupted = dir, true
			return res, fmt.Errorf("%w at step %d: checkpoint saved to %s; continue with --resume", ErrInterrupted, step, dir)
		}
		start := time.Now()
		lr := LearningRate(cfg, step)
		lrT := tensors.FromScalar(float32(lr))
		var lossSum, gnorm, flops float64
		for micro := int64(0); micro < accum; micro++ {
			batch, err := stream.Next()
			if err != nil {
				return res, fmt.Errorf("data: %w", err)
			}
			var f flopCount
			if batch, f, err = prepareFLOPs(t.prepExec, t.task, batch); err != nil {
				return res, err
			}
			flops += f.total
			e := t.applyExec
			if micro < accum-1 {
				e = t.accumExec
			}
			out, f, err := t.dp.call(e, append([]*tensors.Tensor{lrT}, batch...))
			if err != nil {
				return res, err
			}
			flops += f.total
			lossSum += scalar(out[0])
			if micro == accum-1 {
				gnorm = scalar(out[1])
			}
			finalize(out)
		}
		loss := lossSum / float64(accum)
		step++
		dt := time.Since(start).Seconds()
		if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(gnorm) || math.IsInf(gnorm, 0) {
			last := "none (no checkpoint was saved yet)"
			if dirs, _ := checkpoints.List(t.ckptRoot); len(dirs) > 0 {
				last = dirs[len(dirs)-1]
			}
			return res, fmt.Errorf("%w: loss=%v grad_norm=%v at step %d; stopped without saving, last good checkpoint: %s (try a lower train.lr or train.grad_clip)",
				ErrNonFinite, loss, gnorm, step, last)
		}
		res.Steps, res.FinalLoss = step, loss
		row := map[string]any{"split": "train", "step": step, "loss": loss, "lr": lr, "grad_norm": gnorm,
			"step_time_s": dt, "examples_per_s": examples / dt, "model_flops": flops}
		mfu := 0.0
		if t.peak.FLOPS > 0 {
			mfu = flops / dt / t.peak.FLOPS
			row["mfu"] = mfu
		}
		if !t.counted { // after the first step: its graph has frozen LoRA's base weights
			t.counted = true
			trainable, all := t.paramCounts()
			row["params_trainable"], row["params_total"] = trainable, all
			t.logf("parameters: %d trainable of %d (%.2f%%)", trainable, all, 100*float64(trainable)/float64(max(1, all)))
		}
		if err := t.metrics.Write(row); err != nil {
			return res, err
		}
		bar.Update(step, loss, dt, examples, mfu)
		if step%int64(cfg.LogEvery) == 0 || step == total {
			bar.Log(step, total, loss, lr, dt, examples, mfu)
		}
		isLast := step == total
		if (cfg.EvalEvery > 0 && step%int64(cfg.EvalEvery) == 0) || isLast {
			ev, err := t.evaluate(step)
			if err != nil {
				return res, err
			}
			res.Eval = ev
		}
		if ce := t.opts.Recipe.Checkpoint.Every; (ce > 0 && step%int64(ce) == 0) || isLast || step == stopAt {
			dir, err := t.save(step)
			if err != nil {
				return res, err
			}
			res.Checkpoint = dir
		}
	}
	if err := PlotRun(t.opts.OutDir); err != nil {
		t.logf("warning: plot: %v", err)
	}
	return res, nil
}

func (t *Trainer) save(step int64) (string, error) {
	st := checkpoints.State{Step: step, DataIndex: step * int64(t.cfg.GradAccum), Seed: t.cfg.Seed, Recipe: t.opts.Recipe.Name}
	var extra map[string][]byte
	if f, ok := t.task.(CheckpointFiler); ok {
		var err error
		if extra, err = f.CheckpointFiles(); err != nil {
			return "", err
		}
	}
	base, err := t.adapterBase()
	if err != nil {
		return "", err
	}
	dir, err := checkpoints.SaveWithBase(t.ckptRoot, t.store, st, t.opts.RecipeYAML, extra, t.opts.Recipe.Checkpoint.Keep, base)
	if err != nil {
		return "", err
	}
	return dir, nil
}

// adapterBase is the base reference of the run's checkpoints when they hold only the trained
// variables: with train.lora the frozen model variables (the adapted layers' weights and
// train.freeze's) are left out and rebuilt on loading from the seed, model.pretrained and
// train.init_from (checkpoints.Base). It is nil otherwise, and computed once per frozen set.
func (t *Trainer) adapterBase() (*checkpoints.Base, error) {
	if t.cfg.LoRA.Rank == 0 {
		return nil, nil
	}
	var names []string
	for v := range t.store.IterVariables() {
		// The normalisation statistics ("norm/…") come from the data, not the base: every
		// checkpoint keeps them.
		if name := strings.TrimPrefix(v.Path(), "/"); !v.Trainable && modelVariable(name) && !strings.HasPrefix(name, "norm/") {
			names = append(names, v.Path())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	if t.base != nil && slices.Equal(t.base.Variables, names) {
		return t.base, nil
	}
	frozen := map[string]*tensors.Tensor{}
	for _, p := range names {
		val, err := t.store.GetVariable(p).Value()
		if err != nil {
			return nil, fmt.Errorf("checkpoint: variable %s: %w", p, err)
		}
		frozen[p] = val
	}
	b := &checkpoints.Base{Seed: t.cfg.Seed, Variables: names}
	var err error
	if b.Digest, err = checkpoints.VariablesDigest(frozen); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if p := t.opts.Recipe.Model.Pretrained; p == "random" {
		b.Pretrained = p
	} else if p != "" {
		if b.Pretrained, err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("model.pretrained %s: %w", p, err)
		}
		if b.PretrainedFiles, err = checkpoints.SumWeightFiles(p); err != nil {
			return nil, fmt.Errorf("model.pretrained %s: %w", p, err)
		}
	}
	if p := t.cfg.InitFrom; p != "" {
		dir, err := checkpoints.Resolve(p, nil)
		if err != nil {
			return nil, fmt.Errorf("train.init_from: %w", err)
		}
		if b.InitFrom, err = filepath.Abs(dir); err != nil {
			return nil, fmt.Errorf("train.init_from %s: %w", dir, err)
		}
		sum, err := checkpoints.SumFile(filepath.Join(dir, "state.json"))
		if err != nil {
			return nil, fmt.Errorf("train.init_from %s: %w", dir, err)
		}
		b.InitFromState = &sum
	}
	t.base = b
	return b, nil
}

func (t *Trainer) evaluate(step int64) (map[string]float64, error) {
	// A fresh executor per evaluation: a reused model.Exec (GoMLX v0.28.16, Go backend) was seen
	// returning results computed with the variable values of its first call.
	e, err := NewEvalExec(t.opts.Backend, t.store, t.task, t.cfg)
	if err != nil {
		return nil, err
	}
	ev, err := Evaluate(e, t.task)
	e.Finalize()
	if err != nil {
		return nil, err
	}
	row := map[string]any{"split": "eval", "step": step}
	for k, v := range ev {
		row[k] = v
	}
	if err := t.metrics.Write(row); err != nil {
		return nil, err
	}
	t.logf("eval @ step %d: %s", step, FormatMetrics(ev))
	if err := PlotRun(t.opts.OutDir); err != nil {
		t.logf("warning: plot: %v", err)
	} else if err := t.metrics.Images(step, filepath.Join(t.opts.OutDir, "plots")); err != nil {
		t.logf("warning: tensorboard images: %v", err)
	}
	return ev, nil
}

// Evaluate runs every evaluation set of task through e and returns "<set>/<metric>" values.
func Evaluate(e *Inference, task Task) (map[string]float64, error) {
	r, err := EvaluateReport(e, task)
	return r.Metrics, err
}

// Report is a full evaluation: "<set>/<metric>" values and, for sets that implement Grouper,
// "<set>/<breakdown>" groups.
type Report struct {
	Metrics map[string]float64 `json:"metrics"`
	Groups  map[string][]Group `json:"groups,omitempty"`
}

// EvaluateReport is Evaluate with the sets' grouped breakdowns.
func EvaluateReport(e *Inference, task Task) (Report, error) {
	r := Report{Metrics: map[string]float64{}}
	for _, name := range task.EvalSets() {
		set, err := task.EvalSet(name)
		if err != nil {
			return Report{}, err
		}
		outs := make([][]*tensors.Tensor, set.NumBatches())
		for i := range outs {
			if outs[i], err = e.Call(set.Batch(i)...); err != nil {
				return Report{}, err
			}
		}
		for k, v := range set.Metrics(outs) {
			r.Metrics[name+"/"+k] = v
		}
		if gr, ok := set.(Grouper); ok {
			for k, v := range gr.Groups(outs) {
				if r.Groups == nil {
					r.Groups = map[string][]Group{}
				}
				r.Groups[name+"/"+k] = v
			}
		}
		for _, o := range outs {
			finalize(o)
		}
	}
	return r, nil
}

func (t *Trainer) logf(format string, args ...any) {
	fmt.Fprintf(t.opts.Log, format+"\n", args...)
}

// call executes e, converting GoMLX panics into one-line errors.
func call(e *model.Exec, inputs []*tensors.Tensor) (out []*tensors.Tensor, err error) {
	out, _, err = callFLOPs(e, inputs)
	return out, err
}

// callFLOPs is call that also returns the model FLOPs (see GraphFLOPs) of the graph it ran.
func callFLOPs(e *model.Exec, inputs []*tensors.Tensor) (out []*tensors.Tensor, flops flopCount, err error) {
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	return execArgs(e, args)
}

// execArgs executes e on args (tensors, or distributed tensors), converting GoMLX panics into
// one-line errors, and returns the outputs and the FLOPs of the graph it ran.
func execArgs(e *model.Exec, args []any) (out []*tensors.Tensor, flops flopCount, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graph execution failed: %s", errline.First(r))
		}
	}()
	out, g, err := e.CallWithGraph(args...)
	if err != nil {
		return nil, flopCount{}, fmt.Errorf("graph execution failed: %s", errline.First(err))
	}
	return out, flopsOf(g), nil
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}
