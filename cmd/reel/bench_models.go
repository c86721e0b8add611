package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
	"github.com/reelml/reel/videotok"
)

// `reel bench vit` and `reel bench video` time one AdamW training step of the same model in reel
// and in PyTorch (bench/vit_torch.py, bench/video_torch.py), in one run, optionally over a sweep
// of sequence lengths.

// benchBatch is the default batch size of each benchmark's reference models (tiny / larger).
var benchBatch = map[string]map[string]int{
	"vit": {"tiny": 32, "s": 32, "b": 64}, "vivit": {"tiny": 4, "b": 16}, "trajvit2": {"tiny": 4, "b": 16}, "stts": {"tiny": 4, "b": 8},
}

// modelRow is one line of the table.
type modelRow struct {
	Model      string  `json:"model"`
	Tokens     int     `json:"tokens"`
	Batch      int     `json:"batch"`
	Params     int     `json:"params"`
	GFLOPs     float64 `json:"gflops_per_step"`
	CompileS   float64 `json:"compile_s"`
	StepS      float64 `json:"step_s"`     // best round
	StepMaxS   float64 `json:"step_max_s"` // worst round (the spread is StepS … StepMaxS)
	MFU        float64 `json:"mfu"`
	PeakMiB    float64 `json:"peak_mib"`
	TorchS     float64 `json:"torch_step_s,omitempty"`     // best round
	TorchMaxS  float64 `json:"torch_step_max_s,omitempty"` // worst round
	TorchMFU   float64 `json:"torch_mfu,omitempty"`
	TorchMiB   float64 `json:"torch_peak_mib,omitempty"`
	TorchThr   int     `json:"torch_threads,omitempty"` // PyTorch intra-op threads of the faster setting
	Ratio      float64 `json:"ratio,omitempty"`         // reel / pytorch, best step time of each
	TimeGrowth float64 `json:"time_growth,omitempty"`   // d log(step time) / d log(tokens) vs the previous sweep row
	HalfShare  float64 `json:"bf16_share,omitempty"`    // share of the FLOPs in bf16 products (--precision bf16)
}

// benchJob is one model and batch to time in both frameworks.
type benchJob struct {
	name   string
	tokens int
	batch  int
	task   train.Task
	script string   // PyTorch twin, run from the repository root
	args   []string // its arguments before WARM STEPS DEVICE PRECISION
}

// benchFlags are the flags `reel bench vit` and `reel bench video` share.
type benchFlags struct {
	steps, sweepBatch, rounds      *int
	precision, device, python, cpu *string
	backend                        *string
	asJSON                         *bool
}

func addBenchFlags(fs interface {
	Int(string, int, string) *int
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}, sweepBatch int) benchFlags {
	return benchFlags{
		steps:      fs.Int("steps", 5, "timed steps per round (after 2 warm-up steps)"),
		rounds:     fs.Int("rounds", 3, "timed rounds per model, alternating reel and PyTorch; the best of each is compared and the spread printed"),
		sweepBatch: fs.Int("sweep-batch", sweepBatch, "batch size of the sweep's models"),
		precision:  fs.String("precision", "f32", "f32 or bf16 (reel: train.precision; PyTorch: autocast)"),
		device:     fs.String("torch-device", "auto", "PyTorch device: cpu, cuda, or auto (cuda when reel runs on XLA CUDA)"),
		python:     fs.String("python", "auto", "Python with torch for the reference (auto: /usr/bin/python3, then python3; \"\" to skip)"),
		cpu:        fs.String("cpuprofile", "", "write a CPU profile (pprof) of reel's first timed model to this file"),
		backend:    fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`),
		asJSON:     fs.Bool("json", false, "print JSON instead of a table"),
	}
}

func (f benchFlags) check(cmd string) error {
	if *f.steps < 1 || *f.sweepBatch < 1 || *f.rounds < 1 {
		return &exitError{2, fmt.Errorf("%s: --steps, --rounds and --sweep-batch must be ≥ 1", cmd)}
	}
	if *f.precision != "f32" && *f.precision != "bf16" {
		return &exitError{2, fmt.Errorf("%s: --precision %q (want f32 or bf16)", cmd, *f.precision)}
	}
	return nil
}

// intList parses a comma-separated list of integers accepted by ok.
func intList(cmd, flag, s string, ok func(int) bool, want string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || !ok(n) {
			return nil, &exitError{2, fmt.Errorf("%s: %s: %q is not %s", cmd, flag, f, want)}
		}
		out = append(out, n)
	}
	return out, nil
}

func benchViT(args []string) error {
	fs := newFlags("bench vit")
	size := fs.String("size", "tiny", "reference ViT: tiny (64px, 8px patches, D192×6), s (ViT-S/16 at 224px) or b (ViT-B/16 at 224px)")
	batch := fs.Int("batch", 0, "batch size (default: 32 for tiny and s, 64 for b)")
	tokensFlag := fs.String("tokens", "", "also sweep these tokens per image (perfect squares, e.g. 64,256,1024), changing the image size")
	bf := addBenchFlags(fs, 4)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench vit [flags]\n\nTraining-step time (AdamW, fixed random batch) of the same ViT classifier in reel and in PyTorch\n(bench/vit_torch.py), measured in one run: step time, the ratio reel / PyTorch, compile time, model\nFLOPs, MFU and peak memory; with --tokens, how the step time grows with the sequence length.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := models.ViTVariant(*size)
	if err != nil {
		return &exitError{2, fmt.Errorf("bench vit: --size: %v", err)}
	}
	ref := struct {
		cfg   models.ViTConfig
		batch int
	}{cfg, benchBatch["vit"][*size]}
	if *batch > 0 {
		ref.batch = *batch
	}
	if err := bf.check("bench vit"); err != nil {
		return err
	}
	sweep, err := intList("bench vit", "--tokens", *tokensFlag, func(n int) bool {
		side := int(math.Round(math.Sqrt(float64(n))))
		return n >= 1 && side*side == n
	}, "a perfect square ≥ 1")
	if err != nil {
		return err
	}
	job := func(tokens, batch int) benchJob {
		c := ref.cfg
		c.ImageSize = c.PatchSize * int(math.Round(math.Sqrt(float64(tokens))))
		return benchJob{name: "vit-" + *size, tokens: c.NumPatches(), batch: batch, task: tasks.NewViTClassifier(c, batch, 10),
			script: "bench/vit_torch.py", args: []string{strconv.Itoa(c.ImageSize), strconv.Itoa(c.PatchSize), strconv.Itoa(c.Dim),
				strconv.Itoa(c.Layers), strconv.Itoa(c.Heads), strconv.Itoa(batch), "10"}}
	}
	jobs := sweepJobs(job, ref.cfg.NumPatches(), ref.batch, sweep, *bf.sweepBatch)
	return runModelBench("bench vit-"+*size, bf, jobs, fmt.Sprintf("sequence-length sweep (batch %d)", *bf.sweepBatch))
}

func benchVideo(args []string) error {
	fs := newFlags("bench video")
	arch := fs.String("arch", "vivit", "vivit (ViViT tubelets + the TrajViT2/ViViT encoder tower), trajvit2 (TrajTok + the encoder tower) or stts (the STTS video encoder: per-frame blocks, group pooling, scorer, pruning)")
	size := fs.String("size", "tiny", "vivit: tiny (16×64² clips, 2×8² tubelets, D192×6) or b (16×224², 2×16², D768×12); trajvit2: tiny (8×64², stride 4, 32 latents, D192×6) or b (16×128², stride 4, 128 latents, D768×12); stts: tiny (16×48², 4² patches, 3×3 groups, D192×6) or b (32×216², 8², 3×3, D768×12)")
	keep := fs.Float64("keep", 0.5, "stts: kept share of the group tokens (1 = no pruning)")
	batch := fs.Int("batch", 0, "batch size (default: vivit 4 / 16, trajvit2 4 / 16, stts 4 / 8 for tiny / b)")
	framesFlag := fs.String("frames", "", "also sweep these clip lengths (e.g. 4,8,16,32): tokens per video grow with them")
	bf := addBenchFlags(fs, 2)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench video [flags]\n\nTraining-step time (AdamW, fixed random clips) of the same video classifier in reel and in PyTorch\n(bench/video_torch.py, bench/stts_torch.py): ViViT tubelets and the TrajViT2/ViViT encoder tower, or\nthe STTS video encoder. Same columns as `reel bench vit`; with --frames, how the step time grows\nwith the tokens per video.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := bf.check("bench video"); err != nil {
		return err
	}
	var jobs []benchJob
	badSize := &exitError{2, fmt.Errorf("bench video: --size %q (want tiny or b)", *size)}
	switch *arch {
	case "vivit":
		tub, err := videotok.TubeletVariant(*size)
		if err != nil {
			return badSize
		}
		tower, _ := models.ViTVariant(*size)
		ref := struct {
			tub           videotok.TubeletConfig
			layers, heads int
			batch         int
		}{tub, tower.Layers, tower.Heads, benchBatch["vivit"][*size]}
		if *batch > 0 {
			ref.batch = *batch
		}
		sweep, err := intList("bench video", "--frames", *framesFlag, func(n int) bool { return n >= 2 && n%ref.tub.Tubelet == 0 },
			fmt.Sprintf("a frame count ≥ 2 divisible by the tubelet length %d", ref.tub.Tubelet))
		if err != nil {
			return err
		}
		job := func(frames, batch int) benchJob {
			tub := ref.tub
			tub.Frames = frames
			return benchJob{name: "video-" + *size, tokens: tub.NumTokens() + 1, batch: batch,
				task:   tasks.NewVideoClassifier(tub, ref.layers, ref.heads, batch, 10),
				script: "bench/video_torch.py", args: []string{strconv.Itoa(tub.Frames), strconv.Itoa(tub.ImageSize),
					strconv.Itoa(tub.Tubelet), strconv.Itoa(tub.Patch), strconv.Itoa(tub.Dim), strconv.Itoa(ref.layers),
					strconv.Itoa(ref.heads), strconv.Itoa(batch), "10"}}
		}
		jobs = sweepJobs(job, ref.tub.Frames, ref.batch, sweep, *bf.sweepBatch)
	case "trajvit2":
		tok, err := videotok.TrajTokVariant(*size)
		if err != nil {
			return badSize
		}
		tower, _ := models.ViTVariant(*size)
		ref := struct {
			tok         videotok.TrajTokConfig
			dim, layers int
			batch       int
		}{tok, tower.Dim, tower.Layers, benchBatch["trajvit2"][*size]}
		if *batch > 0 {
			ref.batch = *batch
		}
		sweep, err := intList("bench video", "--frames", *framesFlag, func(n int) bool { return n >= 1 }, "a frame count ≥ 1")
		if err != nil {
			return err
		}
		job := func(frames, batch int) benchJob {
			tok := ref.tok
			tok.Frames = frames
			// tokens: the feature pixels the grouping reads (the encoder sees at most Latents+1)
			return benchJob{name: "trajvit2-" + *size, tokens: tok.Pixels(), batch: batch,
				task:   tasks.NewTrajViTClassifier(tok, ref.dim, ref.layers, batch, 10),
				script: "bench/trajvit_torch.py", args: []string{strconv.Itoa(tok.Frames), strconv.Itoa(tok.ImageSize),
					strconv.Itoa(tok.Stride), strconv.Itoa(tok.FeatDim), strconv.Itoa(tok.Latents), strconv.Itoa(tok.GroupDim),
					strconv.Itoa(tok.Layers), strconv.Itoa(ref.dim), strconv.Itoa(ref.layers), strconv.Itoa(tok.Heads),
					strconv.Itoa(batch), "10"}}
		}
		jobs = sweepJobs(job, ref.tok.Frames, ref.batch, sweep, *bf.sweepBatch)
	case "stts":
		cfg, group, err := models.STTSVariant(*size)
		if err != nil {
			return badSize
		}
		ref := struct {
			cfg   models.VideoVLMConfig
			group int
			batch int
		}{cfg, group, benchBatch["stts"][*size]}
		if *keep <= 0 || *keep > 1 {
			return &exitError{2, fmt.Errorf("bench video: --keep %v (want a share in (0, 1])", *keep)}
		}
		if *batch > 0 {
			ref.batch = *batch
		}
		sweep, err := intList("bench video", "--frames", *framesFlag, func(n int) bool { return n >= 2 }, "a frame count ≥ 2")
		if err != nil {
			return err
		}
		mode := "stts"
		if *keep >= 1 {
			mode = "none"
		}
		job := func(frames, batch int) benchJob {
			cfg := ref.cfg
			cfg.Frames = frames
			v := cfg.Vision
			sel := pruning.Selector{Mode: mode, Group: ref.group, Grid: v.ImageSize / v.PatchSize, Frames: cfg.Frames, Keep: *keep}
			task := tasks.NewSTTSClassifier(cfg, sel, batch, 10)
			return benchJob{name: fmt.Sprintf("stts-%s@%g", *size, *keep), tokens: task.Tokens(), batch: batch, task: task,
				script: "bench/stts_torch.py", args: []string{strconv.Itoa(cfg.Frames), strconv.Itoa(v.ImageSize),
					strconv.Itoa(v.PatchSize), strconv.Itoa(ref.group), strconv.Itoa(v.Dim), strconv.Itoa(v.Layers),
					strconv.Itoa(v.Heads), strconv.Itoa(cfg.ScoreAfter), strconv.FormatFloat(*keep, 'g', -1, 64), mode,
					strconv.Itoa(batch), "10"}}
		}
		jobs = sweepJobs(job, ref.cfg.Frames, ref.batch, sweep, *bf.sweepBatch)
	default:
		return &exitError{2, fmt.Errorf("bench video: --arch %q (want vivit, trajvit2 or stts)", *arch)}
	}
	return runModelBench("bench video ("+*arch+"-"+*size+")", bf, jobs, fmt.Sprintf("frames sweep (batch %d)", *bf.sweepBatch))
}

// sweepJobs is the reference job (sequence parameter ref, at its batch) followed by one job per
// swept value at the sweep's batch.
func sweepJobs(job func(value, batch int) benchJob, ref, batch int, sweep []int, sweepBatch int) []benchJob {
	jobs := []benchJob{job(ref, batch)}
	for _, v := range sweep {
		jobs = append(jobs, job(v, sweepBatch))
	}
	return jobs
}

// runModelBench times every job in reel and PyTorch and prints the table.
func runModelBench(title string, bf benchFlags, jobs []benchJob, sweepTitle string) error {
	b, info, err := backends.Select(*bf.backend)
	if err != nil {
		return err
	}
	device, python := *bf.device, *bf.python
	if device == "auto" {
		device = "cpu"
		if info.Name != "go" {
			device = "cuda"
		}
	}
	if python == "auto" {
		python = "python3"
		if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err == nil {
			python = "/usr/bin/python3" // Debian's python3-torch (pyenv shims may shadow it)
		}
	}
	fmt.Fprintf(os.Stderr, "reel: %s on %s, %s, %d timed steps\n", title, info, *bf.precision, *bf.steps)
	var rows []modelRow
	torchNote := ""
	for i, j := range jobs {
		r := recipes.Defaults()
		r.Name = "bench"
		r.Train.BatchSize, r.Train.GradAccum, r.Train.LR, r.Train.WeightDecay, r.Train.GradClip = j.batch, 1, 1e-3, 0.01, 1.0
		r.Train.Precision = *bf.precision
		if *bf.cpu != "" && i == 0 {
			f, err := os.Create(*bf.cpu)
			if err != nil {
				return fmt.Errorf("%s: --cpuprofile: %v", title, err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("%s: --cpuprofile: %v", title, err)
			}
		}
		// Rounds alternate: reel, PyTorch, reel, PyTorch, … so that both sides see the same
		// machine state; the best of each side is compared and the spread printed.
		var timer *train.StepTimer
		var reelS []float64
		torch := torchRun{python: python, job: j, device: device, precision: *bf.precision, steps: *bf.steps}
		var torchS []float64
		var torchErr error
		peak, err := train.HeapPeak(func() (err error) {
			if timer, err = train.NewStepTimer(j.task, &r, b, 2); err != nil {
				return err
			}
			for k := range *bf.rounds {
				sec, err := timer.Time(*bf.steps)
				if err != nil {
					return err
				}
				reelS = append(reelS, sec)
				if python != "" && torchErr == nil {
					if k == 0 && *bf.cpu != "" && i == 0 {
						pprof.StopCPUProfile() // profile reel's first round only
					}
					var t float64
					if t, torchErr = torch.round(); torchErr == nil {
						torchS = append(torchS, t)
					}
				}
			}
			return nil
		})
		if *bf.cpu != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		st := timer.Stats()
		row := modelRow{Model: j.name, Tokens: j.tokens, Batch: j.batch, Params: st.Params, GFLOPs: st.FLOPs / 1e9,
			CompileS: st.CompileS, StepS: slices.Min(reelS), StepMaxS: slices.Max(reelS), MFU: st.MFU(), PeakMiB: float64(peak) / (1 << 20)}
		if st.FLOPs > 0 {
			row.HalfShare = st.HalfFLOPs / st.FLOPs
		}
		if *bf.precision == "bf16" {
			fmt.Fprintf(os.Stderr, "reel: %s, %d tokens: %.1f%% of the FLOPs in bf16 products\n", j.name, j.tokens, 100*row.HalfShare)
		}
		if info.Name != "go" { // the Go heap says nothing about device memory, which PJRT does not report here
			row.PeakMiB = 0
		}
		if i == 0 {
			fmt.Fprintf(os.Stderr, "reel: MFU against the %s\n", st.Peak.Source)
			if info.Name != "go" {
				fmt.Fprintln(os.Stderr, "reel: reel's device memory is not measured on XLA (heap MiB: -)")
			}
		}
		if python != "" {
			if torchErr != nil {
				torchNote = "PyTorch reference unavailable (" + errline.First(torchErr) + "; Debian: apt-get install python3-torch libopenblas0-pthread)"
			} else {
				res := torch.best
				torchNote = "torch " + res.Torch + " on " + device
				if device == "cpu" {
					torchNote += fmt.Sprintf(", the faster of %d and 1 intra-op threads per row (thr)", runtime.NumCPU())
				}
				if res.Params != row.Params {
					torchNote += fmt.Sprintf("; WARNING: its model has %d parameters, reel's %d", res.Params, row.Params)
				}
				row.TorchS, row.TorchMaxS, row.TorchMiB, row.TorchThr = slices.Min(torchS), slices.Max(torchS), res.PeakMiB, res.Threads
				row.Ratio = row.StepS / row.TorchS
				if st.Peak.FLOPS > 0 {
					row.TorchMFU = st.FLOPs / row.TorchS / st.Peak.FLOPS
					row.MFU = st.FLOPs / row.StepS / st.Peak.FLOPS
				}
			}
		}
		if i > 1 && rows[i-1].Tokens != row.Tokens {
			prev := rows[i-1]
			row.TimeGrowth = math.Log(row.StepS/prev.StepS) / math.Log(float64(row.Tokens)/float64(prev.Tokens))
		}
		rows = append(rows, row)
	}
	if torchNote != "" {
		fmt.Fprintln(os.Stderr, "reel: "+torchNote)
	}
	if *bf.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-14s %-7s %-6s %-7s %-8s %-10s %-15s %-7s %-9s %-15s %-4s %-8s %-9s %-8s %s\n", "model", "tokens", "batch", "params",
		"GFLOP", "compile s", "reel s (worst)", "MFU", "heap MiB", "torch s (worst)", "thr", "MFU", "RSS MiB", "ratio", "growth")
	for i, r := range rows {
		if i == 1 {
			fmt.Printf("-- %s: growth = d log(step time) / d log(tokens) --\n", sweepTitle)
		}
		torchS, thr, torchMFU, torchMiB, ratio, growth := "-", "-", "-", "-", "-", "-"
		if r.TorchS > 0 {
			torchS, torchMFU, torchMiB = fmt.Sprintf("%.4f (%.4f)", r.TorchS, r.TorchMaxS), pct(r.TorchMFU), fmt.Sprintf("%.0f", r.TorchMiB)
			if r.TorchThr > 0 {
				thr = strconv.Itoa(r.TorchThr)
			}
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		if r.TimeGrowth != 0 {
			growth = fmt.Sprintf("%.2f", r.TimeGrowth)
		}
		heap := "-"
		if r.PeakMiB > 0 {
			heap = fmt.Sprintf("%.0f", r.PeakMiB)
		}
		fmt.Printf("%-14s %-7d %-6d %-7s %-8.1f %-10.2f %-15s %-7s %-9s %-15s %-4s %-8s %-9s %-8s %s\n", r.Model, r.Tokens, r.Batch,
			fmt.Sprintf("%.1fM", float64(r.Params)/1e6), r.GFLOPs, r.CompileS, fmt.Sprintf("%.4f (%.4f)", r.StepS, r.StepMaxS), pct(r.MFU), heap,
			torchS, thr, torchMFU, torchMiB, ratio, growth)
	}
	return nil
}

// torchResult is what a bench/*_torch.py script prints.
type torchResult struct {
	StepS   float64 `json:"step_s"`
	PeakMiB float64 `json:"peak_mib"`
	Params  int     `json:"params"`
	Threads int     `json:"threads"`
	Torch   string  `json:"torch"`
}

// torchRun times job j's PyTorch twin, one round per call. On the CPU the first round runs it
// with PyTorch's intra-op threads at the core count and at 1 and keeps the faster setting for the
// later rounds: Debian's torch calls an OpenBLAS with its own thread pool, and with both pools at
// full size the cores are oversubscribed (a vit-tiny step took 0.65 s so, 0.37 s with one
// intra-op thread, on 2 cores); with MKL or on other machines the full count can win. The
// comparison is with PyTorch at its better setting.
type torchRun struct {
	python    string
	job       benchJob
	device    string
	precision string
	steps     int
	threads   int         // the chosen intra-op thread count (0: PyTorch's default), after round 1
	best      torchResult // the result of the best round
	rounds    int
}

// round runs the twin once (twice in the first round on a multi-core CPU) and returns its step time.
func (t *torchRun) round() (float64, error) {
	settings := []int{t.threads}
	if t.rounds == 0 && t.device == "cpu" && runtime.NumCPU() > 1 {
		settings = []int{runtime.NumCPU(), 1}
	}
	t.rounds++
	best := -1.0
	for _, n := range settings {
		res, err := runTorch(t.python, t.job, t.device, t.precision, t.steps, n)
		if err != nil {
			return 0, err
		}
		if best < 0 || res.StepS < best {
			best, t.threads = res.StepS, n
		}
		if t.best.StepS == 0 || res.StepS < t.best.StepS {
			t.best = res
		}
	}
	return best, nil
}

// runTorch runs job j's PyTorch twin once with n intra-op threads (0: PyTorch's default).
func runTorch(python string, j benchJob, device, precision string, steps, n int) (torchResult, error) {
	cmd := exec.Command(python, append(append([]string{j.script}, j.args...), "2", strconv.Itoa(steps), device, precision)...)
	cmd.Env = os.Environ()
	if n > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("REEL_TORCH_THREADS=%d", n))
	}
	out, err := cmd.Output()
	var res torchResult
	if err == nil {
		err = json.Unmarshal(out, &res)
	}
	return res, err
}

func pct(f float64) string {
	if f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
