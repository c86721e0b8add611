package main

import (
	"encoding/json"
	"fmt"
	"os"
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
	ScoreAfter    int     `json:"score_after"`    // per-frame blocks before scoring
	UnprunedS     float64 `json:"unpruned_s"`     // seconds per training step (best round)
	STTSS         float64 `json:"stts_s"`         // seconds per training step (best round)
	Spread        string  `json:"spread"`         // worst rounds: unpruned / stts / exevrm
	Speedup       float64 `json:"speedup"`        // unpruned / stts
	ExeVRMKept    float64 `json:"exevrm_kept"`    // mean tokens per clip kept by ExeVRM (packed)
	ExeVRMS       float64 `json:"exevrm_s"`       // seconds per training step
	ExeVRMSpeedup float64 `json:"exevrm_speedup"` // unpruned / exevrm
}

// benchCommands are the benchmarks of `reel bench NAME`.
var benchCommands = map[string]func(args []string) error{
	"vit": benchViT, "video": benchVideo, "stts": benchSTTS, "rdvla": benchRDVLA, "data": benchData, "serve": benchServe,
	"hf": benchHF, "finetune": benchFinetune,
}

func cmdBench(args []string) error {
	return dispatch("bench", benchCommands, args)
}

// benchSTTS is `reel bench stts`.
func benchSTTS(args []string) error {
	fs := newFlags("bench stts")
	recipe := fs.String("recipe", "stts-videoqa-tiny", "videoqa recipe whose model is timed")
	framesFlag := fs.String("frames", "16,32,64,128", "comma-separated frame counts")
	steps := fs.Int("steps", 3, "timed training steps per configuration and round (after 1 warm-up step)")
	rounds := fs.Int("rounds", 3, "timed rounds, alternating the three methods; the best of each is compared")
	scoreAfter := fs.Int("score-after", -1, "per-frame ViT blocks before scoring (-1: at the paper's depth, block 3 of 27, scaled to model.vision_layers)")
	batch := fs.Int("batch", 4, "batch size")
	keep := fs.Float64("keep", 0.5, "STTS keep ratio")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	sets := fs.StringArray("set", nil, "override a field of the recipe, e.g. --set model.vision_layers=8 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench stts [flags]\n\nTraining-step time of the same video VLM unpruned, STTS-pruned and ExeVRM-pruned (packed), per\nframe count, measured in one run; prints the speedups (unpruned / pruned).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
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
	if *steps < 1 || *batch < 1 || *rounds < 1 {
		return &exitError{2, fmt.Errorf("bench stts: --steps, --rounds and --batch must be ≥ 1")}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: bench stts on %s, recipe %s, batch %d, %d timed steps each\n", info, *recipe, *batch, *steps)
	var rows []benchRow
	methods := []string{"none", "stts", "exevrm"}
	for _, f := range frames {
		row := benchRow{Frames: f}
		timers := make([]*train.StepTimer, len(methods))
		vqa := make([]*tasks.VideoQA, len(methods))
		for m, method := range methods {
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
			if *scoreAfter >= 0 {
				r.Model.ScoreAfter = *scoreAfter
			} else {
				r.Model.ScoreAfter = models.STTSPaperScoreAfter(r.Model.VisionLayers)
			}
			if r.Model.ScoreAfter >= r.Model.VisionLayers {
				return &exitError{2, fmt.Errorf("bench stts: --score-after %d must be less than model.vision_layers (%d)", r.Model.ScoreAfter, r.Model.VisionLayers)}
			}
			row.ScoreAfter = r.Model.ScoreAfter
			if vqa[m], err = tasks.NewVideoQA(r); err != nil {
				return err
			}
			if timers[m], err = train.NewStepTimer(vqa[m], r, b, 1); err != nil {
				return fmt.Errorf("bench stts (%d frames, %s): %v", f, method, err)
			}
		}
		worst := make([]float64, len(methods))
		for range *rounds { // alternate the methods, so that all see the same machine state
			for m := range methods {
				sec, err := timers[m].Time(*steps)
				if err != nil {
					return fmt.Errorf("bench stts (%d frames, %s): %v", f, methods[m], err)
				}
				worst[m] = max(worst[m], sec)
			}
		}
		for m, method := range methods {
			sec := timers[m].Stats().StepS
			sel := vqa[m].Selector()
			switch method {
			case "none":
				row.UnprunedS, row.Tokens = sec, sel.Kept()
			case "stts":
				row.STTSS, row.KeptTokens = sec, sel.Kept()
			case "exevrm":
				batch, err := vqa[m].MicroBatch(0) // the batch the timer runs
				if err != nil {
					return err
				}
				row.ExeVRMS, row.ExeVRMKept = sec, vqa[m].KeptTokens(batch)
			}
		}
		row.Spread = fmt.Sprintf("%.3f / %.3f / %.3f", worst[0], worst[1], worst[2])
		row.Speedup, row.ExeVRMSpeedup = row.UnprunedS/row.STTSS, row.UnprunedS/row.ExeVRMS
		fmt.Fprintf(os.Stderr, "reel: %d frames (scoring after block %d): unpruned %.3fs, stts %.3fs (%.2f×), exevrm %.3fs (%.2f×) per step (best of %d; worst %s)\n",
			f, row.ScoreAfter, row.UnprunedS, row.STTSS, row.Speedup, row.ExeVRMS, row.ExeVRMSpeedup, *rounds, row.Spread)
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-7s %-14s %-11s %-9s %-8s %-13s %-10s %-8s %s\n", "frames", "tokens→kept", "unpruned s", "stts s", "speedup",
		"exevrm kept", "exevrm s", "speedup", "worst rounds (unpruned / stts / exevrm)")
	for _, r := range rows {
		fmt.Printf("%-7d %-14s %-11.3f %-9.3f %-8s %-13.1f %-10.3f %-8s %s\n", r.Frames, fmt.Sprintf("%d→%d", r.Tokens, r.KeptTokens),
			r.UnprunedS, r.STTSS, fmt.Sprintf("%.2f×", r.Speedup), r.ExeVRMKept, r.ExeVRMS, fmt.Sprintf("%.2f×", r.ExeVRMSpeedup), r.Spread)
	}
	return nil
}
