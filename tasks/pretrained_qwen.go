package tasks

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/core/graph"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
)

// Qwen-VL (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) as a task's model.pretrained VLM. A task's images are
// already model.image_size square, a multiple of patch_size × spatial_merge_size, which
// Qwen2VLImageProcessor's smart_resize leaves as they are (within min/max_pixels); each image is
// repeated to temporal_patch_size frames and cut into patch rows in the graph (hf.QwenPatchify's
// order), one image_grid_thw (1, S/P, S/P) per example. The prompt is a fixed prefix holding
// the image block, then the question and answer:
//   - a directory with a chat template: the template's rendering of one user turn (the image,
//     then the question; transformers' apply_chat_template with add_generation_prompt), the
//     rendered text before the question with its image block expanded to one image_pad per merged
//     token as the prefix, the question, the text after it (the assistant's header), the answer
//     and the tokenizer's end-of-sequence token (Qwen's <|im_end|>);
//   - otherwise (random weights, reel's vocabulary): vision_start, the image pads, vision_end,
//     then reel's question/answer layout.
//
// The M-RoPE positions (get_rope_index) are those of this layout; since the prefix is the same in
// every example and the text after it counts up on all three axes, they are one constant.

// qwenPrompt is the fixed part of a Qwen-VL VQA prompt.
type qwenPrompt struct {
	cfg    models.QwenVLConfig
	grid   models.Grid // one image's image_grid_thw
	prefix []int       // the tokens before the question, the image block included
}

// qwenChatQuestion marks the question in the chat template's rendering (a private-use character
// no template writes).
const qwenChatQuestion = "\uE000"

// setupQwen checks a Qwen-VL model against the recipe and lays out its prompt; a directory's
// processor sets the normalisation, its chat template (if any) the prompt.
func (p *pretrainedVLM) setupQwen(m recipes.ModelConfig, vocab *text.Vocab) error {
	q := *p.cfg.QwenVL
	v := q.Vision
	unit := v.PatchSize * v.MergeSize
	if v.Channels != 3 || m.ImageSize%unit != 0 {
		return fmt.Errorf("model.image_size: %d must be a multiple of patch_size × spatial_merge_size = %d (RGB)", m.ImageSize, unit)
	}
	g := m.ImageSize / v.PatchSize
	p.qwen = &qwenPrompt{cfg: q, grid: models.Grid{T: 1, H: g, W: g}}
	block := make([]int, 0, p.qwen.grid.Tokens(v.MergeSize)+2)
	block = append(block, q.VisionStart)
	for range p.qwen.grid.Tokens(v.MergeSize) {
		block = append(block, q.ImageToken)
	}
	block = append(block, q.VisionEnd)
	if p.random() {
		for _, id := range []int{q.VisionStart, q.VisionEnd, q.ImageToken, q.VideoToken} {
			if id < vocab.Size() || id >= q.Text.VocabSize {
				return fmt.Errorf("model.hf_config: the vision token ids %d, %d, %d, %d must lie in [%d, vocab_size %d), beyond reel's %d-word vocabulary",
					q.VisionStart, q.VisionEnd, q.ImageToken, q.VideoToken, vocab.Size(), q.Text.VocabSize, vocab.Size())
			}
		}
		p.qwen.prefix = block
		return nil
	}
	pp, err := hf.ReadQwenProcessor(p.dir, v, false)
	if err != nil {
		return fmt.Errorf("model.pretrained: %v", err)
	}
	if pp.DoNormalize {
		copy(p.mean[:], pp.ImageMean)
		copy(p.std[:], pp.ImageStd)
	}
	if px := m.ImageSize * m.ImageSize; px < pp.MinPixels || px > pp.MaxPixels {
		return fmt.Errorf("model.image_size: %d×%d pixels lie outside the processor's [min_pixels %d, max_pixels %d]: smart_resize would resize them",
			m.ImageSize, m.ImageSize, pp.MinPixels, pp.MaxPixels)
	}
	tok, err := text.Load(p.dir)
	if err != nil {
		return fmt.Errorf("model.pretrained: %v", err)
	}
	tmpl, err := text.LoadChatTemplate(p.dir, "")
	if errors.Is(err, text.ErrNoChatTemplate) {
		p.qwen.prefix = block // the processor's layout without a template: the image block first
		return nil
	}
	if err != nil {
		return fmt.Errorf("model.pretrained: %v", err)
	}
	msgs := fmt.Sprintf(`[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": %q}]}]`, qwenChatQuestion)
	rendered, err := tmpl.RenderJSON([]byte(msgs), true, nil)
	if err != nil {
		return fmt.Errorf("model.pretrained: chat template %s: %v", tmpl.Origin, err)
	}
	before, after, ok := strings.Cut(rendered, qwenChatQuestion)
	if !ok || strings.Contains(after, qwenChatQuestion) || strings.Count(before, hf.QwenImageBlock) != 1 {
		return fmt.Errorf("model.pretrained: chat template %s: one user turn (image, question) renders %q: want the image block %s once before the question", tmpl.Origin, rendered, hf.QwenImageBlock)
	}
	head, tail, _ := strings.Cut(before, hf.QwenImageBlock)
	prefix := append(tok.Encode(head), block...)
	if tail != "" {
		prefix = append(prefix, tok.Encode(tail)...)
	}
	p.qwen.prefix = prefix
	p.encode = chatQA(tok, tok.Encode(after))
	return nil
}

// chatQA encodes the text after a chat prompt's prefix: the question, the template's text after
// it (suffix: the user turn's end and the assistant's header), the answer and the tokenizer's
// end-of-sequence token, padded; the mask as data.EncodeQA lays it out (the targets of the
// answer's tokens and of the EOS).
func chatQA(tok text.Tokenizer, suffix []int) data.QAEncoder {
	sp := tok.Special()
	pad := max(sp.Pad, 0)
	return func(q, a string, maxLen int) ([]int32, []int32, []float32, error) {
		if sp.EOS < 0 {
			return nil, nil, nil, fmt.Errorf("model.pretrained: the tokenizer has no end-of-sequence token")
		}
		prompt := append(tok.Encode(q), suffix...)
		seq := append(append(prompt, tok.Encode(a)...), sp.EOS)
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
		for i := len(prompt) - 1; i < len(seq)-1; i++ {
			mask[i] = 1
		}
		return x, y, mask, nil
	}
}

// positions are get_rope_index's M-RoPE positions [3][len(prefix)+l] of the prefix followed by l
// text tokens.
func (q *qwenPrompt) positions(l int) [3][]int {
	ids := append(append([]int(nil), q.prefix...), make([]int, l)...)
	for i := len(q.prefix); i < len(ids); i++ {
		ids[i] = -1 // text: neither a vision nor a placeholder token
	}
	pos, _ := models.QwenRopeIndex(q.cfg, ids, []models.Grid{q.grid}, nil, nil)
	return pos
}

// inputs are the forward pass's inputs for a batch: the prefix before tokens [B, L], the pixels
// (normalised images [B, 3, S, S]) as patch rows, the grids and the positions.
func (q *qwenPrompt) inputs(px, tokens *graph.Node) hf.Inputs {
	g := tokens.Graph()
	b, l := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
	n := len(q.prefix)
	pre := make([]int32, n)
	for i, id := range q.prefix {
		pre[i] = int32(id)
	}
	ids := graph.Concatenate([]*graph.Node{graph.BroadcastToDims(graph.Const(g, [][]int32{pre}), b, n), tokens}, 1)
	pos := q.positions(l)
	flat := make([]int32, 0, 3*(n+l))
	for _, axis := range pos {
		for _, p := range axis {
			flat = append(flat, int32(p))
		}
	}
	positions := graph.BroadcastToDims(graph.Reshape(graph.Const(g, flat), 3, 1, n+l), 3, b, n+l)
	grids := make([]models.Grid, b)
	for i := range grids {
		grids[i] = q.grid
	}
	return hf.Inputs{IDs: ids, Pixels: QwenPatchRows(px, q.cfg.Vision), Positions: positions, ImageGrids: grids}
}

// QwenPatchRows is the graph form of hf.QwenPatchify for a batch of images: pixels
// [B, C, H, W] (normalised) → pixel_values [B·(H/P)·(W/P), C·T·P·P], each image repeated to
// temporal_patch_size frames, the rows of each image in the processor's order (merge_size ×
// merge_size neighbours consecutive) and the images one after another.
func QwenPatchRows(px *graph.Node, v models.QwenVisionConfig) *graph.Node {
	d := px.Shape().Dimensions
	b, c, h, w := d[0], d[1], d[2], d[3]
	p, m, t := v.PatchSize, v.MergeSize, v.TemporalPatch
	x := graph.BroadcastToDims(graph.InsertAxes(px, 2), b, c, t, h, w)
	// [B, C, T, H/P/m, m, P, W/P/m, m, P] → [B, bh, bw, ih, iw, C, T, py, px]
	x = graph.Reshape(x, b, c, t, h/p/m, m, p, w/p/m, m, p)
	x = graph.TransposeAllAxes(x, 0, 3, 6, 4, 7, 1, 2, 5, 8)
	return graph.Reshape(x, b*(h/p)*(w/p), c*t*p*p)
}

// qwenImageTokens is the number of merged image tokens of one image.
func (q *qwenPrompt) imageTokens() int { return q.grid.Tokens(q.cfg.Vision.MergeSize) }
