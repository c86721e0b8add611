package main

import (
	"fmt"
	"os"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/evaluate"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/tasks"
)

const evalUsage = `Usage: reel eval RUN_DIR|CHECKPOINT_DIR|LEROBOT_POLICY_DIR [flags]

Prints one JSON object of metrics and writes eval.json beside the checkpoint. A policy (task vla)
is also rolled out closed-loop in held-out simulated scenes (eval.episodes), reporting success
with a 95% interval per task family and writing eval.videos rollout videos to RUN/rollouts/;
with --remote ws://HOST:PORT the policy served there (reel serve, or any vla-eval model server) is
evaluated instead, episode by episode as the vla-eval harness runs benchmarks (at most
--max-connections at once; a failed episode counts as a failure and never stops the others), in
shards if asked (--shard-id/--num-shards), writing RUN/results/reel-sim[_shardIofN].jsonl and
_aggregate.json in the harness's result layout; 'reel eval merge' joins shards. For a fine-tuned run
it also evaluates the init_from checkpoint on the same sets and reports the delta, and draws
RUN/plots/numerosity.png (accuracy and MAE per true count, before and after). A LeRobot policy
directory (pi0: config.json, model.safetensors, processor pipelines) is evaluated as it is, on the
dataset given by --set data.source=lerobot --set data.dir=DIR (its own normalisation statistics
kept; --set policy.norm_stats=dataset when the dataset's dimensions differ from its features), and
closed-loop when its features fit the simulator; nothing is written into it.`

func cmdEval(args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		return cmdEvalMerge(args[1:])
	}
	fs := newFlags("eval")
	o := evaluate.Options{Log: logf, Warn: warn, Tables: os.Stderr}
	fs.StringArrayVar(&o.Sets, "set", nil, "override a field of the checkpoint's recipe, e.g. --set eval.examples=1000")
	all := fs.Bool("all", false, "evaluate every kept checkpoint of the run and plot each metric against step")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.StringVar(&o.Baseline, "baseline", "", `run, checkpoint or Hugging Face directory to compare against (default: the recipe's train.init_from, else for a model.pretrained run "init", the run's initialisation: the pretrained weights and the same seed's new parameters; "none" to skip)`)
	fs.BoolVar(&o.EMA, "ema", false, "evaluate the moving average of the weights (runs trained with train.ema)")
	ro := evaluate.Remote{}
	fs.StringVar(&ro.URL, "remote", "", "vla: evaluate the policy served at this ws:// URL (reel serve) instead of the checkpoint's weights")
	fs.IntVar(&ro.MaxConns, "max-connections", 16, "--remote: most episodes played at once, each through its own connection")
	fs.DurationVar(&ro.ActTimeout, "act-timeout", serve.DefaultActTimeout, "--remote: longest wait for one reply; an episode waiting longer fails (timeout)")
	shardID := fs.Int("shard-id", 0, "--remote: this process's shard of the episodes (0-based; with --num-shards)")
	numShards := fs.Int("num-shards", 0, "--remote: number of shards; episode i belongs to shard i mod N (merge with 'reel eval merge')")
	fs.StringVar(&ro.ResultsDir, "results", "", "--remote: directory of the per-episode JSONL and aggregate JSON (default RUN/results)")
	fs.Usage = usageFunc(fs, evalUsage)
	if err := parseArgs(fs, args, 1, "expected one run or checkpoint directory"); err != nil {
		return err
	}
	path := fs.Arg(0)
	if err := ro.Check(*shardID, *numShards, fs.Changed); err != nil {
		return usageError(err)
	}
	if ro.URL != "" {
		if *all {
			return &exitError{2, fmt.Errorf("eval: --all and --remote exclude each other")}
		}
		o.Remote = &ro
	}
	r, spec, foreign, err := tasks.ForeignPolicy(path, o.Sets) // a LeRobot policy directory, as it is
	var dirs []string
	switch {
	case foreign && err != nil:
		return err
	case foreign && (*all || o.Remote != nil):
		return &exitError{2, fmt.Errorf("eval: --all and --remote are for reel runs; %s is a policy directory of another framework", path)}
	case !foreign:
		if dirs, err = evaluate.Checkpoints(path, *all, warn); err != nil {
			return err
		}
		o.Series = *all
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	logf("evaluating on %s", info)
	if foreign {
		res, err := evaluate.Foreign(b, path, r, spec, o)
		if err != nil {
			return usageError(err)
		}
		return printJSON(res)
	}
	results, err := evaluate.Run(b, dirs, o)
	if err != nil {
		return usageError(err)
	}
	if !*all {
		return printJSON(results[0])
	}
	if err := evaluate.PlotSeries(path, results); err != nil {
		warn("plot: " + err.Error())
	}
	return printJSON(map[string]any{"run": path, "checkpoints": results})
}

const evalMergeUsage = `Usage: reel eval merge SHARD_RESULTS... --out FILE

Joins the results of an evaluation's shards (the .jsonl or _aggregate.json files that
'reel eval RUN --remote URL --shard-id I --num-shards N' writes, or per-episode JSONL in the same
layout from a vla-eval benchmark client) into one aggregate JSON in the vla-eval harness's result
layout: episodes grouped by task with mean_success, num_errors and avg_steps per task and overall.
An episode found in two files, or files of different benchmarks, are refused; a missing shard is a
warning.`

// cmdEvalMerge is `reel eval merge`.
func cmdEvalMerge(args []string) error {
	fs := newFlags("eval merge")
	out := fs.String("out", "", "aggregate JSON to write (required)")
	fs.Usage = usageFunc(fs, evalMergeUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return &exitError{2, fmt.Errorf("eval merge: expected one or more shard result files")}
	case *out == "":
		return &exitError{2, fmt.Errorf("eval merge: --out FILE is required")}
	}
	m, err := evaluate.Merge(fs.Args(), *out)
	for _, w := range m.Warnings {
		warn("eval merge: " + w)
	}
	if err != nil {
		return err
	}
	logf("merged %d episodes of %s from %d files into %s: mean_success %v, %d failed", m.Episodes, m.Benchmark, fs.NArg(), *out, m.MeanSuccess, m.Failed)
	return printJSON(m)
}
