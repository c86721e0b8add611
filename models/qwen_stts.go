package models

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// STTS ("Unified Spatio-Temporal Token Scoring for Efficient Video VLMs", Zhang et al.,
// arXiv:2603.18004) inside the vision tower of Qwen2-VL / Qwen2.5-VL (qwen2vl.go, qwen2_5vl.go),
// for a batch of videos of one grid (T temporal patches of H × W patches).
//
// Where it scores and prunes: after tower block ScoreAfter, on merge groups — the
// spatial_merge_size² patches that the patch merger concatenates into one decoder token. Scoring
// per patch and pruning single patches would leave groups the merger cannot complete; pruning
// whole groups inside the tower means the blocks after the scorer, the merger and the decoder all
// see only the kept groups, one decoder token each: the paper's "prune in the ViT and the LLM"
// with the tower's own token unit. The selector pools each group (its raster-order patch grid of
// each temporal patch, as for the SigLIP towers), scores it against the same group of the previous
// temporal patch, biases block ScoreAfter's keys by the log-score, and keeps the top groups (those
// of the first temporal patch always), in the processor's order.
//
// How the tower runs on them: every patch keeps its 2-D rotary position, and attention stays
// within what it was in transformers — the patch's temporal patch in full-attention blocks, its
// window (Qwen2.5-VL's window_size windows of merge groups) in the others — as masks over the kept
// patches rather than transformers' cu_seqlens and window permutation (attention is
// order-independent given the masks and rotary positions, so with every group kept this equals
// QwenVisionTower). The kept tokens keep their M-RoPE positions in the decoder: the video's
// (t, h, w) positions of the kept groups, and the text after the video where it would be with the
// whole video (pruned positions are removed, not renumbered, as the STTS paper keeps positions).

// qwenGroupTables are the per-merge-group constants of one grid: each group's rotary embedding of
// its patches [G, unit, head_dim], its temporal patch and its attention window.
type qwenGroupTables struct {
	emb            [][]float32 // [G][unit·hd]
	frame, window  []int32     // [G]
	groups, unit   int
	hd             int
	perFrameGroups int
}

func newQwenGroupTables(cfg QwenVisionConfig, grid Grid) qwenGroupTables {
	unit := cfg.MergeSize * cfg.MergeSize
	hd := cfg.Hidden / cfg.Heads
	freqs := qwenVisionRotary(cfg, []Grid{grid}) // [Np][hd/2], processor order
	per := (grid.H / cfg.MergeSize) * (grid.W / cfg.MergeSize)
	t := qwenGroupTables{groups: grid.T * per, unit: unit, hd: hd, perFrameGroups: per}
	for gi := range t.groups {
		row := make([]float32, 0, unit*hd)
		for j := range unit {
			f := freqs[gi*unit+j]
			row = append(append(row, f...), f...) // cat(rotary, rotary)
		}
		t.emb = append(t.emb, row)
		t.frame = append(t.frame, int32(gi/per))
	}
	t.window = slices.Clone(t.frame)
	if cfg.Arch == Qwen25VL {
		order, lengths := qwenWindowIndex(cfg, []Grid{grid})
		at := 0
		for w, l := range lengths {
			for range l / unit {
				t.window[order[at]] = int32(w)
				at++
			}
		}
	}
	return t
}

// patchMask is the attention mask [B, K·unit, K·unit] of the patches of the groups idx [B, K]
// (int32): a patch sees the patches whose group has the same segment (seg: per group).
func (t qwenGroupTables) patchMask(idx *Node, seg []int32) *Node {
	g := idx.Graph()
	d := idx.Shape().Dimensions
	b, k := d[0], d[1]
	s := Gather(Const(g, seg), InsertAxes(idx, -1)) // [B, K]
	s = Reshape(BroadcastToDims(InsertAxes(s, -1), b, k, t.unit), b, k*t.unit)
	n := k * t.unit
	return Equal(BroadcastToDims(InsertAxes(s, 2), b, n, n), BroadcastToDims(InsertAxes(s, 1), b, n, n))
}

// rotary is the cos and sin [B, K·unit, hd] of the patches of the groups idx [B, K].
func (t qwenGroupTables) rotary(idx *Node) (cos, sin *Node) {
	g := idx.Graph()
	d := idx.Shape().Dimensions
	flat := make([]float32, 0, t.groups*t.unit*t.hd)
	for _, r := range t.emb {
		flat = append(flat, r...)
	}
	table := Reshape(Const(g, flat), t.groups, t.unit*t.hd)
	emb := Reshape(Gather(table, InsertAxes(idx, -1)), d[0], d[1]*t.unit, t.hd)
	return Cos(emb), Sin(emb)
}

// QwenVisionTowerSTTS is QwenVisionTower for a batch of videos patches [B, T·H·W, C·T·P·P] of one
// grid, with STTS after block scoreAfter (see above): the merged features [B, K, OutHidden] of
// the kept merge groups, their indices [B, K] (int32, ascending: the processor's merged-token
// order) and sel's auxiliary loss (nil if none). sel groups the merge_size × merge_size patches
// of each temporal patch's H × W grid and must keep a fixed number of groups per video.
func QwenVisionTowerSTTS(scope *model.Scope, cfg QwenVisionConfig, sel TokenSelector, patches *Node, grid Grid, scoreAfter int) (feats, kept, aux *Node) {
	if cfg.Arch != Qwen2VL && cfg.Arch != Qwen25VL {
		panic(fmt.Sprintf("models: STTS in the Qwen-VL tower: %s towers are not supported (Qwen2-VL, Qwen2.5-VL)", cfg.Arch))
	}
	if scoreAfter < 0 || scoreAfter >= cfg.Depth {
		panic(fmt.Sprintf("models: STTS after block %d of a %d-block tower", scoreAfter, cfg.Depth))
	}
	g := patches.Graph()
	d := patches.Shape().Dimensions
	b, np := d[0], d[1]
	if np != grid.Patches() {
		panic(fmt.Sprintf("models: %d patch rows per video for grid %v", np, grid))
	}
	m := cfg.MergeSize
	tab := newQwenGroupTables(cfg, grid)
	ng, unit, dim := tab.groups, tab.unit, cfg.Hidden
	w := scope.In("patch_embed").In("proj").
		VariableWithShape("weight", shapes.Make(patches.DType(), cfg.Hidden, cfg.Channels, cfg.TemporalPatch, cfg.PatchSize, cfg.PatchSize)).NodeValue(g)
	x := DotGeneral(patches, []int{2}, nil, Reshape(w, cfg.Hidden, cfg.PatchDim()), []int{1}, nil) // [B, Np, D]

	all := BroadcastToDims(InsertAxes(Iota(g, shapes.Make(dtypes.Int32, ng), 0), 0), b, ng)
	blocks := scope.In("blocks")
	run := func(i int, x, idx, keyBias *Node) *Node {
		cos, sin := tab.rotary(idx)
		seg := tab.frame
		if cfg.Arch == Qwen25VL && !slices.Contains(cfg.FullAttBlocks, i) {
			seg = tab.window
		}
		vs := visionSegments{Mask: tab.patchMask(idx, seg), KeyBias: keyBias}
		return Remat(x, func(x *Node) *Node { return qwenVisionBlock(blocks.In("%d", i), cfg, x, cos, sin, vs) })
	}
	for i := range scoreAfter {
		x = run(i, x, all, nil)
	}

	// Score: the groups pooled from each temporal patch's raster-order grid.
	gt, gh, gw := grid.T, grid.H, grid.W
	raster := Reshape(x, b*gt, gh/m, gw/m, m, m, dim)
	raster = Reshape(TransposeAllAxes(raster, 0, 1, 3, 2, 4, 5), b*gt, gh*gw, dim)
	st := scope.At("stts")                      // the new parameters, beside the checkpoint's (as VideoLlava's)
	groups := sel.Group(st.In("group"), raster) // [B·T, G, D]
	bias, aux := sel.Score(st.In("score"), Reshape(groups, b, gt, tab.perFrameGroups, dim))
	if bias != nil { // each patch's key gets its group's log-score
		bias = Reshape(BroadcastToDims(InsertAxes(bias, -1), b, ng, unit), b, np)
	}
	x = run(scoreAfter, x, all, bias)

	// Prune whole groups, each group's patches side by side in one row with its index as one more
	// channel, so that the kept rows say which group they are.
	rows := Concatenate([]*Node{Reshape(x, b, ng, unit*dim), ConvertDType(InsertAxes(all, -1), x.DType())}, -1)
	sel2, mask := sel.Select(rows)
	if mask != nil {
		panic("models: STTS in the Qwen-VL tower: the token selector packs rows; only a fixed number of groups per video is supported")
	}
	k := sel2.Shape().Dimensions[1]
	kept = ConvertDType(Round(Slice(sel2, AxisRange(), AxisRange(), AxisRange(unit*dim, unit*dim+1))), dtypes.Int32) // exact
	kept = Reshape(kept, b, k)
	x = Reshape(Slice(sel2, AxisRange(), AxisRange(), AxisRange(0, unit*dim)), b, k*unit, dim)
	for i := scoreAfter + 1; i < cfg.Depth; i++ {
		x = run(i, x, kept, nil)
	}
	out := qwenPatchMerger(scope.In("merger"), cfg, Reshape(x, b*k*unit, dim))
	return Reshape(out, b, k, cfg.OutHidden), kept, aux
}

// QwenVLSTTSInputs are a batch of video questions for QwenVLSTTS: every row is head, the video's
// placeholders, after, then its own text tokens.
type QwenVLSTTSInputs struct {
	Patches    *Node // [B, T·H·W, C·T·P·P]: each video's pixel_values_videos
	Grid       Grid  // the videos' video_grid_thw
	ScoreAfter int
	Head       []int // the tokens before the video's placeholders (its vision_start last)
	After      []int // the tokens after them (vision_end first)
	Tokens     *Node // [B, L] int32: the text after After
	// Positions are get_rope_index's positions [3][len(Head)+G+len(After)+L] of the unpruned layout
	// (G = the video's merged tokens).
	Positions [3][]int
}

// QwenVLSTTS is the Qwen2-VL / Qwen2.5-VL forward pass over videos pruned by STTS inside the tower
// (QwenVisionTowerSTTS): the decoder sees Head, the K kept video tokens at their positions, After
// and the text at theirs in the unpruned layout. It returns the logits of the text tokens
// [B, L, V], the kept groups [B, K] and sel's auxiliary loss.
func QwenVLSTTS(scope *model.Scope, cfg QwenVLConfig, sel TokenSelector, in QwenVLSTTSInputs) (logits, kept, aux *Node) {
	scope = WithInit(scope)
	g := in.Tokens.Graph()
	b, l := in.Tokens.Shape().Dimensions[0], in.Tokens.Shape().Dimensions[1]
	feats, kept, aux := QwenVisionTowerSTTS(scope.At("model").In("visual"), cfg.Vision, sel, in.Patches, in.Grid, in.ScoreAfter)
	k := kept.Shape().Dimensions[1]
	nh, na, ng := len(in.Head), len(in.After), in.Grid.Tokens(cfg.Vision.MergeSize)
	if n := nh + ng + na + l; len(in.Positions[0]) != n {
		panic(fmt.Sprintf("models: %d positions for a layout of %d tokens", len(in.Positions[0]), n))
	}
	ids32 := func(ids []int) *Node {
		v := make([]int32, len(ids))
		for i, id := range ids {
			v[i] = int32(id)
		}
		return BroadcastToDims(Const(g, [][]int32{v}), b, len(ids))
	}
	pads := make([]int, k)
	for i := range pads {
		pads[i] = cfg.VideoToken
	}
	ids := Concatenate([]*Node{ids32(in.Head), ids32(pads), ids32(in.After), in.Tokens}, 1)
	dec := scope.At("model").In("language_model")
	x := DecoderEmbed(dec, cfg.Text, ids, dtypes.Float32)
	x = ScatterImageFeatures(x, ids, feats, cfg.VideoToken)

	// Positions: the head's, the kept groups' and the rest's, each from the unpruned layout.
	var flat []int32
	for _, axis := range in.Positions {
		for _, p := range axis {
			flat = append(flat, int32(p))
		}
	}
	full := Reshape(Const(g, flat), 3, nh+ng+na+l)
	part := func(from, to int) *Node {
		return BroadcastToDims(InsertAxes(Slice(full, AxisRange(), AxisRange(from, to)), 1), 3, b, to-from)
	}
	video := Slice(full, AxisRange(), AxisRange(nh, nh+ng))          // [3, G]
	videoPos := Gather(Transpose(video, 0, 1), InsertAxes(kept, -1)) // [B, K, 3]
	positions := Concatenate([]*Node{part(0, nh), TransposeAllAxes(videoPos, 2, 0, 1), part(nh+ng, nh+ng+na+l)}, 2)
	cos, sin := MRopeCosSin(cfg.Text.Rope, cfg.MRopeBands(), positions)
	h := DecoderRotary(dec, cfg.Text, x, cos, sin, nil, nil, nil)
	total := nh + k + na + l
	h = Slice(h, AxisRange(), AxisRange(total-l, total))
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h), kept, aux
}
