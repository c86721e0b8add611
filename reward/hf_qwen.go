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
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/text"
)

// TOPReward on a Qwen-VL directory (Qwen3-VL, Qwen2.5-VL, Qwen2-VL) as LeRobot's port runs it
// (huggingface/lerobot src/lerobot/rewards/topreward/{configuration,processor,modeling}_topreward.py,
// defaults; TOPReward, arXiv:2602.19313):
//   - frames: the last QwenMaxFrames frames of the clip, as one video with fps QwenFPS as its
//     metadata (do_sample_frames=False: no resampling);
//   - prompt (add_chat_template=False): the chat template's rendering of one user turn holding the
//     video then QwenPromptPrefix, without the generation prompt, cut at the end-of-sequence token
//     that closes the turn, then QwenPromptSuffix with the instruction — whose last token is
//     "True";
//   - reward: log-softmax of the logits at the second-to-last position, read at the last token
//     (modeling_topreward.py's -cross_entropy(logits[:, -2], labels[:, -1])).
//
// Where it differs: the port cuts the rendering at the first end-of-sequence token, which for
// Qwen2.5-VL's template (a default system turn first) would drop the video; here the cut is at the
// first one after the video. Frames are resized by smart_resize with the video processor's pixel
// bounds (Qwen2-VL's video processor), also for Qwen3-VL, whose processor bounds the whole
// video's pixels instead.

// TOPReward's defaults in LeRobot's port (configuration_topreward.py).
const (
	QwenMaxFrames    = 16
	QwenFPS          = 2.0
	QwenPromptPrefix = "The above video shows a robot manipulation trajectory that completes the following task: "
	QwenPromptSuffix = "%s Decide whether the above statement is True or not. The answer is: True"
)

// HFQwen is TOPReward on a Qwen-VL directory (see above).
type HFQwen struct {
	m       *hf.Model
	backend compute.Backend
	tok     text.Tokenizer
	proc    *hf.QwenProcessor
	head    string // the rendered prompt up to the prefix's end (the video block included)

	mu    sync.Mutex
	execs map[string]*model.Exec // by the video grid and the sequence length
}

// OpenHFQwen loads a Qwen-VL directory as a TOPReward model: its weights, tokenizer, chat template
// and video processor.
func OpenHFQwen(backend compute.Backend, dir string) (*HFQwen, error) {
	m, err := hf.Load(backend, dir)
	if err != nil {
		return nil, err
	}
	if m.Config.QwenVL == nil {
		return nil, fmt.Errorf("%s: %s is not a Qwen-VL model", dir, m.Config.Arch)
	}
	tok, err := text.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: the prompt needs the model's tokenizer: %w", dir, err)
	}
	proc, err := hf.ReadQwenProcessor(dir, m.Config.QwenVL.Vision, true)
	if err != nil {
		return nil, err
	}
	tmpl, err := text.LoadChatTemplate(dir, "")
	if err != nil {
		return nil, fmt.Errorf("%s: TOPReward's prompt needs the model's chat template: %w", dir, err)
	}
	msgs := fmt.Sprintf(`[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": %q}]}]`, QwenPromptPrefix)
	rendered, err := tmpl.RenderJSON([]byte(msgs), false, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: chat template %s: %w", dir, tmpl.Origin, err)
	}
	eos := tmpl.Special["eos_token"]
	v := strings.Index(rendered, hf.QwenVideoBlock)
	if v < 0 || eos == "" {
		return nil, fmt.Errorf("%s: chat template %s: a user turn with a video renders %q: want %s and an eos_token after it", dir, tmpl.Origin, rendered, hf.QwenVideoBlock)
	}
	head := rendered
	if e := strings.Index(rendered[v:], eos); e >= 0 {
		head = rendered[:v+e]
	}
	answer := tok.Encode(" True")
	if len(answer) == 0 {
		return nil, fmt.Errorf("%s: the tokenizer encodes %q as no tokens", dir, " True")
	}
	return &HFQwen{m: m, backend: backend, tok: tok, proc: proc, head: head, execs: map[string]*model.Exec{}}, nil
}

// Close implements Model.
func (h *HFQwen) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, e := range h.execs {
		e.Finalize()
		delete(h.execs, k)
	}
}

// Prompt is the text of a clip's prompt before the video block's expansion: the chat head and the
// instruction's suffix.
func (h *HFQwen) Prompt(instruction string) string {
	return h.head + fmt.Sprintf(QwenPromptSuffix, instruction)
}

// Inputs are a clip's forward-pass inputs: the prompt's ids (the video block expanded as the
// processor does), the video's patches, grid and seconds per grid.
func (h *HFQwen) Inputs(c Clip) (hf.RunInputs, error) {
	fr := c.Frames
	if len(fr) == 0 {
		return hf.RunInputs{}, fmt.Errorf("reward: a clip with no frames")
	}
	fr = fr[max(0, len(fr)-QwenMaxFrames):]
	w, hh := fr[0].W, fr[0].H
	frames := make([][]uint8, len(fr))
	for i, im := range fr {
		if err := im.Check(); err != nil {
			return hf.RunInputs{}, err
		}
		if im.W != w || im.H != hh {
			return hf.RunInputs{}, fmt.Errorf("reward: frame %d is %d×%d, the first %d×%d", i, im.W, im.H, w, hh)
		}
		frames[i] = make([]uint8, len(im.Pix))
		for j, x := range im.Pix {
			frames[i][j] = uint8(math.Round(float64(min(max(x, 0), 1)) * 255))
		}
	}
	px, grid, err := h.proc.Patches(frames, w, hh)
	if err != nil {
		return hf.RunInputs{}, fmt.Errorf("reward: %w", err)
	}
	sec := []float64{float64(h.proc.TemporalPatch) / QwenFPS}
	ids, err := h.m.QwenPromptIDs(h.tok, h.Prompt(strings.TrimSpace(c.Instruction)), nil, []models.Grid{grid}, sec)
	if err != nil {
		return hf.RunInputs{}, err
	}
	return hf.RunInputs{Tokens: [][]int{ids}, VideoPixels: px, VideoGrids: []models.Grid{grid}, SecondsPerGrid: sec}, nil
}

// LogPTrue implements Model: one forward pass per clip, returning only the log-softmax at the
// second-to-last position, read at the last token ("True").
func (h *HFQwen) LogPTrue(clips []Clip) ([]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]float64, len(clips))
	for i, c := range clips {
		in, err := h.Inputs(c)
		if err != nil {
			return nil, fmt.Errorf("reward: clip %d: %w", i, err)
		}
		if err := h.m.CheckInputs(in); err != nil {
			return nil, fmt.Errorf("reward: clip %d: %w", i, err)
		}
		ids := in.Tokens[0]
		if mp := h.m.Config.QwenVL.Text.MaxPositions; mp > 0 && len(ids) > mp {
			return nil, fmt.Errorf("reward: clip %d: %d prompt tokens exceed max_position_embeddings %d", i, len(ids), mp)
		}
		g := in.VideoGrids[0]
		key := fmt.Sprintf("%d×%d×%d/%d", g.T, g.H, g.W, len(ids))
		exec := h.execs[key]
		if exec == nil {
			if exec, err = h.buildExec(in.VideoGrids); err != nil {
				return nil, err
			}
			h.execs[key] = exec
		}
		pos, _ := h.m.QwenPositions(in)
		res, err := exec.Exec(hf.IntTensor(in.Tokens), tensors.FromFlatDataAndDimensions(pos, 3, 1, len(ids)), in.VideoPixels)
		if err != nil {
			return nil, err
		}
		lp := tensors.MustCopyFlatData[float32](res[0])
		out[i] = float64(lp[ids[len(ids)-1]])
	}
	return out, nil
}

func (h *HFQwen) buildExec(grids []models.Grid) (*model.Exec, error) {
	cfg := h.m.Config
	return model.NewExecCanonical(h.backend, h.m.Store, func(scope *model.Scope, g *model.Graph, nodes []*model.Node) []*model.Node {
		logits := hf.Forward(scope, cfg, hf.Inputs{IDs: nodes[0], Positions: nodes[1], VideoPixels: nodes[2], VideoGrids: grids}).Logits
		l := logits.Shape().Dimensions[1]
		// The logits at position l−2 predict the last token.
		return []*model.Node{graph.LogSoftmax(graph.Reshape(graph.Slice(logits, graph.AxisRange(), graph.AxisRange(l-2, l-1), graph.AxisRange()), -1), -1)}
	}, -1, -1, false, true, true)
}
