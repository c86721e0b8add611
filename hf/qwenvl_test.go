package hf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
)

// qwenExpected is a Qwen-VL fixture's expected.json (testdata/gen_qwenvl.py).
type qwenExpected struct {
	ImageGrid      [][3]int  `json:"image_grid_thw"`
	VideoGrid      [][3]int  `json:"video_grid_thw"`
	SecondsPerGrid []float64 `json:"second_per_grid_ts"`
	Cases          map[string]struct {
		Tokens    []int   `json:"tokens"`
		Positions [][]int `json:"position_ids"`
	} `json:"cases"`
	Generate      qwenGenerated `json:"generate"`
	GenerateVideo qwenGenerated `json:"generate_video"`
}

type qwenGenerated struct {
	Prompt    []int `json:"prompt"`
	Generated []int `json:"generated"`
}

func readQwenExpected(t *testing.T, dir string) (e qwenExpected) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	return e
}

func grids(g [][3]int) []models.Grid {
	var out []models.Grid
	for _, x := range g {
		out = append(out, models.Grid{T: x[0], H: x[1], W: x[2]})
	}
	return out
}

func npy2(t *testing.T, path string) [][]float32 {
	t.Helper()
	x, err := ReadNPY(path)
	require.NoError(t, err)
	return floats2(x)
}

func readNPY(t *testing.T, path string) *tensors.Tensor {
	t.Helper()
	x, err := ReadNPY(path)
	require.NoError(t, err)
	return x
}

var qwenFixtures = []string{"qwen2vl-tiny", "qwen2.5vl-tiny"}

// TestQwenVLTower: the vision tower alone (patch embedding, 2-D rotary positions, per-frame and
// window attention, merger) matches the PyTorch twin of transformers' modeling files on an image
// and a video.
func TestQwenVLTower(t *testing.T) {
	backend := testBackend(t)
	for _, name := range qwenFixtures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			e := readQwenExpected(t, dir)
			for _, c := range []struct {
				px, want string
				grid     [][3]int
			}{{"pixel_values.npy", "image_embeds.npy", e.ImageGrid}, {"pixel_values_videos.npy", "video_embeds.npy", e.VideoGrid}} {
				got, err := m.QwenVisionEmbeds(backend, readNPY(t, filepath.Join(dir, c.px)), grids(c.grid))
				require.NoError(t, err)
				r := maxRelErr(t, got, npy2(t, filepath.Join(dir, c.want)))
				t.Logf("%s %s: max relative error %.2g", name, c.want, r)
				require.Less(t, r, 1e-4)
			}
		})
	}
}

// TestQwenVLLogits: whole-model logits for text, image, video and image+video inputs, and
// get_rope_index's positions, match the twin's.
func TestQwenVLLogits(t *testing.T) {
	backend := testBackend(t)
	for _, name := range qwenFixtures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			e := readQwenExpected(t, dir)
			pix := readNPY(t, filepath.Join(dir, "pixel_values.npy"))
			vid := readNPY(t, filepath.Join(dir, "pixel_values_videos.npy"))
			for _, cname := range []string{"text", "image", "video", "image_video"} {
				c := e.Cases[cname]
				in := RunInputs{Tokens: [][]int{c.Tokens}}
				if cname == "image" || cname == "image_video" {
					in.Pixels, in.ImageGrids = pix, grids(e.ImageGrid)
				}
				if cname == "video" || cname == "image_video" {
					in.VideoPixels, in.VideoGrids, in.SecondsPerGrid = vid, grids(e.VideoGrid), e.SecondsPerGrid
				}
				pos, _ := models.QwenRopeIndex(*m.Config.QwenVL, c.Tokens, in.ImageGrids, in.VideoGrids, in.SecondsPerGrid)
				for k := range 3 {
					require.Equal(t, c.Positions[k], pos[k], "%s position_ids[%d]", cname, k)
				}
				res, err := m.Run(backend, in)
				require.NoError(t, err)
				r := maxRelErr(t, res.Logits[0], npy2(t, filepath.Join(dir, "logits_"+cname+".npy")))
				t.Logf("%s %s logits: max relative error %.2g", name, cname, r)
				require.Less(t, r, 1e-4)
			}
		})
	}
}

// TestQwenVLGenerate: greedy decoding with the KV cache (the new tokens at index + rope delta)
// equals the twin's, which recomputes get_rope_index and the whole sequence at every step.
func TestQwenVLGenerate(t *testing.T) {
	backend := testBackend(t)
	for _, name := range qwenFixtures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			e := readQwenExpected(t, dir)
			in := RunInputs{Tokens: [][]int{e.Generate.Prompt}, Pixels: readNPY(t, filepath.Join(dir, "pixel_values.npy")),
				ImageGrids: grids(e.ImageGrid)}
			got, err := m.GenerateQwenVL(backend, in, GenerateOptions{MaxNewTokens: 6})
			require.NoError(t, err)
			require.Equal(t, e.Generate.Generated, got, "image prompt")
			in = RunInputs{Tokens: [][]int{e.GenerateVideo.Prompt}, VideoPixels: readNPY(t, filepath.Join(dir, "pixel_values_videos.npy")),
				VideoGrids: grids(e.VideoGrid), SecondsPerGrid: e.SecondsPerGrid}
			got, err = m.GenerateQwenVL(backend, in, GenerateOptions{MaxNewTokens: 6})
			require.NoError(t, err)
			require.Equal(t, e.GenerateVideo.Generated, got, "video prompt")
		})
	}
}
