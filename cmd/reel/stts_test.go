package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSTTSVideoQA trains the tiny video-QA model a few steps with each pruning method and runs the
// STTS benchmark, as a user would.
func TestSTTSVideoQA(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny video models")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.steps=2", "--set", "train.batch_size=2", "--set", "eval.examples=5",
		"--set", "eval.batch_size=5", "--set", "model.frames=4", "--set", "data.motion_frames=2"}
	for _, m := range []string{"none", "random", "stts", "exevrm"} {
		r := reel(t, dir, append([]string{"train", "stts-videoqa-tiny", "--out", m, "--set", "pruning.method=" + m}, quick...)...)
		requireOK(t, r)
		require.Contains(t, r.stderr, "videoqa/accuracy=")
		require.Contains(t, r.stderr, "videoqa/accuracy_moved=")
		require.Contains(t, r.stderr, "videoqa/kept=")
	}
	// The eval of a packed (exevrm) run from its directory, as a user would.
	requireOK(t, reel(t, dir, "eval", "exevrm"))
	r := reel(t, dir, "bench", "stts", "--frames", "4,6", "--steps", "1", "--batch", "2", "--json")
	requireOK(t, r)
	var rows []struct {
		Frames, Tokens int
		KeptTokens     int     `json:"kept_tokens"`
		Speedup        float64 `json:"speedup"`
		ExeVRMKept     float64 `json:"exevrm_kept"`
		ExeVRMSpeedup  float64 `json:"exevrm_speedup"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 2)
	require.Equal(t, 4*9, rows[0].Tokens) // 9×9 patches → 3×3 groups per frame
	require.Equal(t, 18, rows[0].KeptTokens)
	require.Greater(t, rows[1].Speedup, 0.0)
	require.Greater(t, rows[1].ExeVRMSpeedup, 0.0)
	require.Greater(t, rows[0].ExeVRMKept, 9.0, "more than the first frame")
	require.Less(t, rows[0].ExeVRMKept, 36.0, "static tokens are dropped")

	requireUserError(t, reel(t, dir, "bench", "stts", "--frames", "1"), 2)
	requireUserError(t, reel(t, dir, "bench", "nope"), 2)
	msg := requireUserError(t, reel(t, dir, "train", "stts-videoqa-tiny", "--set", "model.group=2"), 1)
	require.Contains(t, msg, "model.group")
}

func TestBenchViT(t *testing.T) {
	if testing.Short() {
		t.Skip("times a ViT")
	}
	dir := t.TempDir()
	r := reel(t, dir, "bench", "vit", "--size", "tiny", "--batch", "2", "--steps", "1", "--python", "")
	requireOK(t, r)
	require.Contains(t, r.stdout, "vit-tiny")
	require.Contains(t, r.stdout, "2.7M")
	requireUserError(t, reel(t, dir, "bench", "vit", "--size", "huge"), 2)
}
