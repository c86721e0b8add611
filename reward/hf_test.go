package reward

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/policy"
)

const trueID = 7

// writeTinyVLMDir copies a random-weight VLM fixture of hf/testdata (llava-clip-llama or
// paligemma) to a temporary directory with a word-level tokenizer.json: "True" is id 7, "False"
// id 8, every other word unknown (id 0).
func writeTinyVLMDir(t *testing.T, fixture string) string {
	t.Helper()
	src := filepath.Join("..", "hf", "testdata", fixture)
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	vocab := map[string]int{"w0": 0, "True": trueID, "False": trueID + 1}
	for i := 9; i < 200; i++ {
		vocab["w"+strconv.Itoa(i)] = i
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "w0"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": []any{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	return dir
}

func testFrames(n, w int, seed float32) []policy.Image {
	out := make([]policy.Image, n)
	for i := range out {
		out[i] = policy.NewImage(w, w)
		for j := range out[i].Pix {
			out[i].Pix[j] = float32(math.Mod(float64(seed)+float64(i)*0.37+float64(j)*0.013, 1))
		}
	}
	return out
}

// TestHFLogPTrue: the adapter's log p("True") equals the log-softmax of the full forward pass
// (hf.Model.Run, checked against PyTorch in package hf) at the token before the answer, with the
// prompt laid out as documented; LLaVA sees earlier frames, PaliGemma only the last one.
func TestHFLogPTrue(t *testing.T) {
	b, _, err := backends.Select("go")
	require.NoError(t, err)
	for _, fixture := range []string{"llava-clip-llama", "paligemma"} {
		t.Run(fixture, func(t *testing.T) {
			dir := writeTinyVLMDir(t, fixture)
			m, err := OpenHF(b, dir)
			require.NoError(t, err)
			defer m.Close()
			require.Equal(t, []int{trueID}, m.answer)
			frames := testFrames(5, 20, 0.1)
			clips := []Clip{{Instruction: "pick the red cube", Frames: frames[:2]}, {Instruction: "pick the red cube", Frames: frames}}
			got, err := m.LogPTrue(clips)
			require.NoError(t, err)
			require.Len(t, got, 2)
			for i, c := range clips {
				ids, types, pixels, err := m.inputs(c)
				require.NoError(t, err)
				require.Equal(t, trueID, ids[len(ids)-1])
				in := hf.RunInputs{Tokens: [][]int{ids}, Pixels: pixels}
				if fixture == "paligemma" {
					in.TokenTypes = [][]int{types}
					require.Equal(t, 1, pixels.Shape().Dimensions[0])
				} else {
					require.Equal(t, min(len(c.Frames), 4), pixels.Shape().Dimensions[0]) // (128 − 64) / 16 image tokens
				}
				res, err := m.m.Run(b, in)
				require.NoError(t, err)
				row := res.Logits[0][len(ids)-2]
				mx := math.Inf(-1)
				for _, v := range row {
					mx = math.Max(mx, float64(v))
				}
				var z float64
				for _, v := range row {
					z += math.Exp(float64(v) - mx)
				}
				want := float64(row[trueID]) - mx - math.Log(z)
				require.InDelta(t, want, got[i], 1e-4)
				require.Less(t, got[i], 0.0)
			}
			// Same last frame, different history.
			other := append(testFrames(4, 20, 0.6), frames[4])
			g2, err := m.LogPTrue([]Clip{{Instruction: "pick the red cube", Frames: other}})
			require.NoError(t, err)
			if fixture == "paligemma" {
				require.InDelta(t, got[1], g2[0], 1e-6)
			} else {
				require.Greater(t, math.Abs(got[1]-g2[0]), 1e-6)
			}
		})
	}
}
