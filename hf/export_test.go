package hf

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
)

// exportFixture is the PaliGemma fixture (transformers 4.x names) as a pretrained directory with
// its input embeddings stored in BF16, a tied lm_head tensor (ignored on load) and tokenizer and
// preprocessor files to be copied.
func exportFixture(t *testing.T) string {
	src := filepath.Join("testdata", "paligemma")
	dir := t.TempDir()
	ts, _, err := checkpoints.ReadSafetensors(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	emb := tensors.MustCopyFlatData[float32](ts["language_model.model.embed_tokens.weight"])
	ts["language_model.model.embed_tokens.weight"] = tensors.FromFlatDataAndDimensions(bfloat16.FromFloat32s(emb...), 256, 32)
	ts["language_model.lm_head.weight"] = ts["language_model.model.embed_tokens.weight"]
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}))
	for _, f := range []string{"config.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "WordLevel"}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(`{"image_mean": [0.5, 0.5, 0.5]}`), 0o644))
	return dir
}

// fineTuned writes a reel checkpoint of the fixture's model as a LoRA fine-tune would leave it:
// adapters (rank 2) on two layers, changed input embeddings marked trained by their AdamW moment,
// and a variable without a transformers name.
func fineTuned(t *testing.T, src string, adapters []string) (string, map[string]*tensors.Tensor) {
	m, err := Load(testBackend(t), src)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 6))
	randT := func(dims ...int) *tensors.Tensor {
		v := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	vars := map[string]*tensors.Tensor{}
	set := func(p string, x *tensors.Tensor) {
		if v := m.Store.GetVariable(p); v != nil {
			require.NoError(t, v.SetValue(x))
		} else {
			_, err := m.Store.CreateVariable(p, x)
			require.NoError(t, err)
		}
		vars[p] = x
	}
	for _, layer := range adapters {
		w, err := m.Store.GetVariable(layer + "/weights").Value()
		require.NoError(t, err)
		d := w.Shape().Dimensions
		set(layer+"/lora/a", randT(d[0], 2))
		set(layer+"/lora/b", randT(2, d[1]))
	}
	emb := "/model/language_model/embed_tokens/weight"
	set(emb, randT(256, 32))
	set("/AdamOptimizer"+emb+"_1st_moment", randT(256, 32))
	set("/action_expert/time_mlp/weights", randT(3, 4))
	dir, err := checkpoints.Save(filepath.Join(t.TempDir(), "checkpoints"), m.Store, checkpoints.State{Step: 7}, []byte("name: ft\n"), nil, 1)
	require.NoError(t, err)
	return dir, vars
}

func f32(t *testing.T, x *tensors.Tensor) []float32 {
	v, err := Float32Values(x)
	require.NoError(t, err)
	return v
}

// ExportModel writes the pretrained checkpoint's names, shapes and dtypes; an adapted layer is the
// source's W [out, in] + (α/r)·lora_B·lora_A computed here from the PEFT export's matrices (so the
// PEFT names, layouts and the merge check each other against the source); every other tensor is
// the source's or the fine-tuned value; the tied lm_head follows the fine-tuned embeddings; the
// tokenizer and preprocessor files are copied. ExportPEFT names its tensors as PEFT saves them,
// and lists target modules PEFT resolves to exactly the adapted layers.
func TestExportModelAndPEFT(t *testing.T) {
	src := exportFixture(t)
	layers := []string{"/model/language_model/layers/0/self_attn/q_proj", "/model/vision_tower/vision_model/encoder/layers/1/mlp/fc1"}
	ckpt, vars := fineTuned(t, src, layers)
	lora := models.LoRAConfig{Rank: 2, Alpha: 3}
	s := ExportSource{Checkpoint: ckpt, Pretrained: src, LoRA: lora}
	out := filepath.Join(t.TempDir(), "hf")
	res, err := ExportModel(testBackend(t), s, out)
	require.NoError(t, err)
	require.Equal(t, int64(7), res.Step)
	require.Equal(t, 2, res.Merged)
	require.Equal(t, []string{"reel.action_expert.time_mlp.weights"}, res.ReelOnly)
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json", "preprocessor_config.json"} {
		want, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err, f)
		require.Equal(t, want, got, f)
	}

	srcT, _, err := checkpoints.ReadSafetensors(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	expT, meta, err := checkpoints.ReadSafetensors(filepath.Join(out, "model.safetensors"))
	require.NoError(t, err)
	require.Equal(t, "pt", meta["format"], "transformers loads only safetensors marked format=pt")
	require.Len(t, expT, len(srcT)+1)
	for name, st := range srcT {
		et, ok := expT[name]
		require.True(t, ok, "exported names are the source's: %s", name)
		require.True(t, st.Shape().Equal(et.Shape()), "%s: %s vs %s", name, st.Shape(), et.Shape())
	}
	require.Equal(t, dtypes.BFloat16, expT["language_model.model.embed_tokens.weight"].DType())
	require.Equal(t, tensors.MustCopyFlatData[float32](vars["/action_expert/time_mlp/weights"]), f32(t, expT["reel.action_expert.time_mlp.weights"]))

	peftDir := filepath.Join(t.TempDir(), "peft")
	pres, err := ExportPEFT(testBackend(t), s, peftDir)
	require.NoError(t, err)
	require.Equal(t, []string{"model/language_model/embed_tokens/weight"}, pres.NotInAdapter)
	adT, _, err := checkpoints.ReadSafetensors(filepath.Join(peftDir, "adapter_model.safetensors"))
	require.NoError(t, err)
	modules := []string{"language_model.model.layers.0.self_attn.q_proj", "vision_tower.vision_model.encoder.layers.1.mlp.fc1"}
	var keys []string
	for _, m := range modules {
		keys = append(keys, "base_model.model."+m+".lora_A.weight", "base_model.model."+m+".lora_B.weight")
	}
	got := make([]string, 0, len(adT))
	for k := range adT {
		got = append(got, k)
	}
	slices.Sort(got)
	require.Equal(t, keys, got)

	scale := 3.0 / 2
	changed := map[string]bool{}
	for i, m := range modules {
		a, b := adT["base_model.model."+m+".lora_A.weight"], adT["base_model.model."+m+".lora_B.weight"]
		ra := vars[layers[i]+"/lora/a"].Shape().Dimensions // [in, r]
		require.Equal(t, []int{2, ra[0]}, a.Shape().Dimensions, "lora_A [r, in]")
		require.Equal(t, []int{vars[layers[i]+"/lora/b"].Shape().Dimensions[1], 2}, b.Shape().Dimensions, "lora_B [out, r]")
		av, bv, rv := f32(t, a), f32(t, b), tensors.MustCopyFlatData[float32](vars[layers[i]+"/lora/a"])
		for k := range 2 {
			for j := range ra[0] {
				require.Equal(t, rv[j*2+k], av[k*ra[0]+j], "lora_A is Aᵀ")
			}
		}
		w, e := f32(t, srcT[m+".weight"]), f32(t, expT[m+".weight"])
		o, in := b.Shape().Dimensions[0], a.Shape().Dimensions[1]
		for oi := range o {
			for ii := range in {
				d := 0.0
				for k := range 2 {
					d += float64(bv[oi*2+k]) * float64(av[k*in+ii])
				}
				require.InDelta(t, float64(w[oi*in+ii])+scale*d, e[oi*in+ii], 1e-5, "%s[%d,%d]", m, oi, ii)
			}
		}
		changed[m+".weight"] = true
	}
	emb := f32(t, expT["language_model.model.embed_tokens.weight"])
	want := tensors.MustCopyFlatData[float32](vars["/model/language_model/embed_tokens/weight"])
	for i := range want {
		require.InDelta(t, want[i], emb[i], math.Abs(float64(want[i]))/128, "the fine-tuned embeddings, in BF16")
	}
	require.Equal(t, emb, f32(t, expT["language_model.lm_head.weight"]), "a tied lm_head is the embeddings")
	changed["language_model.model.embed_tokens.weight"], changed["language_model.lm_head.weight"] = true, true
	for name, st := range srcT {
		if !changed[name] {
			require.Equal(t, f32(t, st), f32(t, expT[name]), "%s is the source's", name)
		}
	}

	// An independent reader (Python's standard library) finds the same merge.
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		py, err := exec.Command("/usr/bin/python3", filepath.Join("testdata", "check_peft_merge.py"), src, peftDir, out).CombinedOutput()
		require.NoError(t, err, string(py))
		var chk struct {
			Modules    []string `json:"modules"`
			MaxAbsDiff float64  `json:"max_abs_diff"`
			NamesMatch bool     `json:"names_match"`
		}
		require.NoError(t, json.Unmarshal(py, &chk), string(py))
		require.Equal(t, modules, chk.Modules)
		require.Less(t, chk.MaxAbsDiff, 1e-5)
		require.True(t, chk.NamesMatch)
	} else {
		t.Log("no /usr/bin/python3: the export is not read back independently")
	}

	// The exported directory loads as the source did.
	_, err = Load(testBackend(t), out)
	require.NoError(t, err)

	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(peftDir, "adapter_config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	for k, v := range map[string]any{"peft_type": "LORA", "r": 2.0, "lora_alpha": 3.0, "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM"} {
		require.Equal(t, v, cfg[k], k)
	}
	require.Equal(t, src, cfg["base_model_name_or_path"])
	// Two layers of many named q_proj and fc1: the target is a regex PEFT full-matches.
	re, ok := cfg["target_modules"].(string)
	require.True(t, ok, "target_modules %v", cfg["target_modules"])
	rx := regexp.MustCompile(re)
	for _, m := range modules {
		require.True(t, rx.MatchString(m), m)
	}
	require.False(t, rx.MatchString("language_model.model.layers.1.self_attn.q_proj"))
	require.Equal(t, []string{"fc1", "q_proj"}, targetModules(map[string]bool{"a.0.q_proj": true, "a.1.q_proj": true, "b.fc1": true},
		[]string{"a.0.q_proj", "a.1.q_proj", "b.fc1", "b.fc2"}), "suffixes when they select exactly the adapted layers")
}

// Bad sources are one error naming what was expected.
func TestExportErrors(t *testing.T) {
	src := exportFixture(t)
	ckpt, _ := fineTuned(t, src, []string{"/model/language_model/layers/0/self_attn/q_proj"})
	b := testBackend(t)
	_, err := ExportModel(b, ExportSource{Checkpoint: ckpt}, t.TempDir())
	require.ErrorContains(t, err, "no model.pretrained")
	_, err = ExportModel(b, ExportSource{Checkpoint: ckpt, Pretrained: filepath.Join(src, "missing")}, t.TempDir())
	require.ErrorContains(t, err, "missing")
	_, err = ExportPEFT(b, ExportSource{Checkpoint: ckpt, Pretrained: src}, t.TempDir())
	require.ErrorContains(t, err, "no train.lora")
	_, err = ExportModel(b, ExportSource{Checkpoint: ckpt, Pretrained: filepath.Join("testdata", "paligemma2")}, t.TempDir())
	require.ErrorContains(t, err, "not a fine-tune of this model.pretrained")
}
