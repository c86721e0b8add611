package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/tasks"
)

const dataAuditUsage = `Usage: reel data audit FILE.jsonl [--json]

Audits caption / QA text for reporting bias: the fraction of texts that
mention counts, spatial relations, temporal order and negation. FILE is JSONL
with one object per line; its "caption", "text", "question" and "answer"
fields and its "conversations" / "messages" turns are audited as one text.`

const dataGenVideoUsage = `Usage: reel data gen-video --n N --out DIR [flags]

Writes N synthetic videos of moving shapes (the default video config: 1-4
objects that move, turn, bounce, appear and leave over a plain, gradient or
noisy background) as DIR/videos/000000.mp4 ... and their captions as
DIR/captions.jsonl, one {"video": ..., "caption": ...} object per line.
Needs the ffmpeg program. The same flags always give the same videos.`

// dataCommands are the subcommands of `reel data`.
var dataCommands = map[string]func(args []string) error{
	"audit": cmdDataAudit, "gen-video": cmdDataGenVideo, "gen-sim": cmdDataGenSim, "gen-reward": cmdDataGenReward, "merge": cmdDataMerge, "stats": cmdDataStats,
}

func cmdData(args []string) error {
	return dispatch("data", dataCommands, args)
}

func cmdDataAudit(args []string) error {
	fs := newFlags("data audit")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	fs.Usage = usageFunc(fs, dataAuditUsage)
	if err := parseArgs(fs, args, 1, "expected one JSONL file"); err != nil {
		return err
	}
	path := fs.Arg(0)
	r, err := data.AuditJSONL(path)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSONLine(struct {
			File string `json:"file"`
			data.AuditReport
		}{path, r})
	}
	return r.WriteTable(os.Stdout, path)
}

func cmdDataGenVideo(args []string) error {
	fs := newFlags("data gen-video")
	n := fs.Int("n", 0, "number of videos (required)")
	out := fs.String("out", "", "output directory (required)")
	frames := fs.Int("frames", 8, "frames per video")
	size := fs.Int("size", 32, "frame side in pixels")
	seed := fs.Uint64("seed", 1, "random seed (video i is drawn from data.VideoSeed(seed, i))")
	fps := fs.Float64("fps", 8, "frames per second of the mp4 files")
	fs.Usage = usageFunc(fs, dataGenVideoUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		return &exitError{2, fmt.Errorf("data gen-video: "+format, a...)}
	}
	switch {
	case fs.NArg() != 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *n < 1:
		return usageErr("--n must be a positive number of videos, got %d", *n)
	case *out == "":
		return usageErr("--out DIR is required")
	case !(*fps > 0) || math.IsInf(*fps, 0):
		return usageErr("--fps must be positive, got %g", *fps)
	}
	start := time.Now()
	if err := data.WriteSyntheticVideos(*out, *frames, *size, *n, *seed, *fps); err != nil {
		return usageError(fmt.Errorf("data gen-video: %w", err))
	}
	fmt.Printf("wrote %d videos (%d frames of %dx%d at %g fps) to %s and their captions to %s in %.1fs\n",
		*n, *frames, *size, *size, *fps, filepath.Join(*out, "videos"), filepath.Join(*out, "captions.jsonl"),
		time.Since(start).Seconds())
	return nil
}

const dataGenSimUsage = `Usage: reel data gen-sim --episodes N --out DIR [flags]

Generates N expert episodes in procedural simulated tabletop scenes (the data engine of the
recipe: layouts, objects, task families, variation, expert noise) and writes them as a LeRobot
dataset (needs ffmpeg). --format v3.0 (the default, LeRobot ≥ 0.4): data/chunk-000/file-000.parquet
with many episodes per file, videos/observation.images.CAM/chunk-000/file-000.mp4 (AV1 as LeRobot
encodes, H.264 for frames under 64 pixels), meta/info.json, meta/episodes/chunk-000/file-000.parquet,
meta/tasks.parquet and meta/stats.json. --format v2.1: one parquet and one mp4 per episode,
meta/episodes.jsonl, meta/tasks.jsonl and meta/episodes_stats.jsonl.
Episode i is drawn from seed sim.TrainSeed(--seed, i): the same flags give the same dataset.
--shard I/N writes only the I-th of N contiguous parts of the N episodes (I from 0), for array
jobs; 'reel data merge' joins the parts into the dataset one process would have written.
Train on it with: reel train molmobot-tiny --set data.source=lerobot --set data.dir=DIR
`

const dataGenRewardUsage = `Usage: reel data gen-reward --episodes N --out DIR [flags]

Generates N reward-model episodes (execution videos with ground truth, as ExeVRM trains on) in
procedural simulated scenes and writes them as a LeRobot dataset (needs ffmpeg): episode i is an
expert execution (i%3 = 0), a failed one (the expert with heavy noise, a drift, the wrong target
or an early stop; i%3 = 1), or the video of episode i-2 with its instruction rewritten to another
object, colour, receptacle or family so that it is false (i%3 = 2). Each episode's metadata has
success (the simulator's check), decision_step (the frame at which the outcome is decided) and
kind (expert, failed:MODE, adversarial:REWRITE); the last frame shows the final state.
--eval draws the held-out scenes (sim.EvalSeed) instead of the training ones. Other flags as
'reel data gen-sim'.
`

func cmdDataGenSim(args []string) error {
	return genSimData("gen-sim", dataGenSimUsage, "molmobot-tiny", args)
}

func cmdDataGenReward(args []string) error {
	return genSimData("gen-reward", dataGenRewardUsage, "exevrm-tiny", args)
}

// genSimData is 'reel data gen-sim' and, for name gen-reward, 'reel data gen-reward'.
func genSimData(name, usage, defaultRecipe string, args []string) error {
	reward := name == "gen-reward"
	fs := newFlags("data " + name)
	n := fs.Int("episodes", 0, "number of episodes of the whole dataset (required)")
	out := fs.String("out", "", "output directory (required)")
	recipe := fs.String("recipe", defaultRecipe, "recipe (name or file) whose data section describes the scenes")
	eval := false
	if reward {
		fs.BoolVar(&eval, "eval", false, "draw the held-out (evaluation) scenes")
	}
	sets := fs.StringArray("set", nil, "override a recipe field, e.g. --set data.variation=1")
	workers := fs.Int("workers", 0, "generator goroutines (0 = number of CPUs)")
	seed := fs.Uint64("seed", 1, "base seed of the episodes")
	fps := fs.Int("fps", 10, "frames per second recorded in the dataset and its videos")
	format := fs.String("format", lerobot.V30, "dataset layout: v3.0 or v2.1")
	shard := fs.String("shard", "", "write only shard I of N (\"I/N\", I from 0)")
	codec := fs.String("codec", lerobot.CodecAuto, "video codec: auto (AV1 when possible), av1 or h264")
	overwrite := fs.Bool("overwrite", false, "replace an existing dataset in DIR")
	fs.Usage = usageFunc(fs, usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		return &exitError{2, fmt.Errorf("data "+name+": "+format, a...)}
	}
	shardI, shardN, ok := sim.ParseShard(*shard)
	if !ok {
		return usageErr("--shard %q: want I/N with 0 ≤ I < N", *shard)
	}
	opts := sim.DatasetOptions{
		GenerateOptions: sim.GenerateOptions{Episodes: *n, Seed: *seed, Workers: *workers, Shard: shardI, Shards: shardN},
		Writer:          lerobot.WriterConfig{Format: *format, FPS: *fps, Overwrite: *overwrite, Codec: *codec},
		Reward:          reward, Eval: eval,
	}
	if fs.NArg() != 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := opts.CheckFlags(*out, *shard); err != nil {
		return usageErr("%w", err)
	}
	r, err := recipes.Load(*recipe, *sets)
	if err != nil {
		return err
	}
	cfg, err := tasks.SimConfig(r)
	if err != nil {
		return err
	}
	start := time.Now()
	if term.IsTerminal(int(os.Stderr.Fd())) { // no bar in logs; the summary line below says what was done
		opts.ProgressBar = os.Stderr
	}
	res, err := sim.WriteDataset(*out, cfg, opts)
	if err != nil {
		return fmt.Errorf("data %s: %w", name, err)
	}
	if reward {
		fmt.Printf("wrote %d reward episodes (%d successful) as LeRobot %s to %s in %.1fs\n",
			res.Episodes, res.Solved, *format, *out, time.Since(start).Seconds())
		return nil
	}
	part := ""
	if lo, hi := sim.ShardRange(*n, shardI, shardN); shardN > 1 {
		part = fmt.Sprintf(" (shard %d/%d: episodes %d..%d of %d)", shardI, shardN, lo, hi-1, *n)
	}
	fmt.Printf("wrote %d episodes%s (%d solved by the expert, %d-px cameras) as LeRobot %s to %s in %.1fs\n",
		res.Episodes, part, res.Solved, cfg.ImageSize, *format, *out, time.Since(start).Seconds())
	return nil
}

const dataMergeUsage = `Usage: reel data merge DIR... --out DIR [--overwrite]

Joins LeRobot datasets (v3.0, v2.1 or v2.0; same fps, robot type and features) into one v3.0
dataset, as LeRobot's aggregate_datasets does: episodes renumbered in the order given, global
frame indices and task indices rewritten, tasks unified, video files joined without
re-encoding, statistics aggregated. Merging the shards of 'reel data gen-sim --shard I/N' in
order gives the dataset a single gen-sim run writes.`

func cmdDataMerge(args []string) error {
	fs := newFlags("data merge")
	out := fs.String("out", "", "output directory (required)")
	overwrite := fs.Bool("overwrite", false, "replace an existing dataset in --out")
	fs.Usage = usageFunc(fs, dataMergeUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return &exitError{2, errors.New("data merge: expected at least one dataset directory")}
	case *out == "":
		return &exitError{2, errors.New("data merge: --out DIR is required")}
	}
	start := time.Now()
	if err := lerobot.Merge(*out, fs.Args(), lerobot.MergeConfig{Overwrite: *overwrite}); err != nil {
		return err
	}
	ds, err := lerobot.Open(*out)
	if err != nil {
		return err
	}
	fmt.Printf("merged %d datasets into %s: %d episodes, %d frames, in %.1fs\n", fs.NArg(), *out, ds.NumEpisodes(), ds.NumFrames(), time.Since(start).Seconds())
	return nil
}

const dataStatsUsage = `Usage: reel data stats DIR [--json] [--images]

Prints the statistics of a LeRobot dataset's state, action and cameras (per dimension: mean,
std, min, max and the quantiles q01, q10, q50, q90, q99; cameras per RGB channel in [0, 1]) and
what each normalisation mode uses of them: mean_std (x − mean)/std, min_max [min, max] → [−1, 1],
quantiles [q01, q99] → [−1, 1]. Statistics the dataset lacks are computed from the data;
--images also computes missing camera statistics (decodes sampled frames of every episode).`

func cmdDataStats(args []string) error {
	fs := newFlags("data stats")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	images := fs.Bool("images", false, "compute camera statistics the dataset lacks")
	fs.Usage = usageFunc(fs, dataStatsUsage)
	if err := parseArgs(fs, args, 1, "expected one dataset directory"); err != nil {
		return err
	}
	ds, err := lerobot.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	rep, err := ds.StatsReport(*images)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSONLine(rep)
	}
	return rep.WriteText(os.Stdout)
}
