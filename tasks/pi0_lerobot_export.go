package tasks

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// LeRobotExport reports what ExportLeRobot wrote.
type LeRobotExport struct {
	Type    string // config.json's "type" (the run's model.arch)
	Step    int64
	Tensors int // in model.safetensors
	Merged  int // LoRA adapters merged into their weights
}

// ExportLeRobot writes a pi0, pi05 or smolvla checkpoint dir as a LeRobot policy directory of its type out (the layout
// pi0_lerobot.go reads, as PI0Policy.save_pretrained and the processor pipelines write it):
// config.json from the recipe and the spec; model.safetensors in float32 under LeRobot's names
// (LoRA merged; the PaliGemma's lm_head written as its tied embeddings and the expert's unused
// lm_head as zeros, so that LeRobot's strict load_state_dict finds every key); the pipelines
// policy_preprocessor.json / policy_postprocessor.json with the run's normalisation statistics in
// their state files; and the run's tokenizer files, if it had its own. ema exports the moving
// average. The directory is built beside out and swapped in only when complete.
func ExportLeRobot(dir, out string, ema bool) (*LeRobotExport, error) {
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return nil, err
	}
	layout, ok := leRobotLayouts[r.Model.Arch]
	if !ok {
		return nil, fmt.Errorf("export --format lerobot: %s is a model.arch %s run; LeRobot's layout is written for %s", dir, r.Model.Arch,
			strings.Join(slices.Sorted(maps.Keys(leRobotLayouts)), ", "))
	}
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return nil, err
	}
	all, st, err := checkpoints.LoadVariables(dir)
	if err != nil {
		return nil, err
	}
	if ema {
		if all, err = checkpoints.ApplyEMA(all); err != nil {
			return nil, err
		}
	}
	weights, merged, err := models.MergeLoRA(checkpoints.Weights(all), train.GraphOptions(r.Train).LoRA)
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", dir, err)
	}
	res := &LeRobotExport{Type: r.Model.Arch, Step: st.Step, Merged: len(merged)}

	named := map[string]*tensors.Tensor{}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		path := "/" + name
		t := weights[name]
		ln, tr := layout.name(path, t.Shape().Rank())
		if ln == "" {
			continue
		}
		v, err := reelToLeRobot(t, tr)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", path, err)
		}
		named[ln] = v
	}

	norm := models.Normalization{}
	get := func(p string) []float32 {
		if t := all["/norm/"+p]; t != nil {
			return tensors.MustCopyFlatData[float32](t)
		}
		return nil
	}
	norm.StateOffset, norm.StateScale, norm.ActionOffset, norm.ActionScale = get("state_offset"), get("state_scale"), get("action_offset"), get("action_scale")
	if len(norm.ActionOffset) != spec.ActionDim || len(norm.StateOffset) != spec.StateDim {
		return nil, fmt.Errorf("export: %s: the normalisation variables do not match policy.json's dimensions", dir)
	}
	files, err := layout.files(dir, r, spec, norm, named)
	if err != nil {
		return nil, err
	}
	res.Tensors = len(named)
	if hasTokenizer(dir) {
		tok, err := tokenizerFiles(dir)
		if err != nil {
			return nil, err
		}
		maps.Copy(files, tok)
	}

	// Build aside, swap in.
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("export: --out %s: expected a directory for --format lerobot, got a file", out)
	}
	tmp := out + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := checkpoints.WriteSafetensors(filepath.Join(tmp, leRobotModel), named, map[string]string{"format": "pt"}); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	old := out + ".old"
	if _, err := os.Stat(out); err == nil {
		if err := os.RemoveAll(old); err != nil {
			return nil, err
		}
		if err := os.Rename(out, old); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	os.RemoveAll(old)
	return res, nil
}

// leRobotLayout is how a family's run is written as a LeRobot policy directory: name maps a reel
// variable path to its LeRobot tensor name and transform ("" : not written); files completes
// named (the family's extra tensors) and returns config.json, the pipelines and their state files.
type leRobotLayout struct {
	name  func(path string, rank int) (string, string)
	files func(dir string, r *recipes.Recipe, spec policy.Spec, norm models.Normalization, named map[string]*tensors.Tensor) (map[string][]byte, error)
}

// leRobotLayouts are the families ExportLeRobot writes, by model.arch (registered by each family's file).
var leRobotLayouts = map[string]leRobotLayout{
	"pi0":  {name: leRobotPi0Name, files: leRobotPi0Complete},
	"pi05": {name: leRobotPi0Name, files: leRobotPi0Complete},
}

// leRobotPi0Complete adds pi0's (pi05's) tied and unused lm_heads (the PaliGemma's as its
// embeddings, the expert's as zeros) and writes its files.
func leRobotPi0Complete(dir string, r *recipes.Recipe, spec policy.Spec, norm models.Normalization, named map[string]*tensors.Tensor) (map[string][]byte, error) {
	embed, sp := named[leRobotEmbed], named["model.action_in_proj.weight"] // [expert, max_action_dim]
	if embed == nil || sp == nil {
		return nil, fmt.Errorf("export: %s has no PaliGemma embeddings or action_in_proj: not a %s checkpoint", dir, r.Model.Arch)
	}
	vocab, decoderDim, expertDim := embed.Shape().Dimensions[0], embed.Shape().Dimensions[1], sp.Shape().Dimensions[0]
	named[leRobotPG+"lm_head.weight"] = tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](embed), embed.Shape().Dimensions...)
	named[leRobotExpert+"lm_head.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, vocab*expertDim), vocab, expertDim)
	return leRobotPi0Files(r, spec, norm, decoderDim, expertDim)
}

// reelToLeRobot is a reel variable's value in LeRobot's layout (the inverse of leRobotToReel).
func reelToLeRobot(t *tensors.Tensor, tr string) (*tensors.Tensor, error) {
	v, err := hf.Float32Values(t)
	if err != nil {
		return nil, err
	}
	d := t.Shape().Dimensions
	switch tr {
	case hf.TransformTranspose: // [in, out] → [out, in]
		in, o := d[0], d[1]
		out := make([]float32, len(v))
		for j := range in {
			for i := range o {
				out[i*in+j] = v[j*o+i]
			}
		}
		return tensors.FromFlatDataAndDimensions(out, o, in), nil
	case hf.TransformPatch: // [(py, px, c), D] → [D, C, p, p] (RGB)
		n, dd := d[0], d[1]
		c := 3
		p := intSqrt(n / c)
		if p*p*c != n {
			return nil, fmt.Errorf("patch embedding of %d rows is not p·p·3", n)
		}
		out := make([]float32, len(v))
		for o := range dd {
			for ci := range c {
				for y := range p {
					for x := range p {
						out[((o*c+ci)*p+y)*p+x] = v[((y*p+x)*c+ci)*dd+o]
					}
				}
			}
		}
		return tensors.FromFlatDataAndDimensions(out, dd, c, p, p), nil
	}
	return tensors.FromFlatDataAndDimensions(v, d...), nil
}

func intSqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// leRobotPreSteps are the preprocessor's steps by config type, in make_pi0_pre_post_processors'
// (processor_pi0.py) and make_pi05_pre_post_processors' (processor_pi05.py) order: pi05
// normalises before it writes the state into the prompt, then tokenizes.
var leRobotPreSteps = map[string][]string{
	"pi0": {"rename_observations_processor", "to_batch_processor", "pi0_new_line_processor", "tokenizer_processor",
		"device_processor", "relative_actions_processor", "normalizer_processor"},
	"pi05": {"rename_observations_processor", "to_batch_processor", "relative_actions_processor", "normalizer_processor",
		"pi05_prepare_state_tokenizer_processor_step", "tokenizer_processor", "device_processor"},
}

// leRobotPi0Files are the JSON files and the normalisation state files of the LeRobot directory.
func leRobotPi0Files(r *recipes.Recipe, spec policy.Spec, norm models.Normalization, decoderDim, expertDim int) (map[string][]byte, error) {
	inputs, outputs, normMap, err := leRobotFeatures(r, spec)
	if err != nil {
		return nil, err
	}
	variant := func(d int) string { // LeRobot sizes by variant; reel reads the sizes from the tensors
		if d == 1024 {
			return "gemma_300m"
		}
		return "gemma_2b"
	}
	s := r.Model.ImageSize
	cfg := map[string]any{
		"type": r.Model.Arch, "n_obs_steps": 1, "input_features": inputs, "output_features": outputs, "device": "cpu",
		"use_amp": false, "push_to_hub": false, "repo_id": nil, "private": nil, "tags": nil, "license": nil,
		"pretrained_path": nil, "paligemma_variant": variant(decoderDim), "action_expert_variant": variant(expertDim),
		"dtype": "float32", "chunk_size": spec.Horizon, "n_action_steps": spec.Execute, "max_state_dim": models.Pi0PadDim,
		"max_action_dim": models.Pi0PadDim, "num_inference_steps": r.Policy.EulerSteps, "time_sampling_beta_alpha": 1.5,
		"time_sampling_beta_beta": 1.0, "time_sampling_scale": 0.999, "time_sampling_offset": 0.001, "min_period": 0.004,
		"max_period": 4.0, "use_relative_actions": false, "relative_exclude_joints": []string{"gripper"},
		"action_feature_names": nil, "rtc_config": nil, "image_resolution": []int{s, s}, "empty_cameras": 0,
		"normalization_mapping": normMap, "gradient_checkpointing": false, "compile_model": false,
		"compile_mode": "max-autotune", "freeze_vision_encoder": false, "train_expert_only": false,
		"optimizer_lr": 2.5e-05, "optimizer_betas": []float64{0.9, 0.95}, "optimizer_eps": 1e-08,
		"optimizer_weight_decay": 0.01, "optimizer_grad_clip_norm": 1.0, "scheduler_warmup_steps": 1000,
		"scheduler_decay_steps": 30000, "scheduler_decay_lr": 2.5e-06, "tokenizer_max_length": spec.MaxTextLen,
	}
	if r.Model.Arch == "pi05" { // PI05Config's own keys
		cfg["use_visual_memory"], cfg["use_proprioceptive_memory"] = false, false
		cfg["memory_frames"], cfg["memory_stride"], cfg["memory_temporal_attention_every"] = 6, 30, 4
		cfg["rtc_training_max_delay"] = 0
	}
	feats := maps.Clone(inputs)
	maps.Copy(feats, outputs)
	const postState = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
	pre := leRobotPipeline{Name: "policy_preprocessor"}
	var preState string
	for i, name := range leRobotPreSteps[r.Model.Arch] {
		s := leRobotPipeStep{RegistryName: name, Config: map[string]any{}}
		switch name {
		case "rename_observations_processor":
			s.Config["rename_map"] = map[string]any{}
		case "tokenizer_processor":
			s.Config = map[string]any{"max_length": spec.MaxTextLen, "task_key": "task", "padding_side": "right",
				"padding": "max_length", "truncation": true, "tokenizer_name": "google/paligemma-3b-pt-224"}
		case "device_processor":
			s.Config = map[string]any{"device": "cpu", "float_dtype": nil}
		case "relative_actions_processor":
			s.Config = map[string]any{"enabled": false, "exclude_joints": []string{"gripper"}, "action_names": nil}
		case "pi05_prepare_state_tokenizer_processor_step":
			s.Config = map[string]any{"max_state_dim": models.Pi0PadDim, "include_state_in_prompt": true}
		case "normalizer_processor":
			s.Config = map[string]any{"eps": leRobotEps, "features": feats, "norm_map": normMap}
			preState = fmt.Sprintf("policy_preprocessor_step_%d_normalizer_processor.safetensors", i)
			s.StateFile = preState
		}
		pre.Steps = append(pre.Steps, s)
	}
	post := leRobotPipeline{Name: "policy_postprocessor", Steps: []leRobotPipeStep{
		{RegistryName: "unnormalizer_processor", Config: map[string]any{"eps": leRobotEps, "features": outputs, "norm_map": normMap}, StateFile: postState},
		{RegistryName: "absolute_actions_processor", Config: map[string]any{"enabled": false}},
		{RegistryName: "device_processor", Config: map[string]any{"device": "cpu", "float_dtype": nil}},
	}}
	return leRobotDirFiles(spec, norm, cfg, pre, post, preState, postState)
}

// leRobotFeatures are a run's input and output features (PolicyFeature) and normalisation mapping.
func leRobotFeatures(r *recipes.Recipe, spec policy.Spec) (inputs, outputs map[string]leRobotFeature, normMap map[string]string, err error) {
	modes := map[string]string{policy.NormMeanStd: "MEAN_STD", policy.NormMinMax: "MIN_MAX", policy.NormQuantiles: "QUANTILES"}
	mode := modes[spec.Normalization]
	if mode == "" {
		return nil, nil, nil, fmt.Errorf("export: policy.json normalization %q has no LeRobot mode", spec.Normalization)
	}
	inputs = map[string]leRobotFeature{}
	for _, c := range spec.Cameras {
		inputs["observation.images."+c.Name] = leRobotFeature{Type: "VISUAL", Shape: []int{3, r.Model.ImageSize, r.Model.ImageSize}}
	}
	if spec.StateDim > 0 {
		inputs["observation.state"] = leRobotFeature{Type: "STATE", Shape: []int{spec.StateDim}}
	}
	outputs = map[string]leRobotFeature{"action": {Type: "ACTION", Shape: []int{spec.ActionDim}}}
	return inputs, outputs, map[string]string{"VISUAL": "IDENTITY", "STATE": mode, "ACTION": mode}, nil
}

// leRobotDirFiles are config.json, the two pipelines and their statistics (norm in the mode of
// spec) in the state files the pipelines name.
func leRobotDirFiles(spec policy.Spec, norm models.Normalization, cfg any, pre, post leRobotPipeline, preState, postState string) (map[string][]byte, error) {
	// reel's affine map back to the mode's statistics (the inverse of leRobotPi0.normalization).
	names := leRobotStatNames[spec.Normalization]
	stats := func(key string, off, scale []float32, into map[string]*tensors.Tensor) {
		if len(off) == 0 {
			return
		}
		lo, hi := make([]float32, len(off)), make([]float32, len(off))
		for i := range off {
			if spec.Normalization == policy.NormMeanStd {
				lo[i], hi[i] = off[i], scale[i]
			} else {
				lo[i], hi[i] = off[i]-scale[i], off[i]+scale[i]
			}
		}
		into[key+"."+names[0]] = tensors.FromFlatDataAndDimensions(lo, len(lo))
		into[key+"."+names[1]] = tensors.FromFlatDataAndDimensions(hi, len(hi))
	}
	preStats, postStats := map[string]*tensors.Tensor{}, map[string]*tensors.Tensor{}
	stats("observation.state", norm.StateOffset, norm.StateScale, preStats)
	stats("action", norm.ActionOffset, norm.ActionScale, preStats)
	stats("action", norm.ActionOffset, norm.ActionScale, postStats)
	files := map[string][]byte{}
	for name, v := range map[string]any{"config.json": cfg, leRobotPre: pre, leRobotPost: post} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	for name, st := range map[string]map[string]*tensors.Tensor{preState: preStats, postState: postStats} {
		b, err := safetensorsBytes(st)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}

// safetensorsBytes is checkpoints.WriteSafetensors' file as bytes.
func safetensorsBytes(named map[string]*tensors.Tensor) ([]byte, error) {
	f, err := os.CreateTemp("", "reel-stats-*.safetensors")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	if err := checkpoints.WriteSafetensors(path, named, nil); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
