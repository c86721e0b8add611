package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSTTSVideoQAHF trains stts-videoqa-hf-tiny (a random-weight Hugging Face LLaVA: SigLIP tower
// with the STTS scorer after layer 2, Qwen2 decoder) briefly as a user would: the loss falls, the
// pruned tower keeps exactly half of each video's patch groups, `reel eval RUN` compares the run
// with its initialisation, and the recipe's bad pretrained settings are one error line each.
func TestSTTSVideoQAHF(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny video model")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, "train", "stts-videoqa-hf-tiny", "--out", "run", "--set", "train.steps=24", "--set", "train.batch_size=8",
		"--set", "train.warmup_steps=4", "--set", "train.log_every=1", "--set", "train.eval_every=0", "--set", "checkpoint.every=0",
		"--set", "eval.examples=12", "--set", "eval.batch_size=12"))
	rows := trainRows(t, filepath.Join(dir, "run"))
	first, last := (rows[1]+rows[2]+rows[3])/3, (rows[22]+rows[23]+rows[24])/3
	t.Logf("loss %.3f → %.3f", first, last)
	require.Less(t, last, 0.8*first)

	r := reel(t, dir, "eval", "run")
	requireOK(t, r)
	var ev hfEval
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Equal(t, 0.5, ev.Metrics["videoqa/kept"], "36 of 72 patch groups")
	require.Equal(t, "initialisation (train.seed 1)", ev.Baseline.Checkpoint)
	require.Len(t, ev.Splits, 1)
	require.Equal(t, "videoqa", ev.Splits[0].Split)
	require.Less(t, ev.Metrics["videoqa/loss"], ev.Baseline.Metrics["videoqa/loss"])

	for _, c := range []struct{ set, want string }{
		{"pruning.method=exevrm", "pruning.method: spatiotemporal is not supported with model.pretrained"},
		{"model.motion=true", "model.motion: not with model.pretrained"},
		{"model.score_after=4", "model.score_after: 4 must be in [0, 4)"},
		{"model.image_size=48", "model.image_size: 48 must equal the vision tower's image_size 36"},
	} {
		msg := requireLastLineError(t, reel(t, dir, "train", "stts-videoqa-hf-tiny", "--out", "bad", "--set", c.set), 1)
		require.Contains(t, msg, c.want, c.set)
	}
}
