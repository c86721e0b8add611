package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
)

// train.precision: bf16 trains from the CLI (matmuls and attention in bf16, everything else f32):
// the loss falls as in f32, and every step logs its model FLOPs and MFU.
func TestBF16TrainingAndMFU(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 60 steps")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := reel(t, dir, "train", "counting-pretrain-tiny", "--out", out, "--set", "train.steps=60",
		"--set", "train.precision=bf16", "--set", "train.eval_every=0", "--set", "eval.examples=32",
		"--set", "train.log_every=20")
	requireOK(t, r)
	require.Contains(t, r.stderr, "MFU against the measured bf16 matmul peak")
	require.Regexp(t, `step 60/60 loss [0-9.]+ .* MFU [0-9.]+%`, r.stderr)

	rows := trainRows(t, out)
	requireSteps(t, rows, 60)
	var first, last float64
	for s := 1; s <= 5; s++ {
		first += rows[s] / 5
	}
	for s := 51; s <= 60; s++ {
		last += rows[s] / 10
	}
	t.Logf("bf16 mean loss: first 5 steps %.4f, last 10 steps %.4f", first, last)
	require.Less(t, last, 0.7*first, "the loss should drop during bf16 training")

	f, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(f)), "\n") {
		var row struct {
			Split      string  `json:"split"`
			ModelFLOPs float64 `json:"model_flops"`
			MFU        float64 `json:"mfu"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &row))
		if row.Split == "train" {
			require.Greater(t, row.ModelFLOPs, 1e6, line)
			require.True(t, row.MFU > 0 && row.MFU < 2, "MFU %v: %s", row.MFU, line)
		}
	}
}

// train.devices beyond what the backend has is refused before the run directory is created.
func TestDevicesBeyondBackend(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := reel(t, dir, "train", "counting-pretrain-tiny", "--out", out, "--set", "train.devices=2")
	msg := requireLastLineError(t, r, 1)
	require.Contains(t, msg, "train.devices: 2, but backend go has 1 device(s)")
	require.NoDirExists(t, out)
	requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--set", "train.precision=fp8"), -1)
}

// On a machine with a GPU and a PJRT CUDA plugin: bf16 data-parallel training over all visible
// GPUs through XLA, with MFU against the GPU's data-sheet peak. Skipped elsewhere (CI has no GPU).
func TestGPUTrainingBF16(t *testing.T) {
	plugin := backends.FindCUDAPlugin()
	if _, err := os.Stat("/dev/nvidia0"); err != nil || plugin == "" {
		t.Skip("no GPU with a PJRT CUDA plugin")
	}
	if testing.Short() {
		t.Skip("trains on the GPU")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := reel(t, dir, "train", "counting-pretrain-tiny", "--out", out, "--backend", "xla:"+plugin,
		"--set", "train.steps=60", "--set", "train.precision=bf16", "--set", "train.devices=0",
		"--set", "train.eval_every=0", "--set", "eval.examples=32", "--set", "train.log_every=20")
	requireOK(t, r)
	require.Contains(t, r.stderr, "data-sheet peak")
	rows := trainRows(t, out)
	requireSteps(t, rows, 60)
	require.Less(t, rows[60], 0.7*rows[1], "the loss should drop during bf16 GPU training")
}
