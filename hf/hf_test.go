package hf

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/text"
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
	for _, name := range []string{"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "paligemma", "paligemma2",
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

// TestFixtureGenerate: greedy decoding with the KV cache reproduces the reference's greedy
// continuation, which recomputes the whole sequence at every step.
func TestFixtureGenerate(t *testing.T) {
	backend := testBackend(t)
	for _, name := range []string{"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "paligemma", "paligemma2",
		"llava-siglip-qwen2", "llava-clip-llama"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m, err := Load(backend, dir)
			require.NoError(t, err)
			e := readExpected(t, dir)
			prompt := e.Prompt
			if prompt == nil {
				prompt = e.Tokens
			}
			var px *tensors.Tensor
			if _, err := os.Stat(filepath.Join(dir, "pixels.npy")); err == nil {
				px, err = ReadNPY(filepath.Join(dir, "pixels.npy"))
				require.NoError(t, err)
			}
			got, err := m.Generate(backend, prompt, px, GenerateOptions{MaxNewTokens: len(e.Generated)})
			require.NoError(t, err)
			require.Equal(t, e.Generated, got)
		})
	}
}

// copyFixture copies a fixture directory's JSON files into a temporary directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	return dir
}

// TestLoadMismatch: a missing, an unexpected and a mis-shaped tensor give one error line that
// names each tensor with its shapes.
func TestLoadMismatch(t *testing.T) {
	backend := testBackend(t)
	ts, _, err := checkpoints.ReadSafetensors(filepath.Join("testdata", "llama", "model.safetensors"))
	require.NoError(t, err)
	delete(ts, "model.norm.weight")
	ts["model.layers.0.self_attn.q_proj.weight"] = tensors.FromShape(shapes.Make(dtypes.Float32, 16, 32))
	ts["model.extra.weight"] = tensors.FromShape(shapes.Make(dtypes.Float32, 3))
	dir := copyFixture(t, "llama")
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil))
	_, err = Load(backend, dir)
	require.Error(t, err)
	msg := err.Error()
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, "missing model.norm.weight [32]")
	require.Contains(t, msg, "unexpected model.extra.weight [3]")
	require.Contains(t, msg, "mis-shaped model.layers.0.self_attn.q_proj.weight: checkpoint [16 32], model [32 32]")
}

// TestLoadErrors: unreadable directories and configurations are one line naming file and field.
func TestLoadErrors(t *testing.T) {
	backend := testBackend(t)
	_, err := Load(backend, t.TempDir())
	require.ErrorContains(t, err, "config.json: no such file or directory")

	dir := copyFixture(t, "llama")
	_, err = Load(backend, dir)
	require.ErrorContains(t, err, "no model.safetensors or model.safetensors.index.json")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["LlamaForCausalLM"], "hidden_size": "big"}`), 0o644))
	_, err = Load(backend, dir)
	require.ErrorContains(t, err, `field hidden_size: expected an integer, got big`)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["MambaForCausalLM"]}`), 0o644))
	_, err = Load(backend, dir)
	require.ErrorContains(t, err, "field architectures: MambaForCausalLM is not an architecture reel implements")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["LlamaForCausalLM"], "num_attention_heads": 3, "num_key_value_heads": 2}`), 0o644))
	_, err = Load(backend, dir)
	require.ErrorContains(t, err, "num_attention_heads 3 must be a positive multiple of num_key_value_heads 2")
}

// TestLayouts: 4.x VLM names are read into the 5.x layout and remembered for export; shards,
// dtypes and transforms are recorded per tensor.
func TestLayouts(t *testing.T) {
	backend := testBackend(t)
	m, err := Load(backend, filepath.Join("testdata", "paligemma"))
	require.NoError(t, err)
	require.Equal(t, Layout4, m.Layout)
	byName := map[string]Param{}
	for _, p := range m.Params {
		byName[p.Name] = p
		require.Equal(t, p.Source, Layout5To4(p.Name), "the 4.x name round-trips")
	}
	p := byName["model.language_model.layers.0.self_attn.q_proj.weight"]
	require.Equal(t, "language_model.model.layers.0.self_attn.q_proj.weight", p.Source)
	require.Equal(t, "/model/language_model/layers/0/self_attn/q_proj/weights", p.Var)
	require.Equal(t, TransformTranspose, p.Transform)
	require.Equal(t, []int{p.HFShape[1], p.HFShape[0]}, p.Shape)
	pe := byName["model.vision_tower.vision_model.embeddings.patch_embedding.weight"]
	require.Equal(t, TransformPatch, pe.Transform)
	require.Equal(t, []int{32, 3, 4, 4}, pe.HFShape)
	require.Equal(t, []int{48, 32}, pe.Shape)
	require.NotContains(t, byName, "lm_head.weight", "tied to embed_tokens")

	m, err = Load(backend, filepath.Join("testdata", "paligemma2"))
	require.NoError(t, err)
	require.Equal(t, Layout5, m.Layout)

	m, err = Load(backend, filepath.Join("testdata", "qwen2"))
	require.NoError(t, err)
	require.Equal(t, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}, m.Files)
	for _, p := range m.Params {
		require.Equal(t, "BF16", p.DType)
	}
}

// TestCopyInto: a store built by the architecture's own (random) initialisation, then set from
// the checkpoint with CopyInto (how a fine-tune starts), computes the fixture's logits.
func TestCopyInto(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join("testdata", "llava-clip-llama")
	m, err := Load(backend, dir)
	require.NoError(t, err)
	fresh := &Model{Dir: dir, Config: m.Config, Params: m.Params, Store: model.NewStore()}
	e := readExpected(t, dir)
	px, err := ReadNPY(filepath.Join(dir, "pixels.npy"))
	require.NoError(t, err)
	in := RunInputs{Tokens: [][]int{e.Tokens}, Pixels: px}
	res, err := fresh.Run(backend, in) // random initialisation
	require.NoError(t, err)
	require.Greater(t, maxRelErr(t, flatten3(res.Logits), flatten3f(e.Logits)), 0.1, "random weights are not the checkpoint")
	n, err := m.CopyInto(fresh.Store)
	require.NoError(t, err)
	require.Equal(t, len(m.Params), n)
	res, err = fresh.Run(backend, in)
	require.NoError(t, err)
	require.Less(t, maxRelErr(t, flatten3(res.Logits), flatten3f(e.Logits)), 1e-4)
}

// TestPromptIDs: prompts are laid out as PaliGemmaProcessor and LlavaProcessor do.
func TestPromptIDs(t *testing.T) {
	backend := testBackend(t)
	tok := text.Words{V: data.SceneVocab()}
	how, many := data.SceneVocab().ID("how"), data.SceneVocab().ID("many")
	img := func(tokenID, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = tokenID
		}
		return out
	}
	m, err := Inspect(backend, filepath.Join("testdata", "paligemma"))
	require.NoError(t, err)
	ids, err := m.PromptIDs(tok, "how many", 1)
	require.NoError(t, err)
	require.Equal(t, append(img(255, 16), text.BOSID, how, many), ids) // "\n" is no word of reel's vocabulary

	m, err = Inspect(backend, filepath.Join("testdata", "llava-clip-llama"))
	require.NoError(t, err)
	ids, err = m.PromptIDs(tok, "how <image> many", 1)
	require.NoError(t, err)
	require.Equal(t, append(append([]int{text.BOSID, how}, img(255, 16)...), many), ids)
	_, err = m.PromptIDs(tok, "how <image> many <image>", 1)
	require.ErrorContains(t, err, "2 <image> placeholders for 1 image(s)")
}
