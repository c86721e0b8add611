package bench

import (
	"cmp"
	"fmt"
	"github.com/reelml/reel/internal/usage"
	"io"
	"math"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// FinetuneModel is the PaliGemma-shaped random model `reel bench finetune` trains (SigLIP
// tower, linear projector, Gemma decoder; image 64×64 in 8×8 patches: 64 image tokens): big
// enough for the optimizer state and the activations to dominate the heap, small enough for a
// round of six configurations in seconds on two cores.
const FinetuneModel = `{"architectures": ["PaliGemmaForConditionalGeneration"], "model_type": "paligemma",
 "image_token_index": 127,
 "vision_config": {"model_type": "siglip_vision_model", "image_size": 64, "patch_size": 8,
                   "hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "vision_use_head": false},
 "text_config": {"model_type": "gemma", "vocab_size": 128, "hidden_size": 192, "intermediate_size": 768,
                 "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 48,
                 "max_position_embeddings": 128}}`

// FinetuneRow is one configuration of `reel bench finetune`.
type FinetuneRow struct {
	Mode      string  `json:"mode"`  // full, lora, frozen (vision tower frozen)
	Remat     bool    `json:"remat"` // train.remat
	Trainable int     `json:"params_trainable"`
	StepS     float64 `json:"step_s"`      // best round: seconds per training step
	StepSprd  float64 `json:"step_spread"` // (worst − best) / best over the rounds
	StateMiB  float64 `json:"state_mib"`   // best round: live heap of the initialised model (weights, optimizer state, graphs) above the idle heap
	PeakMiB   float64 `json:"peak_mib"`    // best round: state + the peak heap the timed steps add
	PeakSprd  float64 `json:"peak_spread"`
}

// FinetuneConfig is `reel bench finetune`: peak memory and step time of a vqa recipe's model
// (model.pretrained: random) fine-tuned in full, with LoRA adapters and with a frozen backbone,
// each with and without train.remat, in alternating rounds.
type FinetuneConfig struct {
	Recipe    string
	KeepModel bool // keep the recipe's model.hf_config instead of FinetuneModel
	// Model is a FinetuneShapes name: "" or paligemma (FinetuneModel in Recipe), pi0 (real size),
	// pi0-small; a pi0 shape trains its own recipe (pi0-tiny) and ignores Recipe and KeepModel.
	Model     string
	Modes     []string // of full, lora, frozen; empty: all three
	Remat     string   // both (default), on, off
	Precision string   // train.precision override ("": the recipe's)
	Steps     int      // timed steps per configuration and round
	Rounds    int
	Batch     int
	LoRARank  int
	Freeze    string // train.freeze glob of the frozen configurations
	Backend   string
	Log       Logger
}

// RunFinetune runs the fine-tuning benchmark.
func RunFinetune(c FinetuneConfig) ([]FinetuneRow, error) {
	if c.Steps < 1 || c.Batch < 1 || c.Rounds < 1 || c.LoRARank < 1 {
		return nil, usage.Errorf("bench finetune: --steps, --rounds, --batch and --lora-rank must be ≥ 1")
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	type config struct {
		mode  string
		remat bool
	}
	shape, err := finetuneShape(cmp.Or(c.Model, "paligemma"))
	if err != nil {
		return nil, usage.Errorf("%v", err)
	}
	recipe := c.Recipe
	if shape.Recipe != "" {
		recipe = shape.Recipe
	}
	modes := c.Modes
	if len(modes) == 0 {
		modes = []string{"full", "lora", "frozen"}
	}
	remats := map[string][]bool{"": {false, true}, "both": {false, true}, "on": {true}, "off": {false}}[c.Remat]
	if remats == nil {
		return nil, usage.Errorf("bench finetune: --remat %q: want both, on or off", c.Remat)
	}
	var configs []config
	for _, m := range modes {
		if m != "full" && m != "lora" && m != "frozen" {
			return nil, usage.Errorf("bench finetune: --modes: %q is not one of full, lora, frozen", m)
		}
		for _, remat := range remats {
			configs = append(configs, config{m, remat})
		}
	}
	load := func(cf config) (*recipes.Recipe, error) {
		// Each mode starts from no adapters and nothing frozen, whatever the recipe fine-tunes with.
		sets := []string{"train.batch_size=" + strconv.Itoa(c.Batch), "train.grad_accum=1", "train.remat=" + strconv.FormatBool(cf.remat),
			"train.lora.rank=0", "train.lora.alpha=0", "train.lora.targets=[]", "train.freeze=[]"}
		switch cf.mode {
		case "lora":
			sets = append(sets, "train.lora.rank="+strconv.Itoa(c.LoRARank))
		case "frozen":
			sets = append(sets, "train.freeze=["+c.Freeze+"]")
		}
		if c.Precision != "" {
			sets = append(sets, "train.precision="+c.Precision)
		}
		r, err := recipes.Load(recipe, append(sets, shape.Sets...))
		if err != nil {
			return nil, err
		}
		if r.Model.Pretrained != "random" {
			return nil, fmt.Errorf("bench finetune: --recipe %s: needs model.pretrained: random (the benchmark builds its model with random weights)", recipe)
		}
		if !c.KeepModel || shape.Recipe != "" {
			r.Model.HFConfig, r.Model.ImageSize = shape.HFConfig, shape.ImageSize
		}
		return r, nil
	}
	if _, err := load(configs[0]); err != nil { // bad flags or recipe: one line, before any output
		return nil, err
	}
	c.Log.printf("bench finetune on %s, model %s, recipe %s, batch %d, %d rounds of %d timed steps", info, cmp.Or(c.Model, "paligemma"), recipe, c.Batch, c.Rounds, c.Steps)
	times := make([][]float64, len(configs))
	peaks := make([][]float64, len(configs))
	states := make([][]float64, len(configs))
	params := make([]int, len(configs))
	for round := range c.Rounds {
		for i, cf := range configs {
			r, err := load(cf)
			if err != nil {
				return nil, err
			}
			task, err := tasks.New(r)
			if err != nil {
				return nil, err
			}
			idle := LiveHeap()
			timer, err := train.NewStepTimer(task, r, b, 1)
			if err != nil {
				return nil, fmt.Errorf("bench finetune (%s, remat %v): %w", cf.mode, cf.remat, err)
			}
			live := LiveHeap()
			state := float64(live-min(idle, live)) / (1 << 20) // weights, optimizer state, compiled graphs
			step, err := LiveHeapPeak(func() error {
				_, err := timer.Time(c.Steps)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("bench finetune (%s, remat %v): %w", cf.mode, cf.remat, err)
			}
			st := timer.Stats()
			states[i] = append(states[i], state)
			peaks[i] = append(peaks[i], state+float64(step)/(1<<20))
			c.Log.printf("round %d, %s remat=%v: %.3fs per step, state %.0f MiB, peak %.0f MiB", round+1, cf.mode, cf.remat, st.StepS, state, peaks[i][len(peaks[i])-1])
			times[i] = append(times[i], st.StepS)
			params[i] = st.Params
		}
	}
	var rows []FinetuneRow
	for i, cf := range configs {
		row := FinetuneRow{Mode: cf.mode, Remat: cf.remat, Trainable: params[i]}
		row.StepS, row.StepSprd = bestSpread(times[i])
		row.PeakMiB, row.PeakSprd = bestSpread(peaks[i])
		row.StateMiB, _ = bestSpread(states[i])
		if math.IsNaN(row.PeakSprd) || math.IsInf(row.PeakSprd, 0) {
			row.PeakSprd = 0
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteFinetuneTable prints the rows as `reel bench finetune` does.
func WriteFinetuneTable(w io.Writer, rows []FinetuneRow) {
	fmt.Fprintf(w, "%-8s %-6s %-11s %-17s %-10s %s\n", "mode", "remat", "trainable", "step s (spread)", "state MiB", "peak heap MiB (spread)")
	for _, r := range rows {
		fmt.Fprintf(w, "%-8s %-6v %-11s %-17s %-10.0f %s\n", r.Mode, r.Remat, fmt.Sprintf("%.2fM", float64(r.Trainable)/1e6),
			fmt.Sprintf("%.3f (±%.0f%%)", r.StepS, 100*r.StepSprd), r.StateMiB, fmt.Sprintf("%.0f (±%.0f%%)", r.PeakMiB, 100*r.PeakSprd))
	}
}
