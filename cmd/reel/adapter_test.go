package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
)

// dirSize is the number of bytes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return err
	}))
	return n
}

// lastEval is the metrics of the last eval row of RUN/metrics.jsonl.
func lastEval(t *testing.T, run string) map[string]float64 {
	b, err := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	require.NoError(t, err)
	var last map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var row map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &row))
		if row["split"] == "eval" {
			last = row
		}
	}
	out := map[string]float64{}
	for k, v := range last {
		if f, ok := v.(float64); ok && k != "step" {
			out[k] = f
		}
	}
	return out
}

// TestAdapterCheckpoints: a LoRA fine-tune (base from train.init_from, vision tower frozen) keeps
// only its trained variables and their optimizer state, with a reference to the base; loading it
// (eval) rebuilds the base and gives bit-identical metrics to the in-memory model's last
// evaluation; a stopped and resumed run reproduces the uninterrupted one exactly; a missing or
// changed base is one error line naming it.
func TestAdapterCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models")
	}
	dir := t.TempDir()
	quick := []string{"--set", "eval.examples=16", "--set", "eval.batch_size=16", "--set", "train.eval_every=0"}
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", "base", "--set", "train.steps=2"}, quick...)...))
	ft := append([]string{"train", "counting-finetune-tiny", "--set", "train.init_from=base", "--set", "train.steps=6", "--set", "checkpoint.every=3",
		"--set", "train.lora.rank=4", "--set", "train.freeze=[vision.*]"}, quick...)
	requireOK(t, reel(t, dir, append(ft, "--out", "ft")...))

	ck, err := checkpoints.Resolve(filepath.Join(dir, "ft"), nil)
	require.NoError(t, err)
	base, err := checkpoints.ReadBase(ck)
	require.NoError(t, err)
	require.NotNil(t, base, "a LoRA checkpoint refers to its base")
	require.Equal(t, filepath.Join(dir, "base", "checkpoints", checkpoints.DirName(2)), base.InitFrom)
	require.Contains(t, base.Variables, "/decoder/block_0/attn/qkv/weights", "an adapted layer's weights are base")
	require.Contains(t, base.Variables, "/vision/block_0/mlp/fc1/weights", "train.freeze's are base")
	bck, err := checkpoints.Resolve(filepath.Join(dir, "base"), nil)
	require.NoError(t, err)
	small, full := dirSize(t, filepath.Join(ck, "model")), dirSize(t, filepath.Join(bck, "model"))
	t.Logf("adapter-only checkpoint %d bytes, the full base checkpoint %d", small, full)
	require.Less(t, small, full/2)

	// Loading rebuilds the base: the in-memory model's last evaluation, bit for bit.
	r := reel(t, dir, "eval", "ft", "--baseline", "none")
	requireOK(t, r)
	var ev struct{ Metrics map[string]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Equal(t, lastEval(t, filepath.Join(dir, "ft")), ev.Metrics)
	vars, _, err := checkpoints.LoadVariables(ck)
	require.NoError(t, err)
	require.Contains(t, vars, "/decoder/block_0/attn/qkv/weights")

	// Stop and resume: the same losses as the straight run.
	requireOK(t, reel(t, dir, append(ft, "--out", "ft2", "--stop-after", "3")...))
	requireOK(t, reel(t, dir, append(ft, "--out", "ft2", "--resume")...))
	require.Equal(t, trainRows(t, filepath.Join(dir, "ft")), trainRows(t, filepath.Join(dir, "ft2")))

	// The base gone, then changed: one error line naming it.
	require.NoError(t, os.Rename(filepath.Join(dir, "base"), filepath.Join(dir, "moved")))
	msg := requireLastLineError(t, reel(t, dir, "eval", "ft", "--baseline", "none"), 1)
	require.Contains(t, msg, "train.init_from "+base.InitFrom+" is missing")
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", "base", "--set", "train.steps=2", "--set", "train.seed=9"}, quick...)...))
	msg = requireLastLineError(t, reel(t, dir, "export", "ft", "--out", "x.st"), 1)
	require.Contains(t, msg, "train.init_from "+base.InitFrom+" changed")
}

// TestAdapterCheckpointsPretrained: a LoRA fine-tune of a Hugging Face directory (here the export
// of a random-weight run, with a word-level tokenizer over reel's vocabulary) keeps adapter-only
// checkpoints that refer to the directory by path and content, exports back under the
// directory's names, and fails with one line naming the file once the directory's weights change.
func TestAdapterCheckpointsPretrained(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models")
	}
	dir := t.TempDir()
	quick := []string{"--set", "eval.examples=16", "--set", "eval.batch_size=16", "--set", "train.eval_every=0", "--set", "checkpoint.every=0"}
	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "r0", "--set", "train.steps=2"}, quick...)...))
	requireOK(t, reel(t, dir, "export", "r0", "--format", "hf", "--out", "pre"))
	vocab := map[string]int{}
	for i, w := range data.SceneVocab().Words() {
		vocab[w] = i
	}
	special := func(tok string) map[string]any {
		return map[string]any{"SpecialToken": map[string]any{"id": tok, "type_id": 0}}
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "added_tokens": []any{},
		"model":         map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{special("<bos>"), map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, special("<eos>")},
			"pair":   []any{special("<bos>"), map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, special("<eos>")},
			"special_tokens": map[string]any{
				"<bos>": map[string]any{"id": "<bos>", "ids": []int{vocab["<bos>"]}, "tokens": []string{"<bos>"}},
				"<eos>": map[string]any{"id": "<eos>", "ids": []int{vocab["<eos>"]}, "tokens": []string{"<eos>"}}}}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pre", "tokenizer.json"), tj, 0o644))

	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "ft", "--set", "train.steps=3",
		"--set", "model.pretrained=pre", "--set", "model.hf_config=", "--set", "train.lora.rank=4"}, quick...)...))
	ck, err := checkpoints.Resolve(filepath.Join(dir, "ft"), nil)
	require.NoError(t, err)
	base, err := checkpoints.ReadBase(ck)
	require.NoError(t, err)
	require.NotNil(t, base)
	require.Equal(t, filepath.Join(dir, "pre"), base.Pretrained)
	require.Contains(t, base.PretrainedFiles, "model.safetensors")

	r := reel(t, dir, "eval", "ft", "--baseline", "none")
	requireOK(t, r)
	var ev struct{ Metrics map[string]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Equal(t, lastEval(t, filepath.Join(dir, "ft")), ev.Metrics)
	requireOK(t, reel(t, dir, "export", "ft", "--format", "hf", "--out", "out"))
	want, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, "pre", "model.safetensors"))
	require.NoError(t, err)
	got, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, "out", "model.safetensors"))
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.FileExists(t, filepath.Join(dir, "out", "tokenizer.json"))

	// The pretrained weights change: one line naming the file.
	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "r1", "--set", "train.steps=1"}, quick...)...))
	requireOK(t, reel(t, dir, "export", "r1", "--format", "hf", "--out", "pre"))
	msg := requireLastLineError(t, reel(t, dir, "eval", "ft", "--baseline", "none"), 1)
	require.Contains(t, msg, "model.pretrained "+filepath.Join(dir, "pre")+": model.safetensors has sha256")
}
