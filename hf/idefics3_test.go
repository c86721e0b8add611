package hf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/text"
)

// idefics3Expected is the expected.json gen_idefics3.py writes (the logits are .npy files beside it).
type idefics3Expected struct {
	Prompt        []int `json:"prompt"`
	TextTokens    []int `json:"text_tokens"`
	Tiles         []int `json:"tiles"`
	ImageSeqLen   int   `json:"image_seq_len"`
	Generated     []int `json:"generated"`
	GeneratedText []int `json:"generated_text"`
}

func readNPYRows(t *testing.T, path string) [][]float32 {
	t.Helper()
	x, err := ReadNPY(path)
	require.NoError(t, err)
	d := x.Shape().Dimensions
	last := d[len(d)-1]
	flat := tensors.MustCopyFlatData[float32](x)
	var out [][]float32
	for i := 0; i < len(flat); i += last {
		out = append(out, flat[i:i+last])
	}
	return out
}

// TestIdefics3Fixtures: Idefics3ForConditionalGeneration (one image, untied head, F32) and
// SmolVLMForConditionalGeneration (2×2 splits + global image, tied head through text_config, BF16)
// match the independent PyTorch twin (testdata/gen_idefics3.py) within 1e-4 relative: the vision
// tower alone, tower + connector, the whole model with the image and text only; greedy decoding
// with the KV cache equals the twin's full-recomputation greedy tokens, with and without the image.
func TestIdefics3Fixtures(t *testing.T) {
	backend := testBackend(t)
	for _, name := range []string{"idefics3", "smolvlm"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			require.NotNil(t, m.Config.Idefics3)
			require.Equal(t, Layout5, m.Layout)
			var e idefics3Expected
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &e))
			require.Equal(t, e.ImageSeqLen, m.Config.ImageTokens())
			px, err := ReadNPY(filepath.Join(dir, "pixels.npy"))
			require.NoError(t, err)

			res, err := m.Run(backend, RunInputs{Tokens: [][]int{e.Prompt}, Pixels: px})
			require.NoError(t, err)
			r := maxRelErr(t, flatten3(res.Logits), readNPYRows(t, filepath.Join(dir, "logits.npy")))
			t.Logf("%s logits with image: max relative error %.2g", name, r)
			require.Less(t, r, 1e-4)
			res, err = m.Run(backend, RunInputs{Tokens: [][]int{e.TextTokens}})
			require.NoError(t, err)
			r = maxRelErr(t, flatten3(res.Logits), readNPYRows(t, filepath.Join(dir, "text_logits.npy")))
			t.Logf("%s text-only logits: max relative error %.2g", name, r)
			require.Less(t, r, 1e-4)

			cfg := *m.Config.Idefics3
			parts := map[string]func(*model.Scope, *model.Node) *model.Node{
				"image_features.npy": func(s *model.Scope, p *model.Node) *model.Node { return models.Idefics3ImageFeatures(s, cfg, p) },
				"vision.npy":         func(s *model.Scope, p *model.Node) *model.Node { return models.Idefics3VisionFeatures(s, cfg, p) },
			}
			for file, f := range parts {
				path := filepath.Join(dir, file)
				if _, err := os.Stat(path); err != nil {
					continue
				}
				out, err := model.CallOnce(backend, m.Store, f, px)
				require.NoError(t, err)
				got := flatten3(floats3(out))
				r := maxRelErr(t, got, readNPYRows(t, path))
				t.Logf("%s %s: max relative error %.2g", name, file, r)
				require.Less(t, r, 1e-4, file)
			}

			got, err := m.Generate(backend, e.Prompt, px, GenerateOptions{MaxNewTokens: len(e.Generated)})
			require.NoError(t, err)
			require.Equal(t, e.Generated, got, "greedy with the image")
			got, err = m.Generate(backend, e.TextTokens, nil, GenerateOptions{MaxNewTokens: len(e.GeneratedText)})
			require.NoError(t, err)
			require.Equal(t, e.GeneratedText, got, "greedy text only")
		})
	}
}

// TestIdefics3Config: Idefics3Config's defaults (configuration_idefics3.py) and the checks.
func TestIdefics3Config(t *testing.T) {
	// SmolVLM2-256M's shape: 512-pixel tiles of 16-pixel patches, scale_factor 4 → 64 tokens.
	c, err := ParseConfig(map[string]any{"architectures": []any{"SmolVLMForConditionalGeneration"}, "scale_factor": 4.0,
		"vision_config": map[string]any{"image_size": 512.0, "patch_size": 16.0}, "text_config": map[string]any{"model_type": "llama"}})
	require.NoError(t, err)
	i := c.Idefics3
	require.Equal(t, 128257, i.ImageToken)
	require.Equal(t, 1152, i.Vision.Hidden)
	require.Equal(t, 16, i.Vision.Heads)
	require.Equal(t, 64, i.ImageTokens())
	require.False(t, i.Text.TieEmbeddings)
	// configuration_idefics3.py's own defaults (224-pixel images, 32-pixel patches: 7×7) cannot be
	// pixel-shuffled by its default scale_factor 2; one line says so.
	_, err = ParseConfig(map[string]any{"model_type": "idefics3"})
	require.ErrorContains(t, err, "scale_factor 2 must be a positive divisor of the 7 patches per side")
	require.Equal(t, 5, i.TextLayers(5).Layers)
	require.Equal(t, i.Text.Layers, i.TextLayers(0).Layers)
}

// TestIdefics3Init: hf init writes, from each fixture's config.json, the twin checkpoint's tensor
// names, shapes and dtypes (no tied lm_head for smolvlm), which reel loads and runs.
func TestIdefics3Init(t *testing.T) {
	backend := testBackend(t)
	for _, name := range []string{"idefics3", "smolvlm"} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), name)
			res, err := Init(backend, filepath.Join("testdata", name, "config.json"), out, 3)
			require.NoError(t, err)
			require.Equal(t, Layout5, res.Layout)
			got, err := ReadWeightShapes(out)
			require.NoError(t, err)
			want, err := ReadWeightShapes(filepath.Join("testdata", name))
			require.NoError(t, err)
			require.Equal(t, len(want.Shapes), len(got.Shapes))
			for n, s := range want.Shapes {
				require.Contains(t, got.Shapes, n)
				require.True(t, s.Equal(got.Shapes[n]), "%s: %s vs %s", n, got.Shapes[n], s)
			}
			m, err := Load(backend, out)
			require.NoError(t, err)
			px, err := ReadNPY(filepath.Join("testdata", name, "pixels.npy"))
			require.NoError(t, err)
			var e idefics3Expected
			b, err := os.ReadFile(filepath.Join("testdata", name, "expected.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &e))
			_, err = m.Run(backend, RunInputs{Tokens: [][]int{e.Prompt}, Pixels: px})
			require.NoError(t, err)
		})
	}
}

// TestIdefics3Processor: SmolVLMImageProcessor's pixel_values and split grid, as the PIL steps of
// image_processing_smolvlm.py compute them (testdata/gen_idefics3.py): a 45×30 image upscaled
// (Lanczos) to longest edge 48 and split 2×3 + global; a 20×28 one resized unsplit (bicubic).
func TestIdefics3Processor(t *testing.T) {
	for name, want := range map[string]ImageGrid{"smolvlm_split": {2, 3}, "smolvlm_single": {}} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "image")
			p, err := ReadIdefics3ProcessorFile(filepath.Join(dir, name+"_preprocessor_config.json"), 16)
			require.NoError(t, err)
			rgb, w, h, err := LoadImage(filepath.Join(dir, name+".png"))
			require.NoError(t, err)
			px, g := p.Process(rgb, w, h)
			require.Equal(t, want, g)
			ref, err := ReadNPY(filepath.Join(dir, name+".npy"))
			require.NoError(t, err)
			require.Equal(t, ref.Shape().Dimensions, px.Shape().Dimensions)
			a, b := tensors.MustCopyFlatData[float32](px), tensors.MustCopyFlatData[float32](ref)
			for i := range a {
				require.InDelta(t, b[i], a[i], 1e-6, "element %d", i)
			}
		})
	}
	_, err := ReadIdefics3ProcessorFile(filepath.Join("testdata", "image", "smolvlm_split_preprocessor_config.json"), 32)
	require.ErrorContains(t, err, "max_image_size: longest_edge 16 must equal the vision tower's image_size 32")
}

// TestIdefics3PromptIDs: a prompt with one image split 2×2 is laid out as SmolVLMProcessor does
// (the twin's prompt ids, which the fixture's logits were computed on; the fixture's word-level
// tokenizer.json holds the processor's added tokens); an unsplit image as _prompt_single_image; a
// placeholder count that does not match the images is an error.
func TestIdefics3PromptIDs(t *testing.T) {
	dir := filepath.Join("testdata", "smolvlm")
	tok, err := text.Load(dir)
	require.NoError(t, err)
	m, err := Load(testBackend(t), dir)
	require.NoError(t, err)
	var e idefics3Expected
	b, err := os.ReadFile(filepath.Join("testdata", "smolvlm", "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &e))
	ids, err := m.PromptIDsGrids(tok, "a b c<image>d e f", []ImageGrid{{Rows: e.Tiles[0], Cols: e.Tiles[1]}})
	require.NoError(t, err)
	require.Equal(t, e.Prompt, ids)
	ids, err = m.PromptIDs(tok, "d", 1)
	require.NoError(t, err)
	require.Equal(t, []int{1, 126, 125, 127, 127, 127, 127, 126, 40}, ids, "<image> put first, one global tile")
	_, err = m.PromptIDsGrids(tok, "<image>a<image>", []ImageGrid{{}})
	require.ErrorContains(t, err, "2 <image> placeholders for 1 image(s)")

	// The fixture's pixels are its image.png through its preprocessor_config.json (the twin's
	// SmolVLM processor): ImageInput gives them and the 2×2 grid.
	px, g, err := m.ImageInput(filepath.Join(dir, "image.png"))
	require.NoError(t, err)
	require.Equal(t, ImageGrid{Rows: 2, Cols: 2}, g)
	ref, err := ReadNPY(filepath.Join(dir, "pixels.npy"))
	require.NoError(t, err)
	require.Equal(t, ref.Shape().Dimensions, px.Shape().Dimensions)
	a, want := tensors.MustCopyFlatData[float32](px), tensors.MustCopyFlatData[float32](ref)
	for i := range a {
		require.InDelta(t, want[i], a[i], 1e-6)
	}
}

// TestIdefics3Backbone: the pieces SmolVLA reuses, through package models' API: the embeddings with
// the connector's image tokens merged in, then the text model cut to its first layer (final norm
// kept), equal the twin's hidden states within 1e-4 relative.
func TestIdefics3Backbone(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join("testdata", "smolvlm")
	m, err := Load(backend, dir)
	require.NoError(t, err)
	var e idefics3Expected
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &e))
	px, err := ReadNPY(filepath.Join(dir, "pixels.npy"))
	require.NoError(t, err)
	cfg := *m.Config.Idefics3
	out, err := model.CallOnce(backend, m.Store, func(s *model.Scope, ids, pixels *model.Node) *model.Node {
		x := models.Idefics3Embeds(s, cfg, ids, pixels)
		pos := models.Positions(ids.Graph(), 1, ids.Shape().Dimensions[1], 0)
		return models.Decoder(models.Idefics3TextScope(s), cfg.TextLayers(1), x, pos, nil, nil)
	}, IntTensor([][]int{e.Prompt}), px)
	require.NoError(t, err)
	r := maxRelErr(t, flatten3(floats3(out)), readNPYRows(t, filepath.Join(dir, "hidden_1layer.npy")))
	t.Logf("first-layer hidden states: max relative error %.2g", r)
	require.Less(t, r, 1e-4)
}

// TestIdefics3BadInputs: placeholders that do not match the tiles, and grids that do not match the
// pixel rows, are one error line each.
func TestIdefics3BadInputs(t *testing.T) {
	m, err := Load(testBackend(t), filepath.Join("testdata", "smolvlm"))
	require.NoError(t, err)
	px, err := ReadNPY(filepath.Join("testdata", "smolvlm", "pixels.npy"))
	require.NoError(t, err)
	err = m.CheckInputs(RunInputs{Tokens: [][]int{{1, 127}}, Pixels: px})
	require.ErrorContains(t, err, "1 image placeholders (id 127) for 5 image tiles (splits and global images) of 4 tokens each (want 20)")
	err = m.CheckInputs(RunInputs{Tokens: [][]int{{1, 127}}, Pixels: px, Grids: []ImageGrid{{Rows: 1, Cols: 2}}})
	require.ErrorContains(t, err, "5 rows for 1 image(s) of 3 tiles in all")
}

// smolvlm2Config is HuggingFaceTB/SmolVLM2-500M-Video-Instruct's config.json (as published on its
// model card; the Hub is not reachable here).
const smolvlm2Config = `{"architectures": ["SmolVLMForConditionalGeneration"], "image_token_id": 49190, "model_type": "smolvlm",
 "pad_token_id": 128002, "scale_factor": 4,
 "text_config": {"architectures": ["VLlama3ForCausalLM"], "head_dim": 64, "hidden_size": 960, "intermediate_size": 2560,
  "is_llama_config": true, "max_position_embeddings": 8192, "model_type": "llama", "neftune_noise_alpha": 0.0,
  "num_attention_heads": 15, "num_hidden_layers": 32, "num_key_value_heads": 5, "pad_token_id": 2, "pixel_shuffle_factor": 4,
  "qk_layer_norms": false, "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_theta": 100000, "torch_dtype": "bfloat16",
  "use_resampler": false, "vocab_size": 49280},
 "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.47.1", "use_cache": false,
 "vision_config": {"hidden_size": 768, "image_size": 512, "max_image_size": {"longest_edge": 512}, "model_type": "smolvlm_vision",
  "num_attention_heads": 12, "patch_size": 16, "size": {"longest_edge": 2048}, "tie_word_embeddings": false, "use_base_siglip": false},
 "vocab_size": 49280}`

// TestSmolVLM2Config: SmolVLM2-500M's config.json parses to its architecture (64 image tokens per
// 512-pixel tile, as its processor_config.json's image_seq_len says; GQA 15/5 heads of 64; the
// SmolVLMVisionConfig defaults for the tower's depth and width) and the model it builds has the
// checkpoint's 507.5M parameters (counted here from the shapes transformers' modules have).
func TestSmolVLM2Config(t *testing.T) {
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(smolvlm2Config), &m))
	c, err := ParseConfig(m)
	require.NoError(t, err)
	i := c.Idefics3
	require.Equal(t, 64, i.ImageTokens())
	require.Equal(t, 49190, i.ImageToken)
	require.Equal(t, 12, i.Vision.Layers)
	require.Equal(t, 3072, i.Vision.Intermediate)
	require.Equal(t, 5, i.Text.KVHeads)
	require.False(t, i.Text.TieEmbeddings)
	vars, err := Variables(testBackend(t), c)
	require.NoError(t, err)
	n := 0
	for _, v := range vars {
		size := 1
		for _, d := range v.Shape {
			size *= d
		}
		n += size
	}
	// text: embeddings and head 2·49280·960; per layer q,o 960², k,v 960·320, MLP 3·960·2560, two norms.
	text := 2*49280*960 + 32*(2*960*960+2*960*320+3*960*2560+2*960) + 960
	// vision: patch conv + bias, 1024 positions, per layer 4 projections with biases, MLP, two
	// LayerNorms; post_layernorm. Connector: 768·16 → 960.
	vision := 768*3*16*16 + 768 + 1024*768 + 12*(4*(768*768+768)+768*3072+3072+3072*768+768+4*768) + 2*768
	require.Equal(t, text+vision+768*16*960, n)
	t.Logf("SmolVLM2-500M: %d parameters", n)
}

// TestIdefics3ChatPrompt: with --chat, the "<image>" SmolVLM's template writes for an image entry
// is expanded to the image's tiles as the processor does, the rendered text tokenised without
// special tokens.
func TestIdefics3ChatPrompt(t *testing.T) {
	dir := filepath.Join("testdata", "smolvlm")
	m, err := Load(testBackend(t), dir)
	require.NoError(t, err)
	tok, err := text.Load(dir)
	require.NoError(t, err)
	var e idefics3Expected
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &e))
	cfg := filepath.Join(t.TempDir(), "tokenizer_config.json")
	tmpl := `{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} d{% endif %}`
	data, err := json.Marshal(map[string]any{"chat_template": tmpl})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, data, 0o644))
	ct, err := text.LoadChatTemplate(cfg, "")
	require.NoError(t, err)
	ids, rendered, err := m.ChatPromptIDsGrids(tok, ct, "a b c", []ImageGrid{{Rows: 2, Cols: 2}}, nil)
	require.NoError(t, err)
	require.Equal(t, "<image>a b c d", rendered)
	image := e.Prompt[4 : len(e.Prompt)-3] // the twin's expansion of the image
	require.Equal(t, append(append([]int{}, image...), 30, 31, 32, 40), ids)
}
