package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQwenCountingRecipeTiny: counting-finetune-qwen2.5vl-tiny (a random-weight Qwen2.5-VL, LoRA on
// the decoder, its vision tower frozen) trains from the CLI and `reel eval RUN` compares it with
// its untouched initialisation on the id / ood / general splits: at learning rate 0 the run is that
// initialisation (every delta 0); a run that trains lowers the loss on every split.
func TestQwenCountingRecipeTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.eval_every=0", "--set", "checkpoint.every=0", "--set", "eval.examples=32",
		"--set", "eval.batch_size=32", "--set", "train.batch_size=8"}
	evalRun := func(run string) hfEval {
		r := reel(t, dir, "eval", run)
		requireOK(t, r)
		var ev hfEval
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
		return ev
	}
	r := reel(t, dir, append([]string{"train", "counting-finetune-qwen2.5vl-tiny", "--out", "still", "--set", "train.steps=2", "--set", "train.lr=0"}, quick...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "train.freeze: 30 variables frozen")
	still := evalRun("still")
	require.Equal(t, still.Metrics, still.Baseline.Metrics)
	require.Len(t, still.Splits, 3)
	for _, s := range still.Splits {
		require.Zero(t, s.Delta, s.Set)
	}
	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-qwen2.5vl-tiny", "--out", "tuned", "--set", "train.steps=25"}, quick...)...))
	tuned := evalRun("tuned")
	require.Equal(t, still.Baseline.Metrics, tuned.Baseline.Metrics)
	for _, s := range tuned.Splits {
		require.Less(t, tuned.Metrics[s.Set+"/loss"], tuned.Baseline.Metrics[s.Set+"/loss"], "%s: training lowers the loss", s.Set)
	}
}
