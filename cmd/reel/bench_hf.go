package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// hfBenchRow is one model of `reel bench hf`.
type hfBenchRow struct {
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

func benchHF(args []string) error {
	fs := newFlags("bench hf")
	which := fs.String("model", "all", "llama (SmolLM2-135M-shaped), siglip (SigLIP-B/16 vision tower) or all")
	batch := fs.Int("batch", 1, "batch size")
	seq := fs.Int("seq", 128, "llama: tokens per sequence")
	runs := fs.Int("runs", 3, "alternating reel / PyTorch runs; the best of each is compared")
	steps := fs.Int("steps", 3, "timed steps per run (after 2 warm-up steps)")
	precision := fs.String("precision", "f32", "f32 or bf16 (reel: train.precision; PyTorch: autocast)")
	python := fs.String("python", "auto", "Python with torch for the reference (auto: /usr/bin/python3, then python3; \"\" to skip)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench hf [flags]\n\nTraining-step time (forward, backward, AdamW) of random-weight Hugging Face architectures at the\nshapes of SmolLM2-135M (LlamaForCausalLM) and the SigLIP-B/16 vision tower, in reel and in PyTorch\n(bench/hf_torch.py), alternating runs; prints the best step time of each, the runs' spread, the\nratio reel / PyTorch and MFU.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *batch < 1 || *seq < 1 || *runs < 1 || *steps < 1 {
		return &exitError{2, fmt.Errorf("bench hf: --batch, --seq, --runs and --steps must be ≥ 1")}
	}
	if *precision != "f32" && *precision != "bf16" {
		return &exitError{2, fmt.Errorf("bench hf: --precision %q (want f32 or bf16)", *precision)}
	}
	var jobs []benchJob
	if *which == "llama" || *which == "all" {
		c := hf.SmolLM2Config()
		jobs = append(jobs, benchJob{name: "smollm2-135m", tokens: *seq, batch: *batch, task: hf.NewLMBench(c, *batch, *seq, 1),
			script: "bench/hf_torch.py", args: []string{"llama", strconv.Itoa(c.VocabSize), strconv.Itoa(c.Hidden),
				strconv.Itoa(c.Intermediate), strconv.Itoa(c.Layers), strconv.Itoa(c.Heads), strconv.Itoa(c.KVHeads),
				strconv.Itoa(c.HeadDim), strconv.FormatFloat(c.Rope.Theta, 'g', -1, 64), strconv.Itoa(*batch), strconv.Itoa(*seq)}})
	}
	if *which == "siglip" || *which == "all" {
		c := hf.SiglipB16Config()
		jobs = append(jobs, benchJob{name: "siglip-b16", tokens: c.NumPatches(), batch: *batch, task: hf.NewVisionBench(c, *batch, 10, 1),
			script: "bench/hf_torch.py", args: []string{"siglip", strconv.Itoa(c.ImageSize), strconv.Itoa(c.PatchSize),
				strconv.Itoa(c.Hidden), strconv.Itoa(c.Intermediate), strconv.Itoa(c.Layers), strconv.Itoa(c.Heads), "10", strconv.Itoa(*batch)}})
	}
	if len(jobs) == 0 {
		return &exitError{2, fmt.Errorf("bench hf: --model %q (want llama, siglip or all)", *which)}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	device := "cpu"
	if info.Name != "go" {
		device = "cuda"
	}
	if *python == "auto" {
		*python = "python3"
		if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err == nil {
			*python = "/usr/bin/python3"
		}
	}
	fmt.Fprintf(os.Stderr, "reel: bench hf on %s, %s, %d alternating runs of %d timed steps\n", info, *precision, *runs, *steps)
	var rows []hfBenchRow
	note := ""
	for _, j := range jobs {
		r := recipes.Defaults()
		r.Name = "bench"
		r.Train.BatchSize, r.Train.GradAccum, r.Train.LR, r.Train.WeightDecay, r.Train.GradClip = j.batch, 1, 1e-3, 0.01, 1.0
		r.Train.Precision = *precision
		row := hfBenchRow{Model: j.name, Shape: fmt.Sprintf("%d×%d tokens", j.batch, j.tokens)}
		var reelT, torchT []float64
		var st train.StepStats
		tr := &torchRun{python: *python, job: j, device: device, precision: *precision, steps: *steps}
		for i := range *runs {
			if st, err = train.StepTime(j.task, &r, b, 2, *steps); err != nil {
				return err
			}
			reelT = append(reelT, st.StepS)
			fmt.Fprintf(os.Stderr, "reel: %s run %d: reel %.3fs", j.name, i+1, st.StepS)
			if *python != "" {
				if sec, err := tr.round(); err != nil {
					note = "PyTorch reference unavailable (" + errline.First(err) + ")"
				} else {
					torchT = append(torchT, sec)
					row.TorchThr = tr.threads
					note = fmt.Sprintf("torch %s on %s at its faster intra-op thread setting (%d or 1, chosen in run 1)", tr.best.Torch, device, runtime.NumCPU())
					if tr.best.Params != st.Params {
						note += fmt.Sprintf("; WARNING: its %s has %d parameters, reel's %d", j.name, tr.best.Params, st.Params)
					}
					fmt.Fprintf(os.Stderr, ", torch %.3fs", sec)
				}
			}
			fmt.Fprintln(os.Stderr)
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
			fmt.Fprintf(os.Stderr, "reel: MFU against the %s\n", st.Peak.Source)
		}
		rows = append(rows, row)
	}
	if note != "" {
		fmt.Fprintln(os.Stderr, "reel: "+note)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-14s %-15s %-7s %-7s %-16s %-16s %-4s %-7s %-7s %s\n", "model", "batch×tokens", "params", "GFLOP",
		"reel s (spread)", "torch s (spread)", "thr", "MFU", "torch", "ratio")
	for _, r := range rows {
		torch, ratio, thr := "-", "-", "-"
		if r.TorchS > 0 {
			torch, ratio, thr = fmt.Sprintf("%.3f (±%.0f%%)", r.TorchS, 100*r.TorchSpread), fmt.Sprintf("%.2f×", r.Ratio), strconv.Itoa(r.TorchThr)
		}
		fmt.Printf("%-14s %-15s %-7s %-7.1f %-16s %-16s %-4s %-7s %-7s %s\n", r.Model, r.Shape, fmt.Sprintf("%.1fM", float64(r.Params)/1e6),
			r.GFLOPs, fmt.Sprintf("%.3f (±%.0f%%)", r.ReelS, 100*r.ReelSpread), torch, thr, pct(r.ReelMFU), pct(r.TorchMFU), ratio)
	}
	return nil
}

// bestSpread is the minimum of xs and (max − min) / min.
func bestSpread(xs []float64) (best, spread float64) {
	best, worst := math.Inf(1), 0.0
	for _, x := range xs {
		best, worst = math.Min(best, x), math.Max(worst, x)
	}
	return best, (worst - best) / best
}
