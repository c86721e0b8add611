package hf

// Exporting a fine-tuned reel checkpoint back to the Hugging Face formats it came from: a
// transformers model directory (ExportModel) and a PEFT LoRA adapter (ExportPEFT).

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/models"
)

// ExportSource is a fine-tuned checkpoint and what its recipe says about its model.
type ExportSource struct {
	Checkpoint string            // a reel checkpoint directory
	Pretrained string            // model.pretrained: the Hugging Face directory fine-tuned, or "random"
	ConfigJSON string            // model.hf_config (with Pretrained "random")
	LoRA       models.LoRAConfig // train.lora
	EMA        bool              // export the moving average of the weights
}

// Exported summarises an export.
type Exported struct {
	Step     int64
	Tensors  int      // tensors written
	Merged   int      // LoRA adapters merged (ExportModel) or written (ExportPEFT)
	ReelOnly []string // variables without a transformers name, written as "reel." + their path
	Copied   []string // files copied from the pretrained directory
	// NotInAdapter are trained variables outside the adapters (ExportPEFT): a PEFT adapter
	// cannot carry them, so applying it to the base does not reproduce the run.
	NotInAdapter []string
}

// Warning says what an export leaves out of reproducing the run, "" when nothing: a PEFT
// adapter's trained variables outside the adapters (NotInAdapter).
func (e *Exported) Warning() string {
	if len(e.NotInAdapter) == 0 {
		return ""
	}
	return fmt.Sprintf("%d trained variables outside the adapters (%s) are not in a PEFT adapter: applied to the base, it does not reproduce the run (freeze them with train.freeze, or export --format hf)",
		len(e.NotInAdapter), firstNames(e.NotInAdapter, 3))
}

// Note names the variables written under reel.* names (ReelOnly), "" when none.
func (e *Exported) Note() string {
	if len(e.ReelOnly) == 0 {
		return ""
	}
	return fmt.Sprintf("%d variables have no transformers name and are written as reel.* (%s)", len(e.ReelOnly), firstNames(e.ReelOnly, 3))
}

// firstNames is "a, b, c and N more".
func firstNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// ReelName is the tensor name of a reel variable that has no transformers name: "reel." and its
// scope path with "/" → "." ("/action_expert/time_mlp/weights" → reel.action_expert.time_mlp.weights).
func ReelName(path string) string {
	return "reel." + strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", ".")
}

// exportInput is what both exports read: the architecture, the source directory's mapping (nil
// for a random base), the checkpoint's weights (keyed by path without the leading "/") and which
// of them the optimizer trained.
type exportInput struct {
	cfg     *Config
	src     *Model // Inspect of the pretrained directory; nil for "random"
	vars    []Variable
	weights map[string]*tensors.Tensor
	trained map[string]bool
	step    int64
}

func readExportInput(backend compute.Backend, s ExportSource) (*exportInput, error) {
	in := &exportInput{}
	var err error
	if s.Pretrained == "" {
		return nil, fmt.Errorf("export: %s: the recipe has no model.pretrained: only a fine-tune of a Hugging Face model exports to its formats (use --format safetensors)", s.Checkpoint)
	}
	if s.Pretrained == "random" {
		var raw map[string]any
		if err := json.Unmarshal([]byte(s.ConfigJSON), &raw); err != nil {
			return nil, fmt.Errorf("export: %s: model.hf_config: invalid JSON: %w", s.Checkpoint, err)
		}
		if in.cfg, err = ParseConfig(raw); err != nil {
			return nil, fmt.Errorf("export: %s: model.hf_config: %w", s.Checkpoint, err)
		}
	} else {
		if in.src, err = Inspect(backend, s.Pretrained); err != nil {
			return nil, fmt.Errorf("export: model.pretrained: %w", err)
		}
		in.cfg = in.src.Config
	}
	if in.vars, err = Variables(backend, in.cfg); err != nil {
		return nil, err
	}
	all, st, err := checkpoints.LoadVariables(s.Checkpoint)
	if err != nil {
		return nil, err
	}
	in.step = st.Step
	if s.EMA {
		if all, err = checkpoints.ApplyEMA(all); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Checkpoint, err)
		}
	}
	in.weights = checkpoints.Weights(all)
	in.trained = map[string]bool{}
	for name := range in.weights {
		if _, ok := all["/AdamOptimizer/"+name+"_1st_moment"]; ok { // AdamW keeps moments only for trained variables
			in.trained[name] = true
		}
	}
	for _, v := range in.vars {
		name := strings.TrimPrefix(v.Path, "/")
		w, ok := in.weights[name]
		if !ok {
			return nil, fmt.Errorf("export: checkpoint %s has no variable %s, which %s needs: it is not a fine-tune of this model.pretrained", s.Checkpoint, v.Path, in.cfg.Arch)
		}
		if !slices.Equal(w.Shape().Dimensions, v.Shape) {
			return nil, fmt.Errorf("export: checkpoint %s: variable %s has shape %v, %s needs %v: it is not a fine-tune of this model.pretrained", s.Checkpoint, v.Path, w.Shape().Dimensions, in.cfg.Arch, v.Shape)
		}
	}
	return in, nil
}

// sourceParams indexes the pretrained directory's mapping by reel variable path.
func (in *exportInput) sourceParams() map[string]Param {
	out := map[string]Param{}
	if in.src != nil {
		for _, p := range in.src.Params {
			out[p.Var] = p
		}
	}
	return out
}

// ExportModel writes the checkpoint of s as a Hugging Face model directory out: config.json,
// model.safetensors with the pretrained checkpoint's tensor names (its 4.x or 5.x layout),
// shapes and dtypes, the LoRA adapters merged into their layers (models.MergeLoRA), the tied
// lm_head and unused tensors of the source (a vision tower's pooling head) copied, and the
// source's other files (generation config, tokenizer, preprocessor configuration) copied. A
// variable without a transformers name is written as ReelName. With a random base the names are
// transformers 5.x's and the tensors F32, and only config.json is written beside them.
func ExportModel(backend compute.Backend, s ExportSource, out string) (*Exported, error) {
	in, err := readExportInput(backend, s)
	if err != nil {
		return nil, err
	}
	res := &Exported{Step: in.step}
	weights, merged, err := models.MergeLoRA(in.weights, s.LoRA)
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", s.Checkpoint, err)
	}
	res.Merged = len(merged)
	params := in.sourceParams()
	named := map[string]*tensors.Tensor{}
	archVar := map[string]bool{}
	var embed *tensors.Tensor // the exported input embeddings (a tied lm_head is their copy)
	for _, v := range in.vars {
		archVar[v.Path] = true
		name, tr := HFName(v.Path, len(v.Shape))
		p, ok := params[v.Path]
		if !ok {
			p = Param{Var: v.Path, Name: name, Source: name, DType: "F32", Transform: tr, Shape: v.Shape, HFShape: hfShape(v.Shape, tr, in.cfg)}
		}
		t, err := toHF(weights[strings.TrimPrefix(v.Path, "/")], p, in.cfg)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %s: %w", s.Checkpoint, v.Path, err)
		}
		named[p.Source] = t
		if p.Name == "model.language_model.embed_tokens.weight" || p.Name == "model.embed_tokens.weight" {
			embed = t
		}
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		if !archVar["/"+name] {
			named[ReelName(name)] = weights[name]
			res.ReelOnly = append(res.ReelOnly, ReelName(name))
		}
	}
	if in.src != nil && len(in.src.Ignored) > 0 {
		srcW, err := ReadWeights(s.Pretrained)
		if err != nil {
			return nil, fmt.Errorf("export: model.pretrained: %w", err)
		}
		for canon, source := range srcW.Source {
			if !slices.Contains(in.src.Ignored, source) {
				continue
			}
			t := srcW.Tensors[canon]
			if canon == "lm_head.weight" && embed != nil && slices.Equal(embed.Shape().Dimensions, t.Shape().Dimensions) {
				t = embed // tied: the fine-tuned embeddings
			}
			named[source] = t
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("export: --out %s: %w", out, err)
	}
	if err := checkpoints.WriteSafetensors(filepath.Join(out, "model.safetensors"), named, map[string]string{"format": "pt"}); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res.Tensors = len(named)
	if err := os.Remove(filepath.Join(out, "model.safetensors.index.json")); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("export: %w", err)
	}
	if in.src == nil {
		return res, writeJSONFile(filepath.Join(out, "config.json"), []byte(s.ConfigJSON))
	}
	res.Copied, err = copyModelFiles(s.Pretrained, out)
	return res, err
}

// toHF turns a reel variable's f32 value into the checkpoint tensor of p: the inverse of
// convert (transposed back, the patch embedding permuted back) in p's stored dtype.
func toHF(t *tensors.Tensor, p Param, cfg *Config) (*tensors.Tensor, error) {
	if t.DType() != dtypes.Float32 {
		return nil, fmt.Errorf("dtype %s, expected float32", t.DType())
	}
	v := tensors.MustCopyFlatData[float32](t)
	s := t.Shape().Dimensions
	dims := s
	switch p.Transform {
	case TransformTranspose: // [in, out] → [out, in]
		in, o := s[0], s[1]
		y := make([]float32, len(v))
		for i := range in {
			for j := range o {
				y[j*in+i] = v[i*o+j]
			}
		}
		v, dims = y, []int{o, in}
	case TransformPatch: // [(py, px, c), D] → [D, C, p, q]
		vt := cfg.VisionTower()
		d, c, ph, pw := s[1], vt.Channels, vt.PatchSize, vt.PatchSize
		y := make([]float32, len(v))
		for o := range d {
			for ci := range c {
				for py := range ph {
					for px := range pw {
						y[((o*c+ci)*ph+py)*pw+px] = v[((py*pw+px)*c+ci)*d+o]
					}
				}
			}
		}
		v, dims = y, []int{d, c, ph, pw}
	}
	if len(p.HFShape) > 0 && !slices.Equal(dims, p.HFShape) {
		return nil, fmt.Errorf("exports as %v, the pretrained checkpoint's %s has %v", dims, p.Source, p.HFShape)
	}
	switch p.DType {
	case "BF16":
		return tensors.FromFlatDataAndDimensions(bfloat16.FromFloat32s(v...), dims...), nil
	case "F16":
		h := make([]float16.Float16, len(v))
		for i, x := range v {
			h[i] = float16.FromFloat32(x)
		}
		return tensors.FromFlatDataAndDimensions(h, dims...), nil
	}
	return tensors.FromFlatDataAndDimensions(v, dims...), nil
}

// copyModelFiles copies the files of a model directory that are not its weights (config.json,
// generation_config.json, tokenizer and preprocessor files, chat templates) into out.
func copyModelFiles(src, out string) ([]string, error) {
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("export: model.pretrained: %w", err)
	}
	var copied []string
	for _, e := range entries {
		name := e.Name()
		// A Hub cache snapshot's files are symlinks into its blobs: stat follows them.
		if st, err := os.Stat(filepath.Join(src, name)); err != nil || !st.Mode().IsRegular() || name == "model.safetensors.index.json" || strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".json", ".txt", ".model", ".jinja", ".tiktoken":
		default:
			continue
		}
		b, err := safeio.ReadFile(filepath.Join(src, name), safeio.TokenizerLimit)
		if err != nil {
			return nil, fmt.Errorf("export: model.pretrained: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(out, name), b); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		copied = append(copied, name)
	}
	return copied, nil
}

// writeJSONFile writes raw JSON indented to p.
func writeJSONFile(p string, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("export: %s: %w", p, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'))
}

// PEFTConfig is the adapter_config.json of a PEFT LoRA adapter (huggingface/peft
// src/peft/tuners/lora/config.py LoraConfig, the fields PeftConfig.from_pretrained reads).
type PEFTConfig struct {
	PEFTType            string         `json:"peft_type"`
	TaskType            string         `json:"task_type"`
	BaseModelNameOrPath string         `json:"base_model_name_or_path"`
	InferenceMode       bool           `json:"inference_mode"`
	R                   int            `json:"r"`
	LoRAAlpha           float64        `json:"lora_alpha"`
	LoRADropout         float64        `json:"lora_dropout"`
	TargetModules       any            `json:"target_modules"` // a list of module-name suffixes, or a regex string PEFT full-matches
	Bias                string         `json:"bias"`
	FanInFanOut         bool           `json:"fan_in_fan_out"`
	UseRSLoRA           bool           `json:"use_rslora"`
	UseDoRA             bool           `json:"use_dora"`
	InitLoRAWeights     bool           `json:"init_lora_weights"`
	ModulesToSave       []string       `json:"modules_to_save"`
	RankPattern         map[string]int `json:"rank_pattern"`
	AlphaPattern        map[string]int `json:"alpha_pattern"`
	LayersToTransform   []int          `json:"layers_to_transform"`
	LayersPattern       []string       `json:"layers_pattern"`
	RevisionOfBaseModel *string        `json:"revision"`
}

// PEFTKey is PEFT's saved name of a LoRA matrix of the module with transformers name module
// ("lora_A" or "lora_B"): huggingface/peft src/peft/utils/save_and_load.py
// get_peft_model_state_dict drops the adapter name from the PeftModel's parameter
// base_model.model.<module>.lora_A.<adapter>.weight.
func PEFTKey(module, matrix string) string {
	return "base_model.model." + module + "." + matrix + ".weight"
}

// ExportPEFT writes the LoRA adapters of the checkpoint of s as a PEFT adapter directory out:
// adapter_config.json and adapter_model.safetensors with lora_A.weight [r, in] = Aᵀ and
// lora_B.weight [out, r] = Bᵀ (F32) for every adapted module, under the pretrained checkpoint's
// module names (its 4.x or 5.x layout). target_modules lists the adapted modules' last names
// when those select exactly the adapted Linear layers, else it is a regex of their full names.
// Trained variables outside the adapters are reported in NotInAdapter.
func ExportPEFT(backend compute.Backend, s ExportSource, out string) (*Exported, error) {
	in, err := readExportInput(backend, s)
	if err != nil {
		return nil, err
	}
	if s.LoRA.Rank == 0 {
		return nil, fmt.Errorf("export: %s: the recipe has no train.lora (rank 0): there is no adapter to export (use --format hf)", s.Checkpoint)
	}
	res := &Exported{Step: in.step}
	layout := ""
	to4 := Layout5To4
	if in.src != nil {
		layout = in.src.Layout
		if in.src.Config.QwenVL != nil {
			to4 = qwenLayout5To4
		}
	}
	moduleName := func(layerPath string) (string, string) {
		name, tr := HFName("/"+layerPath+"/weights", 2)
		switch layout {
		case Layout4:
			name = to4(name)
		case Layout5Flat:
			name = Layout5ToFlat(name)
		}
		return strings.TrimSuffix(name, ".weight"), tr
	}
	named := map[string]*tensors.Tensor{}
	adapted := map[string]bool{}
	inAdapter := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(in.weights)) {
		bp, wp, ok := models.LoRAPaths(p)
		if !ok {
			continue
		}
		layer := strings.TrimSuffix(wp, "/weights")
		module, tr := moduleName(layer)
		if tr != TransformTranspose {
			return nil, fmt.Errorf("export: %s: the adapter on %s is not on an nn.Linear in transformers: PEFT export covers Linear layers", s.Checkpoint, layer)
		}
		a, b := in.weights[p], in.weights[bp]
		if b == nil {
			return nil, fmt.Errorf("export: %s: adapter %s has no B (%s)", s.Checkpoint, p, bp)
		}
		at, err := toHF(a, Param{Transform: TransformTranspose, DType: "F32"}, in.cfg)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %s: %w", s.Checkpoint, p, err)
		}
		bt, err := toHF(b, Param{Transform: TransformTranspose, DType: "F32"}, in.cfg)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %s: %w", s.Checkpoint, bp, err)
		}
		named[PEFTKey(module, "lora_A")], named[PEFTKey(module, "lora_B")] = at, bt
		adapted[module] = true
		inAdapter[p], inAdapter[bp] = true, true
	}
	if len(adapted) == 0 {
		return nil, fmt.Errorf("export: %s: the checkpoint holds no LoRA adapter (no …/lora/a variables)", s.Checkpoint)
	}
	res.Merged = len(adapted)
	for _, name := range slices.Sorted(maps.Keys(in.trained)) {
		if !inAdapter[name] {
			res.NotInAdapter = append(res.NotInAdapter, name)
		}
	}
	// Every Linear of the architecture, by transformers module name: what a list of suffixes selects.
	var linears []string
	for _, v := range in.vars {
		if layer, ok := strings.CutSuffix(strings.TrimPrefix(v.Path, "/"), "/weights"); ok && len(v.Shape) == 2 {
			if m, tr := moduleName(layer); tr == TransformTranspose {
				linears = append(linears, m)
			}
		}
	}
	alpha := s.LoRA.Alpha
	if alpha == 0 {
		alpha = 2 * float64(s.LoRA.Rank)
	}
	base := s.Pretrained
	if base != "random" {
		if abs, err := filepath.Abs(base); err == nil {
			base = abs
		}
	}
	cfg := PEFTConfig{PEFTType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: base, InferenceMode: true,
		R: s.LoRA.Rank, LoRAAlpha: alpha, LoRADropout: s.LoRA.Dropout, TargetModules: targetModules(adapted, linears),
		Bias: "none", InitLoRAWeights: true, RankPattern: map[string]int{}, AlphaPattern: map[string]int{}}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("export: --out %s: %w", out, err)
	}
	if err := checkpoints.WriteSafetensors(filepath.Join(out, "adapter_model.safetensors"), named, map[string]string{"format": "pt"}); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res.Tensors = len(named)
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return res, atomicfile.WriteFile(filepath.Join(out, "adapter_config.json"), append(b, '\n'))
}

// targetModules is PEFT's target_modules for the adapted modules among linears: the sorted list
// of their last names when PEFT's suffix match of that list selects exactly the adapted ones
// (huggingface/peft src/peft/tuners/tuners_utils.py check_target_module_exists: key == target or
// key ends with "." + target), else a regex string PEFT full-matches against module names.
func targetModules(adapted map[string]bool, linears []string) any {
	last := map[string]bool{}
	for m := range adapted {
		last[m[strings.LastIndex(m, ".")+1:]] = true
	}
	exact := true
	for _, m := range linears {
		if last[m[strings.LastIndex(m, ".")+1:]] != adapted[m] {
			exact = false
			break
		}
	}
	if exact {
		return slices.Sorted(maps.Keys(last))
	}
	names := slices.Sorted(maps.Keys(adapted))
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(names, "|") + ")$"
}
