package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// tinyRewardVLM copies the random-weight LLaVA fixture with a word-level tokenizer.json in which
// "True" is a word (id 7).
func tinyRewardVLM(t *testing.T) string {
	t.Helper()
	src := hfFixture(t, "llava-clip-llama")
	dir := filepath.Join(t.TempDir(), "vlm")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	vocab := map[string]int{"w0": 0, "True": 7}
	for i := 8; i < 200; i++ {
		vocab["w"+strconv.Itoa(i)] = i
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "w0"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": []any{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	return dir
}

// TestRewardProgressCLI: `reel reward progress` scores a simulator dataset's episodes with a
// pretrained VLM directory, prints the curves and VOC as JSON, and --write stores per-frame
// progress, which a vla recipe with train.sample_weights progress trains on (RA-BC); bad input
// gives one error line.
func TestRewardProgressCLI(t *testing.T) {
	dir := t.TempDir()
	requireOK(t, reel(t, dir, "data", "gen-sim", "--episodes", "2", "--out", "ds", "--workers", "1"))
	vlm := tinyRewardVLM(t)
	r := reel(t, dir, "reward", "progress", vlm, "--data", "ds", "--prefixes", "3", "--size", "16", "--write", "--out", "rep.json")
	requireOK(t, r)
	var rep struct {
		Prefixes int `json:"prefixes"`
		Episodes []struct {
			Frames   int       `json:"frames"`
			Lengths  []int     `json:"prefix_lengths"`
			LogP     []float64 `json:"log_p"`
			Progress []float64 `json:"progress"`
			VOC      *float64  `json:"voc"`
			Kind     string    `json:"kind"`
		} `json:"episodes"`
		VOC       *float64           `json:"voc"`
		VOCByKind map[string]float64 `json:"voc_by_kind"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, 3, rep.Prefixes)
	require.Len(t, rep.Episodes, 2)
	var mean float64
	for _, e := range rep.Episodes {
		require.Len(t, e.Lengths, 3)
		require.Equal(t, 1, e.Lengths[0])
		require.Equal(t, e.Frames, e.Lengths[2])
		require.Len(t, e.LogP, 3)
		require.Contains(t, e.Progress, 1.0) // min-max: the best prefix is 1 (unless constant)
		require.NotNil(t, e.VOC)
		require.Equal(t, "expert", e.Kind)
		mean += *e.VOC / 2
		for _, v := range e.LogP {
			require.Less(t, v, 0.0)
		}
	}
	require.NotNil(t, rep.VOC)
	require.InDelta(t, mean, *rep.VOC, 1e-9)
	require.InDelta(t, mean, rep.VOCByKind["expert"], 1e-9)
	saved, err := os.ReadFile(filepath.Join(dir, "rep.json"))
	require.NoError(t, err)
	require.JSONEq(t, r.stdout, string(saved))
	require.FileExists(t, filepath.Join(dir, "ds", "topreward_progress.parquet"))
	// RA-BC trains on it.
	r = reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "rabc", "--set", "data.source=lerobot", "--set", "data.dir=ds",
		"--set", "train.sample_weights=progress"}, quickVLA...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "actions/chunk_mse=")
	line := requireUserError(t, reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "rabc2", "--set", "train.sample_weights=progress"}, quickVLA...)...), -1)
	require.Contains(t, line, "train.sample_weights")

	// The oracle: the expert episodes' ground-truth progress rises with time.
	r = reel(t, dir, "reward", "progress", "--oracle", "--data", "ds", "--prefixes", "3")
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.InDelta(t, 1, *rep.VOC, 1e-12)

	requireUserError(t, reel(t, dir, "reward", "progress", vlm), 2)
	requireUserError(t, reel(t, dir, "reward", "progress", vlm, "--oracle", "--data", "ds"), 2)
	line = requireUserError(t, reel(t, dir, "reward", "progress", filepath.Join(dir, "missing"), "--data", "ds"), -1)
	require.Contains(t, line, "missing")
	line = requireUserError(t, reel(t, dir, "reward", "progress", filepath.Join(dir, "ds"), "--data", "ds"), -1)
	require.Contains(t, line, "expected a reel run")
}
