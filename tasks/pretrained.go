package tasks

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
)

// pretrainedVLM is a task's model.pretrained Hugging Face VLM (tasks vqa and videoqa): its
// configuration, its processor's image normalisation and, for a directory, its tokenizer.
type pretrainedVLM struct {
	dir       string // "random": model.hf_config with random weights
	cfg       *hf.Config
	mean, std [3]float64
	// encode and word are the directory's tokenizer (nil for random weights: reel's vocabulary).
	encode data.QAEncoder
	word   func(id int) string
	// qwen is a Qwen-VL model's prompt layout (nil for the other architectures).
	qwen *qwenPrompt
}

// loadPretrainedVLM reads model.pretrained / model.hf_config: the config (a directory's
// config.json, or the inline JSON for random weights), and a directory's tokenizer and
// preprocessor_config.json. vocab is the task's own vocabulary, which random weights use: the text
// vocab_size must exceed it.
func loadPretrainedVLM(m recipes.ModelConfig, vocab *text.Vocab) (*pretrainedVLM, error) {
	p := &pretrainedVLM{dir: m.Pretrained, mean: [3]float64{0.5, 0.5, 0.5}, std: [3]float64{0.5, 0.5, 0.5}}
	var err error
	if p.cfg, err = pretrainedConfig(m); err != nil {
		return nil, err
	}
	if m.Pretrained != "random" {
		if p.encode, p.word, err = tokenizerQA(m.Pretrained); err != nil {
			return nil, err
		}
		if v := p.cfg.VisionTower(); v != nil {
			pp, err := hf.ReadPreprocessor(m.Pretrained, v.ImageSize)
			if err != nil {
				return nil, fmt.Errorf("model.pretrained: %w", err)
			}
			if pp.DoNormalize {
				copy(p.mean[:], pp.ImageMean)
				copy(p.std[:], pp.ImageStd)
			}
		}
	}
	c := p.cfg
	if c.Kind != hf.KindVLM {
		return nil, fmt.Errorf("model.pretrained: %s is not a VLM (PaliGemma, LLaVA or Qwen-VL)", c.Arch)
	}
	if c.QwenVL != nil { // the caller lays out the prompt (setupQwen)
		return p, nil
	}
	if v := c.VisionTower(); v.ImageSize != m.ImageSize || v.Channels != 3 {
		return nil, fmt.Errorf("model.image_size: %d must equal the vision tower's image_size %d (RGB)", m.ImageSize, v.ImageSize)
	}
	if n := c.Text().VocabSize; m.Pretrained == "random" && n <= vocab.Size() {
		return nil, fmt.Errorf("model.hf_config: vocab_size %d must exceed reel's %d-word vocabulary", n, vocab.Size())
	}
	return p, nil
}

// pretrainedConfig is the Hugging Face config of model.pretrained: a directory's config.json, or
// for 'random' the inline model.hf_config.
func pretrainedConfig(m recipes.ModelConfig) (*hf.Config, error) {
	if m.Pretrained == "random" {
		if m.HFConfig == "" {
			return nil, fmt.Errorf("model.hf_config: required with model.pretrained: random (the config.json of the architecture, as JSON)")
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(m.HFConfig), &raw); err != nil {
			return nil, fmt.Errorf("model.hf_config: invalid JSON: %w", err)
		}
		c, err := hf.ParseConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("model.hf_config: %w", err)
		}
		return c, nil
	}
	if m.HFConfig != "" {
		return nil, fmt.Errorf("model.hf_config: only with model.pretrained: random (a directory brings its config.json)")
	}
	c, err := hf.ReadConfig(m.Pretrained)
	if err != nil {
		return nil, fmt.Errorf("model.pretrained: %w", err)
	}
	return c, nil
}

// random reports whether the model has random weights (model.pretrained: random).
func (p *pretrainedVLM) random() bool { return p.dir == "random" }

// normalize maps images [..., H, W, 3] in [0, 1] to the processor's normalised pixels, channels
// first: [..., 3, H, W] (transformers' pixel_values).
func (p *pretrainedVLM) normalize(images *graph.Node) *graph.Node {
	g := images.Graph()
	r := images.Rank()
	mean := graph.Const(g, []float32{float32(p.mean[0]), float32(p.mean[1]), float32(p.mean[2])})
	std := graph.Const(g, []float32{float32(p.std[0]), float32(p.std[1]), float32(p.std[2])})
	px := graph.Div(graph.Sub(images, graph.ExpandLeftToRank(mean, r)), graph.ExpandLeftToRank(std, r))
	perm := make([]int, r)
	for i := range r - 3 {
		perm[i] = i
	}
	perm[r-3], perm[r-2], perm[r-1] = r-1, r-3, r-2
	return graph.TransposeAllAxes(px, perm...)
}

// initVariables loads the directory's weights into store (nothing for random weights).
func (p *pretrainedVLM) initVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if p.random() {
		return 0, "", nil
	}
	m, err := hf.Load(backend, p.dir)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	n, err := m.CopyInto(store)
	return n, p.dir, err
}

// tokenizerQA encodes questions and answers with the tokenizer of a pretrained directory: [BOS]
// question "\n" answer EOS, padded, the answer mask as data.EncodeQA lays it out (PaliGemma's
// prompt format: the "\n" ends the prefix); word decodes one token.
func tokenizerQA(dir string) (encode data.QAEncoder, word func(id int) string, err error) {
	tok, err := text.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("model.pretrained: %w", err)
	}
	sp := tok.Special()
	if sp.EOS < 0 {
		return nil, nil, fmt.Errorf("model.pretrained: %s: the tokenizer has no end-of-sequence token", dir)
	}
	pad := max(sp.Pad, 0)
	encode = func(q, a string, maxLen int) (_, _ []int32, _ []float32, err error) {
		defer text.RecoverTimeout(&err)
		var prompt []int
		if sp.BOS >= 0 {
			prompt = append(prompt, sp.BOS)
		}
		prompt = append(prompt, tok.Encode(q+"\n")...)
		ans := tok.Encode(a)
		seq := append(append(prompt, ans...), sp.EOS)
		if len(seq) > maxLen {
			return nil, nil, nil, fmt.Errorf("question+answer need %d tokens, more than model.max_text_len=%d: %q -> %q", len(seq), maxLen, q, a)
		}
		x, y, mask := make([]int32, maxLen), make([]int32, maxLen), make([]float32, maxLen)
		for i := range x {
			x[i] = int32(pad)
			if i < len(seq) {
				x[i] = int32(seq[i])
			}
		}
		copy(y, x[1:])
		y[maxLen-1] = int32(pad)
		for i := len(prompt) - 1; i < len(seq)-1; i++ { // y[i] is an answer token or the EOS
			mask[i] = 1
		}
		return x, y, mask, nil
	}
	word = func(id int) string { return strings.TrimSpace(tok.Decode([]int{id})) }
	return encode, word, nil
}
