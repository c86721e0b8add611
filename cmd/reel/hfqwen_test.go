package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/hf"
)

// TestHFQwenVLCLI: `reel hf run DIR --image FILE` on the Qwen2-VL fixture (processor and model)
// gives the logits the PyTorch twin computed from the same PNG (hf/testdata/gen_qwenvl.py) within
// 1e-4 relative; `hf generate --prompt TEXT --image FILE` lays the prompt out as the processor
// does and continues it as the twin does; `hf generate --video` and `hf inspect` work on the
// Qwen-VL fixtures; bad input is one line.
func TestHFQwenVLCLI(t *testing.T) {
	dir := hfFixture(t, "qwen2vl-tiny")
	var e struct {
		ImagePNG struct {
			Tokens []int `json:"tokens"`
		} `json:"image_png"`
		GeneratePNG struct {
			PromptText string `json:"prompt_text"`
			Prompt     []int  `json:"prompt"`
			Generated  []int  `json:"generated"`
		} `json:"generate_png"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	r := reel(t, t.TempDir(), "hf", "run", dir, "--tokens", joinInts(e.ImagePNG.Tokens), "--image", filepath.Join(dir, "image.png"))
	requireOK(t, r)
	var out struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	want, err := hf.ReadNPY(filepath.Join(dir, "logits_image_png.npy"))
	require.NoError(t, err)
	flat := want.Value().([][]float32)
	var diff, scale float64
	require.Len(t, out.Logits[0], len(flat))
	for i := range flat {
		for j, w := range flat[i] {
			diff = math.Max(diff, math.Abs(out.Logits[0][i][j]-float64(w)))
			scale = math.Max(scale, math.Abs(float64(w)))
		}
	}
	t.Logf("hf run --image: max relative error %.2g", diff/scale)
	require.Less(t, diff/scale, 1e-4)

	// --prompt: the processor's layout (the vision block first, one pad per merged token) with the
	// fixture's tokenizer.json, and the twin's greedy continuation.
	r = reel(t, t.TempDir(), "hf", "generate", dir, "--prompt", e.GeneratePNG.PromptText, "--image", filepath.Join(dir, "image.png"),
		"--max-new-tokens", "5")
	requireOK(t, r)
	var pg struct {
		PromptIDs []int `json:"prompt_ids"`
		Generated []int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &pg))
	require.Equal(t, e.GeneratePNG.Prompt, pg.PromptIDs)
	require.Equal(t, e.GeneratePNG.Generated, pg.Generated)

	r = reel(t, t.TempDir(), "hf", "inspect", dir)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Qwen2VLForConditionalGeneration")
	require.Contains(t, r.stdout, "smart_resize to multiples of 8")

	msg := requireUserError(t, reel(t, t.TempDir(), "hf", "run", dir, "--tokens", "1,122,2", "--image", filepath.Join(dir, "image.png")), 2)
	require.Contains(t, msg, "1 placeholders (id 122) for --image of 12 merged tokens")
	msg = requireUserError(t, reel(t, t.TempDir(), "hf", "run", dir, "--tokens", "1,2", "--pixels", filepath.Join(dir, "pixel_values.npy")), 2)
	require.Contains(t, msg, "takes --image or --video")

	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg for --video")
	}
	video := filepath.Join(t.TempDir(), "v.mp4")
	o, err := exec.Command(ff, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=4", "-t", "1", "-pix_fmt", "yuv420p", video).CombinedOutput()
	require.NoError(t, err, string(o))
	ids := []int{1, 120}
	for range 2 * 16 { // 4 frames of 32×32: grid 2×8×8, 32 merged tokens
		ids = append(ids, 123)
	}
	ids = append(ids, 121, 5)
	r = reel(t, t.TempDir(), "hf", "generate", hfFixture(t, "qwen2.5vl-tiny"), "--tokens", joinInts(ids), "--video", video,
		"--video-frames", "4", "--max-new-tokens", "3")
	requireOK(t, r)
	var gen struct{ Generated []int }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gen))
	require.Len(t, gen.Generated, 3)
}
