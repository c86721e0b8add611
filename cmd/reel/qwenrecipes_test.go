package main

import (
	"encoding/json"
	"os"
	"path/filepath"
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

// tinyRewardQwen3VL is a tiny random Qwen3-VL directory for TOPReward: the hf/testdata fixture's
// config, weights and processor, Qwen2.5-VL-Instruct's chat template (text/testdata) and a
// word-level tokenizer knowing "True" and Qwen's special tokens.
func tinyRewardQwen3VL(t *testing.T) string {
	t.Helper()
	src := hfFixture(t, "qwen3vl-tiny")
	dir := filepath.Join(t.TempDir(), "qwen3vl")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	cp := func(from, name string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	for _, f := range []string{"config.json", "model.safetensors", "preprocessor_config.json"} {
		cp(filepath.Join(src, f), f)
	}
	cp(filepath.Join("..", "..", "text", "testdata", "templates", "qwen2.5-vl-7b-instruct.jinja"), "chat_template.jinja")
	vocab := map[string]int{"<unk>": 0, "True": 7}
	var added []any
	for id, w := range map[int]string{120: "<|vision_start|>", 121: "<|vision_end|>", 122: "<|image_pad|>", 123: "<|video_pad|>",
		124: "<|im_start|>", 125: "<|im_end|>", 126: "<|endoftext|>"} {
		vocab[w] = id
		added = append(added, map[string]any{"id": id, "content": w, "special": true})
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": added})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}`), 0o644))
	return dir
}

// TestRewardProgressQwenVL: `reel reward progress DIR --data LEROBOT_DIR` with a Qwen3-VL
// directory scores a simulator dataset's episode prefixes (TOPReward as LeRobot's port lays it
// out; the score itself is checked against the full forward pass in package reward): one log p
// per prefix, all negative, and a VOC.
func TestRewardProgressQwenVL(t *testing.T) {
	dir := t.TempDir()
	requireOK(t, reel(t, dir, "data", "gen-sim", "--episodes", "1", "--out", "ds", "--workers", "1"))
	r := reel(t, dir, "reward", "progress", tinyRewardQwen3VL(t), "--data", "ds", "--prefixes", "3", "--size", "16")
	requireOK(t, r)
	var rep struct {
		Episodes []struct {
			LogP []float64 `json:"log_p"`
			VOC  *float64  `json:"voc"`
		} `json:"episodes"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Len(t, rep.Episodes, 1)
	require.Len(t, rep.Episodes[0].LogP, 3)
	for _, v := range rep.Episodes[0].LogP {
		require.Less(t, v, 0.0)
	}
	require.NotNil(t, rep.Episodes[0].VOC)
}

// TestQwenSTTSRecipeTiny: stts-videoqa-qwen2.5vl-tiny (STTS inside a random-weight Qwen2.5-VL's
// tower) trains from the CLI, keeps half of the merge groups, and `reel eval RUN` compares it with
// its untouched initialisation: training lowers the answer loss.
func TestQwenSTTSRecipeTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.eval_every=0", "--set", "checkpoint.every=0", "--set", "eval.examples=20",
		"--set", "eval.batch_size=20", "--set", "train.batch_size=8", "--set", "train.warmup_steps=0"}
	requireOK(t, reel(t, dir, append([]string{"train", "stts-videoqa-qwen2.5vl-tiny", "--out", "run", "--set", "train.steps=20"}, quick...)...))
	r := reel(t, dir, "eval", "run")
	requireOK(t, r)
	var ev hfEval
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Equal(t, 0.5, ev.Metrics["videoqa/kept"])
	require.Less(t, ev.Metrics["videoqa/loss"], ev.Baseline.Metrics["videoqa/loss"])
}
