package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/bench"
)

// TestBenchFinetune: one round of `reel bench finetune` on the tiny recipe's own model prints a
// row per configuration; LoRA and the frozen tower train fewer parameters and hold less state.
func TestBenchFinetune(t *testing.T) {
	if testing.Short() {
		t.Skip("trains six tiny models")
	}
	r := reel(t, t.TempDir(), "bench", "finetune", "--keep-model", "--rounds", "1", "--steps", "1", "--batch", "4", "--json")
	requireOK(t, r)
	var rows []bench.FinetuneRow
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 6)
	by := map[string]bench.FinetuneRow{}
	for _, row := range rows {
		require.Greater(t, row.StepS, 0.0)
		require.Greater(t, row.PeakMiB, 0.0)
		if !row.Remat {
			by[row.Mode] = row
		}
	}
	require.Less(t, by["lora"].Trainable, by["full"].Trainable/3)
	require.Less(t, by["frozen"].Trainable, by["full"].Trainable)
	require.Less(t, by["lora"].StateMiB, by["full"].StateMiB, "no optimizer state for the frozen base")
	msg := requireUserError(t, reel(t, t.TempDir(), "bench", "finetune", "--recipe", "counting-finetune-tiny"), 1)
	require.Contains(t, msg, "needs model.pretrained: random")
}

// train.remat checkpoints the Hugging Face decoder and SigLIP layers too, and changes no loss.
func TestHFRematSameLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model twice")
	}
	dir := t.TempDir()
	for _, remat := range []string{"false", "true"} {
		requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "remat-" + remat, "--set", "train.steps=3",
			"--set", "checkpoint.every=0", "--set", "train.remat=" + remat}, tiny...)...))
	}
	plain, remat := trainRows(t, dir+"/remat-false"), trainRows(t, dir+"/remat-true")
	require.Len(t, plain, 3)
	for s := 1; s <= 3; s++ {
		require.InDelta(t, plain[s], remat[s], 1e-6, "step %d", s)
	}
}
