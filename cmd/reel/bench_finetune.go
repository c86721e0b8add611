package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// benchFinetuneConfig is the PaliGemma-shaped random model `reel bench finetune` trains (SigLIP
// tower, linear projector, Gemma decoder; image 64×64 in 8×8 patches: 64 image tokens): big
// enough for the optimizer state and the activations to dominate the heap, small enough for a
// round of six configurations in seconds on two cores.
const benchFinetuneConfig = `{"architectures": ["PaliGemmaForConditionalGeneration"], "model_type": "paligemma",
 "image_token_index": 127,
 "vision_config": {"model_type": "siglip_vision_model", "image_size": 64, "patch_size": 8,
                   "hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "vision_use_head": false},
 "text_config": {"model_type": "gemma", "vocab_size": 128, "hidden_size": 192, "intermediate_size": 768,
                 "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 48,
                 "max_position_embeddings": 128}}`

// finetuneRow is one configuration of `reel bench finetune`.
type finetuneRow struct {
	Mode      string  `json:"mode"`  // full, lora, frozen (vision tower frozen)
	Remat     bool    `json:"remat"` // train.remat
	Trainable int     `json:"params_trainable"`
	StepS     float64 `json:"step_s"`      // best round: seconds per training step
	StepSprd  float64 `json:"step_spread"` // (worst − best) / best over the rounds
	StateMiB  float64 `json:"state_mib"`   // best round: live heap of the initialised model (weights, optimizer state, graphs) above the idle heap
	PeakMiB   float64 `json:"peak_mib"`    // best round: state + the peak heap the timed steps add
	PeakSprd  float64 `json:"peak_spread"`
}

// benchFinetune is `reel bench finetune`.
func benchFinetune(args []string) error {
	fs := newFlags("bench finetune")
	recipe := fs.String("recipe", "counting-finetune-hf-tiny", "vqa recipe with model.pretrained: random whose task is trained (its model.hf_config is replaced by a PaliGemma-shaped benchmark model unless --keep-model)")
	keep := fs.Bool("keep-model", false, "keep the recipe's own model.hf_config")
	steps := fs.Int("steps", 2, "timed training steps per configuration and round (after 1 warm-up step)")
	rounds := fs.Int("rounds", 3, "rounds, alternating the configurations; the best of each is reported with the spread")
	batch := fs.Int("batch", 16, "batch size")
	rank := fs.Int("lora-rank", 8, "LoRA rank (train.lora.rank) of the lora configurations")
	freeze := fs.String("freeze", "model.vision_tower.*", "train.freeze glob of the frozen-backbone configurations")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench finetune [flags]\n\nPeak memory and training-step time of a PaliGemma-shaped random model fine-tuned in full, with\nLoRA adapters and with a frozen vision tower, each with and without activation checkpointing\n(train.remat), in alternating rounds. Memory is the Go heap (the CPU backend's buffers: weights,\noptimizer state, activations) above the idle heap, sampled with the collector at GOGC=10.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *steps < 1 || *batch < 1 || *rounds < 1 || *rank < 1 {
		return &exitError{2, fmt.Errorf("bench finetune: --steps, --rounds, --batch and --lora-rank must be ≥ 1")}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	type config struct {
		mode  string
		remat bool
	}
	var configs []config
	for _, m := range []string{"full", "lora", "frozen"} {
		for _, remat := range []bool{false, true} {
			configs = append(configs, config{m, remat})
		}
	}
	load := func(c config) (*recipes.Recipe, error) {
		// Each mode starts from no adapters and nothing frozen, whatever the recipe fine-tunes with.
		sets := []string{"train.batch_size=" + strconv.Itoa(*batch), "train.grad_accum=1", "train.remat=" + strconv.FormatBool(c.remat),
			"train.lora.rank=0", "train.lora.alpha=0", "train.lora.targets=[]", "train.freeze=[]"}
		switch c.mode {
		case "lora":
			sets = append(sets, "train.lora.rank="+strconv.Itoa(*rank))
		case "frozen":
			sets = append(sets, "train.freeze=["+*freeze+"]")
		}
		r, err := recipes.Load(*recipe, sets)
		if err != nil {
			return nil, err
		}
		if r.Model.Pretrained != "random" {
			return nil, fmt.Errorf("bench finetune: --recipe %s: needs model.pretrained: random (the benchmark builds its model with random weights)", *recipe)
		}
		if !*keep {
			r.Model.HFConfig, r.Model.ImageSize = benchFinetuneConfig, 64
		}
		return r, nil
	}
	if _, err := load(configs[0]); err != nil { // bad flags or recipe: one line, before any output
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: bench finetune on %s, recipe %s, batch %d, %d rounds of %d timed steps\n", info, *recipe, *batch, *rounds, *steps)
	times := make([][]float64, len(configs))
	peaks := make([][]float64, len(configs))
	states := make([][]float64, len(configs))
	params := make([]int, len(configs))
	for round := range *rounds {
		for i, c := range configs {
			r, err := load(c)
			if err != nil {
				return err
			}
			task, err := tasks.New(r)
			if err != nil {
				return err
			}
			idle := train.LiveHeap()
			timer, err := train.NewStepTimer(task, r, b, 1)
			if err != nil {
				return fmt.Errorf("bench finetune (%s, remat %v): %v", c.mode, c.remat, err)
			}
			live := train.LiveHeap()
			state := float64(live-min(idle, live)) / (1 << 20) // weights, optimizer state, compiled graphs
			step, err := train.LiveHeapPeak(func() error {
				_, err := timer.Time(*steps)
				return err
			})
			if err != nil {
				return fmt.Errorf("bench finetune (%s, remat %v): %v", c.mode, c.remat, err)
			}
			st := timer.Stats()
			states[i] = append(states[i], state)
			peaks[i] = append(peaks[i], state+float64(step)/(1<<20))
			fmt.Fprintf(os.Stderr, "reel: round %d, %s remat=%v: %.3fs per step, state %.0f MiB, peak %.0f MiB\n", round+1, c.mode, c.remat, st.StepS, state, peaks[i][len(peaks[i])-1])
			times[i] = append(times[i], st.StepS)
			params[i] = st.Params
		}
	}
	var rows []finetuneRow
	for i, c := range configs {
		row := finetuneRow{Mode: c.mode, Remat: c.remat, Trainable: params[i]}
		row.StepS, row.StepSprd = bestSpread(times[i])
		row.PeakMiB, row.PeakSprd = bestSpread(peaks[i])
		row.StateMiB, _ = bestSpread(states[i])
		if math.IsNaN(row.PeakSprd) || math.IsInf(row.PeakSprd, 0) {
			row.PeakSprd = 0
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-8s %-6s %-11s %-17s %-10s %s\n", "mode", "remat", "trainable", "step s (spread)", "state MiB", "peak heap MiB (spread)")
	for _, r := range rows {
		fmt.Printf("%-8s %-6v %-11s %-17s %-10.0f %s\n", r.Mode, r.Remat, fmt.Sprintf("%.2fM", float64(r.Trainable)/1e6),
			fmt.Sprintf("%.3f (±%.0f%%)", r.StepS, 100*r.StepSprd), r.StateMiB, fmt.Sprintf("%.0f (±%.0f%%)", r.PeakMiB, 100*r.PeakSprd))
	}
	return nil
}
