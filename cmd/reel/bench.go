package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// benchRow is one frame count of `reel bench stts`.
type benchRow struct {
	Frames        int     `json:"frames"`
	Tokens        int     `json:"tokens"`         // group tokens per clip
	KeptTokens    int     `json:"kept_tokens"`    // after STTS pruning
	UnprunedS     float64 `json:"unpruned_s"`     // seconds per training step
	STTSS         float64 `json:"stts_s"`         // seconds per training step
	Speedup       float64 `json:"speedup"`        // unpruned / stts
	ExeVRMKept    float64 `json:"exevrm_kept"`    // mean tokens per clip kept by ExeVRM (packed)
	ExeVRMS       float64 `json:"exevrm_s"`       // seconds per training step
	ExeVRMSpeedup float64 `json:"exevrm_speedup"` // unpruned / exevrm
}

func cmdBench(args []string) error {
	if len(args) > 0 && args[0] == "vit" {
		return benchViT(args[1:])
	}
	if len(args) > 0 && args[0] == "rdvla" {
		return benchRDVLA(args[1:])
	}
	if len(args) == 0 || args[0] != "stts" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(os.Stderr, "Usage: reel bench stts|vit|rdvla [flags]  (reel bench NAME --help)")
			return nil
		}
		return &exitError{2, fmt.Errorf("bench: expected a benchmark name: stts, vit or rdvla")}
	}
	fs := newFlags("bench stts")
	recipe := fs.String("recipe", "stts-videoqa-tiny", "videoqa recipe whose model is timed")
	framesFlag := fs.String("frames", "16,32,64,128", "comma-separated frame counts")
	steps := fs.Int("steps", 3, "timed training steps per configuration (after 1 warm-up step)")
	batch := fs.Int("batch", 4, "batch size")
	keep := fs.Float64("keep", 0.5, "STTS keep ratio")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	sets := fs.StringArray("set", nil, "override a field of the recipe, e.g. --set model.vision_layers=8 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench stts [flags]\n\nTraining-step time of the same video VLM unpruned, STTS-pruned and ExeVRM-pruned (packed), per\nframe count, measured in one run; prints the speedups (unpruned / pruned).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var frames []int
	for _, f := range strings.Split(*framesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return &exitError{2, fmt.Errorf("bench stts: --frames: %q is not a frame count ≥ 2", f)}
		}
		frames = append(frames, n)
	}
	if *steps < 1 || *batch < 1 {
		return &exitError{2, fmt.Errorf("bench stts: --steps and --batch must be ≥ 1")}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: bench stts on %s, recipe %s, batch %d, %d timed steps each\n", info, *recipe, *batch, *steps)
	var rows []benchRow
	for _, f := range frames {
		row := benchRow{Frames: f}
		for _, method := range []string{"none", "stts", "exevrm"} {
			r, err := recipes.Load(*recipe, append(append([]string{}, *sets...),
				"model.frames="+strconv.Itoa(f), "pruning.method="+method, "pruning.keep="+strconv.FormatFloat(*keep, 'g', -1, 64),
				"train.batch_size="+strconv.Itoa(*batch), "train.grad_accum=1", "data.motion_frames="+strconv.Itoa(min(3, f-1)),
			))
			if err != nil {
				return err
			}
			if r.Task != "videoqa" {
				return fmt.Errorf("bench stts: --recipe %s has task %s, want videoqa", *recipe, r.Task)
			}
			task, err := tasks.NewVideoQA(r)
			if err != nil {
				return err
			}
			st, err := train.StepTime(task, r, b, 1, *steps)
			if err != nil {
				return fmt.Errorf("bench stts (%d frames, %s): %v", f, method, err)
			}
			sec := st.StepS
			sel := task.Selector()
			switch method {
			case "none":
				row.UnprunedS, row.Tokens = sec, sel.Kept()
			case "stts":
				row.STTSS, row.KeptTokens = sec, sel.Kept()
			case "exevrm":
				batch, err := task.MicroBatch(0) // the batch StepTime timed
				if err != nil {
					return err
				}
				row.ExeVRMS, row.ExeVRMKept = sec, task.KeptTokens(batch)
			}
		}
		row.Speedup, row.ExeVRMSpeedup = row.UnprunedS/row.STTSS, row.UnprunedS/row.ExeVRMS
		fmt.Fprintf(os.Stderr, "reel: %d frames: unpruned %.3fs, stts %.3fs (%.2f×), exevrm %.3fs (%.2f×) per step\n",
			f, row.UnprunedS, row.STTSS, row.Speedup, row.ExeVRMS, row.ExeVRMSpeedup)
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-7s %-14s %-11s %-9s %-8s %-13s %-10s %s\n", "frames", "tokens→kept", "unpruned s", "stts s", "speedup",
		"exevrm kept", "exevrm s", "speedup")
	for _, r := range rows {
		fmt.Printf("%-7d %-14s %-11.3f %-9.3f %-8s %-13.1f %-10.3f %.2f×\n", r.Frames, fmt.Sprintf("%d→%d", r.Tokens, r.KeptTokens),
			r.UnprunedS, r.STTSS, fmt.Sprintf("%.2f×", r.Speedup), r.ExeVRMKept, r.ExeVRMS, r.ExeVRMSpeedup)
	}
	return nil
}

// vitSizes are the reference ViTs of `reel bench vit`.
var vitSizes = map[string]struct {
	cfg   models.ViTConfig
	batch int
}{
	"tiny": {models.ViTConfig{ImageSize: 64, PatchSize: 8, Dim: 192, Layers: 6, Heads: 3, MLPRatio: 4}, 32},
	"s":    {models.ViTConfig{ImageSize: 224, PatchSize: 16, Dim: 384, Layers: 12, Heads: 6, MLPRatio: 4}, 32},
	"b":    {models.ViTConfig{ImageSize: 224, PatchSize: 16, Dim: 768, Layers: 12, Heads: 12, MLPRatio: 4}, 64},
}

// vitRow is one line of `reel bench vit`.
type vitRow struct {
	Model      string  `json:"model"`
	Tokens     int     `json:"tokens"`
	Batch      int     `json:"batch"`
	Params     int     `json:"params"`
	GFLOPs     float64 `json:"gflops_per_step"`
	CompileS   float64 `json:"compile_s"`
	StepS      float64 `json:"step_s"`
	MFU        float64 `json:"mfu"`
	PeakMiB    float64 `json:"peak_mib"`
	TorchS     float64 `json:"torch_step_s,omitempty"`
	TorchMFU   float64 `json:"torch_mfu,omitempty"`
	TorchMiB   float64 `json:"torch_peak_mib,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"`       // reel / pytorch step time
	TimeGrowth float64 `json:"time_growth,omitempty"` // d log(step time) / d log(tokens) vs the previous row
}

// benchViT times one AdamW training step of the same ViT classifier in reel and in PyTorch
// (bench/vit_torch.py, when python3 with torch is available), in one run; optionally over a
// sweep of sequence lengths (tokens per image) to show how attention's cost grows.
func benchViT(args []string) error {
	fs := newFlags("bench vit")
	size := fs.String("size", "tiny", "reference ViT: tiny (64px, 8px patches, D192×6), s (ViT-S/16 at 224px) or b (ViT-B/16 at 224px)")
	batch := fs.Int("batch", 0, "batch size (default: 32 for tiny and s, 64 for b)")
	steps := fs.Int("steps", 5, "timed steps (after 2 warm-up steps)")
	tokensFlag := fs.String("tokens", "", "also sweep these tokens per image (perfect squares, e.g. 64,256,1024), changing the image size")
	sweepBatch := fs.Int("sweep-batch", 4, "batch size of the --tokens sweep")
	precision := fs.String("precision", "f32", "f32 or bf16 (reel: train.precision; PyTorch: autocast)")
	device := fs.String("torch-device", "auto", "PyTorch device: cpu, cuda, or auto (cuda when reel runs on XLA CUDA)")
	python := fs.String("python", "auto", "Python with torch for the reference (auto: /usr/bin/python3, then python3; \"\" to skip)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of reel's timed steps to this file")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench vit [flags]\n\nTraining-step time (AdamW, fixed random batch) of the same ViT classifier in reel and in PyTorch\n(bench/vit_torch.py), measured in one run: step time, the ratio reel / PyTorch, compile time, model\nFLOPs, MFU and peak memory; with --tokens, how the step time grows with the sequence length.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	ref, ok := vitSizes[*size]
	if !ok {
		return &exitError{2, fmt.Errorf("bench vit: --size %q (want tiny, s or b)", *size)}
	}
	if *batch > 0 {
		ref.batch = *batch
	}
	if *steps < 1 || *sweepBatch < 1 {
		return &exitError{2, fmt.Errorf("bench vit: --steps and --sweep-batch must be ≥ 1")}
	}
	if *precision != "f32" && *precision != "bf16" {
		return &exitError{2, fmt.Errorf("bench vit: --precision %q (want f32 or bf16)", *precision)}
	}
	var sweep []int
	if *tokensFlag != "" {
		for _, f := range strings.Split(*tokensFlag, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			side := int(math.Round(math.Sqrt(float64(n))))
			if err != nil || n < 1 || side*side != n {
				return &exitError{2, fmt.Errorf("bench vit: --tokens: %q is not a perfect square ≥ 1", f)}
			}
			sweep = append(sweep, n)
		}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	if *device == "auto" {
		*device = "cpu"
		if info.Name != "go" {
			*device = "cuda"
		}
	}
	if *python == "auto" {
		*python = "python3"
		if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err == nil {
			*python = "/usr/bin/python3" // Debian's python3-torch (pyenv shims may shadow it)
		}
	}
	fmt.Fprintf(os.Stderr, "reel: bench vit-%s on %s, %s, %d timed steps\n", *size, info, *precision, *steps)
	type job struct {
		name  string
		cfg   models.ViTConfig
		batch int
	}
	jobs := []job{{"vit-" + *size, ref.cfg, ref.batch}}
	for _, n := range sweep {
		c := ref.cfg
		c.ImageSize = c.PatchSize * int(math.Round(math.Sqrt(float64(n))))
		jobs = append(jobs, job{"vit-" + *size, c, *sweepBatch})
	}
	var rows []vitRow
	torchNote := ""
	for i, j := range jobs {
		task := tasks.NewViTClassifier(j.cfg, j.batch, 10)
		r := recipes.Defaults()
		r.Name = "bench-vit"
		r.Train.BatchSize, r.Train.GradAccum, r.Train.LR, r.Train.WeightDecay, r.Train.GradClip = j.batch, 1, 1e-3, 0.01, 1.0
		r.Train.Precision = *precision
		base := idleHeap()
		stop := heapPeak()
		if *cpuProfile != "" && i == 0 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("bench vit: --cpuprofile: %v", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("bench vit: --cpuprofile: %v", err)
			}
		}
		st, err := train.StepTime(task, &r, b, 2, *steps)
		if *cpuProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		peak := stop()
		if err != nil {
			return err
		}
		c := j.cfg
		row := vitRow{Model: j.name, Tokens: (c.ImageSize / c.PatchSize) * (c.ImageSize / c.PatchSize), Batch: j.batch,
			Params: task.Params(), GFLOPs: st.FLOPs / 1e9, CompileS: st.CompileS, StepS: st.StepS, MFU: st.MFU(),
			PeakMiB: float64(peak-min(peak, base)) / (1 << 20)}
		if i == 0 {
			fmt.Fprintf(os.Stderr, "reel: MFU against the %s\n", st.Peak.Source)
		}
		if *python != "" {
			out, err := exec.Command(*python, "bench/vit_torch.py", strconv.Itoa(c.ImageSize), strconv.Itoa(c.PatchSize),
				strconv.Itoa(c.Dim), strconv.Itoa(c.Layers), strconv.Itoa(c.Heads), strconv.Itoa(j.batch), "10", "2",
				strconv.Itoa(*steps), *device, *precision).Output()
			var res struct {
				StepS   float64 `json:"step_s"`
				PeakMiB float64 `json:"peak_mib"`
				Torch   string  `json:"torch"`
			}
			if err == nil {
				err = json.Unmarshal(out, &res)
			}
			if err != nil {
				torchNote = "PyTorch reference unavailable (" + firstLine(err) + "; Debian: apt-get install python3-torch libopenblas0-pthread)"
			} else {
				torchNote = "torch " + res.Torch + " on " + *device
				row.TorchS, row.TorchMiB, row.Ratio = res.StepS, res.PeakMiB, st.StepS/res.StepS
				if st.Peak.FLOPS > 0 {
					row.TorchMFU = st.FLOPs / res.StepS / st.Peak.FLOPS
				}
			}
		}
		if i > 1 {
			prev := rows[i-1]
			row.TimeGrowth = math.Log(row.StepS/prev.StepS) / math.Log(float64(row.Tokens)/float64(prev.Tokens))
		}
		rows = append(rows, row)
	}
	if torchNote != "" {
		fmt.Fprintln(os.Stderr, "reel: "+torchNote)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-8s %-7s %-6s %-7s %-8s %-10s %-9s %-7s %-9s %-10s %-8s %-9s %-8s %s\n", "model", "tokens", "batch", "params",
		"GFLOP", "compile s", "reel s", "MFU", "heap MiB", "torch s", "MFU", "RSS MiB", "ratio", "growth")
	for i, r := range rows {
		if i == 1 {
			fmt.Printf("-- sequence-length sweep (batch %d): growth = d log(step time) / d log(tokens) --\n", *sweepBatch)
		}
		torchS, torchMFU, torchMiB, ratio, growth := "-", "-", "-", "-", "-"
		if r.TorchS > 0 {
			torchS, torchMFU, torchMiB = fmt.Sprintf("%.4f", r.TorchS), pct(r.TorchMFU), fmt.Sprintf("%.0f", r.TorchMiB)
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		if r.TimeGrowth != 0 {
			growth = fmt.Sprintf("%.2f", r.TimeGrowth)
		}
		fmt.Printf("%-8s %-7d %-6d %-7s %-8.1f %-10.2f %-9.4f %-7s %-9.0f %-10s %-8s %-9s %-8s %s\n", r.Model, r.Tokens, r.Batch,
			fmt.Sprintf("%.1fM", float64(r.Params)/1e6), r.GFLOPs, r.CompileS, r.StepS, pct(r.MFU), r.PeakMiB,
			torchS, torchMFU, torchMiB, ratio, growth)
	}
	return nil
}

func pct(f float64) string {
	if f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
