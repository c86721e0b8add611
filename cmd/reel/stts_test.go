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
		Frames, Tokens        int
		KeptTokens            int     `json:"kept_tokens"`
		Speedup               float64 `json:"speedup"`
		SpatiotemporalKept    float64 `json:"spatiotemporal_kept"`
		SpatiotemporalSpeedup float64 `json:"spatiotemporal_speedup"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 2)
	require.Equal(t, 4*9, rows[0].Tokens) // 9×9 patches → 3×3 groups per frame
	require.Equal(t, 18, rows[0].KeptTokens)
	require.Greater(t, rows[1].Speedup, 0.0)
	require.Greater(t, rows[1].SpatiotemporalSpeedup, 0.0)
	require.Greater(t, rows[0].SpatiotemporalKept, 9.0, "more than the first frame")
	require.Less(t, rows[0].SpatiotemporalKept, 36.0, "static tokens are dropped")

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
	requireUserError(t, reel(t, dir, "bench", "vit", "--tokens", "63"), 2)
	requireUserError(t, reel(t, dir, "bench", "vit", "--precision", "fp8"), 2)
}

// reel bench video: the video encoder's step with its FLOPs, MFU and a frames sweep whose tokens
// per video grow with the clip.
func TestBenchVideo(t *testing.T) {
	if testing.Short() {
		t.Skip("times a video encoder")
	}
	dir := t.TempDir()
	r := reel(t, dir, "bench", "video", "--batch", "1", "--steps", "1", "--frames", "2,4", "--sweep-batch", "1",
		"--python", "", "--json")
	requireOK(t, r)
	var rows []struct {
		Model  string  `json:"model"`
		Tokens int     `json:"tokens"`
		GFLOPs float64 `json:"gflops_per_step"`
		MFU    float64 `json:"mfu"`
		Growth float64 `json:"time_growth"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
	require.Len(t, rows, 3)
	require.Equal(t, "video-tiny", rows[0].Model)
	require.Equal(t, []int{513, 65, 129}, []int{rows[0].Tokens, rows[1].Tokens, rows[2].Tokens})
	require.Greater(t, rows[2].GFLOPs, 1.9*rows[1].GFLOPs, "twice the frames, at least twice the FLOPs")
	require.Greater(t, rows[0].MFU, 0.0)
	require.NotZero(t, rows[2].Growth)
	requireUserError(t, reel(t, dir, "bench", "video", "--frames", "3"), 2)

	// The STTS encoder: pruning to half the group tokens; the model is the same with keep 1.
	r = reel(t, dir, "bench", "video", "--arch", "stts", "--batch", "1", "--steps", "1", "--python", "", "--json")
	requireOK(t, r)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
	require.Len(t, rows, 1)
	require.Equal(t, "stts-tiny@0.5", rows[0].Model)
	require.Equal(t, 256, rows[0].Tokens)
	requireUserError(t, reel(t, dir, "bench", "video", "--arch", "stts", "--keep", "0"), 2)

	// TrajViT2: TrajTok + the encoder tower; its sequence is the feature pixels the grouping reads.
	r = reel(t, dir, "bench", "video", "--arch", "trajvit2", "--batch", "1", "--steps", "1", "--python", "", "--json")
	requireOK(t, r)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
	require.Len(t, rows, 1)
	require.Equal(t, "trajvit2-tiny", rows[0].Model)
	require.Equal(t, 8*16*16, rows[0].Tokens)
	require.Greater(t, rows[0].GFLOPs, 0.0)
	requireUserError(t, reel(t, dir, "bench", "video", "--arch", "mamba"), 2)
}
