package models

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Token pruning in Qwen3-VL (qwen3vl.go) for a batch of videos of one grid, as ExeVRM prunes
// (Song et al., "Video-Based Reward Modeling for Computer-Use Agents", arXiv:2603.10178; its
// spatiotemporal rules in package pruning): "kept tokens keep original position IDs". The unit
// pruned is a merged token (one decoder token: merge × merge patches of one temporal patch).
//
// Two ways, with the same outputs (TestQwen3VLKeepHidingIsRemoving):
//
//   - removal (Rows): the tower and the decoder run on the kept tokens only, each patch with its
//     learned position embedding and 2-D rotary position from the unpruned grid, attention within
//     its temporal patch among the kept ones, the decoder on the sequence without the pruned
//     placeholders at the kept tokens' unpruned M-RoPE positions. The kept set is static: one
//     graph per pruning, so it suits one video at a time;
//   - hiding (Keep): every token runs, and a pruned one is hidden as a key in every attention
//     layer of the tower and the decoder (it still sees itself, so that its own row stays finite;
//     nothing reads it). The kept set is a graph input: a batch of videos that keep different
//     numbers of tokens runs in one graph of fixed shapes, which training needs — the pruned
//     tokens still cost their compute.
//
// transformers has no pruning: with every token kept both equal Qwen3VLForConditionalGeneration
// (QwenVL) on the same video.

// Qwen3VLKeepInputs are a batch of one-video prompts, every video of grid Grid.
type Qwen3VLKeepInputs struct {
	// Patches [B, N, C·T·P·P]: each example's pixel_values_videos (N = Grid.Patches(), or the
	// patches of the Rows tokens, in processor order).
	Patches *Node
	Grid    Grid
	// Rows (removal) lists the merged tokens (processor order) Patches holds; nil: all of them.
	Rows []int
	// Keep (hiding) [B, len(Rows) or Grid.Tokens] bool marks the tokens the other tokens may
	// attend to; nil: all.
	Keep      *Node
	IDs       *Node // [B, L] int32, one video placeholder per token of Patches
	Positions *Node // [3, B, L] int32 M-RoPE positions (QwenRopeIndex's, the removed tokens' dropped)
}

// Qwen3VLKeep is the Qwen3-VL forward pass on pruned videos: logits [B, L, V]. Variables as QwenVL's.
func Qwen3VLKeep(scope *model.Scope, cfg QwenVLConfig, in Qwen3VLKeepInputs) *Node {
	if cfg.Vision.Arch != Qwen3VL {
		panic(fmt.Sprintf("models: Qwen3VLKeep needs a Qwen3-VL configuration, not %q", cfg.Vision.Arch))
	}
	scope = WithInit(scope)
	m := scope.At("model")
	dec := m.In("language_model")
	x := DecoderEmbed(dec, cfg.Text, in.IDs, dtypes.Float32)
	f, deep := Qwen3VisionTowerKeep(m.In("visual"), cfg.Vision, in.Patches, in.Grid, in.Rows, in.Keep)
	x = ScatterImageFeatures(x, in.IDs, f, cfg.VideoToken)
	var terms []*Node
	for _, d := range deep {
		terms = append(terms, ScatterImageFeatures(ZerosLike(x), in.IDs, d, cfg.VideoToken))
	}
	var keys *Node
	if in.Keep != nil {
		keys = placeholderKeep(in.IDs, in.Keep, cfg.VideoToken)
	}
	cos, sin := MRopeCosSin(cfg.Text.Rope, cfg.MRopeBands(), in.Positions)
	h := DecoderRotaryKeys(dec, cfg.Text, x, cos, sin, keys, DeepstackAfter(terms))
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h)
}

// placeholderKeep is keys [B, L] (bool): keep [B, G]'s entry at each placeholder token (the
// placeholders of a row in order), true elsewhere.
func placeholderKeep(ids, keep *Node, token int) *Node {
	d := ids.Shape().Dimensions
	b, l := d[0], d[1]
	g := keep.Shape().Dimensions[1]
	is := Equal(ids, Scalar(ids.Graph(), ids.DType(), token))
	idx := CumSum(ConvertDType(is, dtypes.Int32), 1)                // [B, L]: 1 + the placeholder's index
	idx = MinScalar(MaxScalar(AddScalar(idx, -1), 0), float64(g-1)) // clamped for the other tokens
	row := Mul(Iota(ids.Graph(), shapes.Make(dtypes.Int32, b, l), 0), Scalar(ids.Graph(), dtypes.Int32, g))
	k := Gather(Reshape(keep, b*g), InsertAxes(Reshape(Add(row, idx), b*l), -1))
	return LogicalOr(LogicalNot(is), Reshape(k, b, l))
}

// Qwen3VisionTowerKeep is Qwen3VisionTower for a batch of videos of one grid, patches
// [B, N, C·T·P·P] of the merged tokens rows (nil: all; see Qwen3VLKeepInputs), keep [B, tokens]
// (bool, or nil) hiding tokens as keys: the merged features [B, tokens, OutHidden] and the
// DeepStack features, each [B, tokens, OutHidden].
func Qwen3VisionTowerKeep(scope *model.Scope, cfg QwenVisionConfig, patches *Node, grid Grid, rows []int, keep *Node) (*Node, []*Node) {
	g := patches.Graph()
	unit := cfg.MergeSize * cfg.MergeSize
	if rows == nil {
		for i := range grid.Tokens(cfg.MergeSize) {
			rows = append(rows, i)
		}
	}
	d := patches.Shape().Dimensions
	b, n := d[0], d[1]
	if n != len(rows)*unit {
		panic(fmt.Sprintf("models: %d patch rows per video for %d merged tokens of %d patches", n, len(rows), unit))
	}
	// The patch rows of the kept tokens in the unpruned grid.
	idx := make([]int32, 0, n)
	frame := make([]int32, 0, n)
	perFrame := grid.H * grid.W
	for _, r := range rows {
		for j := range unit {
			p := r*unit + j
			idx = append(idx, int32(p))
			frame = append(frame, int32(p/perFrame))
		}
	}
	sel := func(x *Node) *Node { return Gather(x, InsertAxes(Const(g, idx), -1)) } // rows of [N_full, …]
	hd := cfg.Hidden / cfg.Heads
	proj := scope.In("patch_embed").In("proj")
	w := proj.VariableWithShape("weight", shapes.Make(patches.DType(), cfg.Hidden, cfg.Channels, cfg.TemporalPatch, cfg.PatchSize, cfg.PatchSize)).NodeValue(g)
	bias := proj.VariableWithShape("bias", shapes.Make(patches.DType(), cfg.Hidden)).NodeValue(g)
	x := DotGeneral(Reshape(patches, b*n, cfg.PatchDim()), []int{1}, nil, Reshape(w, cfg.Hidden, cfg.PatchDim()), []int{1}, nil)
	x = Reshape(Add(x, InsertAxes(bias, 0)), b, n, cfg.Hidden)
	x = Add(x, InsertAxes(sel(qwen3PosEmbed(scope.In("pos_embed"), cfg, []Grid{grid}, g, x)), 0))

	var flat []float32
	freqs := qwenVisionRotary(cfg, []Grid{grid})
	for _, p := range idx {
		flat = append(append(flat, freqs[p]...), freqs[p]...)
	}
	emb := Reshape(Const(g, flat), 1, n, hd)
	cos, sin := Cos(emb), Sin(emb)
	mask := SegmentMask(g, frame) // [1, n, n]: within one temporal patch
	if keep != nil {
		keys := Reshape(BroadcastToDims(InsertAxes(keep, -1), b, len(rows), unit), b, 1, n)
		self := InsertAxes(Equal(Iota(g, shapes.Make(dtypes.Int32, n, n), 0), Iota(g, shapes.Make(dtypes.Int32, n, n), 1)), 0)
		mask = LogicalAnd(BroadcastToDims(mask, b, n, n), LogicalOr(BroadcastToDims(keys, b, n, n), BroadcastToDims(self, b, n, n)))
	}
	seg := visionSegments{Mask: mask}
	blocks, deepScope := scope.In("blocks"), scope.In("deepstack_merger_list")
	merged := func(s *model.Scope, x *Node, post bool) *Node {
		return Reshape(qwen3Merger(s, cfg, Reshape(x, b*n, cfg.Hidden), post), b, len(rows), cfg.OutHidden)
	}
	var deep []*Node
	for i := range cfg.Depth {
		x = Remat(x, func(x *Node) *Node { return qwen3VisionBlock(blocks.In("%d", i), cfg, x, cos, sin, seg) })
		if k := slices.Index(cfg.DeepstackIndexes, i); k >= 0 {
			deep = append(deep, merged(deepScope.In("%d", k), x, true))
		}
	}
	return merged(scope.In("merger"), x, false), deep
}
