package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

type evalResult struct {
	Checkpoint string             `json:"checkpoint"`
	Step       int64              `json:"step"`
	Recipe     string             `json:"recipe"`
	Metrics    map[string]float64 `json:"metrics"`
}

func cmdEval(args []string) error {
	fs := newFlags("eval")
	sets := fs.StringArray("set", nil, "override a field of the checkpoint's recipe, e.g. --set eval.examples=1000")
	all := fs.Bool("all", false, "evaluate every kept checkpoint of the run and plot each metric against step")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel eval RUN_DIR|CHECKPOINT_DIR [flags]\n\nPrints one JSON object of metrics and writes eval.json beside the checkpoint.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("eval: expected one run or checkpoint directory, got %d arguments", fs.NArg())}
	}
	path := fs.Arg(0)
	warn := func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) }
	var dirs []string
	if *all {
		root := filepath.Join(path, "checkpoints")
		list, err := checkpoints.List(root)
		if err != nil || len(list) == 0 {
			return fmt.Errorf("eval --all: %s has no checkpoints (expected %s/step-*)", path, root)
		}
		dirs = list
	} else {
		dir, err := checkpoints.Resolve(path, warn)
		if err != nil {
			return err
		}
		dirs = []string{dir}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: evaluating on %s\n", info)
	var results []evalResult
	for _, dir := range dirs {
		if _, err := checkpoints.Verify(dir); err != nil {
			if *all {
				warn(err.Error() + "; skipped")
				continue
			}
			return err
		}
		r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), *sets)
		if err != nil {
			return err
		}
		task, err := tasks.New(r)
		if err != nil {
			return err
		}
		m, st, err := train.EvaluateCheckpoint(b, task, dir)
		if err != nil {
			return err
		}
		res := evalResult{Checkpoint: dir, Step: st.Step, Recipe: r.Name, Metrics: m}
		if err := checkpoints.WriteJSON(filepath.Join(dir, "eval.json"), res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "reel: %s (step %d): %s\n", dir, st.Step, train.FormatMetrics(m))
		results = append(results, res)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if !*all {
		return enc.Encode(results[0])
	}
	if err := plotAll(path, results); err != nil {
		warn("plot: " + err.Error())
	}
	return enc.Encode(map[string]any{"run": path, "checkpoints": results})
}

// plotAll writes RUN/plots/eval-<metric>.png for every metric against step.
func plotAll(run string, results []evalResult) error {
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
