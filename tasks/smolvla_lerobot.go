package tasks

// LeRobot's smolvla policy directory (huggingface/lerobot src/lerobot/policies/smolvla/:
// SmolVLAPolicy's save_pretrained and make_smolvla_pre_post_processors), read by the smolvla family:
//
//   config.json                 SmolVLAConfig ("type": "smolvla", input/output features, chunk_size,
//                               n_action_steps, num_steps, resize_imgs_with_padding, num_vlm_layers,
//                               self_attn_every_n_layers, expert_width_multiplier, attention_mode, …)
//   model.safetensors           VLAFlowMatching's state dict: model.vlm_with_expert.vlm.model.
//                               {vision_model, connector, text_model (its first num_vlm_layers)}.…,
//                               model.vlm_with_expert.vlm.lm_head.weight, model.vlm_with_expert.
//                               lm_expert.{layers.<i>.…, norm.weight}, model.{state_proj,
//                               action_in_proj, action_time_mlp_in, action_time_mlp_out,
//                               action_out_proj}.{weight,bias}
//   policy_{pre,post}processor.json and their normalizer/unnormalizer state files, as pi0's.
//
// SmolVLAConfig names the backbone (vlm_model_name, SmolVLM2-500M-Video-Instruct) rather than
// sizing it, so reel reads the sizes from the tensors' shapes with SmolVLM2's conventions: heads
// of width 64 in the vision tower and the text model, LayerNorm eps 1e-6 and gelu-tanh in the
// tower, RMSNorm eps 1e-5 and SiLU in the text model. The features, chunk and normalisation
// statistics are PreTrainedConfig's and the processors', read as for pi0 (pi0_lerobot.go).

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// LeRobot's smolvla names and SmolVLM2's conventions.
const (
	smolVLAVLM       = "model.vlm_with_expert.vlm."
	smolVLAExpert    = "model.vlm_with_expert.lm_expert."
	smolVLAHeadDim   = 64 // SmolVLM2: vision 768/12, text 960/15
	smolVLATextEps   = 1e-5
	smolVLAVisionEps = 1e-6
)

// leRobotSmolVLAConfig is the part of LeRobot's SmolVLAConfig (configuration_smolvla.py) reel reads.
type leRobotSmolVLAConfig struct {
	Type                  string                    `json:"type"`
	InputFeatures         map[string]leRobotFeature `json:"input_features"`
	OutputFeatures        map[string]leRobotFeature `json:"output_features"`
	ChunkSize             int                       `json:"chunk_size"`
	NActionSteps          int                       `json:"n_action_steps"`
	NormalizationMapping  map[string]string         `json:"normalization_mapping"`
	MaxStateDim           int                       `json:"max_state_dim"`
	MaxActionDim          int                       `json:"max_action_dim"`
	Resize                []int                     `json:"resize_imgs_with_padding"`
	EmptyCameras          int                       `json:"empty_cameras"`
	AdaptToPiAloha        bool                      `json:"adapt_to_pi_aloha"`
	TokenizerMaxLength    int                       `json:"tokenizer_max_length"`
	NumSteps              int                       `json:"num_steps"`
	AddImageSpecialTokens bool                      `json:"add_image_special_tokens"`
	AttentionMode         string                    `json:"attention_mode"`
	PrefixLength          int                       `json:"prefix_length"`
	NumExpertLayers       int                       `json:"num_expert_layers"`
	NumVLMLayers          int                       `json:"num_vlm_layers"`
	SelfAttnEveryNLayers  int                       `json:"self_attn_every_n_layers"`
	ExpertWidthMultiplier float64                   `json:"expert_width_multiplier"`
	MinPeriod             float64                   `json:"min_period"`
	MaxPeriod             float64                   `json:"max_period"`
	VLMModelName          string                    `json:"vlm_model_name"`
	FreezeVisionEncoder   bool                      `json:"freeze_vision_encoder"`
	TrainExpertOnly       bool                      `json:"train_expert_only"`
}

// isLeRobotSmolVLA reports whether dir is a LeRobot smolvla policy directory: a config.json of
// "type" "smolvla" beside a model.safetensors holding LeRobot's module names.
func isLeRobotSmolVLA(dir string) bool {
	if dir == "" || dir == "random" {
		return false
	}
	b, err := safeio.ReadFile(filepath.Join(dir, "config.json"), safeio.JSONLimit)
	if err != nil {
		return false
	}
	var c struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &c) != nil || c.Type != "smolvla" {
		return false
	}
	names, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, leRobotModel))
	if err != nil {
		return false
	}
	for n := range names {
		if strings.HasPrefix(n, "model.vlm_with_expert.") {
			return true
		}
	}
	return false
}

// leRobotSmolVLA is an opened LeRobot smolvla directory.
type leRobotSmolVLA struct {
	dir    string
	cfg    leRobotSmolVLAConfig
	common *leRobotPi0 // PreTrainedConfig's features, chunk and normalisation, and the processors' statistics
	shapes map[string]shapes.Shape
	vlm    *models.Idefics3Config // the SmolVLM2, its text model already cut
	expert models.DecoderConfig
}

// openLeRobotSmolVLA reads dir's config.json and model.safetensors header and sizes the networks.
func openLeRobotSmolVLA(dir string) (*leRobotSmolVLA, error) {
	l := &leRobotSmolVLA{dir: dir}
	b, err := safeio.ReadFile(filepath.Join(dir, "config.json"), safeio.JSONLimit)
	if err != nil {
		return nil, err
	}
	// LeRobot's defaults (SmolVLAConfig) for keys a config.json omits.
	l.cfg = leRobotSmolVLAConfig{ChunkSize: 50, NActionSteps: 50, MaxStateDim: 32, MaxActionDim: 32, Resize: []int{512, 512},
		TokenizerMaxLength: 48, NumSteps: 10, AttentionMode: "cross_attn", PrefixLength: -1, NumExpertLayers: -1,
		NumVLMLayers: 16, SelfAttnEveryNLayers: 2, ExpertWidthMultiplier: 0.75, MinPeriod: 4e-3, MaxPeriod: 4,
		FreezeVisionEncoder: true, TrainExpertOnly: true,
		NormalizationMapping: map[string]string{"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}}
	if err := json.Unmarshal(b, &l.cfg); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	if err := l.cfg.check(); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	c := l.cfg
	l.common = &leRobotPi0{dir: dir, cfg: leRobotPi0Config{Type: c.Type, InputFeatures: c.InputFeatures, OutputFeatures: c.OutputFeatures,
		ChunkSize: c.ChunkSize, NActionSteps: c.NActionSteps, ImageResolution: c.Resize, NormalizationMapping: c.NormalizationMapping}}
	names, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, leRobotModel))
	if err != nil {
		return nil, err
	}
	l.shapes = names
	if err := l.size(); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", dir, leRobotModel, err)
	}
	return l, nil
}

// check refuses the SmolVLAConfig settings reel's smolvla does not implement, naming the key.
func (c leRobotSmolVLAConfig) check() error {
	switch {
	case c.Type != "smolvla":
		return fmt.Errorf("type: %q, want \"smolvla\"", c.Type)
	case c.MaxStateDim != models.SmolVLAPadDim || c.MaxActionDim != models.SmolVLAPadDim:
		return fmt.Errorf("max_state_dim/max_action_dim: %d/%d, reel's smolvla pads to %d", c.MaxStateDim, c.MaxActionDim, models.SmolVLAPadDim)
	case c.MinPeriod != 4e-3 || c.MaxPeriod != 4:
		return fmt.Errorf("min_period/max_period: %g/%g, reel's smolvla uses 0.004/4", c.MinPeriod, c.MaxPeriod)
	case c.EmptyCameras != 0:
		return fmt.Errorf("empty_cameras: %d, reel's smolvla has no masked cameras", c.EmptyCameras)
	case c.AdaptToPiAloha:
		return fmt.Errorf("adapt_to_pi_aloha: true is not implemented by reel's smolvla")
	case c.AddImageSpecialTokens:
		return fmt.Errorf("add_image_special_tokens: true is not implemented by reel's smolvla (smolvla_base has false)")
	case c.PrefixLength > 0:
		return fmt.Errorf("prefix_length: %d, reel's smolvla does not pad the prefix (-1)", c.PrefixLength)
	case c.AttentionMode != "cross_attn" && c.AttentionMode != "self_attn":
		return fmt.Errorf("attention_mode: %q, want \"cross_attn\" or \"self_attn\"", c.AttentionMode)
	case len(c.Resize) != 2 || c.Resize[0] != c.Resize[1] || c.Resize[0] < 1:
		return fmt.Errorf("resize_imgs_with_padding: %v, want a square [S, S]", c.Resize)
	case c.ChunkSize < 1 || c.NActionSteps < 1 || c.NActionSteps > c.ChunkSize || c.NumSteps < 1:
		return fmt.Errorf("chunk_size %d, n_action_steps %d, num_steps %d: want 1 ≤ n_action_steps ≤ chunk_size, steps ≥ 1", c.ChunkSize, c.NActionSteps, c.NumSteps)
	}
	return nil
}

// size reads the SmolVLM2's and the expert's sizes from the tensors' shapes.
func (l *leRobotSmolVLA) size() error {
	var err error
	get := func(name string, axis, rank int) int {
		if err != nil {
			return 0
		}
		s, ok := l.shapes[name]
		if !ok {
			err = fmt.Errorf("no tensor %s (is this a LeRobot smolvla policy?)", name)
			return 0
		}
		if s.Rank() != rank {
			err = fmt.Errorf("tensor %s has shape %v, want rank %d", name, s.Dimensions, rank)
			return 0
		}
		return s.Dimensions[axis]
	}
	count := func(prefix string) int {
		n := 0
		for ; ; n++ {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(l.shapes)), func(k string) bool { return strings.HasPrefix(k, prefix+strconv.Itoa(n)+".") }) {
				return n
			}
		}
	}
	vt := smolVLAVLM + "model.vision_model."
	tm := smolVLAVLM + "model.text_model."
	vh := get(vt+"embeddings.patch_embedding.weight", 0, 4)
	patch := get(vt+"embeddings.patch_embedding.weight", 2, 4)
	npos := get(vt+"embeddings.position_embedding.weight", 0, 2)
	vmlp := get(vt+"encoder.layers.0.mlp.fc1.weight", 0, 2)
	proj := get(smolVLAVLM+"model.connector.modality_projection.proj.weight", 1, 2)
	vocab := get(tm+"embed_tokens.weight", 0, 2)
	d := get(tm+"embed_tokens.weight", 1, 2)
	q := get(tm+"layers.0.self_attn.q_proj.weight", 0, 2)
	k := get(tm+"layers.0.self_attn.k_proj.weight", 0, 2)
	mlp := get(tm+"layers.0.mlp.gate_proj.weight", 0, 2)
	eq := get(smolVLAExpert+"layers.0.self_attn.q_proj.weight", 0, 2)
	e := get(smolVLAExpert+"layers.0.self_attn.q_proj.weight", 1, 2)
	emlp := get(smolVLAExpert+"layers.0.mlp.gate_proj.weight", 0, 2)
	if err != nil {
		return err
	}
	vlayers, layers, elayers := count(vt+"encoder.layers."), count(tm+"layers."), count(smolVLAExpert+"layers.")
	side := int(math.Round(math.Sqrt(float64(npos))))
	scale := int(math.Round(math.Sqrt(float64(proj) / float64(vh))))
	c := l.cfg
	switch {
	case vh%smolVLAHeadDim != 0:
		return fmt.Errorf("the vision tower is %d wide; SmolVLM2's heads are %d wide", vh, smolVLAHeadDim)
	case q%smolVLAHeadDim != 0 || k%smolVLAHeadDim != 0 || q == 0 || k == 0:
		return fmt.Errorf("q_proj has %d rows and k_proj %d: not heads of SmolVLM2's width %d", q, k, smolVLAHeadDim)
	case eq != q:
		return fmt.Errorf("the expert's q_proj has %d rows, the VLM's %d (the expert keeps the VLM's heads)", eq, q)
	case c.NumVLMLayers > 0 && layers != c.NumVLMLayers:
		return fmt.Errorf("the text model has %d layers, config.json's num_vlm_layers is %d", layers, c.NumVLMLayers)
	case elayers != layers || (c.NumExpertLayers > 0 && c.NumExpertLayers != layers):
		return fmt.Errorf("the expert has %d layers, the VLM %d: reel's smolvla implements num_expert_layers -1 (as deep as the VLM)", elayers, layers)
	case scale*scale*vh != proj:
		return fmt.Errorf("the connector reads %d features, not the %d-wide tower times a square scale factor", proj, vh)
	case side*side != npos || side*patch != c.Resize[0]:
		return fmt.Errorf("%d positions of %d-pixel patches do not tile config.json's resize_imgs_with_padding %v", npos, patch, c.Resize)
	}
	cfg := map[string]any{
		"architectures": []any{"SmolVLMForConditionalGeneration"}, "model_type": "smolvlm",
		"image_token_id": vocab - 1, "scale_factor": scale,
		"vision_config": map[string]any{"model_type": "smolvlm_vision", "image_size": side * patch, "patch_size": patch,
			"hidden_size": vh, "intermediate_size": vmlp, "num_hidden_layers": vlayers, "num_attention_heads": vh / smolVLAHeadDim,
			"num_channels": 3, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": smolVLAVisionEps},
		"text_config": map[string]any{"model_type": "llama", "vocab_size": vocab, "hidden_size": d, "intermediate_size": mlp,
			"num_hidden_layers": layers, "num_attention_heads": q / smolVLAHeadDim, "num_key_value_heads": k / smolVLAHeadDim,
			"head_dim": smolVLAHeadDim, "rms_norm_eps": smolVLATextEps, "hidden_act": "silu", "rope_theta": 10000.0,
			"max_position_embeddings": 8192, "tie_word_embeddings": false},
	}
	var decoded map[string]any
	if b, err := json.Marshal(cfg); err != nil || json.Unmarshal(b, &decoded) != nil {
		return fmt.Errorf("encoding the SmolVLM2 configuration: %w", err)
	}
	hc, err := hf.ParseConfig(decoded)
	if err != nil {
		return err
	}
	if hc.Idefics3 == nil {
		return fmt.Errorf("no SmolVLM configuration")
	}
	l.vlm = hc.Idefics3
	l.expert = models.SmolVLAExpert(l.vlm.Text, e, emlp)
	return nil
}

// spec is the policy spec of the directory's features (as pi0's), its images fitted as SmolVLA's
// prepare_images does (resize_with_pad: left/top padding, policy.ResizePadTopLeft).
func (l *leRobotSmolVLA) spec(name string, maxTextLen int) (policy.Spec, error) {
	s, err := l.common.spec(name, maxTextLen)
	s.Resize = policy.ResizePadTopLeft
	return s, err
}

// config is the network of the directory for spec.
func (l *leRobotSmolVLA) config(cameras, stateDim, actionDim, horizon, steps int) models.SmolVLAConfig {
	return models.SmolVLAConfig{VLM: *l.vlm, Expert: l.expert, SelfAttnEvery: l.cfg.SelfAttnEveryNLayers,
		CrossAttn: l.cfg.AttentionMode == "cross_attn", Cameras: cameras, StateDim: stateDim, ActionDim: actionDim,
		Horizon: horizon, EulerSteps: steps}
}

// smolVLAName is the LeRobot tensor name of a smolvla variable path and the transform between
// them; "" for a variable LeRobot's smolvla has no tensor of (LoRA adapters, the normalisation).
func smolVLAName(path string, rank int) (string, string) {
	if strings.Contains(path, "/lora/") || strings.HasPrefix(path, "/norm/") {
		return "", ""
	}
	name, tr := hf.HFName(path, rank)
	switch {
	case strings.HasPrefix(path, "/model/"):
		return smolVLAVLM + name, tr
	case strings.HasPrefix(path, "/lm_expert/"):
		return "model.vlm_with_expert." + name, tr
	case strings.HasPrefix(path, "/state_proj/"), strings.HasPrefix(path, "/action_"):
		return "model." + name, tr
	}
	return "", ""
}

// smolVLAUnused are tensors reel's smolvla never runs: the VLM's lm_head, buffers.
func smolVLAUnused(name string) bool {
	return name == smolVLAVLM+"lm_head.weight" || strings.HasSuffix(name, ".position_ids") || strings.HasSuffix(name, "rotary_emb.inv_freq")
}

// loadWeights sets every smolvla variable of store from the directory's tensors; a variable
// without its tensor, a tensor no variable takes and a shape that does not match are each one
// line of the error.
func (l *leRobotSmolVLA) loadWeights(store *model.Store) (int, error) {
	w, _, err := checkpoints.ReadSafetensors(filepath.Join(l.dir, leRobotModel))
	if err != nil {
		return 0, err
	}
	return setLeRobotVariables(store, w, smolVLAName, smolVLAUnused, func(n string) string { return n }, l.dir, "smolvla")
}

// leRobotSmolVLAComplete adds the VLM's lm_head (SmolVLA never runs it and reel keeps none: written
// as the token embeddings, so that LeRobot's strict load_state_dict finds every key) and writes
// SmolVLAConfig and make_smolvla_pre_post_processors' pipelines. The cut depth, the expert's width
// and the attention pattern are read from the tensors (a cross-attention layer's k_proj reads the
// VLM's keys, not the expert's stream).
func leRobotSmolVLAComplete(dir string, r *recipes.Recipe, spec policy.Spec, norm models.Normalization, named map[string]*tensors.Tensor) (map[string][]byte, error) {
	embed, in := named[smolVLAVLM+"model.text_model.embed_tokens.weight"], named["model.action_in_proj.weight"]
	if embed == nil || in == nil {
		return nil, fmt.Errorf("export: %s has no SmolVLM2 embeddings or action_in_proj: not a smolvla checkpoint", dir)
	}
	named[smolVLAVLM+"lm_head.weight"] = tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](embed), embed.Shape().Dimensions...)
	d, e := embed.Shape().Dimensions[1], in.Shape().Dimensions[0]
	layers, every, cross := 0, -1, false
	for ; ; layers++ {
		k := named[fmt.Sprintf("%slayers.%d.self_attn.k_proj.weight", smolVLAExpert, layers)]
		if k == nil {
			break
		}
		if k.Shape().Dimensions[1] != e {
			cross = true
		} else if layers > 0 && every < 0 {
			every = layers
		}
	}
	mode := "self_attn"
	if cross {
		mode = "cross_attn"
	}
	inputs, outputs, normMap, err := leRobotFeatures(r, spec)
	if err != nil {
		return nil, err
	}
	s := r.Model.ImageSize
	cfg := map[string]any{
		"type": "smolvla", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs, "device": "cpu",
		"use_amp": false, "push_to_hub": false, "repo_id": nil, "private": nil, "tags": nil, "license": nil, "pretrained_path": nil,
		"chunk_size": spec.Horizon, "n_action_steps": spec.Execute, "normalization_mapping": normMap,
		"max_state_dim": models.SmolVLAPadDim, "max_action_dim": models.SmolVLAPadDim, "resize_imgs_with_padding": []int{s, s},
		"empty_cameras": 0, "adapt_to_pi_aloha": false, "use_delta_joint_actions_aloha": false,
		"tokenizer_max_length": spec.MaxTextLen, "num_steps": r.Policy.EulerSteps, "use_cache": true,
		"freeze_vision_encoder": true, "train_expert_only": true, "train_state_proj": true,
		"optimizer_lr": 1e-4, "optimizer_betas": []float64{0.9, 0.95}, "optimizer_eps": 1e-08, "optimizer_weight_decay": 1e-10,
		"optimizer_grad_clip_norm": 10, "scheduler_warmup_steps": 1000, "scheduler_decay_steps": 30000, "scheduler_decay_lr": 2.5e-06,
		"vlm_model_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "load_vlm_weights": true,
		"add_image_special_tokens": false, "attention_mode": mode, "prefix_length": -1, "pad_language_to": "max_length",
		"num_expert_layers": -1, "num_vlm_layers": layers, "self_attn_every_n_layers": every,
		"expert_width_multiplier": float64(e) / float64(d), "min_period": 0.004, "max_period": 4.0, "rtc_config": nil,
		"compile_model": false, "compile_mode": "max-autotune",
	}
	feats := maps.Clone(inputs)
	maps.Copy(feats, outputs)
	const preState, postState = "policy_preprocessor_step_5_normalizer_processor.safetensors", "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
	pre := leRobotPipeline{Name: "policy_preprocessor", Steps: []leRobotPipeStep{
		{RegistryName: "rename_observations_processor", Config: map[string]any{"rename_map": map[string]any{}}},
		{RegistryName: "to_batch_processor", Config: map[string]any{}},
		{RegistryName: "smolvla_new_line_processor", Config: map[string]any{}},
		{RegistryName: "tokenizer_processor", Config: map[string]any{"max_length": spec.MaxTextLen, "task_key": "task",
			"padding_side": "right", "padding": "max_length", "truncation": true, "tokenizer_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"}},
		{RegistryName: "device_processor", Config: map[string]any{"device": "cpu", "float_dtype": nil}},
		{RegistryName: "normalizer_processor", Config: map[string]any{"eps": leRobotEps, "features": feats, "norm_map": normMap}, StateFile: preState},
	}}
	post := leRobotPipeline{Name: "policy_postprocessor", Steps: []leRobotPipeStep{
		{RegistryName: "unnormalizer_processor", Config: map[string]any{"eps": leRobotEps, "features": outputs, "norm_map": normMap}, StateFile: postState},
		{RegistryName: "device_processor", Config: map[string]any{"device": "cpu", "float_dtype": nil}},
	}}
	return leRobotDirFiles(spec, norm, cfg, pre, post, preState, postState)
}
