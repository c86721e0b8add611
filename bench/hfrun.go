package bench

import (
	"fmt"
	"github.com/reelml/reel/internal/usage"
	"io"
	"runtime"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// HFRow is one model of `reel bench hf`.
type HFRow struct {
	Model       string  `json:"model"`
	Shape       string  `json:"shape"`
	Params      int     `json:"params"`
	GFLOPs      float64 `json:"gflops_per_step"`
	ReelS       float64 `json:"reel_step_s"`        // best of the runs
	ReelSpread  float64 `json:"reel_spread"`        // (slowest − best) / best over the runs
	TorchS      float64 `json:"torch_step_s"`       // best of the runs
	TorchSpread float64 `json:"torch_spread"`       // (slowest − best) / best
	TorchThr    int     `json:"torch_threads"`      // intra-op threads of PyTorch's best run
	Ratio       float64 `json:"ratio"`              // reel / PyTorch
	ReelMFU     float64 `json:"reel_mfu,omitempty"` // model FLOPs / step time / peak
	TorchMFU    float64 `json:"torch_mfu,omitempty"`
}

// HFConfig is `reel bench hf`: the training step (forward, backward, AdamW) of random-weight
// Hugging Face architectures at the shapes of SmolLM2-135M, the SigLIP-B/16 vision tower and
// Qwen2.5-VL-3B with fewer layers (QwenVLBenchConfig), in reel and in PyTorch (hf_torch.py),
// alternating runs.
type HFConfig struct {
	Model     string // llama, siglip, qwenvl or all
	Batch     int
	Seq       int // llama: tokens per sequence; qwenvl: text tokens after the image
	Runs      int // alternating reel / PyTorch runs
	Steps     int // timed steps per run
	Precision string
	Python    string // auto, a path, or "" to skip the reference
	Backend   string
	Log       Logger
}

// RunHF runs the Hugging Face architectures benchmark.
func RunHF(c HFConfig) ([]HFRow, error) {
	if c.Batch < 1 || c.Seq < 1 || c.Runs < 1 || c.Steps < 1 {
		return nil, usage.Errorf("bench hf: --batch, --seq, --runs and --steps must be ≥ 1")
	}
	if err := checkPrecision("bench hf", c.Precision); err != nil {
		return nil, err
	}
	var jobs []Job
	if c.Model == "llama" || c.Model == "all" {
		m := SmolLM2Config()
		jobs = append(jobs, Job{Name: "smollm2-135m", Tokens: c.Seq, Batch: c.Batch, Task: NewLMBench(m, c.Batch, c.Seq, 1),
			Script: "bench/hf_torch.py", Args: []string{"llama", strconv.Itoa(m.VocabSize), strconv.Itoa(m.Hidden),
				strconv.Itoa(m.Intermediate), strconv.Itoa(m.Layers), strconv.Itoa(m.Heads), strconv.Itoa(m.KVHeads),
				strconv.Itoa(m.HeadDim), strconv.FormatFloat(m.Rope.Theta, 'g', -1, 64), strconv.Itoa(c.Batch), strconv.Itoa(c.Seq)}})
	}
	if c.Model == "siglip" || c.Model == "all" {
		m := SiglipB16Config()
		jobs = append(jobs, Job{Name: "siglip-b16", Tokens: m.NumPatches(), Batch: c.Batch, Task: NewVisionBench(m, c.Batch, 10, 1),
			Script: "bench/hf_torch.py", Args: []string{"siglip", strconv.Itoa(m.ImageSize), strconv.Itoa(m.PatchSize),
				strconv.Itoa(m.Hidden), strconv.Itoa(m.Intermediate), strconv.Itoa(m.Layers), strconv.Itoa(m.Heads), "10", strconv.Itoa(c.Batch)}})
	}
	if c.Model == "qwenvl" || c.Model == "all" {
		m, image := QwenVLBenchConfig(), 168 // 12×12 patches: 6×6 merged tokens in windows of 4×4, 4×2, 2×4, 2×2
		v, tc := m.Vision, m.Text
		jobs = append(jobs, Job{Name: "qwen2.5vl-3b-2+2", Tokens: image*image/(v.PatchSize*v.PatchSize*v.MergeSize*v.MergeSize) + 2 + c.Seq, Batch: c.Batch,
			Task: NewQwenVLBench(m, c.Batch, image, c.Seq, 1), Script: "bench/hf_torch.py", Args: []string{"qwen2_5_vl",
				strconv.Itoa(v.Depth), strconv.Itoa(v.Hidden), strconv.Itoa(v.Intermediate), strconv.Itoa(v.Heads), strconv.Itoa(v.WindowSize),
				strconv.Itoa(tc.VocabSize), strconv.Itoa(tc.Hidden), strconv.Itoa(tc.Intermediate), strconv.Itoa(tc.Layers), strconv.Itoa(tc.Heads),
				strconv.Itoa(tc.KVHeads), strconv.Itoa(tc.HeadDim), strconv.Itoa(image), strconv.Itoa(c.Batch), strconv.Itoa(c.Seq)}})
	}
	if len(jobs) == 0 {
		return nil, usage.Errorf("bench hf: --model %q (want llama, siglip, qwenvl or all)", c.Model)
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	device := "cpu"
	if info.Name != "go" {
		device = "cuda"
	}
	python := findPython(c.Python)
	c.Log.printf("bench hf on %s, %s, %d alternating runs of %d timed steps", info, c.Precision, c.Runs, c.Steps)
	var rows []HFRow
	note := ""
	for _, j := range jobs {
		r := recipes.Defaults()
		r.Name = "bench"
		r.Train.BatchSize, r.Train.GradAccum, r.Train.LR, r.Train.WeightDecay, r.Train.GradClip = j.Batch, 1, 1e-3, 0.01, 1.0
		r.Train.Precision = c.Precision
		row := HFRow{Model: j.Name, Shape: fmt.Sprintf("%d×%d tokens", j.Batch, j.Tokens)}
		var reelT, torchT []float64
		var st train.StepStats
		tr := &torchRun{python: python, job: j, device: device, precision: c.Precision, steps: c.Steps}
		for i := range c.Runs {
			if st, err = train.StepTime(j.Task, &r, b, 2, c.Steps); err != nil {
				return nil, err
			}
			reelT = append(reelT, st.StepS)
			line := fmt.Sprintf("%s run %d: reel %.3fs", j.Name, i+1, st.StepS)
			if python != "" {
				if sec, err := tr.round(); err != nil {
					note = "PyTorch reference unavailable (" + errline.First(err) + ")"
				} else {
					torchT = append(torchT, sec)
					row.TorchThr = tr.threads
					note = fmt.Sprintf("torch %s on %s at its faster intra-op thread setting (%d or 1, chosen in run 1)", tr.best.Torch, device, runtime.NumCPU())
					if tr.best.Params != st.Params {
						note += fmt.Sprintf("; WARNING: its %s has %d parameters, reel's %d", j.Name, tr.best.Params, st.Params)
					}
					line += fmt.Sprintf(", torch %.3fs", sec)
				}
			}
			c.Log.printf("%s", line)
		}
		row.Params, row.GFLOPs = st.Params, st.FLOPs/1e9
		row.ReelS, row.ReelSpread = bestSpread(reelT)
		if len(torchT) > 0 {
			row.TorchS, row.TorchSpread = bestSpread(torchT)
			row.Ratio = row.ReelS / row.TorchS
		}
		if st.Peak.FLOPS > 0 {
			row.ReelMFU = st.FLOPs / row.ReelS / st.Peak.FLOPS
			if row.TorchS > 0 {
				row.TorchMFU = st.FLOPs / row.TorchS / st.Peak.FLOPS
			}
		}
		if note == "" || len(rows) == 0 {
			c.Log.printf("MFU against the %s", st.Peak.Source)
		}
		rows = append(rows, row)
	}
	if note != "" {
		c.Log.printf("%s", note)
	}
	return rows, nil
}

// WriteHFTable prints the rows as `reel bench hf` does.
func WriteHFTable(w io.Writer, rows []HFRow) {
	fmt.Fprintf(w, "%-14s %-15s %-7s %-7s %-16s %-16s %-4s %-7s %-7s %s\n", "model", "batch×tokens", "params", "GFLOP",
		"reel s (spread)", "torch s (spread)", "thr", "MFU", "torch", "ratio")
	for _, r := range rows {
		torch, ratio, thr := "-", "-", "-"
		if r.TorchS > 0 {
			torch, ratio, thr = fmt.Sprintf("%.3f (±%.0f%%)", r.TorchS, 100*r.TorchSpread), fmt.Sprintf("%.2f×", r.Ratio), strconv.Itoa(r.TorchThr)
		}
		fmt.Fprintf(w, "%-14s %-15s %-7s %-7.1f %-16s %-16s %-4s %-7s %-7s %s\n", r.Model, r.Shape, fmt.Sprintf("%.1fM", float64(r.Params)/1e6),
			r.GFLOPs, fmt.Sprintf("%.3f (±%.0f%%)", r.ReelS, 100*r.ReelSpread), torch, thr, pct(r.ReelMFU), pct(r.TorchMFU), ratio)
	}
}
