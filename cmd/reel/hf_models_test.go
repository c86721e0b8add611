package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
)

func hfFixture(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "hf", "testdata", name))
	require.NoError(t, err)
	return dir
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// TestHFRunCLI: `reel hf run` prints the logits of a PaliGemma fixture (image, prefix and suffix
// token types) that the PyTorch reference computed, within 1e-4 relative; `reel hf generate`
// continues its prompt as the reference's greedy decoding does.
func TestHFRunCLI(t *testing.T) {
	dir := hfFixture(t, "paligemma")
	var e struct {
		Tokens     []int         `json:"tokens"`
		TokenTypes []int         `json:"token_types"`
		Prompt     []int         `json:"prompt"`
		Generated  []int         `json:"generated"`
		Logits     [][][]float64 `json:"logits"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	r := reel(t, t.TempDir(), "hf", "run", dir, "--tokens", joinInts(e.Tokens), "--token-types", joinInts(e.TokenTypes),
		"--pixels", filepath.Join(dir, "pixels.npy"))
	requireOK(t, r)
	var out struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	var diff, scale float64
	for i := range e.Logits[0] {
		for j, want := range e.Logits[0][i] {
			diff = math.Max(diff, math.Abs(out.Logits[0][i][j]-want))
			scale = math.Max(scale, math.Abs(want))
		}
	}
	require.Less(t, diff/scale, 1e-4)

	r = reel(t, t.TempDir(), "hf", "generate", dir, "--tokens", joinInts(e.Prompt), "--pixels", filepath.Join(dir, "pixels.npy"),
		"--max-new-tokens", strconv.Itoa(len(e.Generated)))
	requireOK(t, r)
	var gen struct{ Generated []int }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gen))
	require.Equal(t, e.Generated, gen.Generated)

	r = reel(t, t.TempDir(), "hf", "inspect", dir)
	requireOK(t, r)
	require.Contains(t, r.stdout, "PaliGemmaForConditionalGeneration")
	require.Contains(t, r.stdout, "16 tokens per image at placeholder id 255")
}

// TestHFCLIErrors: bad input is one line "reel: …" and a non-zero exit.
func TestHFCLIErrors(t *testing.T) {
	dir := hfFixture(t, "paligemma")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hf", "run", dir, "--tokens", "1,2,x"}, `--tokens: "x" is not an integer`},
		{[]string{"hf", "run", dir, "--tokens", "255,2,3", "--pixels", filepath.Join(dir, "pixels.npy")}, "1 image placeholders (id 255) for 1 image(s) of 16 tokens each (want 16)"},
		{[]string{"hf", "run", filepath.Join(dir, "missing")}, "config.json: no such file or directory"},
		{[]string{"hf", "run", dir, "--tokens", "1,2", "--pixels", filepath.Join(dir, "config.json")}, "not a .npy file"},
	} {
		r := reel(t, t.TempDir(), c.args...)
		require.NotEqual(t, 0, r.code, c.args)
		require.Contains(t, r.stderr, c.want)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, r.stderr)
		require.True(t, strings.HasPrefix(r.stderr, "reel: "), r.stderr)
	}
}

// writeHFDir writes a run's model variables as a Hugging Face directory (transformers' names and
// layouts) with config.json cfg: the inverse of hf's mapping, for the test below.
func writeHFDir(t *testing.T, ckpt, dir, cfg string) {
	t.Helper()
	vars, _, err := checkpoints.LoadVariables(ckpt)
	require.NoError(t, err)
	writeHFVars(t, vars, dir, cfg)
}

// writeHFVars is writeHFDir for variables by path.
func writeHFVars(t *testing.T, vars map[string]*tensors.Tensor, dir, cfg string) {
	t.Helper()
	out := map[string]*tensors.Tensor{}
	for path, v := range vars {
		if !strings.HasPrefix(path, "/model/") && !strings.HasPrefix(path, "/lm_head/") {
			continue // optimizer state, step counter, RNG
		}
		d := v.Shape().Dimensions
		name, tr := hf.HFName(path, len(d))
		x := tensors.MustCopyFlatData[float32](v)
		switch tr {
		case hf.TransformTranspose: // [in, out] → [out, in]
			y := make([]float32, len(x))
			for i := range d[0] {
				for j := range d[1] {
					y[j*d[0]+i] = x[i*d[1]+j]
				}
			}
			out[name] = tensors.FromFlatDataAndDimensions(y, d[1], d[0])
		case hf.TransformPatch: // [(py, px, c), D] → [D, C, p, p]
			p := 8
			c := d[0] / (p * p)
			y := make([]float32, len(x))
			for o := range d[1] {
				for ci := range c {
					for py := range p {
						for px := range p {
							y[((o*c+ci)*p+py)*p+px] = x[((py*p+px)*c+ci)*d[1]+o]
						}
					}
				}
			}
			out[name] = tensors.FromFlatDataAndDimensions(y, d[1], c, p, p)
		default:
			out[name] = v
		}
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), out, map[string]string{"format": "pt"}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
}

// TestHFFineTuneCLI trains counting-finetune-hf-tiny (the Hugging Face PaliGemma code path with
// random weights; a full fine-tune, without the recipe's LoRA adapters) briefly, then evaluates it with its own weights written as a Hugging Face
// directory as the baseline: loading that directory back must reproduce the run's metrics exactly.
func TestHFFineTuneCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, "train", "counting-finetune-hf-tiny", "--out", "run", "--set", "train.steps=40",
		"--set", "train.lora.rank=0", "--set", "train.eval_every=0", "--set", "checkpoint.every=0", "--set", "eval.examples=32", "--set", "eval.batch_size=32"))
	r, err := recipes.Load(filepath.Join(dir, "run", "recipe.yaml"), nil)
	require.NoError(t, err)
	ckpt, err := checkpoints.Resolve(filepath.Join(dir, "run"), nil)
	require.NoError(t, err)
	writeHFDir(t, ckpt, filepath.Join(dir, "hfdir"), r.Model.HFConfig)
	res := reel(t, dir, "eval", "run", "--baseline", filepath.Join(dir, "hfdir"))
	requireOK(t, res)
	var ev struct {
		Metrics  map[string]float64 `json:"metrics"`
		Baseline struct {
			Metrics map[string]float64 `json:"metrics"`
		} `json:"baseline"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &ev))
	require.NotEmpty(t, ev.Metrics)
	require.Equal(t, ev.Metrics, ev.Baseline.Metrics)
}

// TestHFGeneratePrompt: `reel hf generate --prompt` tokenises the prompt with the model
// directory's tokenizer (a word-level tokenizer.json over the Llama fixture's ids) and continues it
// as the reference's greedy decoding of the same ids does.
func TestHFGeneratePrompt(t *testing.T) {
	src := hfFixture(t, "llama")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	vocab := map[string]int{}
	for i := range 256 {
		vocab["w"+strconv.Itoa(i)] = i
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "w0"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": []any{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	var e struct {
		Tokens    []int `json:"tokens"`
		Generated []int `json:"generated"`
	}
	data, err := os.ReadFile(filepath.Join(src, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	words := make([]string, len(e.Tokens))
	for i, id := range e.Tokens {
		words[i] = "w" + strconv.Itoa(id)
	}
	r := reel(t, t.TempDir(), "hf", "generate", dir, "--prompt", strings.Join(words, " "), "--max-new-tokens", strconv.Itoa(len(e.Generated)))
	requireOK(t, r)
	var out struct {
		PromptIDs []int  `json:"prompt_ids"`
		Generated []int  `json:"generated"`
		Text      string `json:"text"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, e.Tokens, out.PromptIDs)
	require.Equal(t, e.Generated, out.Generated)
	require.Contains(t, out.Text, "w"+strconv.Itoa(e.Generated[0]))
}
