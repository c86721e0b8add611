package tasks

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
)

// setupQwen checks a Qwen2-VL / Qwen2.5-VL model.pretrained against a videoqa recipe: STTS after
// tower block model.score_after on merge groups (models.QwenVisionTowerSTTS), model.group the
// tower's spatial_merge_size, model.frames a multiple of temporal_patch_size giving at least two
// temporal patches (STTS scores each against the previous one).
func (t *VideoQA) setupQwen(pre *pretrainedVLM) error {
	m := t.r.Model
	q := pre.cfg.QwenVL
	v := q.Vision
	switch {
	case v.Arch == models.Qwen3VL:
		return fmt.Errorf("model.pretrained: STTS in the tower of Qwen3-VL (DeepStack, timestamped frames) is not supported; Qwen2-VL or Qwen2.5-VL")
	case m.Group != v.MergeSize:
		return fmt.Errorf("model.group: %d must equal spatial_merge_size %d (STTS keeps or prunes whole merge groups)", m.Group, v.MergeSize)
	case m.Frames%v.TemporalPatch != 0 || m.Frames/v.TemporalPatch < 2:
		return fmt.Errorf("model.frames: %d must be a multiple of temporal_patch_size %d giving ≥ 2 temporal patches", m.Frames, v.TemporalPatch)
	case m.ScoreAfter < 0 || m.ScoreAfter >= v.Depth:
		return fmt.Errorf("model.score_after: %d must be in [0, depth %d)", m.ScoreAfter, v.Depth)
	}
	if err := pre.setupQwen(m, t.vocab, m.Frames); err != nil {
		return err
	}
	t.pre = pre
	if pre.encode != nil {
		t.encode = pre.encode
	}
	if n := len(pre.qwen.prefix) + m.MaxTextLen; q.Text.MaxPositions > 0 && n > q.Text.MaxPositions {
		return fmt.Errorf("model.max_text_len: %d prompt-prefix (%d video) + %d text tokens exceed max_position_embeddings %d",
			len(pre.qwen.prefix), pre.qwen.imageTokens(), m.MaxTextLen, q.Text.MaxPositions)
	}
	return nil
}

// qwenForward runs the Qwen-VL video QA forward pass with the selector's pruning inside the tower.
func (t *VideoQA) qwenForward(scope *model.Scope, sel *pruning.Selector, b VideoQABatch) (logits, aux *Node) {
	q := t.pre.qwen
	px := QwenVideoPatchRows(t.pre.normalize(b.Video), q.cfg.Vision) // [B, T·H·W, C·T·P·P]
	l := b.Tokens.Shape().Dimensions[1]
	logits, _, aux = models.QwenVLSTTS(scope, q.cfg, sel.TokenSelector(), models.QwenVLSTTSInputs{Patches: px, Grid: q.grid,
		ScoreAfter: t.r.Model.ScoreAfter, Head: q.head, After: q.after, Tokens: b.Tokens, Positions: q.positions(l)})
	return logits, aux
}
