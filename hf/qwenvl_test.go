package hf

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/text"
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

var qwenFixtures = []string{"qwen2vl-tiny", "qwen2.5vl-tiny", "qwen3vl-tiny"}

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
				got, deep, err := m.QwenVisionEmbeds(backend, readNPY(t, filepath.Join(dir, c.px)), grids(c.grid))
				require.NoError(t, err)
				r := maxRelErr(t, got, npy2(t, filepath.Join(dir, c.want)))
				t.Logf("%s %s: max relative error %.2g", name, c.want, r)
				require.Less(t, r, 1e-4)
				if ds := strings.Replace(c.want, "_embeds", "_deepstack", 1); len(deep) > 0 || fileExists(filepath.Join(dir, ds)) {
					var all [][]float32
					for _, d := range deep {
						all = append(all, d...)
					}
					r := maxRelErr(t, all, npy2(t, filepath.Join(dir, ds)))
					t.Logf("%s %s: max relative error %.2g", name, ds, r)
					require.Less(t, r, 1e-4)
				}
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
			for _, cname := range []string{"text", "image", "video", "image_video", "video_frames"} {
				c, ok := e.Cases[cname]
				if !ok {
					continue
				}
				in := RunInputs{Tokens: [][]int{c.Tokens}}
				if cname == "image" || cname == "image_video" {
					in.Pixels, in.ImageGrids = pix, grids(e.ImageGrid)
				}
				if strings.HasPrefix(cname, "video") || cname == "image_video" {
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

// TestQwenVLProcessor: smart_resize, PIL resizing, rescale/normalise and patchify reproduce the
// twin's Qwen2VLImageProcessor steps (gen_qwenvl.py: Pillow and NumPy) on a PNG and on video
// frames, and patchify alone the patches of the model fixtures.
func TestQwenVLProcessor(t *testing.T) {
	dir := filepath.Join("testdata", "qwen2vl-tiny")
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	var e struct {
		Processor struct {
			ImageGrid   [3]int   `json:"image_grid_thw"`
			VideoGrid   [3]int   `json:"video_grid_thw"`
			SmartResize [][7]int `json:"smart_resize"`
		} `json:"processor"`
	}
	require.NoError(t, json.Unmarshal(data, &e))
	for _, c := range e.Processor.SmartResize {
		h, w, err := SmartResize(c[0], c[1], c[2], c[3], c[4])
		require.NoError(t, err)
		require.Equal(t, [2]int{c[5], c[6]}, [2]int{h, w}, "smart_resize(%d, %d, %d, %d, %d)", c[0], c[1], c[2], c[3], c[4])
	}
	_, _, err = SmartResize(5, 40, 28, 3136, 1003520)
	require.Error(t, err)

	m, err := Inspect(testBackend(t), dir)
	require.NoError(t, err)
	p, err := ReadQwenProcessor(dir, m.Config.QwenVL.Vision, false)
	require.NoError(t, err)
	require.Equal(t, 1024, p.MaxPixels)
	rgb, w, h, err := LoadImage(filepath.Join(dir, "image.png"))
	require.NoError(t, err)
	px, g, err := p.Patches([][]uint8{rgb}, w, h)
	require.NoError(t, err)
	require.Equal(t, e.Processor.ImageGrid, [3]int{g.T, g.H, g.W})
	r := maxRelErr(t, floats2(px), npy2(t, filepath.Join(dir, "pixel_values_png.npy")))
	t.Logf("image pixel_values: max relative error %.2g", r)
	require.Less(t, r, 1e-6)

	vf := readNPY(t, filepath.Join(dir, "video_frames_u8.npy")) // [F, H, W, 3] uint8 values as f32
	d := vf.Shape().Dimensions
	flat := tensors.MustCopyFlatData[float32](vf)
	var frames [][]uint8
	for f := range d[0] {
		fr := make([]uint8, d[1]*d[2]*3)
		for i := range fr {
			fr[i] = uint8(flat[f*len(fr)+i])
		}
		frames = append(frames, fr)
	}
	px, g, err = p.Patches(frames, d[2], d[1])
	require.NoError(t, err)
	require.Equal(t, e.Processor.VideoGrid, [3]int{g.T, g.H, g.W})
	r = maxRelErr(t, floats2(px), npy2(t, filepath.Join(dir, "pixel_values_video_frames.npy")))
	t.Logf("video pixel_values: max relative error %.2g", r)
	require.Less(t, r, 1e-6)

	for _, c := range [][2]string{{"frames_image.npy", "pixel_values.npy"}, {"frames_video.npy", "pixel_values_videos.npy"}} {
		fr := readNPY(t, filepath.Join(dir, c[0])) // [F, C, H, W]
		fd := fr.Shape().Dimensions
		all := tensors.MustCopyFlatData[float32](fr)
		var chw [][]float32
		n := fd[1] * fd[2] * fd[3]
		for f := range fd[0] {
			chw = append(chw, all[f*n:(f+1)*n])
		}
		px, _ := QwenPatchify(chw, fd[1], fd[2], fd[3], 2, 4, 2)
		require.Equal(t, npy2(t, filepath.Join(dir, c[1])), floats2(px), c[0])
	}
}

// byteTok is a tokenizer stub: one id per byte.
type byteTok struct{}

func (byteTok) Encode(s string) []int {
	var out []int
	for _, b := range []byte(s) {
		out = append(out, int(b))
	}
	return out
}
func (t byteTok) EncodeSpecial(s string) []int { return t.Encode(s) }
func (byteTok) Decode([]int) string            { return "" }
func (byteTok) VocabSize() int                 { return 256 }
func (byteTok) Special() text.SpecialTokens {
	return text.SpecialTokens{BOS: -1, EOS: -1, Pad: -1, Unk: -1}
}

// TestQwenVLPrompt: the prompt layout of Qwen2VLProcessor: each vision block expanded to one pad
// per merged token of its grid, a block put first when the prompt marks none, and the runs of
// placeholders agreeing with CheckInputs.
func TestQwenVLPrompt(t *testing.T) {
	m, err := Inspect(testBackend(t), filepath.Join("testdata", "qwen2vl-tiny"))
	require.NoError(t, err)
	img, vid := []models.Grid{{T: 1, H: 4, W: 6}}, []models.Grid{{T: 2, H: 4, W: 4}}
	ids, err := m.QwenPromptIDs(byteTok{}, "ab"+QwenVideoBlock+"c", img, vid, nil)
	require.NoError(t, err)
	want := []int{120, 122, 122, 122, 122, 122, 122, 121, 'a', 'b', 120}
	for range 8 {
		want = append(want, 123)
	}
	want = append(want, 121, 'c')
	require.Equal(t, want, ids)
	_, err = m.QwenPromptIDs(byteTok{}, QwenImageBlock+QwenImageBlock, img, nil, nil)
	require.ErrorContains(t, err, "2 image(s)")

	// Qwen3VLProcessor: a timestamped block per temporal patch; with 2 s per grid (1 fps, 2-frame
	// patches: frames at 0, 1, 2, 3 s) the patches' times are 0.5 and 2.5 s.
	m3, err := Inspect(testBackend(t), filepath.Join("testdata", "qwen3vl-tiny"))
	require.NoError(t, err)
	ids, err = m3.QwenPromptIDs(byteTok{}, "x", nil, vid, []float64{2})
	require.NoError(t, err)
	want = byteTok{}.Encode("<0.5 seconds>")
	want = append(want, 120, 123, 123, 123, 123, 121)
	want = append(want, byteTok{}.Encode("<2.5 seconds>")...)
	want = append(want, 120, 123, 123, 123, 123, 121, 'x')
	require.Equal(t, want, ids)
}

// TestQwenVLVideoFile: a video file decoded with ffmpeg becomes pixel_values_videos with its grid
// (3 frames at the processor's 2 fps: the last repeated to 2 temporal patches; 32×32 frames within
// max_pixels 1024) and second_per_grid_ts = temporal_patch_size / fps, and runs through the model.
func TestQwenVLVideoFile(t *testing.T) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	path := filepath.Join(t.TempDir(), "v.mp4")
	out, err := exec.Command(ff, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=4", "-t", "1", "-pix_fmt", "yuv420p", path).CombinedOutput()
	require.NoError(t, err, string(out))
	backend := testBackend(t)
	m, err := Load(backend, filepath.Join("testdata", "qwen2.5vl-tiny"))
	require.NoError(t, err)
	px, g, sec, err := m.QwenVideo(path, 3)
	require.NoError(t, err)
	require.Equal(t, models.Grid{T: 2, H: 8, W: 8}, g)
	require.Equal(t, 1.0, sec)
	require.Equal(t, []int{128, 96}, px.Shape().Dimensions)
	ids, err := m.QwenPromptIDs(byteTok{}, "hi", nil, []models.Grid{g}, nil)
	require.NoError(t, err)
	res, err := m.Run(backend, RunInputs{Tokens: [][]int{ids}, VideoPixels: px, VideoGrids: []models.Grid{g}, SecondsPerGrid: []float64{sec}})
	require.NoError(t, err)
	require.Len(t, res.Logits[0], len(ids))
}

// TestQwenLayoutNames: the 4.x ↔ 5.x renaming of Qwen-VL tensors round-trips.
func TestQwenLayoutNames(t *testing.T) {
	for n4, n5 := range map[string]string{"visual.blocks.0.attn.qkv.weight": "model.visual.blocks.0.attn.qkv.weight",
		"model.layers.1.mlp.up_proj.weight": "model.language_model.layers.1.mlp.up_proj.weight", "lm_head.weight": "lm_head.weight"} {
		require.Equal(t, n5, qwenLayout4To5(n4))
		require.Equal(t, n4, qwenLayout5To4(n5))
	}
}
