package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/evaluate"

	"github.com/reelml/reel/checkpoints"
)

// hfEval is what `reel eval RUN` prints for a fine-tune with a baseline.
type hfEval struct {
	Metrics  map[string]float64 `json:"metrics"`
	Baseline struct {
		Checkpoint string             `json:"checkpoint"`
		Metrics    map[string]float64 `json:"metrics"`
	} `json:"baseline"`
	Delta  map[string]float64    `json:"delta"`
	Splits []evaluate.SplitDelta `json:"splits"`
}

// TestHFCountingLoRAAgainstInit: counting-finetune-hf-tiny (random-weight PaliGemma, LoRA on the
// decoder, vision tower frozen) is compared by `reel eval RUN` with its untouched model, the same
// seed's initialisation. A run at learning rate 0 is that initialisation, so its metrics must equal
// the baseline's exactly (every loss, every split) and every delta be 0; a run that trains has the
// same baseline, a lower loss than it on every split, and the id/ood/general table is after −
// before. The frozen base weights are the initialisation's; the adapters moved.
func TestHFCountingLoRAAgainstInit(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.eval_every=0", "--set", "checkpoint.every=0", "--set", "eval.examples=32", "--set", "eval.batch_size=32"}
	evalRun := func(run string) hfEval {
		r := reel(t, dir, "eval", run)
		requireOK(t, r)
		require.Contains(t, r.stderr, "id (counting)")
		var ev hfEval
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
		return ev
	}
	r := reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "still", "--set", "train.steps=2", "--set", "train.lr=0"}, quick...)...)
	requireOK(t, r)
	require.Regexp(t, `parameters: \d+ trainable of \d+ \([0-9.]+%\)`, r.stderr)
	still := evalRun("still")
	require.Equal(t, "initialisation (train.seed 1)", still.Baseline.Checkpoint)
	require.NotEmpty(t, still.Metrics)
	require.Equal(t, still.Metrics, still.Baseline.Metrics, "learning rate 0 leaves the initialisation the baseline rebuilds")
	require.Len(t, still.Splits, 3)
	names := map[string]string{}
	for _, s := range still.Splits {
		names[s.Set] = s.Split
		require.Zero(t, s.Delta, s.Set)
	}
	require.Equal(t, map[string]string{"counting": "id", "counting_ood": "ood", "general": "general"}, names)

	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "tuned", "--set", "train.steps=30"}, quick...)...))
	tuned := evalRun("tuned")
	require.Equal(t, still.Baseline.Metrics, tuned.Baseline.Metrics, "the same seed's initialisation, however long the run")
	for _, s := range tuned.Splits {
		require.Equal(t, tuned.Metrics[s.Set+"/accuracy"], s.After)
		require.Equal(t, tuned.Baseline.Metrics[s.Set+"/accuracy"], s.Before)
		require.InDelta(t, s.After-s.Before, s.Delta, 1e-12)
		require.Less(t, tuned.Metrics[s.Set+"/loss"], tuned.Baseline.Metrics[s.Set+"/loss"], "%s: training lowers the loss", s.Set)
	}

	load := func(run string) map[string]*tensors.Tensor {
		ck, err := checkpoints.Resolve(filepath.Join(dir, run), func(string) {})
		require.NoError(t, err)
		vars, _, err := checkpoints.LoadVariables(ck)
		require.NoError(t, err)
		return vars
	}
	init, after := load("still"), load("tuned")
	flat := func(x *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](x) }
	for _, v := range []string{"/model/vision_tower/vision_model/encoder/layers/0/self_attn/q_proj/weights",
		"/model/language_model/layers/0/self_attn/q_proj/weights", "/model/language_model/layers/1/mlp/down_proj/weights"} {
		require.Equal(t, flat(init[v]), flat(after[v]), "%s: frozen (train.freeze or a LoRA base)", v)
	}
	require.NotContains(t, after, "/model/vision_tower/vision_model/encoder/layers/0/self_attn/q_proj/lora/b", "no adapters in the vision tower")
	for _, v := range []string{"/model/language_model/layers/0/self_attn/q_proj/lora/b", "/model/language_model/layers/1/mlp/gate_proj/lora/b"} {
		require.Contains(t, after, v)
		require.NotEqual(t, flat(init[v]), flat(after[v]), "%s: the adapter trains", v)
	}
}
