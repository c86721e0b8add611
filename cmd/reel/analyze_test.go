package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCountingStudy runs the counting study as a user would: pretrain, fine-tune, eval against
// init_from (delta + numerosity plot), patching and head attribution.
func TestCountingStudy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny runs")
	}
	dir := t.TempDir()
	small := append([]string{"--set", "train.steps=20", "--set", "train.batch_size=16"}, tiny...)
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", "runs/counting-pretrain-tiny"}, small...)...))
	// The fine-tune recipe's default init_from is runs/counting-pretrain-tiny (relative to dir).
	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-tiny", "--out", "ft"}, small...)...))

	r := reel(t, dir, "eval", "ft", "--set", "eval.examples=40", "--set", "eval.batch_size=20")
	requireOK(t, r)
	var ev struct {
		Metrics  map[string]float64                `json:"metrics"`
		Delta    map[string]float64                `json:"delta"`
		Groups   map[string][]struct{ Key string } `json:"groups"`
		Baseline *struct {
			Checkpoint string             `json:"checkpoint"`
			Metrics    map[string]float64 `json:"metrics"`
		} `json:"baseline"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev), r.stdout)
	require.NotNil(t, ev.Baseline, "a fine-tuned run is compared with its init_from")
	require.Contains(t, ev.Baseline.Checkpoint, "counting-pretrain-tiny")
	for _, k := range []string{"counting/accuracy", "counting/mae", "counting_ood/accuracy", "general/accuracy",
		"counting_ood/accuracy_more_objects", "counting_ood/accuracy_new_shapes", "counting_ood/accuracy_new_colors",
		"counting_ood/accuracy_new_background", "counting_ood/accuracy_new_sizes"} {
		require.Contains(t, ev.Metrics, k)
		require.InDelta(t, ev.Metrics[k]-ev.Baseline.Metrics[k], ev.Delta[k], 1e-12, k)
	}
	require.NotEmpty(t, ev.Groups["counting/by_count"])
	require.FileExists(t, filepath.Join(dir, "ft", "plots", "numerosity.png"))

	r = reel(t, dir, "eval", "ft", "--baseline", "none", "--set", "eval.examples=8")
	requireOK(t, r)
	require.NotContains(t, r.stdout, `"baseline"`)

	r = reel(t, dir, "analyze", "patching", "ft", "--pairs", "8")
	requireOK(t, r)
	var p struct {
		Sites       []string    `json:"sites"`
		Restoration [][]float64 `json:"restoration"`
		GridSide    int         `json:"grid_side"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p))
	require.Equal(t, []string{"vision/block_0", "vision/block_1", "projector", "decoder/block_0", "decoder/block_1"}, p.Sites)
	require.Len(t, p.Restoration[0], p.GridSide*p.GridSide+1)
	for _, f := range []string{"patching.json", "patching.png"} {
		require.FileExists(t, filepath.Join(dir, "ft", "analysis", f))
	}

	r = reel(t, dir, "analyze", "heads", "ft", "--examples", "16", "--random-draws", "2", "--top-k", "3")
	requireOK(t, r)
	var h struct {
		Scores []struct{ Name string }  `json:"scores"`
		TopK   struct{ Heads []string } `json:"top_k"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	require.Len(t, h.Scores, 8) // 2 layers × 4 heads
	require.Len(t, h.TopK.Heads, 3)
	for _, f := range []string{"heads.json", "heads.png"} {
		require.FileExists(t, filepath.Join(dir, "ft", "analysis", f))
	}

	// User mistakes: one line, non-zero exit, no panic.
	require.Contains(t, requireUserError(t, reel(t, dir, "analyze", "probe", "ft"), 2), "unknown tool")
	require.Contains(t, requireUserError(t, reel(t, dir, "analyze", "heads", "nope"), 1), "no such run or checkpoint directory")
	require.Contains(t, requireLastLineError(t, reel(t, dir, "analyze", "heads", "ft", "--top-k", "99"), 1), "more than the model's 8 heads")
	requireUserError(t, reel(t, dir, "analyze", "patching", "ft", "--pairs", "0"), 2)
	_, err := os.Stat(filepath.Join(dir, "ft", "analysis", "heads.json"))
	require.NoError(t, err, "a failed analysis keeps earlier results")
}
