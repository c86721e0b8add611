package tasks

// LeRobot's pi0 policy directory (huggingface/lerobot src/lerobot/policies/pi0/: PI0Policy's
// save_pretrained and its processor pipelines), read and written by the pi0 family:
//
//   config.json                 PI0Config ("type": "pi0", input/output features, chunk_size,
//                               n_action_steps, normalization_mapping, image_resolution, …)
//   model.safetensors           PI0Pytorch's state dict under LeRobot's module names:
//                               model.paligemma_with_expert.paligemma.model.{vision_tower,
//                               multi_modal_projector, language_model}.…, model.paligemma_with_expert.
//                               gemma_expert.{model.…, lm_head.weight}, model.{state_proj,
//                               action_in_proj, action_time_mlp_in, action_time_mlp_out,
//                               action_out_proj}.{weight,bias}
//   policy_preprocessor.json    the input pipeline; its normalizer_processor step's state_file
//   policy_postprocessor.json   holds the statistics ("observation.state.mean", "action.std", …)
//
// LeRobot's PI0Config sizes the networks by variant (paligemma_variant gemma_2b, action_expert_variant
// gemma_300m, SigLIP so400m); reel reads the sizes from the tensors' shapes instead, with LeRobot's
// fixed conventions: 8 attention heads (compute_layer_complete reshapes to 1·8·head_dim), SigLIP heads
// of width 72, states and actions padded to 32. For pi0_base that gives the variants; a tiny random
// directory in the same layout (tasks/testdata/lerobot_pi0) opens the same way.
//
// This file is the one place that knows the layout: detection (isLeRobotPi0), the configuration
// and names (leRobotPi0), the weights into and out of a reel store, and the statistics.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// LeRobot's pi0 names and constants.
const (
	leRobotPG       = "model.paligemma_with_expert.paligemma."
	leRobotExpert   = "model.paligemma_with_expert.gemma_expert."
	leRobotHeads    = 8  // modeling_pi0.py compute_layer_complete: att_output.reshape(b, -1, 1*8*head_dim)
	leRobotSigLIPHD = 72 // SigLIP so400m: 1152 wide, 16 heads (PaliGemmaConfig's default vision_config)
	leRobotModel    = "model.safetensors"
	leRobotPre      = "policy_preprocessor.json"
	leRobotPost     = "policy_postprocessor.json"
)

// leRobotFeature is a PolicyFeature of config.json.
type leRobotFeature struct {
	Type  string `json:"type"`
	Shape []int  `json:"shape"`
}

// leRobotPi0Config is the part of LeRobot's PI0Config (configuration_pi0.py) reel reads.
type leRobotPi0Config struct {
	Type                 string                    `json:"type"`
	InputFeatures        map[string]leRobotFeature `json:"input_features"`
	OutputFeatures       map[string]leRobotFeature `json:"output_features"`
	ChunkSize            int                       `json:"chunk_size"`
	NActionSteps         int                       `json:"n_action_steps"`
	MaxStateDim          int                       `json:"max_state_dim"`
	MaxActionDim         int                       `json:"max_action_dim"`
	NumInferenceSteps    int                       `json:"num_inference_steps"`
	ImageResolution      []int                     `json:"image_resolution"`
	EmptyCameras         int                       `json:"empty_cameras"`
	NormalizationMapping map[string]string         `json:"normalization_mapping"`
	TokenizerMaxLength   int                       `json:"tokenizer_max_length"`
	Dtype                string                    `json:"dtype"`
	MinPeriod            float64                   `json:"min_period"`
	MaxPeriod            float64                   `json:"max_period"`
	BetaAlpha            float64                   `json:"time_sampling_beta_alpha"`
	BetaBeta             float64                   `json:"time_sampling_beta_beta"`
	TimeScale            float64                   `json:"time_sampling_scale"`
	TimeOffset           float64                   `json:"time_sampling_offset"`
	UseRelativeActions   bool                      `json:"use_relative_actions"`
}

// isLeRobotPi0 reports whether dir is a LeRobot pi0 policy directory: a config.json of "type"
// "pi0" beside a model.safetensors holding LeRobot's module names.
func isLeRobotPi0(dir string) bool { return isLeRobotDir(dir, "pi0") }

// isLeRobotDir reports whether dir is a LeRobot policy directory of config.json "type" typ (pi0
// or pi05, which share the PaliGemma-with-expert layout).
func isLeRobotDir(dir, typ string) bool {
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
	if json.Unmarshal(b, &c) != nil || c.Type != typ {
		return false
	}
	names, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, leRobotModel))
	if err != nil {
		return false
	}
	for n := range names {
		if strings.HasPrefix(leRobotCanonical(n), "model.paligemma_with_expert.") {
			return true
		}
	}
	return false
}

// leRobotPi0 is an opened LeRobot pi0 directory: its configuration, its tensors' shapes under
// canonical names, and the PaliGemma and expert sizes read from them.
type leRobotPi0 struct {
	dir       string
	cfg       leRobotPi0Config
	shapes    map[string]shapes.Shape // canonical name → stored shape
	source    map[string]string       // canonical name → name in the file
	pg        *models.PaliGemmaConfig
	expertDim int
	expertMLP int
}

// leRobotCanonical is a tensor name of a LeRobot pi0 file in the layout of the current
// modeling_pi0.py with transformers 5: "model." first (PI0Policy.from_pretrained adds it), the
// transformers-4 PaliGemma names moved (paligemma.language_model.model.… → paligemma.model.
// language_model.…), and a vision tower saved without its vision_model level given it back.
func leRobotCanonical(n string) string {
	if !strings.HasPrefix(n, "model.") {
		n = "model." + n
	}
	for _, r := range [][2]string{
		{leRobotPG + "language_model.model.", leRobotPG + "model.language_model."},
		{leRobotPG + "language_model.lm_head.", leRobotPG + "lm_head."},
		{leRobotPG + "vision_tower.", leRobotPG + "model.vision_tower."},
		{leRobotPG + "multi_modal_projector.", leRobotPG + "model.multi_modal_projector."},
	} {
		if strings.HasPrefix(n, r[0]) {
			n = r[1] + strings.TrimPrefix(n, r[0])
		}
	}
	vt := leRobotPG + "model.vision_tower."
	if strings.HasPrefix(n, vt) && !strings.HasPrefix(n, vt+"vision_model.") {
		n = vt + "vision_model." + strings.TrimPrefix(n, vt)
	}
	return n
}

// openLeRobotPi0 reads dir's config.json and model.safetensors header and sizes the networks.
func openLeRobotPi0(dir string) (*leRobotPi0, error) {
	// LeRobot's defaults (PI0Config) for keys a config.json omits.
	return openLeRobotDir(dir, leRobotPi0Config{Type: "pi0", TokenizerMaxLength: 48,
		NormalizationMapping: map[string]string{"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}})
}

// openLeRobotDir opens a directory of def.Type (pi0 or pi05), whose configuration's defaults
// are PI0Config's shared ones and def's type, tokenizer_max_length and normalization_mapping.
func openLeRobotDir(dir string, def leRobotPi0Config) (*leRobotPi0, error) {
	l := &leRobotPi0{dir: dir}
	b, err := safeio.ReadFile(filepath.Join(dir, "config.json"), safeio.JSONLimit)
	if err != nil {
		return nil, err
	}
	l.cfg = leRobotPi0Config{ChunkSize: 50, NActionSteps: 50, MaxStateDim: 32, MaxActionDim: 32, NumInferenceSteps: 10,
		ImageResolution: []int{224, 224}, TokenizerMaxLength: def.TokenizerMaxLength, Dtype: "float32", MinPeriod: 4e-3, MaxPeriod: 4,
		BetaAlpha: 1.5, BetaBeta: 1, TimeScale: 0.999, TimeOffset: 0.001,
		NormalizationMapping: def.NormalizationMapping}
	if err := json.Unmarshal(b, &l.cfg); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	if err := l.cfg.check(def.Type); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	raw, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, leRobotModel))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	l.shapes, l.source = map[string]shapes.Shape{}, map[string]string{}
	for n, s := range raw {
		c := leRobotCanonical(n)
		l.shapes[c], l.source[c] = s, n
	}
	if n := l.tiedEmbeddings(); n != "" { // embed_tokens saved as the tied lm_head only
		l.shapes[leRobotEmbed], l.source[leRobotEmbed] = l.shapes[n], l.source[n]
	}
	if err := l.size(); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", dir, leRobotModel, err)
	}
	return l, nil
}

// leRobotEmbed is the PaliGemma's token embedding, tied to its lm_head.
const leRobotEmbed = leRobotPG + "model.language_model.embed_tokens.weight"

// tiedEmbeddings is the name of the PaliGemma's lm_head when the file holds it but not
// embed_tokens (safetensors' save_model keeps one name of tied tensors; PI0Policy's
// _fix_pytorch_state_dict_keys restores embed_tokens from lm_head), else "".
func (l *leRobotPi0) tiedEmbeddings() string {
	head := leRobotPG + "lm_head.weight"
	if _, ok := l.shapes[leRobotEmbed]; ok {
		return ""
	}
	if _, ok := l.shapes[head]; ok {
		return head
	}
	return ""
}

// check refuses the PI0Config (PI05Config) settings reel's pi0 (pi05) does not implement,
// naming the key; typ is the config type wanted.
func (c leRobotPi0Config) check(typ string) error {
	switch {
	case c.Type != typ:
		return fmt.Errorf("type: %q, want %q", c.Type, typ)
	case c.MaxStateDim != models.Pi0PadDim || c.MaxActionDim != models.Pi0PadDim:
		return fmt.Errorf("max_state_dim/max_action_dim: %d/%d, reel's pi0 pads to %d", c.MaxStateDim, c.MaxActionDim, models.Pi0PadDim)
	case c.MinPeriod != 4e-3 || c.MaxPeriod != 4:
		return fmt.Errorf("min_period/max_period: %g/%g, reel's pi0 uses openpi's 0.004/4", c.MinPeriod, c.MaxPeriod)
	case c.BetaAlpha != 1.5 || c.BetaBeta != 1 || c.TimeScale != 0.999 || c.TimeOffset != 0.001:
		return fmt.Errorf("time_sampling_*: Beta(%g, %g)·%g + %g, reel's pi0 samples openpi's Beta(1.5, 1)·0.999 + 0.001", c.BetaAlpha, c.BetaBeta, c.TimeScale, c.TimeOffset)
	case c.EmptyCameras != 0:
		return fmt.Errorf("empty_cameras: %d, reel's pi0 has no masked cameras", c.EmptyCameras)
	case c.UseRelativeActions:
		return fmt.Errorf("use_relative_actions: true is not implemented by reel's pi0")
	case len(c.ImageResolution) != 2 || c.ImageResolution[0] != c.ImageResolution[1] || c.ImageResolution[0] < 1:
		return fmt.Errorf("image_resolution: %v, want a square [S, S]", c.ImageResolution)
	case c.ChunkSize < 1 || c.NActionSteps < 1 || c.NActionSteps > c.ChunkSize || c.NumInferenceSteps < 1:
		return fmt.Errorf("chunk_size %d, n_action_steps %d, num_inference_steps %d: want 1 ≤ n_action_steps ≤ chunk_size, steps ≥ 1", c.ChunkSize, c.NActionSteps, c.NumInferenceSteps)
	}
	return nil
}

// size reads the PaliGemma's and the expert's sizes from the tensors' shapes.
func (l *leRobotPi0) size() error {
	dim := func(name string, axis, rank int) (int, error) {
		s, ok := l.shapes[name]
		if !ok {
			return 0, fmt.Errorf("no tensor %s (is this a LeRobot pi0 policy?)", name)
		}
		if s.Rank() != rank {
			return 0, fmt.Errorf("tensor %s has shape %v, want rank %d", name, s.Dimensions, rank)
		}
		return s.Dimensions[axis], nil
	}
	count := func(prefix string) int {
		n := 0
		for ; ; n++ {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(l.shapes)), func(k string) bool { return strings.HasPrefix(k, prefix+strconv.Itoa(n)+".") }) {
				return n
			}
		}
	}
	vt := leRobotPG + "model.vision_tower.vision_model."
	lm := leRobotPG + "model.language_model."
	ex := leRobotExpert + "model."
	var err error
	get := func(dst *int, name string, axis, rank int) {
		if err == nil {
			*dst, err = dim(name, axis, rank)
		}
	}
	var vh, patch, npos, vmlp, d, vocab, q, k, mlp, eq, emlp, proj int
	get(&vh, vt+"embeddings.patch_embedding.weight", 0, 4)
	get(&patch, vt+"embeddings.patch_embedding.weight", 2, 4)
	get(&npos, vt+"embeddings.position_embedding.weight", 0, 2)
	get(&vmlp, vt+"encoder.layers.0.mlp.fc1.weight", 0, 2)
	get(&vocab, lm+"embed_tokens.weight", 0, 2)
	get(&d, lm+"embed_tokens.weight", 1, 2)
	get(&q, lm+"layers.0.self_attn.q_proj.weight", 0, 2)
	get(&k, lm+"layers.0.self_attn.k_proj.weight", 0, 2)
	get(&mlp, lm+"layers.0.mlp.gate_proj.weight", 0, 2)
	get(&eq, ex+"layers.0.self_attn.q_proj.weight", 0, 2)
	get(&l.expertDim, ex+"layers.0.self_attn.q_proj.weight", 1, 2)
	get(&emlp, ex+"layers.0.mlp.gate_proj.weight", 0, 2)
	get(&proj, leRobotPG+"model.multi_modal_projector.linear.weight", 0, 2)
	if err != nil {
		return err
	}
	l.expertMLP = emlp
	vlayers, layers, elayers := count(vt+"encoder.layers."), count(lm+"layers."), count(ex+"layers.")
	hd := q / leRobotHeads
	side := int(math.Round(math.Sqrt(float64(npos))))
	switch {
	case vh%leRobotSigLIPHD != 0:
		return fmt.Errorf("the vision tower is %d wide; LeRobot's SigLIP has heads of width %d", vh, leRobotSigLIPHD)
	case q%leRobotHeads != 0 || hd == 0 || k%hd != 0:
		return fmt.Errorf("q_proj has %d rows and k_proj %d: not %d heads of one width with whole kv heads", q, k, leRobotHeads)
	case eq != q:
		return fmt.Errorf("the expert's q_proj has %d rows, the PaliGemma's %d (joint attention needs the same heads)", eq, q)
	case elayers != layers:
		return fmt.Errorf("the expert has %d layers, the PaliGemma %d", elayers, layers)
	case proj != d:
		return fmt.Errorf("the projector maps to %d, the decoder is %d wide", proj, d)
	case side*side != npos || side*patch != l.cfg.ImageResolution[0]:
		return fmt.Errorf("%d positions of %d-pixel patches do not tile config.json's image_resolution %v", npos, patch, l.cfg.ImageResolution)
	}
	cfg := map[string]any{
		"architectures": []any{"PaliGemmaForConditionalGeneration"}, "model_type": "paligemma",
		"image_token_index": vocab - 1, "hidden_size": d, "projection_dim": d,
		"vision_config": map[string]any{"model_type": "siglip_vision_model", "image_size": side * patch, "patch_size": patch,
			"hidden_size": vh, "intermediate_size": vmlp, "num_hidden_layers": vlayers, "num_attention_heads": vh / leRobotSigLIPHD,
			"num_channels": 3, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "projection_dim": d, "vision_use_head": false},
		"text_config": map[string]any{"model_type": "gemma", "vocab_size": vocab, "hidden_size": d, "intermediate_size": mlp,
			"num_hidden_layers": layers, "num_attention_heads": leRobotHeads, "num_key_value_heads": k / hd, "head_dim": hd,
			"rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 10000.0,
			"max_position_embeddings": 8192, "tie_word_embeddings": true},
	}
	var decoded map[string]any // as json.Unmarshal gives ParseConfig a config.json
	if b, err := json.Marshal(cfg); err != nil || json.Unmarshal(b, &decoded) != nil {
		return fmt.Errorf("encoding the PaliGemma configuration: %w", err)
	}
	c, err := hf.ParseConfig(decoded)
	if err != nil {
		return err
	}
	if c.PaliGemma == nil {
		return fmt.Errorf("no PaliGemma configuration")
	}
	l.pg = c.PaliGemma
	return nil
}

// spec is the policy spec of the directory's features: its cameras at image_resolution, its state
// and action dimensions, chunk_size and n_action_steps, and its STATE/ACTION normalisation mode.
func (l *leRobotPi0) spec(name string, maxTextLen int) (policy.Spec, error) {
	c := l.cfg
	s := policy.Spec{Name: name, Horizon: c.ChunkSize, Execute: c.NActionSteps, Resize: policy.ResizePad, MaxTextLen: maxTextLen}
	mode, err := l.normMode()
	if err != nil {
		return s, err
	}
	s.Normalization = mode
	for _, k := range slices.Sorted(maps.Keys(c.InputFeatures)) {
		f := c.InputFeatures[k]
		switch f.Type {
		case "VISUAL":
			s.Cameras = append(s.Cameras, policy.Camera{Name: strings.TrimPrefix(k, "observation.images."),
				Width: c.ImageResolution[0], Height: c.ImageResolution[0]})
		case "STATE":
			if len(f.Shape) != 1 {
				return s, fmt.Errorf("%s/config.json: input_features.%s.shape %v, want [dim]", l.dir, k, f.Shape)
			}
			s.StateDim = f.Shape[0]
		}
	}
	a, ok := c.OutputFeatures["action"]
	if !ok || len(a.Shape) != 1 {
		return s, fmt.Errorf("%s/config.json: output_features.action: want {\"type\": \"ACTION\", \"shape\": [dim]}", l.dir)
	}
	s.ActionDim = a.Shape[0]
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%s/config.json: %w", l.dir, err)
	}
	return s, nil
}

// normMode is reel's name of the STATE and ACTION normalisation mode (they must agree).
func (l *leRobotPi0) normMode() (string, error) {
	m := l.cfg.NormalizationMapping
	modes := map[string]string{"MEAN_STD": policy.NormMeanStd, "MIN_MAX": policy.NormMinMax, "QUANTILES": policy.NormQuantiles}
	st, act := m["STATE"], m["ACTION"]
	if st != act || modes[act] == "" {
		return "", fmt.Errorf("%s/config.json: normalization_mapping STATE %q, ACTION %q: reel's pi0 needs one of MEAN_STD, MIN_MAX, QUANTILES for both", l.dir, st, act)
	}
	return modes[act], nil
}

// leRobotStatNames are the statistics a LeRobot normalisation mode reads (normalize_processor.py
// _apply_transform), low then high.
var leRobotStatNames = map[string][2]string{policy.NormMeanStd: {"mean", "std"}, policy.NormMinMax: {"min", "max"}, policy.NormQuantiles: {"q01", "q99"}}

// leRobotEps is NormalizerProcessorStep's eps.
const leRobotEps = 1e-8

// normalization is the directory's normalisation as reel's affine map (x − offset)/scale, read
// from the preprocessor's normalizer_processor state: MEAN_STD (x − mean)/(std + eps); MIN_MAX and
// QUANTILES 2(x − lo)/(hi − lo) − 1 (hi − lo = 0 taken as eps), as LeRobot computes them (no
// floor: a fine-tune that keeps the base's statistics acts as the base did).
func (l *leRobotPi0) normalization(spec policy.Spec) (models.Normalization, error) {
	var n models.Normalization
	stats, file, err := l.stats()
	if err != nil {
		return n, err
	}
	mode, err := l.normMode()
	if err != nil {
		return n, err
	}
	names := leRobotStatNames[mode]
	affine := func(key string, dim int) (off, scale []float32, err error) {
		if dim == 0 {
			return nil, nil, nil
		}
		lo, hi := stats[key+"."+names[0]], stats[key+"."+names[1]]
		if len(lo) != dim || len(hi) != dim {
			return nil, nil, fmt.Errorf("%s: %s.%s and %s.%s have %d and %d values, the policy %d dimensions (policy.norm_stats: dataset recomputes them)",
				file, key, names[0], key, names[1], len(lo), len(hi), dim)
		}
		off, scale = make([]float32, dim), make([]float32, dim)
		for i := range dim {
			if mode == policy.NormMeanStd {
				off[i], scale[i] = lo[i], hi[i]+leRobotEps
				continue
			}
			d := hi[i] - lo[i]
			if d == 0 {
				d = leRobotEps
			}
			off[i], scale[i] = lo[i]+d/2, d/2
		}
		return off, scale, nil
	}
	if n.StateOffset, n.StateScale, err = affine("observation.state", spec.StateDim); err != nil {
		return n, err
	}
	n.ActionOffset, n.ActionScale, err = affine("action", spec.ActionDim)
	return n, err
}

// leRobotPipeline is a processor pipeline's JSON (DataProcessorPipeline.get_config).
type leRobotPipeline struct {
	Name  string            `json:"name"`
	Steps []leRobotPipeStep `json:"steps"`
}

type leRobotPipeStep struct {
	RegistryName string         `json:"registry_name,omitempty"`
	Class        string         `json:"class,omitempty"`
	Config       map[string]any `json:"config"`
	StateFile    string         `json:"state_file,omitempty"`
}

// stats reads the statistics of the preprocessor's normalizer_processor step.
func (l *leRobotPi0) stats() (map[string][]float32, string, error) {
	path := filepath.Join(l.dir, leRobotPre)
	b, err := safeio.ReadFile(path, safeio.JSONLimit)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w (a LeRobot policy directory keeps its normalisation statistics there)", l.dir, err)
	}
	var p leRobotPipeline
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range p.Steps {
		if s.RegistryName != "normalizer_processor" {
			continue
		}
		if s.StateFile == "" || filepath.Base(s.StateFile) != s.StateFile {
			return nil, path, fmt.Errorf("%s: normalizer_processor: state_file %q, want a file name beside it", path, s.StateFile)
		}
		file := filepath.Join(l.dir, s.StateFile)
		ts, _, err := checkpoints.ReadSafetensors(file)
		if err != nil {
			return nil, file, err
		}
		out := map[string][]float32{}
		for k, t := range ts {
			if out[k], err = hf.Float32Values(t); err != nil {
				return nil, file, fmt.Errorf("%s: %s: %w", file, k, err)
			}
		}
		return out, file, nil
	}
	return nil, path, fmt.Errorf("%s: no normalizer_processor step", path)
}

// leRobotPi0Name is the LeRobot tensor name of a pi0 variable path and the transform between them
// (hf.HFName's, under LeRobot's module prefixes); "" for a variable LeRobot's pi0 has no tensor of
// (LoRA adapters, the normalisation).
func leRobotPi0Name(path string, rank int) (string, string) {
	if strings.Contains(path, "/lora/") || strings.HasPrefix(path, "/norm/") {
		return "", ""
	}
	name, tr := hf.HFName(path, rank)
	switch {
	case strings.HasPrefix(path, "/model/"):
		return leRobotPG + name, tr
	case strings.HasPrefix(path, "/gemma_expert/"):
		return "model.paligemma_with_expert." + name, tr
	case strings.HasPrefix(path, "/state_proj/"), strings.HasPrefix(path, "/action_"), strings.HasPrefix(path, "/time_mlp_"):
		return "model." + name, tr
	}
	return "", ""
}

// leRobotUnused are LeRobot pi0 tensors reel's pi0 never runs: the PaliGemma's lm_head (tied to
// the embeddings), the expert's lm_head (PiGemmaForCausalLM's, unused by PI0Pytorch), SigLIP's
// pooling head, buffers.
func leRobotUnused(name string) bool {
	return name == leRobotPG+"lm_head.weight" || name == leRobotExpert+"lm_head.weight" ||
		strings.HasPrefix(name, leRobotPG+"model.vision_tower.vision_model.head.") ||
		strings.HasSuffix(name, ".position_ids") || strings.HasSuffix(name, "rotary_emb.inv_freq")
}

// loadWeights sets every pi0 variable of store from the directory's tensors. Every tensor is
// accounted for: a variable without its tensor, a tensor no variable takes and a shape that does
// not match are each one line of the error.
func (l *leRobotPi0) loadWeights(store *model.Store) (int, error) {
	raw, _, err := checkpoints.ReadSafetensors(filepath.Join(l.dir, leRobotModel))
	if err != nil {
		return 0, err
	}
	w := map[string]*tensors.Tensor{}
	for n, t := range raw {
		w[leRobotCanonical(n)] = t
	}
	if _, ok := w[leRobotEmbed]; !ok && w[leRobotPG+"lm_head.weight"] != nil {
		w[leRobotEmbed] = w[leRobotPG+"lm_head.weight"]
	}
	source := func(name string) string { return l.source[name] }
	return setLeRobotVariables(store, w, leRobotPi0Name, leRobotUnused, source, l.dir, l.cfg.Type)
}

// setLeRobotVariables sets every variable of store that name maps to a LeRobot tensor of w from
// it (leRobotToReel). Every tensor is accounted for: a variable without its tensor, a tensor no
// variable takes (unless unused says reel never runs it) and a shape that does not match are each
// one line of the error, which names dir's model.safetensors and the policy type; source gives a
// tensor's name as stored.
func setLeRobotVariables(store *model.Store, w map[string]*tensors.Tensor, name func(path string, rank int) (string, string),
	unused func(string) bool, source func(string) string, dir, typ string) (int, error) {
	used := map[string]bool{}
	var problems []string
	n := 0
	for v := range store.IterVariables() {
		path, s := v.Path(), v.Shape()
		ln, tr := name(path, s.Rank())
		if ln == "" {
			continue
		}
		t, ok := w[ln]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing: %s (reel variable %s, shape %v)", ln, path, s.Dimensions))
			continue
		}
		used[ln] = true
		val, err := leRobotToReel(t, tr, s.Dimensions)
		if err != nil {
			problems = append(problems, fmt.Sprintf("mis-shaped: %s: %v", ln, err))
			continue
		}
		if err := v.SetValue(val); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
	for _, ln := range slices.Sorted(maps.Keys(w)) {
		if !used[ln] && !unused(ln) {
			problems = append(problems, fmt.Sprintf("unexpected: %s (shape %v): no variable of this %s takes it", source(ln), w[ln].Shape().Dimensions, typ))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return 0, fmt.Errorf("%s/%s does not fit this %s:\n  %s", dir, leRobotModel, typ, strings.Join(problems, "\n  "))
	}
	return n, nil
}

// setNormalization sets store's normalisation variables (models.Normalization's norm/…) to n.
func setNormalization(store *model.Store, n models.Normalization) error {
	vals := map[string][]float32{"state_offset": n.StateOffset, "state_scale": n.StateScale,
		"action_offset": n.ActionOffset, "action_scale": n.ActionScale}
	for v := range store.IterVariables() {
		if !strings.HasPrefix(v.Path(), "/norm/") {
			continue
		}
		x, ok := vals[v.Path()[len("/norm/"):]]
		if !ok {
			continue
		}
		if v.Shape().Size() != len(x) {
			return fmt.Errorf("%s: %d values for shape %v", v.Path(), len(x), v.Shape().Dimensions)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(slices.Clone(x), v.Shape().Dimensions...)); err != nil {
			return err
		}
	}
	return nil
}

// leRobotToReel is a stored tensor as the f32 value of a reel variable of shape want under
// transform tr (hf.TransformTranspose: nn.Linear [out, in] → [in, out]; hf.TransformPatch: the
// patch convolution [D, C, p, p] → [p·p·C, D]).
func leRobotToReel(t *tensors.Tensor, tr string, want []int) (*tensors.Tensor, error) {
	hs := t.Shape().Dimensions
	var got []int
	switch {
	case tr == hf.TransformTranspose && len(hs) == 2:
		got = []int{hs[1], hs[0]}
	case tr == hf.TransformPatch && len(hs) == 4:
		got = []int{hs[2] * hs[3] * hs[1], hs[0]}
	default:
		got = hs
	}
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("stored %v, the variable needs %v", hs, want)
	}
	v, err := hf.Float32Values(t)
	if err != nil {
		return nil, err
	}
	out := v
	switch tr {
	case hf.TransformTranspose:
		o, in := hs[0], hs[1]
		out = make([]float32, len(v))
		for i := range o {
			for j := range in {
				out[j*o+i] = v[i*in+j]
			}
		}
	case hf.TransformPatch:
		d, c, ph, pw := hs[0], hs[1], hs[2], hs[3]
		out = make([]float32, len(v))
		for o := range d {
			for ci := range c {
				for y := range ph {
					for x := range pw {
						out[((y*pw+x)*c+ci)*d+o] = v[((o*c+ci)*ph+y)*pw+x]
					}
				}
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(out, want...), nil
}

// leRobotPi0Recipe is leRobotRecipe of a LeRobot pi0 directory.
func leRobotPi0Recipe(dir string, sets []string) (*recipes.Recipe, policy.Spec, error) {
	l, err := openLeRobotPi0(dir)
	if err != nil {
		return nil, policy.Spec{}, err
	}
	return leRobotRecipe(l, sets)
}

// leRobotRecipe is the recipe of an opened LeRobot directory l as it is, named by its type (pi0,
// pi05): model.pretrained the directory, sized by its config.json (image_resolution,
// tokenizer_max_length, chunk_size, n_action_steps, num_inference_steps), its normalisation mode
// and statistics kept, with sets over it; and the spec of its features.
func leRobotRecipe(l *leRobotPi0, sets []string) (*recipes.Recipe, policy.Spec, error) {
	dir := l.dir
	mode, err := l.normMode()
	if err != nil {
		return nil, policy.Spec{}, err
	}
	c := l.cfg
	base := []string{"model.pretrained=" + dir, "model.hf_config=", "model.image_size=" + strconv.Itoa(c.ImageResolution[0]),
		"model.max_text_len=" + strconv.Itoa(c.TokenizerMaxLength), "policy.horizon=" + strconv.Itoa(c.ChunkSize),
		"policy.execute=" + strconv.Itoa(c.NActionSteps), "policy.euler_steps=" + strconv.Itoa(c.NumInferenceSteps),
		"policy.norm_stats=checkpoint", "data.normalization=" + mode, "train.precision=f32"}
	r, err := recipes.Load(c.Type, append(base, sets...))
	if err != nil {
		return nil, policy.Spec{}, err
	}
	spec, err := l.spec("lerobot:"+filepath.Base(filepath.Clean(dir)), r.Model.MaxTextLen)
	if err != nil {
		return nil, policy.Spec{}, err
	}
	return r, spec, nil
}

// openLeRobotPi0Policy opens a LeRobot pi0 directory as a trained policy, as it is.
func openLeRobotPi0Policy(backend compute.Backend, dir string, sets []string, seed uint64) (Policy, error) {
	l, err := openLeRobotPi0(dir)
	if err != nil {
		return nil, err
	}
	return openLeRobotPolicy(backend, l, sets, seed)
}

// openLeRobotPolicy opens an opened LeRobot directory l as a trained policy of the recipe named
// by its type (leRobotRecipe): the spec from its features, the weights from its model.safetensors.
func openLeRobotPolicy(backend compute.Backend, l *leRobotPi0, sets []string, seed uint64) (Policy, error) {
	dir := l.dir
	r, spec, err := leRobotRecipe(l, sets)
	if err != nil {
		return nil, err
	}
	return openPolicyDir(backend, r, spec, dir, seed, l.loadWeights)
}

// openPolicyDir opens a policy directory another framework wrote (dir) as a trained policy of
// recipe r and spec: a first build creates the variables, load sets them from the directory's
// weights, and the policy's graphs are built again (the Go backend embeds an inference graph's
// variable values as constants, so weights set after a build would be ignored).
func openPolicyDir(backend compute.Backend, r *recipes.Recipe, spec policy.Spec, dir string, seed uint64, load func(*model.Store) (int, error)) (Policy, error) {
	t, err := newVLAFromSpec(r, spec, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	store, err := train.NewStore(0)
	if err != nil {
		return nil, err
	}
	p, err := t.buildPolicy(backend, store, 0, seed, dir, func() error { return nil })
	if err != nil {
		return nil, err
	}
	p.Close()
	if _, err := load(store); err != nil {
		return nil, err
	}
	loaded := checkpoints.Paths(store)
	return t.buildPolicy(backend, store, 0, seed, dir, func() error { return checkpoints.CheckNoNewVariables(dir, store, loaded) })
}
