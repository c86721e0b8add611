// Package evaluate evaluates trained checkpoints, as `reel eval` does: a task's metrics on its
// eval sets, compared with a baseline (the init_from checkpoint, a Hugging Face directory, or the
// run's own initialisation) as deltas and per-split accuracies; for a policy (a PolicyTask), the
// offline action error, closed-loop success in held-out simulated scenes with rollout videos, the
// two-solution probe and, for a recurrent-depth policy, a sweep of fixed depths; or, with
// Remote, the closed-loop evaluation of a policy served over the vla-eval protocol, in shards
// whose results Merge joins. Results are written beside the checkpoint (eval.json) and plotted
// under the run (plots/).
package evaluate

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"gonum.org/v1/plot/plotter"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// Result is the evaluation of one checkpoint (eval.json).
type Result struct {
	Checkpoint string                   `json:"checkpoint"`
	Step       int64                    `json:"step"`
	Recipe     string                   `json:"recipe"`
	Metrics    map[string]float64       `json:"metrics"`
	Groups     map[string][]train.Group `json:"groups,omitempty"`
	// Baseline is the init_from checkpoint evaluated on the same sets, and Delta = Metrics −
	// Baseline.Metrics: what the fine-tune changed.
	Baseline *Result            `json:"baseline,omitempty"`
	Delta    map[string]float64 `json:"delta,omitempty"`
	// Splits are each eval set's accuracy before (the baseline) and after, and the delta.
	Splits []SplitDelta `json:"splits,omitempty"`
	// ClosedLoop is a policy's closed-loop evaluation in held-out simulated scenes (task vla).
	ClosedLoop *ClosedLoop `json:"closed_loop,omitempty"`
}

// Options are how checkpoints are evaluated.
type Options struct {
	Sets     []string // overrides of the checkpoint's recipe
	Baseline string   // "" (the default of BaselinePath), "none", InitBaseline, or a run, checkpoint or HF directory
	EMA      bool     // evaluate the moving average of the weights
	// Series marks one checkpoint of a run's series (Run over several): no baseline, no
	// numerosity plot.
	Series bool
	Remote *Remote // evaluate the policy served there instead of the checkpoint's weights
	Log    func(format string, a ...any)
	Warn   func(string)
	// Tables receives the tables of tasks that print their metrics as one (MetricsTable); nil: none.
	Tables io.Writer
}

func (o Options) log(format string, a ...any) {
	if o.Log != nil {
		o.Log(format, a...)
	}
}

func (o Options) warn(w string) {
	if o.Warn != nil {
		o.Warn(w)
	}
}

// MetricsTable is a task that also prints its evaluation metrics as a table (the ExeVRM reward
// model beside its baseline).
type MetricsTable interface {
	WriteMetricsTable(w io.Writer, metrics map[string]float64)
}

// Run evaluates every checkpoint of dirs; with o.Series, a checkpoint that fails verification
// is skipped with a warning instead of failing the run.
func Run(b compute.Backend, dirs []string, o Options) ([]Result, error) {
	var results []Result
	for _, dir := range dirs {
		if _, err := checkpoints.Verify(dir); err != nil {
			if o.Series {
				o.warn(err.Error() + "; skipped")
				continue
			}
			return nil, err
		}
		res, err := Checkpoint(b, dir, o)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// Checkpoint evaluates checkpoint dir and writes its eval.json (a shard's partial result lives in
// its results files instead).
func Checkpoint(b compute.Backend, dir string, o Options) (Result, error) {
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), o.Sets)
	if err != nil {
		return Result{}, err
	}
	task, err := tasks.New(r)
	if err != nil {
		return Result{}, err
	}
	if c, ok := task.(interface{ Close() }); ok {
		defer c.Close()
	}
	if pt, ok := task.(PolicyTask); ok {
		res, err := evalPolicy(b, pt, dir, o)
		if err != nil {
			return res, err
		}
		if o.Remote == nil || o.Remote.Shard == nil {
			err = checkpoints.WriteJSON(filepath.Join(dir, "eval.json"), res)
		}
		return res, err
	} else if o.Remote != nil {
		return Result{}, usage.Errorf("eval: --remote is for policies (task vla); %s is task %s", dir, r.Task)
	}
	rep, st, err := train.EvaluateCheckpoint(b, task, dir, r.Train, o.EMA)
	if err != nil {
		return Result{}, err
	}
	res := Result{Checkpoint: dir, Step: st.Step, Recipe: r.Name, Metrics: rep.Metrics, Groups: rep.Groups}
	o.log("%s (step %d): %s", dir, st.Step, train.FormatMetrics(rep.Metrics))
	if mt, ok := task.(MetricsTable); ok && o.Tables != nil {
		mt.WriteMetricsTable(o.Tables, rep.Metrics)
	}
	if base := BaselinePath(o.Baseline, r); base != "" && !o.Series {
		if err := compare(b, task, r, base, &res, o); err != nil {
			return res, err
		}
	}
	if err := checkpoints.WriteJSON(filepath.Join(dir, "eval.json"), res); err != nil {
		return res, err
	}
	if !o.Series {
		if err := plotNumerosity(dir, res, o); err != nil {
			o.warn("plot: " + err.Error())
		}
	}
	return res, nil
}

// InitBaseline as --baseline (and the default of a model.pretrained: random run) compares a run
// with its own initialisation: the same seed's weights before the first step.
const InitBaseline = "init"

// BaselinePath is the checkpoint a fine-tuned run is compared against: flag (--baseline), else
// the recipe's train.init_from, else for a model.pretrained run (a Hugging Face directory, or
// random weights) the run's initialisation (InitBaseline: the pretrained weights, and the
// parameters the fine-tune adds, such as LoRA adapters or an STTS scorer, as the same seed
// initialises them); "" for none.
func BaselinePath(flag string, r *recipes.Recipe) string {
	switch flag {
	case "none":
		return ""
	case "":
		if r.Train.InitFrom == "" && r.Model.Pretrained != "" {
			return InitBaseline
		}
		return r.Train.InitFrom
	}
	return flag
}

// compare evaluates the baseline base of res's checkpoint on the same sets and adds it, the
// deltas and the per-split accuracies to res.
func compare(b compute.Backend, task train.Task, r *recipes.Recipe, base string, res *Result, o Options) error {
	var (
		brep train.Report
		bst  checkpoints.State
		bdir string
		err  error
	)
	if base == InitBaseline { // the run's own initialisation: the untouched model
		bdir, bst.Recipe = fmt.Sprintf("initialisation (train.seed %d)", r.Train.Seed), r.Name+" untrained"
		if p := r.Model.Pretrained; p != "" && p != "random" {
			bdir = fmt.Sprintf("%s (new parameters: train.seed %d)", p, r.Train.Seed)
		}
		var store *model.Store
		if store, err = train.InitialStore(b, task, r.Train); err == nil {
			brep, err = train.EvaluateStore(b, task, store, r.Train)
		}
		if err != nil {
			return fmt.Errorf("baseline %s: %w", bdir, err)
		}
	} else if hf.IsModelDir(base) { // a Hugging Face directory: the pretrained model of the fine-tune
		bdir, bst.Recipe = base, "pretrained"
		var m *hf.Model
		if m, err = hf.Load(b, base); err == nil {
			brep, err = train.EvaluateStore(b, task, m.Store, r.Train)
		}
		if err != nil {
			return fmt.Errorf("baseline %s: %w", base, err)
		}
	} else if bdir, err = checkpoints.Resolve(base, o.warn); err != nil {
		if o.Baseline != "" {
			return fmt.Errorf("--baseline: %w", err)
		}
		o.warn(fmt.Sprintf("baseline: train.init_from %s: %v; skipped (pass --baseline DIR)", base, err))
		return nil
	} else {
		// The baseline runs with its own graph options: a LoRA fine-tune's base has no adapters.
		bc := r.Train
		if br, err := recipes.Load(filepath.Join(bdir, "recipe.yaml"), nil); err == nil {
			bc = br.Train
		}
		if brep, bst, err = train.EvaluateCheckpoint(b, task, bdir, bc, false); err != nil {
			return fmt.Errorf("baseline %s: %w", bdir, err)
		}
	}
	res.Baseline = &Result{Checkpoint: bdir, Step: bst.Step, Recipe: bst.Recipe, Metrics: brep.Metrics, Groups: brep.Groups}
	res.Delta = map[string]float64{}
	for k, v := range res.Metrics {
		if bv, ok := brep.Metrics[k]; ok {
			res.Delta[k] = v - bv
		}
	}
	o.log("baseline %s (step %d): %s", bdir, bst.Step, train.FormatMetrics(brep.Metrics))
	o.log("delta: %s", train.FormatMetrics(res.Delta))
	res.Splits = Splits(r.Eval.Sets, brep.Metrics, res.Metrics)
	if len(res.Splits) > 0 {
		o.log("%-24s %7s %7s %7s", "accuracy", "before", "after", "delta")
		for _, s := range res.Splits {
			o.log("%-24s %7.3f %7.3f %+7.3f", s.Split+" ("+s.Set+")", s.Before, s.After, s.Delta)
		}
	}
	return nil
}

// SplitDelta is one eval set's accuracy before and after a fine-tune.
type SplitDelta struct {
	Split  string  `json:"split"` // id, ood, general, or the set's name
	Set    string  `json:"set"`
	Before float64 `json:"before"`
	After  float64 `json:"after"`
	Delta  float64 `json:"delta"`
}

// splitNames name the counting study's sets as the counting paper's evaluation does:
// in-distribution, out-of-distribution and general.
var splitNames = map[string]string{"counting": "id", "counting_ood": "ood", "general": "general"}

// Splits returns the accuracy before and after of every eval set both reports have.
func Splits(sets []string, before, after map[string]float64) []SplitDelta {
	var out []SplitDelta
	for _, set := range sets {
		b, okB := before[set+"/accuracy"]
		a, okA := after[set+"/accuracy"]
		if !okB || !okA {
			continue
		}
		name := splitNames[set]
		if name == "" {
			name = set
		}
		out = append(out, SplitDelta{Split: name, Set: set, Before: b, After: a, Delta: a - b})
	}
	return out
}

// Checkpoints are the checkpoint directories `reel eval PATH` evaluates: with all, every kept
// checkpoint of run path (an error when it has none); else the one path resolves to.
func Checkpoints(path string, all bool, warn func(string)) ([]string, error) {
	if !all {
		dir, err := checkpoints.Resolve(path, warn)
		if err != nil {
			return nil, err
		}
		return []string{dir}, nil
	}
	root := filepath.Join(path, "checkpoints")
	list, err := checkpoints.List(root)
	if err != nil || len(list) == 0 {
		return nil, fmt.Errorf("eval --all: %s has no checkpoints (expected %s/step-*)", path, root)
	}
	return list, nil
}

// PlotSeries writes RUN/plots/eval-<metric>.png for every metric against step.
func PlotSeries(run string, results []Result) error {
	series := map[string]plotter.XYs{}
	for _, r := range results {
		for k, v := range r.Metrics {
			series[k] = append(series[k], plotter.XY{X: float64(r.Step), Y: v})
		}
	}
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := "eval-" + strings.ReplaceAll(k, "/", "-") + ".png"
		if err := train.PlotSeries(filepath.Join(run, "plots", name), k, series[k]); err != nil {
			return err
		}
	}
	return nil
}

// plotNumerosity draws RUN/plots/numerosity.png from the per-count groups of every counting set
// (in-distribution and the OOD more_objects counts join into one curve), before and after.
func plotNumerosity(ckpt string, res Result, o Options) error {
	merge := func(r *Result) []train.Group {
		var lists [][]train.Group
		for k, g := range r.Groups {
			if strings.HasSuffix(k, "/by_count") {
				lists = append(lists, g)
			}
		}
		return train.MergeGroups(lists...)
	}
	after := merge(&res)
	if len(after) == 0 {
		return nil
	}
	series := []train.GroupSeries{{Name: fmt.Sprintf("after: %s step %d", res.Recipe, res.Step), Groups: after}}
	if res.Baseline != nil {
		series = append([]train.GroupSeries{{Name: fmt.Sprintf("before: %s step %d", res.Baseline.Recipe, res.Baseline.Step), Groups: merge(res.Baseline)}}, series...)
	}
	path := filepath.Join(checkpoints.RunDir(ckpt), "plots", "numerosity.png")
	if err := train.PlotGroups(path, "numerosity", "true count", []string{"accuracy", "mae"}, series); err != nil {
		return err
	}
	o.log("wrote %s", path)
	return nil
}

// keyedLine formats a map as "k1 …, k2 …" in key order (keys for which item returns "" are
// left out).
func keyedLine[V any](m map[string]V, item func(k string, v V) string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if s := item(k, m[k]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
