package reward

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/text"
)

// HFMaxFrames is how many frames of a prefix a LLaVA checkpoint sees, evenly spaced from its
// first to its last frame (fewer when the context cannot hold them).
const HFMaxFrames = 8

// HFPrompt is TOPReward's question, after the frames; %s is the instruction.
const HFPrompt = " The task is: %s. Is the task complete? Answer True or False."

// HFAnswer is the answer whose log-probability is the reward.
const HFAnswer = "True"

// HF is TOPReward on a pretrained Hugging Face VLM directory (PaliGemma or LLaVA, with its
// tokenizer.json): log p("True") after the frames and HFPrompt, summed over the answer's tokens
// when the tokenizer splits it (the TOPReward port, huggingface/lerobot
// src/lerobot/rewards/topreward/modeling_topreward.py, reads its single last token).
//
// LLaVA sees up to HFMaxFrames frames of the prefix, each an "<image>" before the question.
// PaliGemma takes one image: the prefix's last frame. PaliGemma's answer is its suffix (token
// type 1, after the prompt's "\n"); LLaVA's follows the prompt after a space. No chat template
// is applied.
type HF struct {
	m       *hf.Model
	backend compute.Backend
	tok     text.Tokenizer
	pre     *hf.Preprocessor
	answer  []int

	mu   sync.Mutex
	exec *model.Exec
}

// OpenPretrained loads a pretrained VLM directory as TOPReward: a Qwen-VL (OpenHFQwen), otherwise a
// PaliGemma or LLaVA (OpenHF).
func OpenPretrained(backend compute.Backend, dir string) (Model, error) {
	cfg, err := hf.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg.QwenVL != nil {
		return OpenHFQwen(backend, dir)
	}
	return OpenHF(backend, dir)
}

// OpenHF loads a pretrained PaliGemma or LLaVA directory as a reward model.
func OpenHF(backend compute.Backend, dir string) (*HF, error) {
	m, err := hf.Load(backend, dir)
	if err != nil {
		return nil, err
	}
	if m.Config.PaliGemma == nil && m.Config.Llava == nil {
		return nil, fmt.Errorf("%s: %s is not a video-capable VLM (PaliGemma, LLaVA or Qwen-VL)", dir, m.Config.Arch)
	}
	tok, err := text.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: the prompt needs the model's tokenizer: %w", dir, err)
	}
	pre, err := hf.ReadPreprocessor(dir, m.Config.VisionTower().ImageSize)
	if err != nil {
		return nil, err
	}
	h := &HF{m: m, backend: backend, tok: tok, pre: pre}
	sep := " "
	if m.Config.PaliGemma != nil {
		sep = ""
	}
	h.answer = tok.Encode(sep + HFAnswer)
	if len(h.answer) == 0 {
		return nil, fmt.Errorf("%s: the tokenizer encodes %q as no tokens", dir, HFAnswer)
	}
	vocab := m.Config.Text().VocabSize
	for _, id := range h.answer {
		if id < 0 || id >= vocab {
			return nil, fmt.Errorf("%s: the tokenizer's id %d for %q is outside the model's vocabulary [0, %d)", dir, id, HFAnswer, vocab)
		}
	}
	return h, nil
}

// Close implements Model.
func (h *HF) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exec != nil {
		h.exec.Finalize()
		h.exec = nil
	}
}

// frames picks the frames of a clip the model sees (see HF).
func (h *HF) frames(c Clip) []policy.Image {
	n := len(c.Frames)
	k := 1
	if h.m.Config.Llava != nil {
		k = min(HFMaxFrames, n)
		if maxPos := h.m.Config.Text().MaxPositions; maxPos > 0 {
			k = max(1, min(k, (maxPos-64)/h.m.Config.ImageTokens()))
		}
	}
	out := make([]policy.Image, k)
	for i := range k { // evenly spaced over the prefix, the first and the last frame included
		j := n - 1
		if k > 1 {
			j = int(math.Round(float64(i) * float64(n-1) / float64(k-1)))
		}
		out[i] = c.Frames[j]
	}
	return out
}

// inputs are the token ids (prompt then answer), PaliGemma's token types and the pixels of a clip.
func (h *HF) inputs(c Clip) ([]int, []int, *tensors.Tensor, error) {
	fr := h.frames(c)
	prompt := fmt.Sprintf(HFPrompt, strings.TrimRight(c.Instruction, ". "))
	if h.m.Config.Llava != nil {
		prompt = strings.Repeat(hf.ImagePlaceholder, len(fr)) + prompt
	} else {
		prompt = strings.TrimSpace(prompt)
	}
	ids, err := h.m.PromptIDs(h.tok, prompt, len(fr))
	if err != nil {
		return nil, nil, nil, err
	}
	types := make([]int, len(ids), len(ids)+len(h.answer))
	ids = append(ids, h.answer...)
	for range h.answer {
		types = append(types, 1)
	}
	v := h.m.Config.VisionTower()
	per := v.Channels * v.ImageSize * v.ImageSize
	pix := make([]float32, 0, len(fr)*per)
	for _, im := range fr {
		if err := im.Check(); err != nil {
			return nil, nil, nil, err
		}
		rgb := make([]uint8, len(im.Pix))
		for i, x := range im.Pix {
			rgb[i] = uint8(math.Round(float64(min(max(x, 0), 1)) * 255))
		}
		pix = append(pix, tensors.MustCopyFlatData[float32](h.pre.PixelValues(rgb, im.W, im.H))...)
	}
	return ids, types, tensors.FromFlatDataAndDimensions(pix, len(fr), v.Channels, v.ImageSize, v.ImageSize), nil
}

// LogPTrue implements Model: one forward pass per clip (clips differ in length), each returning
// only the log-softmax at the answer's positions.
func (h *HF) LogPTrue(clips []Clip) ([]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exec == nil {
		if err := h.buildExec(); err != nil {
			return nil, err
		}
	}
	out := make([]float64, len(clips))
	for i, c := range clips {
		if len(c.Frames) == 0 {
			return nil, fmt.Errorf("reward: clip %d has no frames", i)
		}
		ids, types, pixels, err := h.inputs(c)
		if err != nil {
			return nil, err
		}
		in := hf.RunInputs{Tokens: [][]int{ids}, Pixels: pixels}
		if h.m.Config.PaliGemma != nil {
			in.TokenTypes = [][]int{types}
		}
		if err := h.m.CheckInputs(in); err != nil {
			return nil, fmt.Errorf("reward: clip %d: %w", i, err)
		}
		args := []any{hf.IntTensor([][]int{ids}), pixels}
		if h.m.Config.PaliGemma != nil {
			args = append(args, hf.IntTensor([][]int{types}))
		}
		res, err := h.exec.Exec(args...)
		if err != nil {
			return nil, err
		}
		lp := tensors.MustCopyFlatData[float32](res[0]) // [1, len(answer), V]
		vocab := len(lp) / len(h.answer)
		for k, id := range h.answer {
			out[i] += float64(lp[k*vocab+id])
		}
	}
	return out, nil
}

func (h *HF) buildExec() (err error) {
	cfg, a := h.m.Config, len(h.answer)
	h.exec, err = model.NewExecCanonical(h.backend, h.m.Store, func(scope *model.Scope, g *model.Graph, nodes []*model.Node) []*model.Node {
		in := hf.Inputs{IDs: nodes[0], Pixels: nodes[1]}
		if len(nodes) > 2 {
			in.TokenTypes = nodes[2]
		}
		logits := hf.Forward(scope, cfg, in).Logits
		l := logits.Shape().Dimensions[1]
		// The logits at position p predict token p+1: the answer's tokens sit at l−a … l−1.
		return []*model.Node{graph.LogSoftmax(graph.Slice(logits, graph.AxisRange(), graph.AxisRange(l-a-1, l-1), graph.AxisRange()), -1)}
	}, -1, -1, false, true, true)
	return err
}
