package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/reelml/reel/bench"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/serve"
)

// `reel bench NAME`: flags and printing; the benchmarks are package bench.

// benchCommands are the benchmarks of `reel bench NAME`.
var benchCommands = map[string]func(args []string) error{
	"vit": benchViT, "video": benchVideo, "stts": benchSTTS, "rdvla": benchRDVLA, "data": benchData, "serve": benchServe,
	"hf": benchHF, "finetune": benchFinetune,
}

func cmdBench(args []string) error {
	return dispatch("bench", benchCommands, args)
}

// benchResult prints a benchmark's rows as JSON or, with table, as its table; a usage.Error exits
// with status 2.
func benchResult[R any](rows R, err error, asJSON bool, table func(R)) error {
	if err != nil {
		return usageError(err)
	}
	if asJSON {
		return printJSON(rows)
	}
	table(rows)
	return nil
}

// modelFlags are the flags `reel bench vit` and `reel bench video` share.
func modelFlags(fs *pflag.FlagSet, sweepBatch int) *bench.ModelOptions {
	o := &bench.ModelOptions{Log: logf}
	fs.IntVar(&o.Steps, "steps", 5, "timed steps per round (after 2 warm-up steps)")
	fs.IntVar(&o.Rounds, "rounds", 3, "timed rounds per model, alternating reel and PyTorch; the best of each is compared and the spread printed")
	fs.IntVar(&o.SweepBatch, "sweep-batch", sweepBatch, "batch size of the sweep's models")
	fs.StringVar(&o.Precision, "precision", "f32", "f32 or bf16 (reel: train.precision; PyTorch: autocast)")
	fs.StringVar(&o.Device, "torch-device", "auto", "PyTorch device: cpu, cuda, or auto (cuda when reel runs on XLA CUDA)")
	fs.StringVar(&o.Python, "python", "auto", "Python with torch for the reference (auto: /usr/bin/python3, then python3; \"\" to skip)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile (pprof) of reel's first timed model to this file")
	fs.StringVar(&o.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	return o
}

func benchViT(args []string) error {
	fs := newFlags("bench vit")
	size := fs.String("size", "tiny", "reference ViT: tiny (64px, 8px patches, D192×6), s (ViT-S/16 at 224px) or b (ViT-B/16 at 224px)")
	batch := fs.Int("batch", 0, "batch size (default: 32 for tiny and s, 64 for b)")
	tokensFlag := fs.String("tokens", "", "also sweep these tokens per image (perfect squares, e.g. 64,256,1024), changing the image size")
	o := modelFlags(fs, 4)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, "Usage: reel bench vit [flags]\n\nTraining-step time (AdamW, fixed random batch) of the same ViT classifier in reel and in PyTorch\n(bench/vit_torch.py), measured in one run: step time, the ratio reel / PyTorch, compile time, model\nFLOPs, MFU and peak memory; with --tokens, how the step time grows with the sequence length.")
	if err := parse(fs, args); err != nil {
		return err
	}
	var sweep []int
	var err error
	if *tokensFlag != "" {
		if sweep, err = intFlagList("bench vit", "--tokens", *tokensFlag, bench.PerfectSquare, "a perfect square ≥ 1"); err != nil {
			return err
		}
	}
	jobs, err := bench.ViTJobs(*size, *batch, sweep, o.SweepBatch)
	if err == nil {
		err = o.Check("bench vit")
	}
	if err != nil {
		return usageError(err)
	}
	rows, err := bench.RunModels("bench vit-"+*size, *o, jobs)
	return benchResult(rows, err, *asJSON, func(r []bench.ModelRow) {
		bench.WriteModelTable(os.Stdout, r, fmt.Sprintf("sequence-length sweep (batch %d)", o.SweepBatch))
	})
}

func benchVideo(args []string) error {
	fs := newFlags("bench video")
	arch := fs.String("arch", "vivit", "vivit (ViViT tubelets + the TrajViT2/ViViT encoder tower), trajvit2 (TrajTok + the encoder tower) or stts (the STTS video encoder: per-frame blocks, group pooling, scorer, pruning)")
	size := fs.String("size", "tiny", "vivit: tiny (16×64² clips, 2×8² tubelets, D192×6) or b (16×224², 2×16², D768×12); trajvit2: tiny (8×64², stride 4, 32 latents, D192×6) or b (16×128², stride 4, 128 latents, D768×12); stts: tiny (16×48², 4² patches, 3×3 groups, D192×6) or b (32×216², 8², 3×3, D768×12)")
	keep := fs.Float64("keep", 0.5, "stts: kept share of the group tokens (1 = no pruning)")
	batch := fs.Int("batch", 0, "batch size (default: vivit 4 / 16, trajvit2 4 / 16, stts 4 / 8 for tiny / b)")
	frames := fs.String("frames", "", "also sweep these clip lengths (e.g. 4,8,16,32): tokens per video grow with them")
	o := modelFlags(fs, 2)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, "Usage: reel bench video [flags]\n\nTraining-step time (AdamW, fixed random clips) of the same video classifier in reel and in PyTorch\n(bench/video_torch.py, bench/stts_torch.py): ViViT tubelets and the TrajViT2/ViViT encoder tower, or\nthe STTS video encoder. Same columns as `reel bench vit`; with --frames, how the step time grows\nwith the tokens per video.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := o.Check("bench video"); err != nil {
		return usageError(err)
	}
	jobs, err := bench.VideoJobs(*arch, *size, *keep, *batch, *frames, o.SweepBatch)
	if err != nil {
		return usageError(err)
	}
	rows, err := bench.RunModels("bench video ("+*arch+"-"+*size+")", *o, jobs)
	return benchResult(rows, err, *asJSON, func(r []bench.ModelRow) {
		bench.WriteModelTable(os.Stdout, r, fmt.Sprintf("frames sweep (batch %d)", o.SweepBatch))
	})
}

func benchSTTS(args []string) error {
	fs := newFlags("bench stts")
	c := bench.STTSConfig{Log: logf}
	fs.StringVar(&c.Recipe, "recipe", "stts-videoqa-tiny", "videoqa recipe whose model is timed")
	frames := fs.String("frames", "16,32,64,128", "comma-separated frame counts")
	fs.IntVar(&c.Steps, "steps", 3, "timed training steps per configuration and round (after 1 warm-up step)")
	fs.IntVar(&c.Rounds, "rounds", 3, "timed rounds, alternating the three methods; the best of each is compared")
	fs.IntVar(&c.ScoreAfter, "score-after", -1, "per-frame ViT blocks before scoring (-1: at the paper's depth, block 3 of 27, scaled to model.vision_layers)")
	fs.IntVar(&c.Batch, "batch", 4, "batch size")
	fs.Float64Var(&c.Keep, "keep", 0.5, "STTS keep ratio")
	fs.StringVar(&c.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.StringArrayVar(&c.Sets, "set", nil, "override a field of the recipe, e.g. --set model.vision_layers=8 (repeatable)")
	fs.Usage = usageFunc(fs, "Usage: reel bench stts [flags]\n\nTraining-step time of the same video VLM unpruned, STTS-pruned and spatiotemporal-pruned (packed: the raw-pixel rules of ExeVRM), per\nframe count, measured in one run; prints the speedups (unpruned / pruned).")
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if c.Frames, err = intFlagList("bench stts", "--frames", *frames, func(n int) bool { return n >= 2 }, "a frame count ≥ 2"); err != nil {
		return err
	}
	rows, err := bench.RunSTTS(c)
	return benchResult(rows, err, *asJSON, func(r []bench.STTSRow) { bench.WriteSTTSTable(os.Stdout, r) })
}

func benchRDVLA(args []string) error {
	fs := newFlags("bench rdvla")
	c := bench.RDVLAConfig{Log: logf}
	fs.StringVar(&c.Recipe, "recipe", "rdvla-tiny", "rdvla recipe whose model is measured")
	depths := fs.String("depths", "4,32,64", "comma-separated training depths")
	fs.IntVar(&c.Steps, "steps", 3, "timed training steps per depth (after 1 warm-up step)")
	fs.IntVar(&c.Batch, "batch", 16, "batch size")
	fs.BoolVar(&c.FullBPTT, "full-bptt", true, "also measure backpropagation through every iteration (bptt = depth)")
	fs.StringVar(&c.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, "Usage: reel bench rdvla [flags]\n\nTraining-step time and peak heap memory of the RD-VLA policy per recurrent depth, with truncated\nBPTT (the recipe's bptt) and with backpropagation through all iterations; memory is the Go\nheap (the CPU backend's buffers), measured above the idle heap.")
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if c.Depths, err = intFlagList("bench rdvla", "--depths", *depths, func(n int) bool { return n >= 1 && n <= 64 }, "a depth in [1, 64]"); err != nil {
		return err
	}
	rows, err := bench.RunRDVLA(c)
	return benchResult(rows, err, *asJSON, func(r []bench.RDVLARow) { bench.WriteRDVLATable(os.Stdout, r) })
}

const benchServeUsage = `Usage: reel bench serve [RUN_DIR|CHECKPOINT_DIR] [flags]

Load test of 'reel serve': serves the policy on 127.0.0.1 (a free port) and drives it with
--sessions concurrent vla-eval sessions for --duration per --max-batch setting (set through
/config between runs), each session playing episodes of --episode-steps observations. Every reply
is checked: it must echo its observation's seq, and its action must have been computed for that
session's observation of that step (the served actions carry two tag values for this), so dropped
or cross-wired replies are counted, not assumed away. Prints p50/p90/p99 latency, throughput and
the policy's mean batch per setting; fails if any reply was dropped, wrong or an error. Without
RUN_DIR it serves a molmobot-tiny policy trained for one step (random weights) in a temporary
directory.`

func benchServe(args []string) error {
	fs := newFlags("bench serve")
	c := bench.ServeConfig{Log: logf}
	fs.IntVar(&c.Sessions, "sessions", 32, "concurrent sessions")
	fs.DurationVar(&c.Duration, "duration", time.Minute, "load time per --max-batch setting")
	maxBatch := fs.String("max-batch", "16,1", "comma-separated max_batch_size settings to load (1 = unbatched)")
	fs.DurationVar(&c.BatchWindow, "batch-window", 5*time.Millisecond, "batch window (max_wait_time)")
	fs.IntVar(&c.EpisodeSteps, "episode-steps", 50, "observations per episode")
	fs.IntVar(&c.ImageSize, "image-size", 0, "side of the square images sent (0: the policy's camera sizes)")
	fs.StringVar(&c.Recipe, "recipe", "molmobot-tiny", "recipe of the policy created when no RUN_DIR is given")
	fs.StringVar(&c.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, benchServeUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if c.MaxBatches, err = intFlagList("bench serve", "--max-batch", *maxBatch, func(n int) bool { return n >= 1 }, "a batch size ≥ 1"); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return &exitError{2, fmt.Errorf("bench serve: expected at most one run or checkpoint directory, got %d arguments", fs.NArg())}
	}
	if fs.NArg() == 1 {
		if c.Checkpoint, err = checkpoints.Resolve(fs.Arg(0), warn); err != nil {
			return err
		}
	}
	reports, err := bench.RunServe(c)
	if err := benchResult(reports, err, *asJSON, func(r []serve.LoadTestReport) { bench.WriteServeTable(os.Stdout, r) }); err != nil {
		return err
	}
	return bench.ServeFailure(reports)
}

func benchHF(args []string) error {
	fs := newFlags("bench hf")
	c := bench.HFConfig{Log: logf}
	fs.StringVar(&c.Model, "model", "all", "llama (SmolLM2-135M-shaped), siglip (SigLIP-B/16 vision tower), qwenvl (Qwen2.5-VL-3B's shapes, 2 tower blocks + 2 decoder layers) or all")
	fs.IntVar(&c.Batch, "batch", 1, "batch size")
	fs.IntVar(&c.Seq, "seq", 128, "llama: tokens per sequence; qwenvl: text tokens after the image")
	fs.IntVar(&c.Runs, "runs", 3, "alternating reel / PyTorch runs; the best of each is compared")
	fs.IntVar(&c.Steps, "steps", 3, "timed steps per run (after 2 warm-up steps)")
	fs.StringVar(&c.Precision, "precision", "f32", "f32 or bf16 (reel: train.precision; PyTorch: autocast)")
	fs.StringVar(&c.Python, "python", "auto", "Python with torch for the reference (auto: /usr/bin/python3, then python3; \"\" to skip)")
	fs.StringVar(&c.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, "Usage: reel bench hf [flags]\n\nTraining-step time (forward, backward, AdamW) of random-weight Hugging Face architectures at the\nshapes of SmolLM2-135M (LlamaForCausalLM), the SigLIP-B/16 vision tower and Qwen2.5-VL-3B (vision\ntower + decoder, 2 + 2 layers), in reel and in PyTorch (bench/hf_torch.py), alternating runs; prints the best step time of each, the runs' spread, the\nratio reel / PyTorch and MFU.")
	if err := parse(fs, args); err != nil {
		return err
	}
	rows, err := bench.RunHF(c)
	return benchResult(rows, err, *asJSON, func(r []bench.HFRow) { bench.WriteHFTable(os.Stdout, r) })
}

func benchFinetune(args []string) error {
	fs := newFlags("bench finetune")
	c := bench.FinetuneConfig{Log: logf}
	fs.StringVar(&c.Recipe, "recipe", "counting-finetune-hf-tiny", "vqa recipe with model.pretrained: random whose task is trained (its model.hf_config is replaced by a PaliGemma-shaped benchmark model unless --keep-model)")
	fs.BoolVar(&c.KeepModel, "keep-model", false, "keep the recipe's own model.hf_config")
	fs.IntVar(&c.Steps, "steps", 2, "timed training steps per configuration and round (after 1 warm-up step)")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds, alternating the configurations; the best of each is reported with the spread")
	fs.IntVar(&c.Batch, "batch", 16, "batch size")
	fs.IntVar(&c.LoRARank, "lora-rank", 8, "LoRA rank (train.lora.rank) of the lora configurations")
	fs.StringVar(&c.Freeze, "freeze", "model.vision_tower.*", "train.freeze glob of the frozen-backbone configurations")
	fs.StringVar(&c.Backend, "backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.StringVar(&c.Model, "model", "paligemma", "model: paligemma (the PaliGemma-shaped benchmark model in --recipe), pi0 (openpi's pi0 at its real size, 3.3B: PaliGemma-3B + the Gemma-300M expert; prints its model state in closed form first), pi0-small (pi0 at the benchmark model's size)")
	fs.StringSliceVar(&c.Modes, "modes", nil, "configurations to run, of full, lora, frozen (default all)")
	fs.StringVar(&c.Remat, "remat", "both", "train.remat of each configuration: both, on or off")
	fs.StringVar(&c.Precision, "precision", "", "train.precision (f32 or bf16; default the recipe's)")
	latency := fs.Bool("latency", false, "pi0 shapes: instead of training steps, time one action chunk (batch 1, prefix cached over the Euler steps) on the backend")
	lc := bench.Pi0LatencyConfig{Log: logf}
	fs.IntVar(&lc.Layers, "layers", 0, "--latency: joint layers (0: the model's; fewer keeps the real widths and cuts the vision tower in proportion)")
	fs.IntVar(&lc.Cameras, "cameras", 1, "--latency: cameras")
	fs.StringVar(&lc.Python, "torch", "", `--latency: also time the PyTorch twin with this python ("auto": one with torch), alternating rounds`)
	fs.StringVar(&lc.Twin, "twin", "tasks/testdata/lerobot_pi0/gen_pi0_twin.py", "--latency --torch: the PyTorch twin of LeRobot's pi0")
	fs.StringVar(&lc.Script, "torch-script", "bench/pi0_torch.py", "--latency --torch: the timing script")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = usageFunc(fs, "Usage: reel bench finetune [flags]\n\nPeak memory and training-step time of a PaliGemma-shaped random model fine-tuned in full, with\nLoRA adapters and with a frozen vision tower, each with and without activation checkpointing\n(train.remat), in alternating rounds. Memory is the Go heap (the CPU backend's buffers: weights,\noptimizer state, activations) above the idle heap, sampled with the collector at GOGC=10.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if st, err := bench.Pi0StateOf(bench.FinetuneShapes[c.Model]); err == nil {
		bench.WritePi0State(os.Stderr, st)
	}
	if *latency {
		lc.Shape, lc.Rounds, lc.Backend = bench.FinetuneShapes[c.Model], c.Rounds, c.Backend
		rows, err := bench.RunPi0Latency(lc)
		return benchResult(rows, err, *asJSON, func(r []bench.Pi0LatencyRow) { bench.WritePi0Latency(os.Stdout, r) })
	}
	rows, err := bench.RunFinetune(c)
	return benchResult(rows, err, *asJSON, func(r []bench.FinetuneRow) { bench.WriteFinetuneTable(os.Stdout, r) })
}

const benchDataUsage = `Usage: reel bench data [--dir DIR] [flags]

Measures loading a LeRobot video dataset for training. Generates (in --dir, or a temporary
directory) a v3.0 dataset of --episodes episodes of --frames frames from --cameras cameras of
--width×--height, AV1-encoded as LeRobot encodes; a --dir that already holds a dataset is used
as it is. Then loads --batches micro-batches of --batch examples fitted to --size×--size with
the windowed sampler and the prefetching loader: back to back (examples/s, decoded frames/s),
and with a --step of busy computation after each batch standing in for a training step, with
and without prefetching (the share of time spent waiting for data). Also measures ffmpeg's own
decoding of the same files on the same cores (plain, and fitted to --size as the loader fits
them) and prints the loader's rate as a share of it, and the peak resident memory of the
loading.
`

func benchData(args []string) error {
	fs := newFlags("bench data")
	cfg := bench.LeRobotLoaderConfig{Seed: 1}
	fs.StringVar(&cfg.Dir, "dir", "", "dataset directory (default: a temporary one, removed afterwards)")
	fs.IntVar(&cfg.Episodes, "episodes", 100, "episodes of the generated dataset")
	fs.IntVar(&cfg.Frames, "frames", 50, "frames per episode")
	fs.IntVar(&cfg.Cameras, "cameras", 1, "cameras")
	fs.IntVar(&cfg.Width, "width", 640, "camera width")
	fs.IntVar(&cfg.Height, "height", 480, "camera height")
	fs.IntVar(&cfg.FPS, "fps", 10, "frames per second")
	fs.IntVar(&cfg.Batch, "batch", 32, "examples per micro-batch")
	fs.IntVar(&cfg.Size, "size", 224, "side of the policy's square input images")
	fs.StringVar(&cfg.Mode, "resize", "pad", "resize mode: pad, crop or stretch")
	fs.IntVar(&cfg.Batches, "batches", 200, "micro-batches per run")
	fs.DurationVar(&cfg.StepTime, "step", 100*time.Millisecond, "busy computation after each micro-batch (a training step)")
	fs.IntVar(&cfg.Window, "window", 8, "episodes a micro-batch draws from")
	fs.IntVar(&cfg.Workers, "workers", 2, "background decoders")
	fs.IntVar(&cfg.Group, "group", 12, "most episodes of a camera one ffmpeg run decodes")
	cacheMB := fs.Int64("cache-mb", lerobot.DefaultFrameCacheBytes>>20, "decoded-frame cache bound (MiB)")
	asJSON := fs.Bool("json", false, "print JSON instead of a summary")
	fs.Usage = usageFunc(fs, benchDataUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &exitError{2, fmt.Errorf("bench data: unexpected argument %q", fs.Arg(0))}
	}
	cfg.CacheBytes = *cacheMB << 20
	if err := cfg.Check(); err != nil {
		return usageError(err)
	}
	res, err := bench.RunLeRobotLoader(cfg, func(format string, a ...any) { fmt.Fprintf(os.Stderr, "reel: bench data: "+format+"\n", a...) })
	if err != nil {
		return fmt.Errorf("bench data: %w", err)
	}
	if *asJSON {
		return printJSONLine(res)
	}
	res.WriteText(os.Stdout)
	return nil
}
