package tasks

import (
	"errors"
	"fmt"
	"slices"
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
	grid   models.Grid // one image's image_grid_thw, or one video's video_grid_thw
	video  bool
	prefix []int // the tokens before the question, the image or video block included
	// head and after are prefix's tokens before the block's pads (vision_start last) and after
	// them (vision_end first).
	head, after []int
}

// qwenSecondsPerGrid is a video's second_per_grid_ts: temporal_patch_size / fps with the Qwen-VL
// video processor's default 2 fps (the synthetic clips carry no frame rate).
func (q *qwenPrompt) secondsPerGrid() []float64 {
	return []float64{float64(q.cfg.Vision.TemporalPatch) / 2}
}

// qwenChatQuestion marks the question in the chat template's rendering (a private-use character
// no template writes).
const qwenChatQuestion = "\uE000"

// setupQwen checks a Qwen-VL model against the recipe and lays out its prompt for one image
// (frames 0) or one video of that many frames; a directory's processor sets the normalisation,
// its chat template (if any) the prompt.
func (p *pretrainedVLM) setupQwen(m recipes.ModelConfig, vocab *text.Vocab, frames int) error {
	q := *p.cfg.QwenVL
	v := q.Vision
	unit := v.PatchSize * v.MergeSize
	if v.Channels != 3 || m.ImageSize%unit != 0 {
		return fmt.Errorf("model.image_size: %d must be a multiple of patch_size × spatial_merge_size = %d (RGB)", m.ImageSize, unit)
	}
	g := m.ImageSize / v.PatchSize
	p.qwen = &qwenPrompt{cfg: q, grid: models.Grid{T: 1, H: g, W: g}, video: frames > 0}
	pad, blockText := q.ImageToken, hf.QwenImageBlock
	if frames > 0 {
		if frames%v.TemporalPatch != 0 {
			return fmt.Errorf("model.frames: %d must be a multiple of temporal_patch_size %d", frames, v.TemporalPatch)
		}
		p.qwen.grid.T = frames / v.TemporalPatch
		pad, blockText = q.VideoToken, hf.QwenVideoBlock
	}
	var pads []int
	for range p.qwen.grid.Tokens(v.MergeSize) {
		pads = append(pads, pad)
	}
	setPrefix := func(head, tail []int) {
		p.qwen.head = append(slices.Clone(head), q.VisionStart)
		p.qwen.after = append([]int{q.VisionEnd}, tail...)
		p.qwen.prefix = slices.Concat(p.qwen.head, pads, p.qwen.after)
	}
	if p.random() {
		for _, id := range []int{q.VisionStart, q.VisionEnd, q.ImageToken, q.VideoToken} {
			if id < vocab.Size() || id >= q.Text.VocabSize {
				return fmt.Errorf("model.hf_config: the vision token ids %d, %d, %d, %d must lie in [%d, vocab_size %d), beyond reel's %d-word vocabulary",
					q.VisionStart, q.VisionEnd, q.ImageToken, q.VideoToken, vocab.Size(), q.Text.VocabSize, vocab.Size())
			}
		}
		setPrefix(nil, nil)
		return nil
	}
	pp, err := hf.ReadQwenProcessor(p.dir, v, frames > 0)
	if err != nil {
		return fmt.Errorf("model.pretrained: %w", err)
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
		return fmt.Errorf("model.pretrained: %w", err)
	}
	tmpl, err := text.LoadChatTemplate(p.dir, "")
	if errors.Is(err, text.ErrNoChatTemplate) {
		setPrefix(nil, nil) // the processor's layout without a template: the block first
		return nil
	}
	if err != nil {
		return fmt.Errorf("model.pretrained: %w", err)
	}
	kind := "image"
	if frames > 0 {
		if v.Arch == models.Qwen3VL {
			return fmt.Errorf("model.pretrained: video QA with Qwen3-VL (timestamped frames) is not supported; Qwen2-VL or Qwen2.5-VL")
		}
		kind = "video"
	}
	msgs := fmt.Sprintf(`[{"role": "user", "content": [{"type": %q}, {"type": "text", "text": %q}]}]`, kind, qwenChatQuestion)
	rendered, err := tmpl.RenderJSON([]byte(msgs), true, nil)
	if err != nil {
		return fmt.Errorf("model.pretrained: chat template %s: %w", tmpl.Origin, err)
	}
	before, after, ok := strings.Cut(rendered, qwenChatQuestion)
	if !ok || strings.Contains(after, qwenChatQuestion) || strings.Count(before, blockText) != 1 {
		return fmt.Errorf("model.pretrained: chat template %s: one user turn (%s, question) renders %q: want the block %s once before the question", tmpl.Origin, kind, rendered, blockText)
	}
	head, tail, _ := strings.Cut(before, blockText)
	setPrefix(tok.Encode(head), tok.Encode(tail))
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
	if q.video {
		pos, _ := models.QwenRopeIndex(q.cfg, ids, nil, []models.Grid{q.grid}, q.secondsPerGrid())
		return pos
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
	x := graph.BroadcastToDims(graph.InsertAxes(px, 1), b, v.TemporalPatch, c, h, w)
	return graph.Reshape(QwenVideoPatchRows(x, v), b*(h/v.PatchSize)*(w/v.PatchSize), v.PatchDim())
}

// QwenVideoPatchRows is hf.QwenPatchify for a batch of videos: pixels [B, F, C, H, W]
// (normalised; F a multiple of temporal_patch_size) → pixel_values_videos per video
// [B, (F/T)·(H/P)·(W/P), C·T·P·P].
func QwenVideoPatchRows(px *graph.Node, v models.QwenVisionConfig) *graph.Node {
	d := px.Shape().Dimensions
	b, f, c, h, w := d[0], d[1], d[2], d[3], d[4]
	p, m, t := v.PatchSize, v.MergeSize, v.TemporalPatch
	// [B, F/T, T, C, H/P/m, m, P, W/P/m, m, P] → [B, F/T, bh, bw, ih, iw, C, T, py, px]
	x := graph.Reshape(px, b, f/t, t, c, h/p/m, m, p, w/p/m, m, p)
	x = graph.TransposeAllAxes(x, 0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
	return graph.Reshape(x, b, (f/t)*(h/p)*(w/p), c*t*p*p)
}

// imageTokens is the number of merged tokens of the image or video.
func (q *qwenPrompt) imageTokens() int { return q.grid.Tokens(q.cfg.Vision.MergeSize) }
