package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/hf"
)

// TestHFSmolVLMCLI: from an image file and a text prompt, `reel hf generate` on the SmolVLM
// fixture lays the prompt out as SmolVLMProcessor does (2×2 splits + global image, from the
// fixture's preprocessor_config.json) and continues it as the PyTorch twin's greedy decoding does;
// `reel hf run --image` gives the twin's logits within 1e-4 relative.
func TestHFSmolVLMCLI(t *testing.T) {
	dir := hfFixture(t, "smolvlm")
	var e struct {
		Prompt    []int `json:"prompt"`
		Generated []int `json:"generated"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	img := filepath.Join(dir, "image.png")
	r := reel(t, t.TempDir(), "hf", "generate", dir, "--prompt", "a b c<image>d e f", "--image", img,
		"--max-new-tokens", strconv.Itoa(len(e.Generated)))
	requireOK(t, r)
	var gen struct {
		PromptIDs []int `json:"prompt_ids"`
		Generated []int `json:"generated"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gen))
	require.Equal(t, e.Prompt, gen.PromptIDs)
	require.Equal(t, e.Generated, gen.Generated)

	r = reel(t, t.TempDir(), "hf", "run", dir, "--tokens", joinInts(e.Prompt), "--image", img)
	requireOK(t, r)
	var out struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	ref, err := hf.ReadNPY(filepath.Join(dir, "logits.npy"))
	require.NoError(t, err)
	want := tensors.MustCopyFlatData[float32](ref)
	var diff, scale float64
	k := 0
	for _, row := range out.Logits[0] {
		for _, v := range row {
			diff = math.Max(diff, math.Abs(v-float64(want[k])))
			scale = math.Max(scale, math.Abs(float64(want[k])))
			k++
		}
	}
	require.Equal(t, len(want), k)
	require.Less(t, diff/scale, 1e-4)

	r = reel(t, t.TempDir(), "hf", "inspect", dir)
	requireOK(t, r)
	require.Contains(t, r.stdout, "4 tokens per image at placeholder id 127")
	require.Contains(t, r.stdout, "split into 16×16 tiles + the global image")
}
