package sim

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"

	"github.com/reelml/reel/lerobot"
)

// DatasetOptions configure WriteDataset: which episodes (GenerateOptions, with Reward and Eval
// choosing GenerateReward's episodes and scenes) and how the LeRobot dataset is written
// (Writer's Format, FPS, Codec and Overwrite; WriteDataset sets the state and action names).
type DatasetOptions struct {
	GenerateOptions
	Writer lerobot.WriterConfig
	Reward bool // reward-model episodes (GenerateReward) instead of expert ones (Generate)
	Eval   bool // with Reward: the held-out scenes
	// ProgressBar, if set, shows a bar of the shard's episodes (over GenerateOptions.Progress).
	ProgressBar io.Writer
}

// CheckFlags checks opts as 'reel data gen-sim' and 'gen-reward' take them (errors name their
// flags): out is the output directory, shard the --shard text opts.Shard/Shards were parsed from
// (ParseShard).
func (o DatasetOptions) CheckFlags(out, shard string) error {
	switch {
	case o.Episodes < 1:
		return fmt.Errorf("--episodes must be a positive number, got %d", o.Episodes)
	case out == "":
		return fmt.Errorf("--out DIR is required")
	case o.Writer.FPS < 1:
		return fmt.Errorf("--fps must be a positive integer, got %d", o.Writer.FPS)
	case o.Workers < 0:
		return fmt.Errorf("--workers must be ≥ 0, got %d", o.Workers)
	case o.Writer.Format != lerobot.V30 && o.Writer.Format != lerobot.V21:
		return fmt.Errorf("--format %q: want v3.0 or v2.1", o.Writer.Format)
	case o.Shards > o.Episodes:
		return fmt.Errorf("--shard %s: more shards than the %d episodes", shard, o.Episodes)
	}
	return nil
}

// WriteDataset generates the episodes of opts in scenes of cfg and writes them as the LeRobot
// dataset dir ('reel data gen-sim' and 'reel data gen-reward'): the writer is created (it
// refuses a directory holding something else unless Overwrite), filled as the episodes are
// recorded, and closed.
func WriteDataset(dir string, cfg Config, opts DatasetOptions) (GenerateResult, error) {
	wc := opts.Writer
	wc.StateNames, wc.ActionNames = StateNames(), ActionNames()
	w, err := lerobot.Create(dir, wc)
	if err != nil {
		return GenerateResult{}, err
	}
	if opts.ProgressBar != nil {
		lo, hi := ShardRange(opts.Episodes, opts.Shard, max(opts.Shards, 1))
		bar := progressbar.NewOptions(hi-lo, progressbar.OptionSetDescription("episodes"), progressbar.OptionSetWriter(opts.ProgressBar),
			progressbar.OptionShowCount(), progressbar.OptionSetItsString("ep"), progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
		defer bar.Finish()
		next := opts.Progress
		opts.Progress = func(ep lerobot.Episode) {
			_ = bar.Add(1)
			if next != nil {
				next(ep)
			}
		}
	}
	var res GenerateResult
	if opts.Reward {
		res, err = GenerateReward(cfg, RewardOptions{GenerateOptions: opts.GenerateOptions, Eval: opts.Eval}, w)
	} else {
		res, err = Generate(cfg, opts.GenerateOptions, w)
	}
	if err != nil {
		w.Abort() // an existing dataset being replaced stays as it was
		return res, err
	}
	return res, w.Close()
}
