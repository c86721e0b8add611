package tasks

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
)

// ExeVRM on Qwen3-VL (model.pretrained: a Qwen3-VL directory, or random with model.hf_config), as
// the paper fine-tunes Qwen3-VL-8B (limenlp/ExeVRM qwen3vl.yaml) with its spatiotemporal token
// pruning (pruning.method spatiotemporal; none keeps every token):
//
//   - the clip is one video of model.frames keyframes, temporal_patch_size frames per temporal
//     patch, laid out as Qwen3-VL's processor does: per temporal patch "<t seconds>" (a directory's
//     tokenizer only; the keyframes taken as 1 fps, qwen3vl.yaml's video_fps; t the mean time of
//     the patch's frames as
//     Qwen3VLProcessor._calculate_timestamps), vision_start, one video_pad per merged token,
//     vision_end; then the question and the answer ("true" / "false"): reel's vocabulary for
//     random weights, the directory's tokenizer otherwise ([BOS] question "\n" answer EOS; the
//     chat template is not applied);
//   - the pruning unit is a merged token (one decoder token): its raw pixels are its
//     (patch·merge)² pixel block; the paper's rules (pruning.SpatiotemporalKeep: uniform regions,
//     unchanged since the last kept) run on each raw frame and a temporal patch keeps the tokens
//     either of its frames keeps (qwen3vl.yaml: use_raw_frames_in_stp, "runs STP on each raw
//     temporal frame and ORs the keep masks"); a clip that would keep nothing keeps its first token;
//   - the pruned tokens are hidden as keys in the tower and the decoder at unchanged positions
//     (models.Qwen3VLKeep), which gives the outputs of removing them; every clip of a batch keeps
//     its own number of tokens.
type exeVRMQwen struct {
	pre    *pretrainedVLM
	prompt qwenPrompt
	encode data.QAEncoder
	prune  bool // pruning.method spatiotemporal
	m      recipes.ModelConfig
}

// exeVRMQwenBatch is the graph side of exeVRMQwen.inputs.
type exeVRMQwenBatch struct {
	Video   *Node // [B, F, S, S, 3] float32 in [0, 1]
	Tokens  *Node // [B, L] int32: question and answer, teacher-forced
	Targets *Node // [B, L] int32
	Mask    *Node // [B, L] float32: the answer's targets
	Keep    *Node // [B, tokens] bool: the merged video tokens kept
}

func newExeVRMQwen(r *recipes.Recipe, vocab *text.Vocab) (*exeVRMQwen, error) {
	m := r.Model
	pre, err := loadPretrainedVLM(m, vocab)
	if err != nil {
		return nil, err
	}
	if pre.cfg.QwenVL == nil || pre.cfg.QwenVL.Vision.Arch != models.Qwen3VL {
		return nil, fmt.Errorf("model.pretrained: task exevrm runs a Qwen3-VL reward model (Qwen3VLForConditionalGeneration), not %s", pre.cfg.Arch)
	}
	switch r.Pruning.Method {
	case "spatiotemporal", "none":
	default:
		return nil, fmt.Errorf("pruning.method: %q with a Qwen3-VL reward model: want spatiotemporal (the paper's rules) or none", r.Pruning.Method)
	}
	q := *pre.cfg.QwenVL
	v := q.Vision
	unit := v.PatchSize * v.MergeSize
	switch {
	case m.ImageSize%unit != 0:
		return nil, fmt.Errorf("model.image_size: %d must be a multiple of patch_size × spatial_merge_size = %d", m.ImageSize, unit)
	case m.Frames%v.TemporalPatch != 0:
		return nil, fmt.Errorf("model.frames: %d must be a multiple of temporal_patch_size %d", m.Frames, v.TemporalPatch)
	}
	t := &exeVRMQwen{pre: pre, prune: r.Pruning.Method == "spatiotemporal", m: m, encode: pre.encode}
	g := m.ImageSize / v.PatchSize
	t.prompt = qwenPrompt{cfg: q, grid: models.Grid{T: m.Frames / v.TemporalPatch, H: g, W: g}, video: true}
	var stamp func(sec float64) []int
	if pre.random() {
		for _, id := range []int{q.VisionStart, q.VisionEnd, q.VideoToken} {
			if id < vocab.Size() || id >= q.Text.VocabSize {
				return nil, fmt.Errorf("model.hf_config: the vision token ids %d, %d, %d must lie in [%d, vocab_size %d), beyond reel's %d-word vocabulary",
					q.VisionStart, q.VisionEnd, q.VideoToken, vocab.Size(), q.Text.VocabSize, vocab.Size())
			}
		}
		t.encode = data.VocabQA(vocab)
	} else {
		pp, err := hf.ReadQwenProcessor(pre.dir, v, true)
		if err != nil {
			return nil, fmt.Errorf("model.pretrained: %w", err)
		}
		if pp.DoNormalize {
			copy(pre.mean[:], pp.ImageMean)
			copy(pre.std[:], pp.ImageStd)
		}
		tok, err := text.Load(pre.dir)
		if err != nil {
			return nil, fmt.Errorf("model.pretrained: %w", err)
		}
		stamp = func(sec float64) []int { return tok.Encode(fmt.Sprintf("<%.1f seconds>", sec)) }
	}
	per := t.prompt.grid.Tokens(v.MergeSize) / t.prompt.grid.T
	for k := range t.prompt.grid.T {
		if stamp != nil { // keyframes k·T … k·T+T−1 at 1 fps (qwen3vl.yaml's video_fps): the mean of the first and last times
			first, last := float64(k*v.TemporalPatch), float64(k*v.TemporalPatch+v.TemporalPatch-1)
			t.prompt.prefix = append(t.prompt.prefix, stamp((first+last)/2)...)
		}
		t.prompt.prefix = append(t.prompt.prefix, q.VisionStart)
		for range per {
			t.prompt.prefix = append(t.prompt.prefix, q.VideoToken)
		}
		t.prompt.prefix = append(t.prompt.prefix, q.VisionEnd)
	}
	if n := len(t.prompt.prefix) + m.MaxTextLen; q.Text.MaxPositions > 0 && n > q.Text.MaxPositions {
		return nil, fmt.Errorf("model.max_text_len: %d video-prompt + %d text tokens exceed max_position_embeddings %d", len(t.prompt.prefix), m.MaxTextLen, q.Text.MaxPositions)
	}
	return t, nil
}

// keep applies the paper's rules to each clip's merged tokens (all kept without pruning).
func (t *exeVRMQwen) keep(videos [][]float32) [][]bool {
	v := t.prompt.cfg.Vision
	side, tp := v.PatchSize*v.MergeSize, v.TemporalPatch
	out := make([][]bool, len(videos))
	for i, clip := range videos {
		if !t.prune {
			out[i] = slices.Repeat([]bool{true}, t.prompt.imageTokens())
			continue
		}
		// ExeVRM's qwen3vl.yaml (use_raw_frames_in_stp): the rules run on each raw frame and a
		// temporal patch keeps a token that either of its frames keeps.
		per := pruning.SpatiotemporalKeep(pruning.RawPatches(clip, t.m.Frames, t.m.ImageSize, side), t.m.ImageSize/side, pruning.DefaultSpatiotemporal())
		k := make([]bool, 0, t.prompt.imageTokens())
		for f := 0; f < len(per); f += tp {
			for gi := range per[f] {
				kept := false
				for j := range tp {
					kept = kept || per[f+j][gi]
				}
				k = append(k, kept)
			}
		}
		if !slices.Contains(k, true) {
			k[0] = true
		}
		out[i] = k
	}
	return out
}

// inputs lays out clips (each Frames×S×S×3) and question/answer pairs.
func (t *exeVRMQwen) inputs(videos [][]float32, qa [][2]string) ([]*tensors.Tensor, error) {
	b, L := len(videos), t.m.MaxTextLen
	pix := t.m.Frames * t.m.ImageSize * t.m.ImageSize * 3
	video := make([]float32, b*pix)
	tok, tgt, msk := make([]int32, b*L), make([]int32, b*L), make([]float32, b*L)
	for i, v := range videos {
		copy(video[i*pix:], v)
		x, y, mm, err := t.encode(qa[i][0], qa[i][1], L)
		if err != nil {
			return nil, err
		}
		copy(tok[i*L:], x)
		copy(tgt[i*L:], y)
		copy(msk[i*L:], mm)
	}
	keep := slices.Concat(t.keep(videos)...)
	s := t.m.ImageSize
	return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(video, b, t.m.Frames, s, s, 3), tensors.FromFlatDataAndDimensions(tok, b, L),
		tensors.FromFlatDataAndDimensions(tgt, b, L), tensors.FromFlatDataAndDimensions(msk, b, L),
		tensors.FromFlatDataAndDimensions(keep, b, t.prompt.imageTokens())}, nil
}

// forward is the Qwen3-VL's logits [B, L, V] at the text positions (after the video prompt).
func (t *exeVRMQwen) forward(scope *model.Scope, b exeVRMQwenBatch) *Node {
	q := &t.prompt
	g := b.Tokens.Graph()
	d := b.Tokens.Shape().Dimensions
	bs, l := d[0], d[1]
	n := len(q.prefix)
	pre := make([]int32, n)
	for i, id := range q.prefix {
		pre[i] = int32(id)
	}
	ids := Concatenate([]*Node{BroadcastToDims(Const(g, [][]int32{pre}), bs, n), b.Tokens}, 1)
	var flat []int32
	for _, axis := range q.positions(l) {
		for _, p := range axis {
			flat = append(flat, int32(p))
		}
	}
	positions := BroadcastToDims(Reshape(Const(g, flat), 3, 1, n+l), 3, bs, n+l)
	px := QwenVideoPatchRows(t.pre.normalize(b.Video), q.cfg.Vision)
	logits := models.Qwen3VLKeep(scope, q.cfg, models.Qwen3VLKeepInputs{Patches: px, Grid: q.grid, Keep: b.Keep,
		IDs: ids, Positions: positions})
	return Slice(logits, AxisRange(0, bs), AxisRange(n, n+l))
}

// InitVariables implements train.Initializer: a Qwen3-VL directory's weights (nothing for
// reel's own model or random weights).
func (t *ExeVRM) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if t.qwen == nil {
		return 0, "", nil
	}
	return t.qwen.pre.initVariables(backend, store)
}
