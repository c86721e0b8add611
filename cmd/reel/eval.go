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
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

type evalResult struct {
	Checkpoint string                   `json:"checkpoint"`
	Step       int64                    `json:"step"`
	Recipe     string                   `json:"recipe"`
	Metrics    map[string]float64       `json:"metrics"`
	Groups     map[string][]train.Group `json:"groups,omitempty"`
	// Baseline is the init_from checkpoint evaluated on the same sets, and Delta = Metrics −
	// Baseline.Metrics: what the fine-tune changed.
	Baseline *evalResult        `json:"baseline,omitempty"`
	Delta    map[string]float64 `json:"delta,omitempty"`
	// ClosedLoop is a policy's closed-loop evaluation in held-out simulated scenes (task vla).
	ClosedLoop *vlaEval `json:"closed_loop,omitempty"`
}

func cmdEval(args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		return cmdEvalMerge(args[1:])
	}
	fs := newFlags("eval")
	sets := fs.StringArray("set", nil, "override a field of the checkpoint's recipe, e.g. --set eval.examples=1000")
	all := fs.Bool("all", false, "evaluate every kept checkpoint of the run and plot each metric against step")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	baseline := fs.String("baseline", "", `run or checkpoint to compare against (default: the recipe's train.init_from; "none" to skip)`)
	ema := fs.Bool("ema", false, "evaluate the moving average of the weights (runs trained with train.ema)")
	remote := fs.String("remote", "", "vla: evaluate the policy served at this ws:// URL (reel serve) instead of the checkpoint's weights")
	maxConns := fs.Int("max-connections", 16, "--remote: most episodes played at once, each through its own connection")
	actTimeout := fs.Duration("act-timeout", serve.DefaultActTimeout, "--remote: longest wait for one reply; an episode waiting longer fails (timeout)")
	shardID := fs.Int("shard-id", 0, "--remote: this process's shard of the episodes (0-based; with --num-shards)")
	numShards := fs.Int("num-shards", 0, "--remote: number of shards; episode i belongs to shard i mod N (merge with 'reel eval merge')")
	resultsDir := fs.String("results", "", "--remote: directory of the per-episode JSONL and aggregate JSON (default RUN/results)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel eval RUN_DIR|CHECKPOINT_DIR [flags]\n\nPrints one JSON object of metrics and writes eval.json beside the checkpoint. A policy (task vla)\nis also rolled out closed-loop in held-out simulated scenes (eval.episodes), reporting success\nwith a 95% interval per task family and writing eval.videos rollout videos to RUN/rollouts/;\nwith --remote ws://HOST:PORT the policy served there (reel serve, or any vla-eval model server) is\nevaluated instead, episode by episode as the vla-eval harness runs benchmarks (at most\n--max-connections at once; a failed episode counts as a failure and never stops the others), in\nshards if asked (--shard-id/--num-shards), writing RUN/results/reel-sim[_shardIofN].jsonl and\n_aggregate.json in the harness's result layout; 'reel eval merge' joins shards. For a fine-tuned run\nit also evaluates the init_from checkpoint on the same sets and reports the delta, and draws\nRUN/plots/numerosity.png (accuracy and MAE per true count, before and after).\n\nFlags:")
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
	ro := remoteEval{url: *remote, maxConns: *maxConns, actTimeout: *actTimeout, resultsDir: *resultsDir}
	for _, f := range []string{"max-connections", "act-timeout", "shard-id", "num-shards", "results"} {
		if fs.Changed(f) && *remote == "" {
			return &exitError{2, fmt.Errorf("eval: --%s is for --remote evaluations", f)}
		}
	}
	switch {
	case *maxConns < 1:
		return &exitError{2, fmt.Errorf("eval: --max-connections must be ≥ 1, got %d", *maxConns)}
	case *actTimeout <= 0:
		return &exitError{2, fmt.Errorf("eval: --act-timeout must be positive, got %s", *actTimeout)}
	case fs.Changed("shard-id") && !fs.Changed("num-shards"):
		return &exitError{2, fmt.Errorf("eval: --shard-id needs --num-shards")}
	case fs.Changed("num-shards"):
		if *numShards < 1 || *shardID < 0 || *shardID >= *numShards {
			return &exitError{2, fmt.Errorf("eval: --shard-id must be in [0, --num-shards) and --num-shards ≥ 1, got %d and %d", *shardID, *numShards)}
		}
		ro.shard = &serve.ShardInfo{ID: *shardID, Total: *numShards}
	}
	if *all && *remote != "" {
		return &exitError{2, fmt.Errorf("eval: --all and --remote exclude each other")}
	}
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
		if c, ok := task.(interface{ Close() }); ok {
			defer c.Close()
		}
		if vt, ok := task.(*tasks.VLA); ok {
			res, err := evalVLA(b, vt, dir, *sets, ro)
			if err != nil {
				return err
			}
			if ro.shard == nil { // a shard's result is partial: it lives in its results files
				if err := checkpoints.WriteJSON(filepath.Join(dir, "eval.json"), res); err != nil {
					return err
				}
			}
			results = append(results, res)
			continue
		} else if *remote != "" {
			return &exitError{2, fmt.Errorf("eval: --remote is for policies (task vla); %s is task %s", dir, r.Task)}
		}
		rep, st, err := train.EvaluateCheckpoint(b, task, dir, r.Train, *ema)
		if err != nil {
			return err
		}
		res := evalResult{Checkpoint: dir, Step: st.Step, Recipe: r.Name, Metrics: rep.Metrics, Groups: rep.Groups}
		fmt.Fprintf(os.Stderr, "reel: %s (step %d): %s\n", dir, st.Step, train.FormatMetrics(rep.Metrics))
		if r.Task == "exevrm" {
			printRewardTable(os.Stderr, rep.Metrics)
		}
		if base := baselinePath(*baseline, r); base != "" && !*all {
			var (
				brep train.Report
				bst  checkpoints.State
				bdir string
				err  error
			)
			if hf.IsModelDir(base) { // a Hugging Face directory: the pretrained model of the fine-tune
				bdir, bst.Recipe = base, "pretrained"
				var m *hf.Model
				if m, err = hf.Load(b, base); err == nil {
					brep, err = train.EvaluateStore(b, task, m.Store, r.Train)
				}
				if err != nil {
					return fmt.Errorf("baseline %s: %v", base, err)
				}
			} else if bdir, err = checkpoints.Resolve(base, warn); err != nil {
				bdir = ""
				if *baseline != "" {
					return fmt.Errorf("--baseline: %v", err)
				}
				warn(fmt.Sprintf("baseline: train.init_from %s: %v; skipped (pass --baseline DIR)", base, err))
			} else {
				// The baseline runs with its own graph options: a LoRA fine-tune's base has no adapters.
				bc := r.Train
				if br, err := recipes.Load(filepath.Join(bdir, "recipe.yaml"), nil); err == nil {
					bc = br.Train
				}
				if brep, bst, err = train.EvaluateCheckpoint(b, task, bdir, bc, false); err != nil {
					return fmt.Errorf("baseline %s: %v", bdir, err)
				}
			}
			if bdir != "" {
				res.Baseline = &evalResult{Checkpoint: bdir, Step: bst.Step, Recipe: bst.Recipe, Metrics: brep.Metrics, Groups: brep.Groups}
				res.Delta = map[string]float64{}
				for k, v := range rep.Metrics {
					if bv, ok := brep.Metrics[k]; ok {
						res.Delta[k] = v - bv
					}
				}
				fmt.Fprintf(os.Stderr, "reel: baseline %s (step %d): %s\n", bdir, bst.Step, train.FormatMetrics(brep.Metrics))
				fmt.Fprintf(os.Stderr, "reel: delta: %s\n", train.FormatMetrics(res.Delta))
			}
		}
		if err := checkpoints.WriteJSON(filepath.Join(dir, "eval.json"), res); err != nil {
			return err
		}
		if !*all {
			if err := plotNumerosity(dir, res); err != nil {
				warn("plot: " + err.Error())
			}
		}
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

// baselinePath is the checkpoint a fine-tuned run is compared against: --baseline, else the
// recipe's train.init_from, else its pretrained Hugging Face directory (model.pretrained); ""
// for none.
func baselinePath(flag string, r *recipes.Recipe) string {
	switch flag {
	case "none":
		return ""
	case "":
		if r.Train.InitFrom == "" && r.Model.Pretrained != "" && r.Model.Pretrained != "random" {
			return r.Model.Pretrained
		}
		return r.Train.InitFrom
	}
	return flag
}

// plotNumerosity draws RUN/plots/numerosity.png from the per-count groups of every counting set
// (in-distribution and the OOD more_objects counts join into one curve), before and after.
func plotNumerosity(ckpt string, res evalResult) error {
	merge := func(r *evalResult) []train.Group {
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
	path := filepath.Join(runOf(ckpt), "plots", "numerosity.png")
	if err := train.PlotGroups(path, "numerosity", "true count", []string{"accuracy", "mae"}, series); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: wrote %s\n", path)
	return nil
}

const evalMergeUsage = `Usage: reel eval merge SHARD_RESULTS... --out FILE

Joins the results of an evaluation's shards (the .jsonl or _aggregate.json files that
'reel eval RUN --remote URL --shard-id I --num-shards N' writes, or per-episode JSONL in the same
layout from a vla-eval benchmark client) into one aggregate JSON in the vla-eval harness's result
layout: episodes grouped by task with mean_success, num_errors and avg_steps per task and overall.
An episode found in two files, or files of different benchmarks, are refused; a missing shard is a
warning.
`

// cmdEvalMerge is `reel eval merge`.
func cmdEvalMerge(args []string) error {
	fs := newFlags("eval merge")
	out := fs.String("out", "", "aggregate JSON to write (required)")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, evalMergeUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return &exitError{2, fmt.Errorf("eval merge: expected one or more shard result files")}
	case *out == "":
		return &exitError{2, fmt.Errorf("eval merge: --out FILE is required")}
	}
	meta, records, warnings, err := serve.MergeResults(fs.Args())
	if err != nil {
		return fmt.Errorf("eval merge: %v", err)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "reel: warning: eval merge: "+w)
	}
	agg := serve.Aggregate(meta, records)
	if err := serve.WriteAggregate(*out, agg); err != nil {
		return fmt.Errorf("eval merge: %v", err)
	}
	errs := 0
	for _, r := range records {
		if r.FailureReason != "" {
			errs++
		}
	}
	fmt.Fprintf(os.Stderr, "reel: merged %d episodes of %s from %d files into %s: mean_success %v, %d failed\n",
		len(records), meta.Benchmark, fs.NArg(), *out, agg["mean_success"], errs)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"out": *out, "benchmark": meta.Benchmark, "episodes": len(records), "mean_success": agg["mean_success"], "failed": errs})
}
