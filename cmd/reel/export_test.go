package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
)

// TestExportHFCLI: a LoRA fine-tune of the Hugging Face PaliGemma code path exports as a
// transformers directory that `reel eval` (as the baseline) and `reel hf run` load: evaluated
// through the merged weights it gives the run's own metrics; as a PEFT adapter it holds PEFT's
// names and shapes for every adapter. Bad requests are one error line.
func TestExportHFCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, "train", "counting-finetune-hf-tiny", "--out", "run", "--set", "train.steps=8", "--set", "train.lr=3e-3",
		"--set", "train.lora.rank=4", "--set", "train.lora.alpha=16", "--set", "train.eval_every=0", "--set", "checkpoint.every=0",
		"--set", "eval.examples=32", "--set", "eval.batch_size=32"))
	r := reel(t, dir, "export", "run", "--format", "hf", "--out", "hfdir")
	requireOK(t, r)
	require.Contains(t, r.stdout, "LoRA adapters merged")
	names, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, "hfdir", "model.safetensors"))
	require.NoError(t, err)
	require.Contains(t, names, "model.language_model.layers.0.self_attn.q_proj.weight")
	require.Equal(t, []int{64, 64}, names["model.language_model.layers.0.self_attn.q_proj.weight"].Dimensions)
	require.Equal(t, []int{64, 3, 8, 8}, names["model.vision_tower.vision_model.embeddings.patch_embedding.weight"].Dimensions)
	for n := range names {
		require.NotContains(t, n, "lora", "adapters are merged")
	}
	require.FileExists(t, filepath.Join(dir, "hfdir", "config.json"))

	// The export evaluated as the baseline reproduces the fine-tuned run (adapters merged).
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
	for k, v := range ev.Metrics {
		if strings.HasSuffix(k, "/loss") {
			require.InDelta(t, v, ev.Baseline.Metrics[k], 1e-5*v, k)
		} else {
			require.Equal(t, v, ev.Baseline.Metrics[k], k)
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img.png"), buf.Bytes(), 0o644))
	r = reel(t, dir, "hf", "run", "hfdir", "--tokens", strings.Repeat("127,", 16)+"5,6,7", "--image", "img.png")
	requireOK(t, r)
	var out struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Logits[0], 19)
	require.Len(t, out.Logits[0][0], 128)
	require.False(t, math.IsNaN(out.Logits[0][18][0]))

	// The same logits as the run's weights merged here (W + (alpha/r)·A·B in reel's [in, out]
	// layout) and written by the test's own transformers mapping.
	ck, err := checkpoints.Resolve(filepath.Join(dir, "run"), nil)
	require.NoError(t, err)
	vars, _, err := checkpoints.LoadVariables(ck)
	require.NoError(t, err)
	merged := map[string]*tensors.Tensor{}
	for p, v := range vars {
		layer, ok := strings.CutSuffix(p, "/lora/a")
		if !ok {
			_, adapted := vars[strings.TrimSuffix(p, "/weights")+"/lora/a"]
			if !strings.Contains(p, "/lora/") && !(adapted && strings.HasSuffix(p, "/weights")) {
				merged[p] = v
			}
			continue
		}
		w, a, bb := vars[layer+"/weights"], tensors.MustCopyFlatData[float32](v), tensors.MustCopyFlatData[float32](vars[layer+"/lora/b"])
		wv, d := tensors.MustCopyFlatData[float32](w), w.Shape().Dimensions
		for i := range d[0] {
			for j := range d[1] {
				s := float32(0)
				for k := range 4 {
					s += a[i*4+k] * bb[k*d[1]+j]
				}
				wv[i*d[1]+j] += 4 * s // alpha/r = 16/4
			}
		}
		merged[layer+"/weights"] = tensors.FromFlatDataAndDimensions(wv, d...)
	}
	rcp, err := recipes.Load(filepath.Join(dir, "run", "recipe.yaml"), nil)
	require.NoError(t, err)
	writeHFVars(t, merged, filepath.Join(dir, "mine"), rcp.Model.HFConfig)
	r2 := reel(t, dir, "hf", "run", "mine", "--tokens", strings.Repeat("127,", 16)+"5,6,7", "--image", "img.png")
	requireOK(t, r2)
	var mine struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r2.stdout), &mine))
	for i := range out.Logits[0] {
		for j := range out.Logits[0][i] {
			require.InDelta(t, mine.Logits[0][i][j], out.Logits[0][i][j], 1e-4, "logit [%d, %d]", i, j)
		}
	}

	r = reel(t, dir, "export", "run", "--format", "peft", "--out", "peft")
	requireOK(t, r)
	require.Contains(t, r.stderr, "not in a PEFT adapter", "LoRA leaves embeddings and norms trainable: the warning says so")
	ad, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, "peft", "adapter_model.safetensors"))
	require.NoError(t, err)
	require.Len(t, ad, 2*14) // 2 layers × 7 decoder projections (the recipe's targets), A and B each
	require.Equal(t, []int{4, 256}, ad["base_model.model.model.language_model.layers.0.mlp.down_proj.lora_A.weight"].Dimensions)
	require.Equal(t, []int{64, 4}, ad["base_model.model.model.language_model.layers.0.mlp.down_proj.lora_B.weight"].Dimensions)
	b, err := os.ReadFile(filepath.Join(dir, "peft", "adapter_config.json"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	require.Equal(t, "LORA", cfg["peft_type"])
	require.Equal(t, 16.0, cfg["lora_alpha"])

	// Bad requests.
	requireOK(t, reel(t, dir, append([]string{"train", "counting-finetune-hf-tiny", "--out", "plain", "--set", "train.steps=1", "--set", "checkpoint.every=0", "--set", "train.lora.rank=0"}, tiny...)...))
	msg := requireUserError(t, reel(t, dir, "export", "plain", "--format", "peft"), 1)
	require.Contains(t, msg, "no train.lora")
	msg = requireUserError(t, reel(t, dir, "export", "run", "--format", "onnx"), 2)
	require.Contains(t, msg, "want safetensors, hf, peft or lerobot")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644))
	msg = requireUserError(t, reel(t, dir, "export", "run", "--format", "hf", "--out", "afile"), 1)
	require.Contains(t, msg, "expected a directory")
}
