package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/reward"
	"github.com/reelml/reel/tasks"
)

const rewardProgressUsage = `Usage: reel reward progress MODEL|--oracle --data DIR [--prefixes 15] [--episodes N] [--out FILE] [--write]

TOPReward (arXiv 2602.19313) progress curves: for each episode of the LeRobot dataset DIR, the
reward model's log p("True") for prefixes of unique(round(linspace(1, T, P))) frames, min-max
normalised per episode, and its Value-Order Correlation (Spearman with time). Prints one JSON
object: per-episode curves (prefix_lengths, log_p, progress, voc), the mean voc, voc_by_kind
(expert/failed, when the dataset records success) and success_detection (a threshold on the
whole episode's log p chosen on a stratified train split, accuracy/precision/recall held out).

MODEL is an ExeVRM run (its success log-probability) or a pretrained Hugging Face VLM directory
(PaliGemma or LLaVA with its tokenizer.json). --oracle takes the dataset's labels instead of a
model (ground truth: success episodes rise linearly to 1 at decision_step, the others stay 0).
--write stores each frame's progress (the curve
interpolated) in DIR/topreward_progress.parquet, LeRobot's RA-BC file, which a vla recipe with
train.sample_weights: progress reads.`

// rewardCommands are the subcommands of `reel reward`.
var rewardCommands = map[string]func(args []string) error{"progress": cmdRewardProgress}

func cmdReward(args []string) error { return dispatch("reward", rewardCommands, args) }

func cmdRewardProgress(args []string) error {
	fs := newFlags("reward progress")
	dir := fs.String("data", "", "LeRobot dataset directory (required)")
	prefixes := fs.Int("prefixes", reward.DefaultPrefixes, "prefix samples per episode (0: every prefix)")
	episodes := fs.Int("episodes", 0, "score the first N episodes only (0: all)")
	camera := fs.String("camera", "", "camera to show the model (default: the dataset's first)")
	size := fs.Int("size", 0, "fit frames to SIZE×SIZE before the model (0: the camera's native size)")
	out := fs.String("out", "", "also write the JSON to FILE")
	write := fs.Bool("write", false, "store per-frame progress in DIR/"+reward.ProgressFile)
	oracle := fs.Bool("oracle", false, "ground-truth progress from the dataset's success and decision_step labels (no MODEL)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = usageFunc(fs, rewardProgressUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *oracle && fs.NArg() != 0:
		return &exitError{2, fmt.Errorf("reward progress: --oracle takes no MODEL, got %q", fs.Arg(0))}
	case !*oracle && fs.NArg() != 1:
		return &exitError{2, fmt.Errorf("reward progress: expected one MODEL (a run or a VLM directory) or --oracle, got %d arguments", fs.NArg())}
	case *dir == "":
		return &exitError{2, fmt.Errorf("reward progress: --data: a LeRobot dataset directory is required")}
	}
	opts, err := reward.FlagOptions(*prefixes, *episodes, *camera, *size)
	if err != nil {
		return &exitError{2, fmt.Errorf("reward progress: %w", err)}
	}
	ds, err := lerobot.Open(*dir)
	if err != nil {
		return err
	}
	var rep *reward.Report
	if *oracle {
		rep, err = reward.ScoreOracle(ds, opts)
	} else {
		rep, err = tasks.ScoreProgress(*backend, fs.Arg(0), ds, opts)
	}
	if err != nil {
		return err
	}
	if *write {
		path, err := reward.WriteProgress(ds, rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote per-frame progress of %d episodes to %s\n", len(rep.Episodes), path)
	}
	js, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if *out != "" {
		if err := atomicfile.WriteFile(*out, js); err != nil {
			return fmt.Errorf("reward progress: --out: %w", err)
		}
	}
	_, err = os.Stdout.Write(js)
	return err
}
