package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/models"
)

// The models `reel bench finetune --model` builds with random weights. pi0 is openpi's pi0 at its
// real size (Pi0Config in Physical-Intelligence/openpi src/openpi/models/pi0_config.py:
// paligemma_variant gemma_2b, action_expert_variant gemma_300m; the PaliGemma-3B of
// google/paligemma-3b-pt-224's config.json: SigLIP So400m/14 at 224 px, Gemma-2B; the expert
// 1024 wide with MLP 4096, openpi gemma.py get_config("gemma_300m")), horizon 50, 48 instruction
// tokens: 3.3 B parameters, as pi0.5 (its expert differs only by the time-conditioning MLP).
// pi0-small is the same network at the PaliGemma benchmark size of FinetuneModel: the one the
// remat and LoRA effects are measured on a CPU with.

// Pi0PaliGemma3B is PaliGemma-3B's configuration (google/paligemma-3b-pt-224 config.json, the
// keys reel reads).
const Pi0PaliGemma3B = `{"architectures": ["PaliGemmaForConditionalGeneration"], "model_type": "paligemma",
 "image_token_index": 257152, "projection_dim": 2048,
 "vision_config": {"model_type": "siglip_vision_model", "image_size": 224, "patch_size": 14,
                   "hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                   "num_attention_heads": 16, "vision_use_head": false},
 "text_config": {"model_type": "gemma", "vocab_size": 257216, "hidden_size": 2048, "intermediate_size": 16384,
                 "num_hidden_layers": 18, "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256,
                 "max_position_embeddings": 8192}}`

// FinetuneShape is a model of `reel bench finetune --model`: the recipe it trains and what
// replaces the recipe's model.
type FinetuneShape struct {
	Recipe    string
	HFConfig  string
	ImageSize int
	Sets      []string // recipe overrides (the pi0 expert, horizon, instruction length)
	ExpertDim int      // pi0: the action expert's width and MLP (0: not a pi0)
	ExpertMLP int
}

// FinetuneShapes are the models of `reel bench finetune --model`. SmolVLA (≈ 450 M: SmolVLM2's
// first 16 layers and an interleaved cross-/self-attention expert) joins here as "smolvla" with
// its family: the recipe smolvla-tiny with its real configuration, as pi0 uses pi0-tiny.
var FinetuneShapes = map[string]FinetuneShape{
	"paligemma": {Recipe: "", HFConfig: FinetuneModel, ImageSize: 64},
	"pi0": {Recipe: "pi0-tiny", HFConfig: Pi0PaliGemma3B, ImageSize: 224, ExpertDim: 1024, ExpertMLP: 4096,
		Sets: []string{"policy.expert_dim=1024", "policy.expert_mlp=4096", "policy.horizon=50", "policy.execute=25", "model.max_text_len=48"}},
	"pi0-small": {Recipe: "pi0-tiny", HFConfig: FinetuneModel, ImageSize: 64, ExpertDim: 96, ExpertMLP: 384,
		Sets: []string{"policy.expert_dim=96", "policy.expert_mlp=384", "policy.horizon=50", "policy.execute=25", "model.max_text_len=12"}},
}

// finetuneShape returns the shape named m, or one error line listing them.
func finetuneShape(m string) (FinetuneShape, error) {
	if s, ok := FinetuneShapes[m]; ok {
		return s, nil
	}
	var names []string
	for n := range FinetuneShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := ""
	if m == "smolvla" || m == "pi05" {
		hint = fmt.Sprintf(" (%s is not in this build: its family adds its shape to bench.FinetuneShapes)", m)
	}
	return FinetuneShape{}, fmt.Errorf("bench finetune: --model %q: want one of %s%s", m, strings.Join(names, ", "), hint)
}

// Pi0Params counts a pi0's parameters by part, in closed form from its configuration (what the
// graph creates: SigLIP without its pooling head, the projector, Gemma with its embeddings and no
// lm_head, the expert without embeddings, the five projections of pi0's suffix).
func Pi0Params(pg models.PaliGemmaConfig, expertDim, expertMLP int) map[string]int64 {
	v, t := pg.Vision, pg.Text
	H, I := int64(v.Hidden), int64(v.Intermediate)
	P, N := int64(v.PatchSize), int64(v.NumPatches())
	vision := 3*P*P*H + H + N*H + 2*H // patch embedding, positions, post_layernorm
	vision += int64(v.Layers) * (4*H + 4*(H*H+H) + H*I + I + I*H + H)
	D := int64(t.Hidden)
	q, kv := int64(t.Heads*t.HeadDim), int64(t.KVHeads*t.HeadDim)
	layer := func(w, mlp int64) int64 { return 2*w + w*q + 2*w*kv + q*w + 3*w*mlp }
	text := int64(t.VocabSize)*D + int64(t.Layers)*layer(D, int64(t.Intermediate)) + D
	E := int64(expertDim)
	expert := int64(t.Layers)*layer(E, int64(expertMLP)) + E
	pad := int64(models.Pi0PadDim)
	heads := 2*(pad*E+E) + (2*E*E + E) + (E*E + E) + (E*pad + pad)
	return map[string]int64{"vision": vision, "projector": H*D + D, "gemma": text, "expert": expert, "suffix": heads}
}

// Pi0State is the model state of a pi0 shape in closed form (no activations): its parameters,
// and the bytes of weights, gradients and AdamW's two moments in a full fine-tune and of the
// frozen base in a LoRA fine-tune, as reel keeps them (parameters f32 also under bf16 mixed
// precision) and as a bf16-parameter trainer keeps them (LeRobot's and openpi's dtype bfloat16:
// bf16 weights and gradients, f32 moments).
type Pi0State struct {
	Params           map[string]int64 `json:"params"`
	Total            int64            `json:"params_total"`
	FullF32GiB       float64          `json:"full_f32_gib"`       // 16 B/param: f32 weights, gradients, AdamW m and v
	FullBF16GiB      float64          `json:"full_bf16_gib"`      // 12 B/param: bf16 weights and gradients, f32 m and v
	LoRABaseF32GiB   float64          `json:"lora_base_f32_gib"`  // 4 B/param: the frozen base in f32
	LoRABaseBF16GiB  float64          `json:"lora_base_bf16_gib"` // 2 B/param: the frozen base in bf16
	InferenceF32GiB  float64          `json:"inference_f32_gib"`
	InferenceBF16GiB float64          `json:"inference_bf16_gib"`
}

// Pi0StateOf computes Pi0State for shape s.
func Pi0StateOf(s FinetuneShape) (Pi0State, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s.HFConfig), &m); err != nil {
		return Pi0State{}, err
	}
	c, err := hf.ParseConfig(m)
	if err != nil {
		return Pi0State{}, err
	}
	if c.PaliGemma == nil || s.ExpertDim == 0 {
		return Pi0State{}, fmt.Errorf("not a pi0 shape")
	}
	st := Pi0State{Params: Pi0Params(*c.PaliGemma, s.ExpertDim, s.ExpertMLP)}
	for _, n := range st.Params {
		st.Total += n
	}
	gib := func(bytes int64) float64 { return float64(st.Total*bytes) / (1 << 30) }
	st.FullF32GiB, st.FullBF16GiB = gib(16), gib(12)
	st.LoRABaseF32GiB, st.LoRABaseBF16GiB = gib(4), gib(2)
	st.InferenceF32GiB, st.InferenceBF16GiB = gib(4), gib(2)
	return st, nil
}

// WritePi0State prints st as `reel bench finetune` does before measuring a pi0 shape.
func WritePi0State(w io.Writer, st Pi0State) {
	var parts []string
	for _, k := range []string{"vision", "projector", "gemma", "expert", "suffix"} {
		parts = append(parts, fmt.Sprintf("%s %.1fM", k, float64(st.Params[k])/1e6))
	}
	fmt.Fprintf(w, "model state (closed form, no activations): %.3fB parameters (%s)\n", float64(st.Total)/1e9, strings.Join(parts, ", "))
	fmt.Fprintf(w, "  full fine-tune, AdamW: %.1f GiB with f32 parameters (reel), %.1f GiB with bf16 weights and gradients\n", st.FullF32GiB, st.FullBF16GiB)
	fmt.Fprintf(w, "  LoRA: frozen base %.1f GiB in f32 (reel), %.1f GiB in bf16, plus the adapters and what else trains\n", st.LoRABaseF32GiB, st.LoRABaseBF16GiB)
}
