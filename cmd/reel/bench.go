package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/reelml/reel/backends"
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
	if len(args) > 0 && args[0] == "video" {
		return benchVideo(args[1:])
	}
	if len(args) > 0 && args[0] == "data" {
		return benchData(args[1:])
	}
	if len(args) == 0 || args[0] != "stts" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(os.Stderr, "Usage: reel bench stts|vit|video|rdvla|data [flags]  (reel bench NAME --help)")
			return nil
		}
		return &exitError{2, fmt.Errorf("bench: expected a benchmark name: stts, vit, video, rdvla or data")}
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
