package hf

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// Summary describes a model directory for `reel hf inspect`.
type Summary struct {
	Dir         string         `json:"dir"`
	Arch        string         `json:"architecture"`
	Kind        string         `json:"kind"`
	ModelType   string         `json:"model_type"`
	Layout      string         `json:"layout"`
	Files       []string       `json:"files"`
	ConfigDType string         `json:"config_dtype,omitempty"`
	DTypes      map[string]int `json:"stored_dtypes"` // tensors per stored dtype
	Params      int            `json:"params"`
	Towers      []Tower        `json:"towers"`
	Tokenizer   string         `json:"tokenizer"`
	ImageToken  int            `json:"image_token_index,omitempty"`
	ImageTokens int            `json:"image_tokens,omitempty"`
	Image       string         `json:"image_preprocessing,omitempty"`
	Mapping     []Param        `json:"mapping"`
	Ignored     []string       `json:"ignored,omitempty"`
}

// Tower is one part of the model and its parameter count.
type Tower struct {
	Name    string `json:"name"`
	Prefix  string `json:"prefix"` // transformers 5.x name prefix
	Params  int    `json:"params"`
	Tensors int    `json:"tensors"`
}

// towerOf names the part of the model a (5.x) tensor name belongs to.
func towerOf(name string) (tower, prefix string) {
	for _, t := range [][2]string{
		{"vision tower", "model.vision_tower."}, {"projector", "model.multi_modal_projector."},
		{"vision tower", "model.visual."},
		{"language model", "model.language_model."}, {"vision tower", "vision_model."}, {"text tower", "text_model."},
		{"output head", "lm_head."}, {"projections", "visual_projection."}, {"projections", "text_projection."},
		{"vision tower", "model.vision_model."}, {"connector", "model.connector."}, {"language model", "model.text_model."}, // Idefics3
		{"language model", "model."},
	} {
		if strings.HasPrefix(name, t[1]) {
			return t[0], t[1]
		}
	}
	return "other", ""
}

// Summarize describes a matched model (from Inspect or Load).
func (m *Model) Summarize() Summary {
	cfg := m.Config
	s := Summary{Dir: m.Dir, Arch: cfg.Arch, Kind: cfg.Kind, ModelType: cfg.ModelType, Layout: m.Layout, Files: m.Files,
		ConfigDType: cfg.DType, DTypes: map[string]int{}, Params: m.NumParams(), Mapping: m.Params, Ignored: m.Ignored,
		Tokenizer: tokenizerFiles(m.Dir)}
	idx := map[string]int{}
	for _, p := range m.Params {
		s.DTypes[p.DType]++
		name, prefix := towerOf(p.Name)
		i, ok := idx[name]
		if !ok {
			i = len(s.Towers)
			idx[name] = i
			s.Towers = append(s.Towers, Tower{Name: name, Prefix: prefix})
		}
		s.Towers[i].Params += shapes.Make(dtypes.Float32, p.Shape...).Size()
		s.Towers[i].Tensors++
	}
	if cfg.Kind == KindVLM {
		s.ImageToken, s.ImageTokens = cfg.ImageToken(), cfg.ImageTokens()
	}
	describe := func(p interface{ Describe() string }, err error) {
		if err != nil {
			s.Image = err.Error()
		} else {
			s.Image = p.Describe()
		}
	}
	switch v := cfg.VisionTower(); {
	case cfg.QwenVL != nil:
		describe(ReadQwenProcessor(m.Dir, cfg.QwenVL.Vision, false))
	case v != nil && cfg.Idefics3 != nil:
		describe(ReadIdefics3Processor(m.Dir, v.ImageSize))
	case v != nil:
		describe(ReadPreprocessor(m.Dir, v.ImageSize))
	}
	return s
}

// tokenizerFiles names the tokenizer files of a model directory.
func tokenizerFiles(dir string) string {
	var found []string
	for _, f := range []string{"tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return "none (no tokenizer.json or tokenizer.model)"
	}
	return strings.Join(found, ", ")
}
