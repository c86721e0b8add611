package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/reelml/reel/mediaio"
	"github.com/stretchr/testify/require"
)

// TestVideoCLIP trains trajvit2-tiny and the ViViT baseline for a few steps (synthetic and folder
// data), evaluates retrieval and tokenizes a video file, as a user would.
func TestVideoCLIP(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny video models")
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "eval.examples=8",
		"--set", "eval.batch_size=4", "--set", "train.eval_every=0", "--set", "checkpoint.every=0"}
	requireOK(t, reel(t, dir, "data", "gen-video", "--n", "12", "--out", "ds", "--frames", "8", "--size", "32"))

	r := reel(t, dir, append([]string{"train", "trajvit2-tiny", "--out", "tv"}, quick...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "retrieval/t2v_r1=")
	require.Contains(t, r.stderr, "retrieval/tokens_mean=")

	r = reel(t, dir, "eval", "tv")
	requireOK(t, r)
	var ev struct{ Metrics map[string]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	for _, k := range []string{"retrieval/t2v_r1", "retrieval/t2v_r5", "retrieval/v2t_r1", "retrieval/v2t_r5", "retrieval/tokens_mean", "retrieval/tokens_p50"} {
		require.Contains(t, ev.Metrics, k)
	}
	require.LessOrEqual(t, ev.Metrics["retrieval/tokens_mean"], 16.0, "at most latents tokens")

	r = reel(t, dir, "tokenize", "tv", "ds/videos/000000.mp4", "--out", "strips")
	requireOK(t, r)
	var tok struct {
		Tokens       int
		Frames       int
		Trajectories []struct {
			PixelShare float64 `json:"pixel_share"`
		}
		Strip string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &tok))
	require.Equal(t, 8, tok.Frames)
	require.Equal(t, tok.Tokens, len(tok.Trajectories))
	share := 0.0
	for _, tr := range tok.Trajectories {
		share += tr.PixelShare
	}
	require.InDelta(t, 1, share, 1e-9, "the active trajectories own every mask cell")
	require.FileExists(t, filepath.Join(dir, tok.Strip))

	// Real-video path: the baseline on the generated folder dataset.
	folder := append([]string{"train", "vivit-baseline-tiny", "--out", "vv", "--set", "data.source=folder",
		"--set", "data.captions=ds/captions.jsonl"}, quick...)
	requireOK(t, reel(t, dir, folder...))

	// A corrupt video: a one-line error naming it, or skipped with data.skip_bad.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ds", "videos", "000003.mp4"), []byte("not a video"), 0o644))
	msg := requireLastLineError(t, reel(t, dir, append(folder, "--overwrite")...), 1)
	require.Contains(t, msg, "000003.mp4")
	requireOK(t, reel(t, dir, append(folder, "--overwrite", "--set", "data.skip_bad=true")...))
	msg = requireLastLineError(t, reel(t, dir, "tokenize", "tv", "ds/videos/000003.mp4"), 1)
	require.Contains(t, msg, "000003.mp4")

	// Tokenize needs a trajvit2 checkpoint.
	msg = requireLastLineError(t, reel(t, dir, "tokenize", "vv", "ds/videos/000001.mp4"), 1)
	require.Contains(t, msg, "needs a trajvit2 checkpoint")
}

// TestTrajViT2ExactResume: with the host-side Hungarian matching between graph executions, a
// stopped and resumed run still logs the same loss at every step as an uninterrupted one.
func TestTrajViT2ExactResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny video model")
	}
	dir := t.TempDir()
	args := []string{"train", "trajvit2-tiny", "--set", "train.steps=6", "--set", "train.batch_size=4",
		"--set", "checkpoint.every=3", "--set", "eval.examples=4", "--set", "train.eval_every=0"}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	requireOK(t, reel(t, dir, append(args, "--out", a)...))
	requireOK(t, reel(t, dir, append(args, "--out", b, "--stop-after", "3")...))
	requireOK(t, reel(t, dir, append(args, "--out", b, "--resume")...))
	ra, rb := trainRows(t, a), trainRows(t, b)
	requireSteps(t, ra, 6)
	requireSteps(t, rb, 6)
	for s := 1; s <= 6; s++ {
		require.Equalf(t, ra[s], rb[s], "step %d", s)
	}
}
