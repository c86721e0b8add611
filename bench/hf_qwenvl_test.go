package bench

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// The Qwen2.5-VL benchmark's PyTorch twin builds the same model as reel: at a tiny config (the
// benchmark's fixed fields: 14-pixel patches, 2×2 merge, M-RoPE 16/24/24 over head_dim 128, the
// last tower block full attention) both count the same parameters, and both train a step.
func TestQwenVLBenchTwinParams(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	python := findPython("auto")
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skip("no PyTorch")
	}
	cfg := QwenVLBenchConfig()
	cfg.Vision.Depth, cfg.Vision.Hidden, cfg.Vision.Intermediate, cfg.Vision.Heads, cfg.Vision.WindowSize = 2, 32, 48, 2, 56
	cfg.Vision.OutHidden, cfg.Vision.FullAttBlocks = 256, []int{1}
	cfg.Text.VocabSize, cfg.Text.Hidden, cfg.Text.Intermediate, cfg.Text.Layers, cfg.Text.Heads, cfg.Text.KVHeads = 64, 256, 64, 1, 2, 1
	cfg.VisionStart, cfg.VisionEnd, cfg.ImageToken, cfg.VideoToken = 60, 61, 62, 63
	require.NoError(t, cfg.Validate())
	const image, batch, seq = 84, 2, 4 // 6×6 patches: 3×3 merged tokens in windows of 2×2, 2×1, 1×2, 1×1
	task := NewQwenVLBench(cfg, batch, image, seq, 1)
	require.Equal(t, []int{batch, 1 + 9 + 1 + seq}, task.batch[0].Shape().Dimensions)

	b, _, err := backends.Select("go")
	require.NoError(t, err)
	r := recipes.Defaults()
	r.Train.BatchSize, r.Train.GradAccum, r.Train.Precision = batch, 1, "f32"
	st, err := train.StepTime(task, &r, b, 1, 1)
	require.NoError(t, err)

	v, tc := cfg.Vision, cfg.Text
	args := []string{"bench/hf_torch.py", "qwen2_5_vl"}
	for _, x := range []int{v.Depth, v.Hidden, v.Intermediate, v.Heads, v.WindowSize, tc.VocabSize, tc.Hidden, tc.Intermediate,
		tc.Layers, tc.Heads, tc.KVHeads, tc.HeadDim, image, batch, seq, 1, 1} {
		args = append(args, strconv.Itoa(x))
	}
	cmd := exec.Command(python, args...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var res struct {
		Params int     `json:"params"`
		StepS  float64 `json:"step_s"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	require.Equal(t, st.Params, res.Params)
	require.Greater(t, res.StepS, 0.0)
}
