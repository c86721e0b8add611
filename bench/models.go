package bench

import (
	"fmt"
	"github.com/reelml/reel/internal/usage"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/intlist"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
	"github.com/reelml/reel/videotok"
)

// `reel bench vit` and `reel bench video` time one AdamW training step of the same model in reel
// and in PyTorch (vit_torch.py, video_torch.py, trajvit_torch.py, stts_torch.py), in one run,
// optionally over a sweep of sequence lengths.

// defaultBatch is the default batch size of each benchmark's reference models (tiny / larger).
var defaultBatch = map[string]map[string]int{
	"vit": {"tiny": 32, "s": 32, "b": 64}, "vivit": {"tiny": 4, "b": 16}, "trajvit2": {"tiny": 4, "b": 16}, "stts": {"tiny": 4, "b": 8},
}

// ModelRow is one line of the `reel bench vit|video` table.
type ModelRow struct {
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

// Job is one model and batch to time in reel and in PyTorch.
type Job struct {
	Name   string
	Tokens int
	Batch  int
	Task   train.Task
	Script string   // PyTorch twin, run from the repository root
	Args   []string // its arguments before WARM STEPS DEVICE PRECISION
}

// ModelOptions are the settings `reel bench vit` and `reel bench video` share.
type ModelOptions struct {
	Steps, Rounds, SweepBatch int
	Precision                 string // f32 or bf16 (reel: train.precision; PyTorch: autocast)
	Device                    string // PyTorch device: cpu, cuda or auto (cuda when reel runs on XLA)
	Python                    string // Python with torch: auto, a path, or "" to skip the reference
	CPUProfile                string // pprof file of reel's first timed round ("": none)
	Backend                   string // backends.Select's flag
	Log                       Logger
}

// Check refuses counts below 1 and unknown precisions (cmd names the command in the message).
func (o ModelOptions) Check(cmd string) error {
	if o.Steps < 1 || o.SweepBatch < 1 || o.Rounds < 1 {
		return usage.Errorf("%s: --steps, --rounds and --sweep-batch must be ≥ 1", cmd)
	}
	return checkPrecision(cmd, o.Precision)
}

func checkPrecision(cmd, p string) error {
	if p != "f32" && p != "bf16" {
		return usage.Errorf("%s: --precision %q (want f32 or bf16)", cmd, p)
	}
	return nil
}

// ViTJobs are `reel bench vit`'s jobs: the reference ViT of size (tiny, s or b) at batch (0: its
// default), then one per swept tokens-per-image count at sweepBatch.
func ViTJobs(size string, batch int, tokens []int, sweepBatch int) ([]Job, error) {
	cfg, err := models.ViTVariant(size)
	if err != nil {
		return nil, usage.Errorf("bench vit: --size: %w", err)
	}
	if batch <= 0 {
		batch = defaultBatch["vit"][size]
	}
	job := func(tokens, batch int) Job {
		c := cfg
		c.ImageSize = c.PatchSize * int(math.Round(math.Sqrt(float64(tokens))))
		return Job{Name: "vit-" + size, Tokens: c.NumPatches(), Batch: batch, Task: NewViTClassifier(c, batch, 10),
			Script: "bench/vit_torch.py", Args: []string{strconv.Itoa(c.ImageSize), strconv.Itoa(c.PatchSize), strconv.Itoa(c.Dim),
				strconv.Itoa(c.Layers), strconv.Itoa(c.Heads), strconv.Itoa(batch), "10"}}
	}
	return sweepJobs(job, cfg.NumPatches(), batch, tokens, sweepBatch), nil
}

// PerfectSquare says whether n ≥ 1 is a square: a tokens-per-image count of `reel bench vit`.
func PerfectSquare(n int) bool {
	side := int(math.Round(math.Sqrt(float64(n))))
	return n >= 1 && side*side == n
}

// VideoJobs are `reel bench video`'s jobs for arch (vivit, trajvit2 or stts) of size (tiny or
// b): the reference model at batch (0: its default), then one per clip length of frames (a
// comma-separated list, "" for none) at sweepBatch. keep is STTS's kept share.
func VideoJobs(arch, size string, keep float64, batch int, frames string, sweepBatch int) ([]Job, error) {
	badSize := usage.Errorf("bench video: --size %q (want tiny or b)", size)
	sweep := func(ok func(int) bool, want string) ([]int, error) {
		if frames == "" {
			return nil, nil
		}
		l, err := intlist.Parse(frames, ok, want)
		if err != nil {
			return nil, usage.Errorf("bench video: --frames: %w", err)
		}
		return l, nil
	}
	if batch <= 0 {
		batch = defaultBatch[arch][size]
	}
	switch arch {
	case "vivit":
		tub, err := videotok.TubeletVariant(size)
		if err != nil {
			return nil, badSize
		}
		tower, _ := models.ViTVariant(size)
		swept, err := sweep(func(n int) bool { return n >= 2 && n%tub.Tubelet == 0 },
			fmt.Sprintf("a frame count ≥ 2 divisible by the tubelet length %d", tub.Tubelet))
		if err != nil {
			return nil, err
		}
		job := func(frames, batch int) Job {
			tub := tub
			tub.Frames = frames
			return Job{Name: "video-" + size, Tokens: tub.NumTokens() + 1, Batch: batch,
				Task:   NewVideoClassifier(tub, tower.Layers, tower.Heads, batch, 10),
				Script: "bench/video_torch.py", Args: []string{strconv.Itoa(tub.Frames), strconv.Itoa(tub.ImageSize),
					strconv.Itoa(tub.Tubelet), strconv.Itoa(tub.Patch), strconv.Itoa(tub.Dim), strconv.Itoa(tower.Layers),
					strconv.Itoa(tower.Heads), strconv.Itoa(batch), "10"}}
		}
		return sweepJobs(job, tub.Frames, batch, swept, sweepBatch), nil
	case "trajvit2":
		tok, err := videotok.TrajTokVariant(size)
		if err != nil {
			return nil, badSize
		}
		tower, _ := models.ViTVariant(size)
		swept, err := sweep(func(n int) bool { return n >= 1 }, "a frame count ≥ 1")
		if err != nil {
			return nil, err
		}
		job := func(frames, batch int) Job {
			tok := tok
			tok.Frames = frames
			// tokens: the feature pixels the grouping reads (the encoder sees at most Latents+1)
			return Job{Name: "trajvit2-" + size, Tokens: tok.Pixels(), Batch: batch,
				Task:   NewTrajViTClassifier(tok, tower.Dim, tower.Layers, batch, 10),
				Script: "bench/trajvit_torch.py", Args: []string{strconv.Itoa(tok.Frames), strconv.Itoa(tok.ImageSize),
					strconv.Itoa(tok.Stride), strconv.Itoa(tok.FeatDim), strconv.Itoa(tok.Latents), strconv.Itoa(tok.GroupDim),
					strconv.Itoa(tok.Layers), strconv.Itoa(tower.Dim), strconv.Itoa(tower.Layers), strconv.Itoa(tok.Heads),
					strconv.Itoa(batch), "10"}}
		}
		return sweepJobs(job, tok.Frames, batch, swept, sweepBatch), nil
	case "stts":
		cfg, group, err := models.STTSVariant(size)
		if err != nil {
			return nil, badSize
		}
		if keep <= 0 || keep > 1 {
			return nil, usage.Errorf("bench video: --keep %v (want a share in (0, 1])", keep)
		}
		swept, err := sweep(func(n int) bool { return n >= 2 }, "a frame count ≥ 2")
		if err != nil {
			return nil, err
		}
		mode := "stts"
		if keep >= 1 {
			mode = "none"
		}
		job := func(frames, batch int) Job {
			cfg := cfg
			cfg.Frames = frames
			v := cfg.Vision
			sel := pruning.Selector{Mode: mode, Group: group, Grid: v.ImageSize / v.PatchSize, Frames: cfg.Frames, Keep: keep}
			task := NewSTTSClassifier(cfg, sel, batch, 10)
			return Job{Name: fmt.Sprintf("stts-%s@%g", size, keep), Tokens: task.Tokens(), Batch: batch, Task: task,
				Script: "bench/stts_torch.py", Args: []string{strconv.Itoa(cfg.Frames), strconv.Itoa(v.ImageSize),
					strconv.Itoa(v.PatchSize), strconv.Itoa(group), strconv.Itoa(v.Dim), strconv.Itoa(v.Layers),
					strconv.Itoa(v.Heads), strconv.Itoa(cfg.ScoreAfter), strconv.FormatFloat(keep, 'g', -1, 64), mode,
					strconv.Itoa(batch), "10"}}
		}
		return sweepJobs(job, cfg.Frames, batch, swept, sweepBatch), nil
	}
	return nil, usage.Errorf("bench video: --arch %q (want vivit, trajvit2 or stts)", arch)
}

// sweepJobs is the reference job (sequence parameter ref, at its batch) followed by one job per
// swept value at the sweep's batch.
func sweepJobs(job func(value, batch int) Job, ref, batch int, sweep []int, sweepBatch int) []Job {
	jobs := []Job{job(ref, batch)}
	for _, v := range sweep {
		jobs = append(jobs, job(v, sweepBatch))
	}
	return jobs
}

// RunModels times every job in reel and PyTorch, alternating rounds. title names the run in the
// log.
func RunModels(title string, o ModelOptions, jobs []Job) ([]ModelRow, error) {
	b, info, err := backends.Select(o.Backend)
	if err != nil {
		return nil, err
	}
	device, python := o.Device, findPython(o.Python)
	if device == "auto" {
		device = "cpu"
		if info.Name != "go" {
			device = "cuda"
		}
	}
	o.Log.printf("%s on %s, %s, %d timed steps", title, info, o.Precision, o.Steps)
	var rows []ModelRow
	torchNote := ""
	for i, j := range jobs {
		r := recipes.Defaults()
		r.Name = "bench"
		r.Train.BatchSize, r.Train.GradAccum, r.Train.LR, r.Train.WeightDecay, r.Train.GradClip = j.Batch, 1, 1e-3, 0.01, 1.0
		r.Train.Precision = o.Precision
		if o.CPUProfile != "" && i == 0 {
			f, err := os.Create(o.CPUProfile)
			if err != nil {
				return nil, fmt.Errorf("%s: --cpuprofile: %w", title, err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return nil, fmt.Errorf("%s: --cpuprofile: %w", title, err)
			}
		}
		// Rounds alternate: reel, PyTorch, reel, PyTorch, … so that both sides see the same
		// machine state; the best of each side is compared and the spread printed.
		var timer *train.StepTimer
		var reelS []float64
		torch := torchRun{python: python, job: j, device: device, precision: o.Precision, steps: o.Steps}
		var torchS []float64
		var torchErr error
		peak, err := HeapPeak(func() (err error) {
			if timer, err = train.NewStepTimer(j.Task, &r, b, 2); err != nil {
				return err
			}
			for k := range o.Rounds {
				sec, err := timer.Time(o.Steps)
				if err != nil {
					return err
				}
				reelS = append(reelS, sec)
				if python != "" && torchErr == nil {
					if k == 0 && o.CPUProfile != "" && i == 0 {
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
		if o.CPUProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return nil, err
		}
		st := timer.Stats()
		row := ModelRow{Model: j.Name, Tokens: j.Tokens, Batch: j.Batch, Params: st.Params, GFLOPs: st.FLOPs / 1e9,
			CompileS: st.CompileS, StepS: slices.Min(reelS), StepMaxS: slices.Max(reelS), MFU: st.MFU(), PeakMiB: float64(peak) / (1 << 20)}
		if st.FLOPs > 0 {
			row.HalfShare = st.HalfFLOPs / st.FLOPs
		}
		if o.Precision == "bf16" {
			o.Log.printf("%s, %d tokens: %.1f%% of the FLOPs in bf16 products", j.Name, j.Tokens, 100*row.HalfShare)
		}
		if info.Name != "go" { // the Go heap says nothing about device memory, which PJRT does not report here
			row.PeakMiB = 0
		}
		if i == 0 {
			o.Log.printf("MFU against the %s", st.Peak.Source)
			if info.Name != "go" {
				o.Log.printf("reel's device memory is not measured on XLA (heap MiB: -)")
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
		o.Log.printf("%s", torchNote)
	}
	return rows, nil
}

// WriteModelTable prints the rows as `reel bench vit|video` does; the rows after the first are
// the sweep, titled sweepTitle.
func WriteModelTable(w io.Writer, rows []ModelRow, sweepTitle string) {
	fmt.Fprintf(w, "%-14s %-7s %-6s %-7s %-8s %-10s %-15s %-7s %-9s %-15s %-4s %-8s %-9s %-8s %s\n", "model", "tokens", "batch", "params",
		"GFLOP", "compile s", "reel s (worst)", "MFU", "heap MiB", "torch s (worst)", "thr", "MFU", "RSS MiB", "ratio", "growth")
	for i, r := range rows {
		if i == 1 {
			fmt.Fprintf(w, "-- %s: growth = d log(step time) / d log(tokens) --\n", sweepTitle)
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
		fmt.Fprintf(w, "%-14s %-7d %-6d %-7s %-8.1f %-10.2f %-15s %-7s %-9s %-15s %-4s %-8s %-9s %-8s %s\n", r.Model, r.Tokens, r.Batch,
			fmt.Sprintf("%.1fM", float64(r.Params)/1e6), r.GFLOPs, r.CompileS, fmt.Sprintf("%.4f (%.4f)", r.StepS, r.StepMaxS), pct(r.MFU), heap,
			torchS, thr, torchMFU, torchMiB, ratio, growth)
	}
}

func pct(f float64) string {
	if f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// bestSpread is the minimum of xs and (max − min) / min.
func bestSpread(xs []float64) (best, spread float64) {
	best, worst := math.Inf(1), 0.0
	for _, x := range xs {
		best, worst = math.Min(best, x), math.Max(worst, x)
	}
	return best, (worst - best) / best
}
