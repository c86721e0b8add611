package hf

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/stretchr/testify/require"
)

func testBackend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	return b
}

// expected is a fixture's expected.json (written by testdata/gen_fixtures.py).
type expected struct {
	Tokens         []int         `json:"tokens"`
	TokenTypes     []int         `json:"token_types"`
	Prompt         []int         `json:"prompt"`
	Generated      []int         `json:"generated"`
	Texts          [][]int       `json:"texts"`
	Logits         [][][]float64 `json:"logits"`
	ImageEmbeds    [][]float64   `json:"image_embeds"`
	TextEmbeds     [][]float64   `json:"text_embeds"`
	LogitsPerImage [][]float64   `json:"logits_per_image"`
}

func readExpected(t *testing.T, dir string) expected {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	var e expected
	require.NoError(t, json.Unmarshal(data, &e))
	return e
}

// maxRelErr is max |got − want| / max |want| over all elements.
func maxRelErr[T float32 | float64](t *testing.T, got [][]float32, want [][]T) float64 {
	t.Helper()
	require.Equal(t, len(want), len(got), "rows")
	var diff, scale float64
	for i := range want {
		require.Equal(t, len(want[i]), len(got[i]), "row %d length", i)
		for j := range want[i] {
			diff = math.Max(diff, math.Abs(float64(got[i][j])-float64(want[i][j])))
			scale = math.Max(scale, math.Abs(float64(want[i][j])))
		}
	}
	return diff / scale
}

func flatten3(x [][][]float32) [][]float32 {
	var out [][]float32
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

func flatten3f(x [][][]float64) [][]float64 {
	var out [][]float64
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// TestFixtureLogits: every architecture's outputs match those of the PyTorch implementation of
// transformers' modeling code on the same tiny random weights (testdata/gen_fixtures.py) within
// 1e-4 relative.
func TestFixtureLogits(t *testing.T) {
	backend := testBackend(t)
	for _, name := range []string{"llama", "qwen2", "gemma", "gemma2", "gemma3", "paligemma", "paligemma2",
		"llava-siglip-qwen2", "llava-clip-llama", "siglip", "clip"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			e := readExpected(t, dir)
			var in RunInputs
			if e.Texts != nil {
				in.Tokens = e.Texts
			} else {
				in.Tokens = [][]int{e.Tokens}
			}
			if e.TokenTypes != nil {
				in.TokenTypes = [][]int{e.TokenTypes}
			}
			if _, err := os.Stat(filepath.Join(dir, "pixels.npy")); err == nil {
				in.Pixels, err = ReadNPY(filepath.Join(dir, "pixels.npy"))
				require.NoError(t, err)
			}
			res, err := m.Run(backend, in)
			require.NoError(t, err)
			if e.Logits != nil {
				r := maxRelErr(t, flatten3(res.Logits), flatten3f(e.Logits))
				t.Logf("%s logits: max relative error %.2g", name, r)
				require.Less(t, r, 1e-4)
			}
			if e.LogitsPerImage != nil {
				for what, pair := range map[string][2]any{"image_embeds": {res.ImageEmbeds, e.ImageEmbeds},
					"text_embeds": {res.TextEmbeds, e.TextEmbeds}, "logits_per_image": {res.LogitsPerImage, e.LogitsPerImage}} {
					r := maxRelErr(t, pair[0].([][]float32), pair[1].([][]float64))
					t.Logf("%s %s: max relative error %.2g", name, what, r)
					require.Less(t, r, 1e-4, what)
				}
			}
		})
	}
}
