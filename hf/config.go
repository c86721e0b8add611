// Package hf reads pretrained Hugging Face checkpoints from a local directory (reel never
// downloads): config.json, model.safetensors or its shards with model.safetensors.index.json,
// generation_config.json and preprocessor_config.json, in the key layouts of transformers 4.x and
// 5.x. It maps every checkpoint tensor to the reel variable of the architecture in package models
// that mirrors transformers' modeling file, and runs those models (forward passes, greedy
// generation with a KV cache, image preprocessing).
package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/models"
)

// Kinds of models.
const (
	KindCausalLM    = "causal-lm"   // *ForCausalLM: logits
	KindVLM         = "vlm"         // PaliGemma, LLaVA: logits
	KindContrastive = "contrastive" // SiglipModel, CLIPModel: image_embeds, text_embeds, logits_per_image
	KindVision      = "vision"      // SiglipVisionModel, CLIPVisionModel: last_hidden_state, pooler_output
)

// Architectures lists the transformers classes reel implements, with their kind.
var Architectures = map[string]string{
	"LlamaForCausalLM":                  KindCausalLM,
	"Qwen2ForCausalLM":                  KindCausalLM,
	"Qwen3ForCausalLM":                  KindCausalLM,
	"GemmaForCausalLM":                  KindCausalLM,
	"Gemma2ForCausalLM":                 KindCausalLM,
	"Gemma3ForCausalLM":                 KindCausalLM,
	"SiglipModel":                       KindContrastive,
	"CLIPModel":                         KindContrastive,
	"SiglipVisionModel":                 KindVision,
	"CLIPVisionModel":                   KindVision,
	"PaliGemmaForConditionalGeneration": KindVLM,
	"LlavaForConditionalGeneration":     KindVLM,
	// Qwen2-VL, Qwen2.5-VL and Qwen3-VL (qwenvl.go)
	"Qwen2VLForConditionalGeneration":    KindVLM,
	"Qwen2_5_VLForConditionalGeneration": KindVLM,
	"Qwen3VLForConditionalGeneration":    KindVLM,
	"Idefics3ForConditionalGeneration":   KindVLM,
	"SmolVLMForConditionalGeneration":    KindVLM,
}

// byModelType names the architecture of a config.json without "architectures".
var byModelType = map[string]string{
	"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM",
	"gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM", "siglip": "SiglipModel", "clip": "CLIPModel",
	"siglip_vision_model": "SiglipVisionModel", "clip_vision_model": "CLIPVisionModel",
	"paligemma": "PaliGemmaForConditionalGeneration", "llava": "LlavaForConditionalGeneration",
	"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
	"qwen3_vl": "Qwen3VLForConditionalGeneration",
	"idefics3": "Idefics3ForConditionalGeneration", "smolvlm": "SmolVLMForConditionalGeneration",
}

// Config is a parsed config.json: the architecture and the models configuration it builds.
type Config struct {
	Arch      string // transformers class, e.g. "LlamaForCausalLM"
	Kind      string
	ModelType string
	DType     string // torch_dtype / dtype as configured ("" when absent)

	Decoder     *models.DecoderConfig     // KindCausalLM
	PaliGemma   *models.PaliGemmaConfig   // PaliGemmaForConditionalGeneration
	Llava       *models.LlavaConfig       // LlavaForConditionalGeneration
	Idefics3    *models.Idefics3Config    // Idefics3ForConditionalGeneration, SmolVLMForConditionalGeneration
	Contrastive *models.ContrastiveConfig // KindContrastive
	Vision      *models.VisionConfig      // KindVision
	QwenVL      *models.QwenVLConfig      // Qwen2VLForConditionalGeneration, Qwen2_5_VLForConditionalGeneration
}

// Text is the decoder of a causal LM or VLM (nil otherwise).
func (c *Config) Text() *models.DecoderConfig {
	switch {
	case c.Decoder != nil:
		return c.Decoder
	case c.PaliGemma != nil:
		return &c.PaliGemma.Text
	case c.Llava != nil:
		return &c.Llava.Text
	case c.QwenVL != nil:
		return &c.QwenVL.Text
	case c.Idefics3 != nil:
		return &c.Idefics3.Text
	}
	return nil
}

// VisionTower is the image encoder's configuration (nil for text-only models).
func (c *Config) VisionTower() *models.VisionConfig {
	switch {
	case c.PaliGemma != nil:
		return &c.PaliGemma.Vision
	case c.Llava != nil:
		return &c.Llava.Vision
	case c.Contrastive != nil:
		return &c.Contrastive.Vision
	case c.Idefics3 != nil:
		return &c.Idefics3.Vision
	}
	return c.Vision
}

// ImageToken is the placeholder id of a VLM's image tokens (-1 otherwise).
func (c *Config) ImageToken() int {
	switch {
	case c.PaliGemma != nil:
		return c.PaliGemma.ImageToken
	case c.Llava != nil:
		return c.Llava.ImageToken
	case c.QwenVL != nil:
		return c.QwenVL.ImageToken
	case c.Idefics3 != nil:
		return c.Idefics3.ImageToken
	}
	return -1
}

// ImageTokens is the number of image tokens a VLM puts in place of the placeholders of one image.
func (c *Config) ImageTokens() int {
	switch {
	case c.PaliGemma != nil:
		return c.PaliGemma.Vision.NumPatches()
	case c.Llava != nil:
		return c.Llava.ImageTokens()
	case c.Idefics3 != nil:
		return c.Idefics3.ImageTokens()
	}
	return 0
}

// obj reads fields of a JSON object, keeping the first type error.
type obj struct {
	m    map[string]any
	path string // field path prefix for messages, e.g. "text_config."
	err  *error
}

func (o obj) fail(key, want string, v any) {
	if *o.err == nil {
		*o.err = fmt.Errorf("field %s%s: expected %s, got %v", o.path, key, want, v)
	}
}

func (o obj) has(key string) bool { v, ok := o.m[key]; return ok && v != nil }

func (o obj) float(key string, def float64) float64 {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok {
		o.fail(key, "a number", v)
		return def
	}
	return f
}

func (o obj) int(key string, def int) int {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		o.fail(key, "an integer", v)
		return def
	}
	if b, ok := sizeBounds[key]; ok && (f < 1 || f > float64(b)) {
		o.fail(key, fmt.Sprintf("an integer from 1 to %d", b), v)
		return def
	}
	return int(f)
}

// sizeBounds are the largest values reel accepts for the config fields that size a model's
// tensors: several times those of the largest released checkpoints, far below sizes whose
// variables or graphs could not be built. A config outside them is refused before anything is
// built from it.
var sizeBounds = map[string]int{
	"vocab_size": 1 << 22, "hidden_size": 1 << 16, "intermediate_size": 1 << 18, "num_hidden_layers": 1 << 10,
	"num_attention_heads": 1 << 10, "num_key_value_heads": 1 << 10, "head_dim": 1 << 12,
	"max_position_embeddings": 1 << 24, "image_size": 1 << 14, "patch_size": 1 << 10, "num_channels": 16,
	"projection_dim": 1 << 16, "projection_size": 1 << 16,
}

// MinParams is a lower bound on the number of parameters the configured architecture has (the
// token embeddings, one norm per layer, the patch embedding): computed arithmetically, so a
// config can be checked against the tensors a checkpoint's headers declare before any model is
// built at the configured size.
func (c *Config) MinParams() float64 {
	var n float64
	if t := c.Text(); t != nil {
		n += float64(t.VocabSize)*float64(t.Hidden) + float64(t.Layers)*float64(t.Hidden)
	}
	if c.Contrastive != nil {
		t := c.Contrastive.Text
		n += float64(t.VocabSize)*float64(t.Hidden) + float64(t.Layers)*float64(t.Hidden)
	}
	if v := c.VisionTower(); v != nil {
		n += float64(v.Layers)*float64(v.Hidden) + float64(v.Hidden)*float64(v.Channels)*float64(v.PatchSize)*float64(v.PatchSize)
	}
	return n
}

func (o obj) str(key, def string) string {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.fail(key, "a string", v)
		return def
	}
	return s
}

func (o obj) bool(key string, def bool) bool {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		o.fail(key, "true or false", v)
		return def
	}
	return b
}

// ints reads an integer or a list of integers.
func (o obj) ints(key string, def []int) []int {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def
	}
	if f, ok := v.(float64); ok && f == math.Trunc(f) {
		return []int{int(f)}
	}
	list, ok := v.([]any)
	if !ok {
		o.fail(key, "an integer or a list of integers", v)
		return def
	}
	out := make([]int, 0, len(list))
	for _, e := range list {
		f, ok := e.(float64)
		if !ok || f != math.Trunc(f) {
			o.fail(key, "an integer or a list of integers", v)
			return def
		}
		out = append(out, int(f))
	}
	return out
}

func (o obj) strs(key string) []string {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		o.fail(key, "a list of strings", v)
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			o.fail(key, "a list of strings", v)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (o obj) sub(key string) obj {
	v, ok := o.m[key]
	m, isObj := v.(map[string]any)
	if ok && v != nil && !isObj {
		o.fail(key, "an object", v)
	}
	if m == nil {
		m = map[string]any{}
	}
	return obj{m: m, path: o.path + key + ".", err: o.err}
}

// ReadConfig parses DIR/config.json (and DIR/generation_config.json for the end-of-sequence ids).
// Errors name the file and the field.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := safeio.ReadFile(path, safeio.JSONLimit)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("hf: %s: %w (a model directory holds config.json and model.safetensors)", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("hf: %s: invalid JSON: %w", path, err)
	}
	c, err := ParseConfig(m)
	if err != nil {
		return nil, fmt.Errorf("hf: %s: %w", path, err)
	}
	if t := c.Text(); t != nil {
		if err := readGenerationConfig(dir, t); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readGenerationConfig takes bos/eos ids from generation_config.json when it exists.
func readGenerationConfig(dir string, t *models.DecoderConfig) error {
	path := filepath.Join(dir, "generation_config.json")
	data, err := safeio.ReadFile(path, safeio.JSONLimit)
	if err != nil {
		return nil // optional
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("hf: %s: invalid JSON: %w", path, err)
	}
	var perr error
	o := obj{m: m, err: &perr}
	if eos := o.ints("eos_token_id", nil); eos != nil {
		t.EOS = eos
	}
	if bos := o.ints("bos_token_id", nil); bos != nil {
		t.BOS = bos
	}
	if perr != nil {
		return fmt.Errorf("hf: %s: %w", path, perr)
	}
	return nil
}

// ParseConfig builds the configuration of a config.json object. Absent fields take the defaults
// of transformers' configuration classes (configuration_<arch>.py).
func ParseConfig(m map[string]any) (*Config, error) {
	var perr error
	o := obj{m: m, err: &perr}
	c := &Config{ModelType: o.str("model_type", ""), DType: o.str("torch_dtype", o.str("dtype", ""))}
	if archs := o.strs("architectures"); len(archs) > 0 {
		c.Arch = archs[0]
	} else {
		c.Arch = byModelType[c.ModelType]
	}
	kind, ok := Architectures[c.Arch]
	if !ok {
		if c.Arch == "" {
			return nil, fmt.Errorf("field model_type: %q is not an architecture reel implements (%s)", c.ModelType, archList())
		}
		return nil, fmt.Errorf("field architectures: %s is not an architecture reel implements (%s)", c.Arch, archList())
	}
	c.Kind = kind
	if c.ModelType == "" {
		for mt, a := range byModelType {
			if a == c.Arch {
				c.ModelType = mt
			}
		}
	}
	switch c.Arch {
	case "SiglipModel", "CLIPModel":
		arch := "siglip"
		if c.Arch == "CLIPModel" {
			arch = "clip"
		}
		cc := &models.ContrastiveConfig{Arch: arch, ProjectionDim: o.int("projection_dim", 512)}
		cc.Vision = parseVision(o.sub("vision_config"), arch, true)
		cc.Text = parseTextEncoder(o.sub("text_config"), arch)
		if arch == "siglip" && cc.Text.ProjectionSize != cc.Vision.Hidden && perr == nil {
			perr = fmt.Errorf("field text_config.projection_size: %d must equal vision_config.hidden_size %d", cc.Text.ProjectionSize, cc.Vision.Hidden)
		}
		c.Contrastive = cc
	case "SiglipVisionModel", "CLIPVisionModel":
		arch := "siglip"
		if c.Arch == "CLIPVisionModel" {
			arch = "clip"
		}
		vo := o
		if o.has("vision_config") {
			vo = o.sub("vision_config")
		}
		v := parseVision(vo, arch, true)
		c.Vision = &v
	case "PaliGemmaForConditionalGeneration":
		p := &models.PaliGemmaConfig{ImageToken: o.int("image_token_index", o.int("image_token_id", 256000))}
		p.Vision = parseVision(o.sub("vision_config"), "siglip", false)
		to := o.sub("text_config")
		p.Text = parseDecoder(to, to.str("model_type", "gemma"))
		c.PaliGemma = p
	case "LlavaForConditionalGeneration":
		vo := o.sub("vision_config")
		varch := "clip"
		if strings.HasPrefix(vo.str("model_type", "clip_vision_model"), "siglip") {
			varch = "siglip"
		}
		l := &models.LlavaConfig{ImageToken: o.int("image_token_index", o.int("image_token_id", 32000)),
			FeatureLayers:  o.ints("vision_feature_layer", []int{-2}),
			SelectStrategy: o.str("vision_feature_select_strategy", "default"),
			ProjectorAct:   o.str("projector_hidden_act", "gelu"),
			ProjectorBias:  o.bool("multimodal_projector_bias", true)}
		l.Vision = parseVision(vo, varch, false)
		to := o.sub("text_config")
		l.Text = parseDecoder(to, to.str("model_type", "llama"))
		if perr == nil {
			switch {
			case l.SelectStrategy != "default" && l.SelectStrategy != "full":
				perr = fmt.Errorf("field vision_feature_select_strategy: %q (want default or full)", l.SelectStrategy)
			case !models.KnownActivation(l.ProjectorAct):
				perr = fmt.Errorf("field projector_hidden_act: %q is not supported", l.ProjectorAct)
			}
			for _, fl := range l.FeatureLayers {
				if fl < -(l.Vision.Layers+1) || fl > l.Vision.Layers {
					perr = fmt.Errorf("field vision_feature_layer: %d is outside the tower's %d hidden states", fl, l.Vision.Layers+1)
				}
			}
		}
		c.Llava = l
	case "Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration", "Qwen3VLForConditionalGeneration":
		c.QwenVL = parseQwenVL(o, c.Arch)
	case "Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration":
		c.Idefics3 = parseIdefics3(o)
		if perr == nil {
			perr = c.Idefics3.Validate()
		}
	default:
		d := parseDecoder(o, c.ModelType)
		c.Decoder = &d
	}
	if perr != nil {
		return nil, perr
	}
	if t := c.Text(); t != nil {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("text config: %w", err)
		}
	}
	if v := c.VisionTower(); v != nil {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("vision config: %w", err)
		}
		if v.PatchSize <= 0 || v.ImageSize%v.PatchSize != 0 {
			return nil, fmt.Errorf("vision config: image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
		}
	}
	if c.QwenVL != nil {
		if err := c.QwenVL.Validate(); err != nil {
			return nil, err
		}
	}
	if c.Contrastive != nil {
		if err := c.Contrastive.Text.Validate(); err != nil {
			return nil, fmt.Errorf("text config: %w", err)
		}
	}
	return c, nil
}

func archList() string {
	var names []string
	for a := range Architectures {
		names = append(names, a)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// decoderDefaults are the defaults of transformers' LlamaConfig, Qwen2Config, Qwen3Config,
// GemmaConfig, Gemma2Config and Gemma3TextConfig that matter when config.json omits a field.
type decoderDefaults struct {
	vocab, hidden, inter, layers, heads, kv, headDim, maxPos int
	act                                                      string
	tie                                                      bool
	theta                                                    float64
}

var decoderClassDefaults = map[string]decoderDefaults{
	"llama":       {32000, 4096, 11008, 32, 32, 0, 0, 2048, "silu", false, 10000},
	"qwen2":       {151936, 4096, 22016, 32, 32, 32, 0, 32768, "silu", false, 10000},
	"qwen3":       {151936, 4096, 22016, 32, 32, 32, 128, 32768, "silu", false, 10000},
	"gemma":       {256000, 3072, 24576, 28, 16, 16, 256, 8192, "gelu_pytorch_tanh", true, 10000},
	"gemma2":      {256000, 2304, 9216, 26, 8, 4, 256, 8192, "gelu_pytorch_tanh", true, 10000},
	"gemma3_text": {262208, 2304, 9216, 26, 8, 4, 256, 131072, "gelu_pytorch_tanh", true, 1000000},
}

// parseDecoder reads a decoder LM's fields (config.json of a causal LM, or a VLM's text_config).
func parseDecoder(o obj, modelType string) models.DecoderConfig {
	if modelType == "gemma3" { // a Gemma 3 text config inside a multimodal one
		modelType = "gemma3_text"
	}
	def, ok := decoderClassDefaults[modelType]
	if !ok {
		o.fail("model_type", "llama, qwen2, qwen3, gemma, gemma2 or gemma3_text", modelType)
		def = decoderClassDefaults["llama"]
	}
	gemma := strings.HasPrefix(modelType, "gemma")
	c := models.DecoderConfig{Arch: modelType,
		VocabSize: o.int("vocab_size", def.vocab), Hidden: o.int("hidden_size", def.hidden),
		Intermediate: o.int("intermediate_size", def.inter), Layers: o.int("num_hidden_layers", def.layers),
		Heads: o.int("num_attention_heads", def.heads), Eps: o.float("rms_norm_eps", 1e-6),
		TieEmbeddings: o.bool("tie_word_embeddings", def.tie), MaxPositions: o.int("max_position_embeddings", def.maxPos),
		AttnBias: o.bool("attention_bias", false), MLPBias: o.bool("mlp_bias", false),
	}
	kv := def.kv
	if kv == 0 {
		kv = c.Heads
	}
	c.KVHeads = o.int("num_key_value_heads", kv)
	headDim := def.headDim
	if headDim == 0 && c.Heads > 0 {
		headDim = c.Hidden / c.Heads
	}
	c.HeadDim = o.int("head_dim", headDim)
	c.OBias = c.AttnBias
	if modelType == "qwen2" { // Qwen2Attention: bias on q, k, v only
		c.AttnBias, c.OBias = true, false
	}
	if gemma {
		c.Act = o.str("hidden_activation", def.act) // GemmaMLP reads hidden_activation
		c.OffsetNorm = true
	} else {
		c.Act = o.str("hidden_act", def.act)
	}
	switch modelType {
	case "gemma", "gemma2":
		c.ScaleInputs = true
	case "gemma3_text":
		c.ScaleTokens, c.QKNorm = true, true
	case "qwen3": // Qwen3Attention: RMSNorm over each head's queries and keys, before RoPE
		c.QKNorm = true
	}
	// Qwen2Config / Qwen3Config: sliding_window only with use_sliding_window (else None), and then
	// on the layers from max_window_layers on.
	qwenWindow := 0
	if (modelType == "qwen2" || modelType == "qwen3") && o.bool("use_sliding_window", false) {
		if v, ok := o.m["sliding_window"]; !ok || v != nil {
			qwenWindow = o.int("sliding_window", 4096)
		}
	}
	if modelType == "gemma2" || modelType == "gemma3_text" {
		c.SandwichNorm = true
		c.QueryPreAttnScalar = o.float("query_pre_attn_scalar", 256)
		c.SlidingWindow = o.int("sliding_window", 4096)
		capA, capF := 0.0, 0.0
		if modelType == "gemma2" {
			capA, capF = 50, 30
		}
		c.AttnSoftcap = softcap(o, "attn_logit_softcapping", capA)
		c.FinalSoftcap = softcap(o, "final_logit_softcapping", capF)
	}
	c.LayerTypes = o.strs("layer_types")
	if c.LayerTypes == nil {
		c.LayerTypes = make([]string, max(0, c.Layers))
		for i := range c.LayerTypes {
			sliding := false
			switch modelType {
			case "gemma2": // Gemma2Config: every other layer, starting with the first
				sliding = i%2 == 0
			case "gemma3_text": // sliding_window_pattern − 1 local layers, then one global
				sliding = (i+1)%o.int("sliding_window_pattern", 6) != 0
			case "qwen2", "qwen3":
				sliding = qwenWindow > 0 && i >= o.int("max_window_layers", 28)
			}
			c.LayerTypes[i] = "full_attention"
			if sliding {
				c.LayerTypes[i] = "sliding_attention"
			}
		}
	} else if len(c.LayerTypes) != c.Layers {
		o.fail("layer_types", fmt.Sprintf("%d entries (num_hidden_layers)", c.Layers), len(c.LayerTypes))
	}
	if modelType == "qwen2" || modelType == "qwen3" {
		c.SlidingWindow = qwenWindow
	}
	for i, t := range c.LayerTypes {
		if t != "full_attention" && t != "sliding_attention" {
			o.fail(fmt.Sprintf("layer_types[%d]", i), "full_attention or sliding_attention", t)
		}
	}
	c.Rope, c.LocalRope = parseRope(o, c.HeadDim, def.theta, modelType)
	c.EOS = o.ints("eos_token_id", nil)
	c.BOS = o.ints("bos_token_id", nil)
	return c
}

// softcap reads a soft-capping value: absent → the class default, null → none.
func softcap(o obj, key string, def float64) float64 {
	v, ok := o.m[key]
	if !ok {
		return def
	}
	if v == nil {
		return 0
	}
	return o.float(key, def)
}

// parseRope reads the rotary configuration: transformers 4.x rope_theta + rope_scaling (+ Gemma
// 3's rope_local_base_freq), or 5.x rope_parameters (one set, or one per layer type).
func parseRope(o obj, dim int, theta float64, modelType string) (global, local models.Rope) {
	one := func(r obj, theta float64) models.Rope {
		out := models.Rope{Dim: dim, Theta: r.float("rope_theta", theta), Type: r.str("rope_type", r.str("type", "default")),
			Factor: r.float("factor", 1), LowFreqFactor: r.float("low_freq_factor", 1), HighFreqFactor: r.float("high_freq_factor", 4),
			OriginalMax: r.int("original_max_position_embeddings", 8192)}
		if out.Type == "linear" && out.Factor <= 0 {
			r.fail("factor", "a positive number", out.Factor)
		}
		return out
	}
	if o.has("rope_parameters") {
		rp := o.sub("rope_parameters")
		if rp.has("full_attention") || rp.has("sliding_attention") {
			global = one(rp.sub("full_attention"), theta)
			local = one(rp.sub("sliding_attention"), 10000)
			return global, local
		}
		global = one(rp, o.float("rope_theta", theta))
	} else {
		base := o.float("rope_theta", theta)
		global = one(o.sub("rope_scaling"), base)
		global.Theta = base
	}
	if modelType == "gemma3_text" {
		local = models.Rope{Dim: dim, Theta: o.float("rope_local_base_freq", 10000), Type: "default"}
	}
	return global, local
}

// parseVision reads a SigLIP or CLIP vision config (useHead: SigLIP's pooling head as configured;
// VLM towers never run it).
func parseVision(o obj, arch string, useHead bool) models.VisionConfig {
	c := models.VisionConfig{Arch: arch, Channels: o.int("num_channels", 3)}
	if arch == "clip" {
		c.EncoderConfig = models.EncoderConfig{Hidden: o.int("hidden_size", 768), Intermediate: o.int("intermediate_size", 3072),
			Layers: o.int("num_hidden_layers", 12), Heads: o.int("num_attention_heads", 12),
			Eps: o.float("layer_norm_eps", 1e-5), Act: o.str("hidden_act", "quick_gelu")}
		c.ImageSize, c.PatchSize = o.int("image_size", 224), o.int("patch_size", 32)
	} else {
		c.EncoderConfig = models.EncoderConfig{Hidden: o.int("hidden_size", 768), Intermediate: o.int("intermediate_size", 3072),
			Layers: o.int("num_hidden_layers", 12), Heads: o.int("num_attention_heads", 12),
			Eps: o.float("layer_norm_eps", 1e-6), Act: o.str("hidden_act", "gelu_pytorch_tanh")}
		c.ImageSize, c.PatchSize = o.int("image_size", 224), o.int("patch_size", 16)
		c.UseHead = useHead && o.bool("vision_use_head", true)
	}
	return c
}

// parseTextEncoder reads a SigLIP or CLIP text config.
func parseTextEncoder(o obj, arch string) models.TextConfig {
	c := models.TextConfig{Arch: arch}
	if arch == "clip" {
		c.EncoderConfig = models.EncoderConfig{Hidden: o.int("hidden_size", 512), Intermediate: o.int("intermediate_size", 2048),
			Layers: o.int("num_hidden_layers", 12), Heads: o.int("num_attention_heads", 8),
			Eps: o.float("layer_norm_eps", 1e-5), Act: o.str("hidden_act", "quick_gelu")}
		c.VocabSize, c.MaxPositions, c.EOS = o.int("vocab_size", 49408), o.int("max_position_embeddings", 77), o.int("eos_token_id", 49407)
	} else {
		c.EncoderConfig = models.EncoderConfig{Hidden: o.int("hidden_size", 768), Intermediate: o.int("intermediate_size", 3072),
			Layers: o.int("num_hidden_layers", 12), Heads: o.int("num_attention_heads", 12),
			Eps: o.float("layer_norm_eps", 1e-6), Act: o.str("hidden_act", "gelu_pytorch_tanh")}
		c.VocabSize, c.MaxPositions = o.int("vocab_size", 32000), o.int("max_position_embeddings", 64)
		c.ProjectionSize = o.int("projection_size", c.Hidden)
	}
	return c
}

// parseIdefics3 reads Idefics3Config / SmolVLMConfig (configuration_idefics3.py,
// configuration_smolvlm.py): nested vision_config (Idefics3VisionConfig / SmolVLMVisionConfig:
// SigLIP's fields, defaults hidden 1152, patch 32) and text_config (a Llama), scale_factor,
// image_token_id. The head is tied when text_config (else the top level) says
// tie_word_embeddings.
func parseIdefics3(o obj) *models.Idefics3Config {
	c := &models.Idefics3Config{ImageToken: o.int("image_token_id", o.int("image_token_index", 128257)),
		ScaleFactor: o.int("scale_factor", 2)}
	vo := o.sub("vision_config")
	c.Vision = parseVision(vo, "siglip", false)
	if !vo.has("hidden_size") {
		c.Vision.Hidden = 1152
	}
	if !vo.has("patch_size") {
		c.Vision.PatchSize = 32
	}
	if !vo.has("num_attention_heads") {
		c.Vision.Heads = 16
	}
	to := o.sub("text_config")
	c.Text = parseDecoder(to, to.str("model_type", "llama"))
	if !to.has("tie_word_embeddings") {
		c.Text.TieEmbeddings = o.bool("tie_word_embeddings", false)
	}
	return c
}
