package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
)

// A LoRA fine-tune with frozen vision tower, EMA and activation checkpointing, as a user runs it:
// it trains only the adapters and the unfrozen rest (the run's first metrics row says how many
// parameters), leaves the adapted base weights untouched, writes TensorBoard events an
// independent reader parses, and evaluates and exports its moving average. Activation
// checkpointing changes no loss.
func TestFineTuneLoRAFreezeEMARemat(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.eval_every=0", "--set", "eval.examples=16", "--set", "eval.batch_size=16"}
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", "base", "--set", "train.steps=4"}, quick...)...))
	ft := append([]string{"train", "counting-finetune-tiny", "--out", "ft", "--set", "train.init_from=base", "--set", "train.steps=6",
		"--set", "train.lora.rank=4", "--set", "train.freeze=[vision.*]", "--set", "train.ema=0.9"}, quick...)
	r := reel(t, dir, ft...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "train.freeze:")
	require.Regexp(t, `parameters: \d+ trainable of \d+`, r.stderr)

	var first struct {
		Trainable int `json:"params_trainable"`
		Total     int `json:"params_total"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "ft", "metrics.jsonl"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &first))
	require.Greater(t, first.Trainable, 0)
	require.Less(t, first.Trainable, first.Total/2, "LoRA and the frozen vision tower leave most parameters frozen")

	load := func(run string) map[string]*tensors.Tensor {
		ck, err := checkpoints.Resolve(filepath.Join(dir, run), func(string) {})
		require.NoError(t, err)
		vars, _, err := checkpoints.LoadVariables(ck)
		require.NoError(t, err)
		return vars
	}
	base, tuned := load("base"), load("ft")
	flat := func(x *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](x) }
	require.Equal(t, flat(base["/decoder/block_0/attn/qkv/weights"]), flat(tuned["/decoder/block_0/attn/qkv/weights"]), "an adapted layer's base is frozen")
	require.Equal(t, flat(base["/vision/block_0/mlp/fc1/weights"]), flat(tuned["/vision/block_0/mlp/fc1/weights"]), "train.freeze")
	require.NotEqual(t, flat(base["/tok_embed/embeddings"]), flat(tuned["/tok_embed/embeddings"]), "the rest trains")
	require.Contains(t, tuned, "/decoder/block_0/attn/qkv/lora/b")
	require.NotEqual(t, make([]float32, len(flat(tuned["/decoder/block_0/attn/qkv/lora/b"]))), flat(tuned["/decoder/block_0/attn/qkv/lora/b"]), "the adapter trains")

	// TensorBoard: one train/loss scalar per step, read by an independent reader.
	if exec.Command("/usr/bin/python3", "-c", "import google.protobuf").Run() == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "ft", "tensorboard", "events.out.tfevents.*"))
		require.NotEmpty(t, files)
		out, err := exec.Command("/usr/bin/python3", append([]string{"../../train/testdata/read_events.py"}, files...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		steps := map[int]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var e struct {
				Step   int `json:"step"`
				Values []struct {
					Tag string `json:"tag"`
				} `json:"values"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &e))
			for _, v := range e.Values {
				if v.Tag == "train/loss" {
					steps[e.Step] = true
				}
			}
		}
		require.Len(t, steps, 6)
	} else {
		t.Log("python3-protobuf missing: TensorBoard files not read back")
	}

	// The moving average evaluates and exports; it differs from the last weights.
	requireOK(t, reel(t, dir, "eval", "ft", "--ema"))
	requireOK(t, reel(t, dir, "export", "ft", "--out", "last.st"))
	requireOK(t, reel(t, dir, "export", "ft", "--ema", "--out", "ema.st"))
	last, _, err := checkpoints.ReadSafetensors(filepath.Join(dir, "last.st"))
	require.NoError(t, err)
	avg, _, err := checkpoints.ReadSafetensors(filepath.Join(dir, "ema.st"))
	require.NoError(t, err)
	require.NotEqual(t, flat(last["tok_embed/embeddings"]), flat(avg["tok_embed/embeddings"]))
	require.NotContains(t, avg, "_ema/tok_embed/embeddings", "the EMA copy is not exported as weights")
	msg := requireLastLineError(t, reel(t, dir, "eval", "base", "--ema"), 1)
	require.Contains(t, msg, "no EMA")

	// Activation checkpointing recomputes activations but changes no loss.
	requireOK(t, reel(t, dir, append(append([]string{}, ft...), "--out", "remat", "--set", "train.remat=true")...))
	plain, remat := trainRows(t, filepath.Join(dir, "ft")), trainRows(t, filepath.Join(dir, "remat"))
	for s := 1; s <= 6; s++ {
		require.InDelta(t, plain[s], remat[s], 1e-6, "step %d", s)
	}
}
