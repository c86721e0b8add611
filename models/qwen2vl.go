package models

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Qwen2-VL (Wang et al., "Qwen2-VL: Enhancing Vision-Language Model's Perception of the World at
// Any Resolution", arXiv:2409.12191) as huggingface/transformers
// src/transformers/models/qwen2_vl/modeling_qwen2_vl.py implements Qwen2VLForConditionalGeneration,
// and the parts Qwen2.5-VL shares with it (qwen2_5vl.go):
//
//   - a ViT over native-resolution images and videos: the processor cuts each image (repeated to
//     temporal_patch_size frames) or video into temporal_patch_size × patch × patch patches,
//     flattened to [N, C·T·P·P] rows (merge_size × merge_size neighbours consecutive); the Conv3d
//     patch embedding (kernel = stride = patch) is a matmul over those rows;
//   - 2-D rotary positions in the tower: half of each head's rotary frequencies rotate by the
//     patch's row, half by its column (VisionRotaryEmbedding, rot_pos_emb);
//   - each image, and each temporal patch of a video, attends only to itself (cu_seqlens), here a
//     block-diagonal mask over the concatenation of all of them;
//   - Qwen2-VL's blocks: LayerNorm, biased qkv, QuickGELU fc1 → fc2 MLP (Qwen2VLVisionBlock);
//   - the patch merger: each 2×2 group of patch features concatenated, LayerNorm (Qwen2.5:
//     RMSNorm) first, through Linear → GELU → Linear to the decoder's width (PatchMerger);
//   - a Qwen2 decoder with multimodal rotary positions (M-RoPE): every token has a (temporal,
//     height, width) position (get_rope_index: text counts up on all three; a vision token's are
//     its frame, row and column after the preceding text), and the rotary frequencies are split
//     into mrope_section bands that read one of the three each (apply_multimodal_rotary_pos_emb);
//   - the image and video placeholder tokens (image_token_id, video_token_id) replaced by the
//     merged vision features in order.
//
// Scopes (transformers 5.x names): model/visual/{patch_embed/proj, blocks/<i>/{norm1, norm2,
// attn/{qkv, proj}, mlp/…}, merger/{ln_q, mlp/0, mlp/2}}, model/language_model/…, lm_head.
// The patch embedding keeps the Conv3d weight's shape [D, C, T, P, P] (variable "weight"), so the
// checkpoint tensor maps without a transform.

// Qwen vision tower kinds (model_type).
const (
	Qwen2VL  = "qwen2_vl"
	Qwen25VL = "qwen2_5_vl"
)

// QwenVisionConfig is a Qwen2-VL or Qwen2.5-VL vision_config.
type QwenVisionConfig struct {
	Arch                               string // Qwen2VL, Qwen25VL or Qwen3VL
	Depth, Hidden, Intermediate, Heads int    // Hidden: embed_dim (Qwen2-VL), hidden_size (Qwen2.5-VL)
	OutHidden                          int    // the merger's output width (the decoder's hidden size)
	Act                                string // hidden_act of the blocks' MLP
	Channels, PatchSize, TemporalPatch int
	MergeSize                          int     // spatial_merge_size
	WindowSize                         int     // Qwen2.5-VL: window attention side, in pixels
	FullAttBlocks                      []int   // Qwen2.5-VL: fullatt_block_indexes
	TokensPerSecond                    float64 // Qwen2.5-VL: temporal positions per second of video
	NumPositionEmbeddings              int     // Qwen3-VL: rows of the learned (square) position table
	DeepstackIndexes                   []int   // Qwen3-VL: deepstack_visual_indexes
}

// PatchDim is the length of one flattened patch, C·T·P·P.
func (c QwenVisionConfig) PatchDim() int {
	return c.Channels * c.TemporalPatch * c.PatchSize * c.PatchSize
}

// Validate checks the vision configuration (one error naming the field).
func (c QwenVisionConfig) Validate() error {
	switch {
	case c.Depth <= 0 || c.Hidden <= 0 || c.Intermediate <= 0 || c.Heads <= 0 || c.OutHidden <= 0:
		return fmt.Errorf("depth, hidden size, intermediate size, num_heads and the output size must be > 0 (got %d, %d, %d, %d, %d)",
			c.Depth, c.Hidden, c.Intermediate, c.Heads, c.OutHidden)
	case c.Hidden%c.Heads != 0 || (c.Hidden/c.Heads)%4 != 0:
		return fmt.Errorf("hidden size %d / num_heads %d must be a multiple of 4 (2-D rotary positions)", c.Hidden, c.Heads)
	case c.Channels <= 0 || c.PatchSize <= 0 || c.TemporalPatch <= 0 || c.MergeSize <= 0:
		return fmt.Errorf("in_channels, patch_size, temporal_patch_size and spatial_merge_size must be > 0")
	case !KnownActivation(c.Act):
		return fmt.Errorf("hidden_act %q is not supported", c.Act)
	case c.Arch == Qwen25VL && (c.WindowSize < c.PatchSize*c.MergeSize || c.WindowSize%(c.PatchSize*c.MergeSize) != 0):
		return fmt.Errorf("window_size %d must be a positive multiple of patch_size × spatial_merge_size %d", c.WindowSize, c.PatchSize*c.MergeSize)
	}
	for _, i := range c.FullAttBlocks {
		if i < 0 || i >= c.Depth {
			return fmt.Errorf("fullatt_block_indexes: %d is not a block (depth %d)", i, c.Depth)
		}
	}
	for _, i := range c.DeepstackIndexes {
		if i < 0 || i >= c.Depth {
			return fmt.Errorf("deepstack_visual_indexes: %d is not a block (depth %d)", i, c.Depth)
		}
	}
	if c.Arch == Qwen3VL {
		side := int(math.Round(math.Sqrt(float64(c.NumPositionEmbeddings))))
		if side < 1 || side*side != c.NumPositionEmbeddings {
			return fmt.Errorf("num_position_embeddings %d must be a positive square", c.NumPositionEmbeddings)
		}
	}
	return nil
}

// Grid is one image's or video's patch grid (image_grid_thw / video_grid_thw): T temporal
// patches of H × W patches.
type Grid struct{ T, H, W int }

// Patches is the number of patch rows the grid contributes to pixel_values.
func (g Grid) Patches() int { return g.T * g.H * g.W }

// Tokens is the number of placeholder tokens (merged features) of the grid.
func (g Grid) Tokens(merge int) int { return g.T * (g.H / merge) * (g.W / merge) }

// QwenVLConfig configures Qwen2VLForConditionalGeneration and Qwen2_5_VLForConditionalGeneration.
type QwenVLConfig struct {
	Vision                                         QwenVisionConfig
	Text                                           DecoderConfig // a Qwen2 decoder
	MRopeSection                                   []int         // rotary frequencies per (t, h, w) band
	ImageToken, VideoToken, VisionStart, VisionEnd int
}

// Validate checks the whole configuration.
func (c QwenVLConfig) Validate() error {
	if err := c.Vision.Validate(); err != nil {
		return fmt.Errorf("vision config: %w", err)
	}
	sum := 0
	for _, s := range c.MRopeSection {
		sum += s
	}
	if len(c.MRopeSection) != 3 || 2*sum != c.Text.HeadDim || slices.Min(c.MRopeSection) < 0 {
		return fmt.Errorf("text config: mrope_section %v must be 3 numbers summing to head_dim/2 = %d", c.MRopeSection, c.Text.HeadDim/2)
	}
	if c.Vision.OutHidden != c.Text.Hidden {
		return fmt.Errorf("vision config: the merger's output size %d must equal the text hidden_size %d", c.Vision.OutHidden, c.Text.Hidden)
	}
	return nil
}

// QwenVisionTower encodes patches [N, C·T·P·P] (pixel_values or pixel_values_videos, the grids'
// patches concatenated in order; scope model/visual) into merged features [N/merge², OutHidden].
// The grids are static: the rotary positions, the attention segments and Qwen2.5-VL's window
// permutation are computed here on the host, as transformers computes them from grid_thw.
func QwenVisionTower(scope *model.Scope, cfg QwenVisionConfig, patches *Node, grids []Grid) *Node {
	g := patches.Graph()
	n := patches.Shape().Dimensions[0]
	total := 0
	for _, gr := range grids {
		total += gr.Patches()
	}
	if total != n {
		panic(fmt.Sprintf("models: %d patch rows for grids %v of %d patches", n, grids, total))
	}
	unit := cfg.MergeSize * cfg.MergeSize
	hd := cfg.Hidden / cfg.Heads
	// Conv3d(kernel = stride = (T, P, P), bias=False) over [N, C, T, P, P] = patches · Wᵀ.
	w := scope.In("patch_embed").In("proj").
		VariableWithShape("weight", shapes.Make(patches.DType(), cfg.Hidden, cfg.Channels, cfg.TemporalPatch, cfg.PatchSize, cfg.PatchSize)).NodeValue(g)
	x := DotGeneral(patches, []int{1}, nil, Reshape(w, cfg.Hidden, cfg.PatchDim()), []int{1}, nil) // [N, D]

	freqs := qwenVisionRotary(cfg, grids) // [N][hd/2]
	var window []int                      // Qwen2.5-VL: merged-group order of the window layout
	var windowLens []int
	if cfg.Arch == Qwen25VL {
		window, windowLens = qwenWindowIndex(cfg, grids)
		x = permuteGroups(x, window, unit)
		perm := make([][]float32, n)
		for i, gi := range window {
			copy(perm[i*unit:(i+1)*unit], freqs[gi*unit:(gi+1)*unit])
		}
		freqs = perm
	}
	flat := make([]float32, 0, n*hd)
	for _, f := range freqs {
		flat = append(flat, f...)
		flat = append(flat, f...) // emb = cat(rotary_pos_emb, rotary_pos_emb)
	}
	emb := Reshape(Const(g, flat), 1, n, hd)
	cos, sin := Cos(emb), Sin(emb)
	full := newVisionSegments(g, frameLengths(grids), n)
	var win *visionSegments
	x = InsertAxes(x, 0) // [1, N, D]
	blocks := scope.In("blocks")
	for i := range cfg.Depth {
		seg := full
		if cfg.Arch == Qwen25VL && !slices.Contains(cfg.FullAttBlocks, i) {
			if win == nil {
				w := newVisionSegments(g, windowLens, n)
				win = &w
			}
			seg = *win
		}
		x = Remat(x, func(x *Node) *Node { return qwenVisionBlock(blocks.In("%d", i), cfg, x, cos, sin, seg) })
	}
	out := qwenPatchMerger(scope.In("merger"), cfg, Reshape(x, n, cfg.Hidden))
	if window != nil { // back to the processor's order: hidden_states[argsort(window_index)]
		inv := make([]int, len(window))
		for i, gi := range window {
			inv[gi] = i
		}
		out = permuteGroups(out, inv, 1)
	}
	return out
}

// qwenVisionBlock is Qwen2VLVisionBlock (LayerNorm, QuickGELU MLP fc1 → fc2) or
// Qwen2_5_VLVisionBlock (RMSNorm, SwiGLU MLP gate/up/down with biases), on x [1, N, D].
func qwenVisionBlock(scope *model.Scope, cfg QwenVisionConfig, x, cos, sin *Node, seg visionSegments) *Node {
	norm := func(name string, h *Node) *Node {
		if cfg.Arch == Qwen25VL {
			return RMSNorm(scope.In("%s", name), h, 1e-6, false)
		}
		return LayerNormHF(scope.In("%s", name), h, 1e-6)
	}
	x = Add(x, qwenVisionAttention(scope.In("attn"), cfg, norm("norm1", x), cos, sin, seg))
	h := norm("norm2", x)
	mlp := scope.In("mlp")
	if cfg.Arch == Qwen25VL {
		gate := ActivationHF(cfg.Act, Linear(mlp.In("gate_proj"), h, cfg.Intermediate, true))
		h = Linear(mlp.In("down_proj"), Mul(gate, Linear(mlp.In("up_proj"), h, cfg.Intermediate, true)), cfg.Hidden, true)
	} else {
		h = Linear(mlp.In("fc2"), ActivationHF(cfg.Act, Linear(mlp.In("fc1"), h, cfg.Intermediate, true)), cfg.Hidden, true)
	}
	return Add(x, h)
}

// visionSegments is how the tower's attention is cut into independent segments (cu_seqlens):
// segments of one length Len run as a batch of Len-token sequences (one image, or the frames of
// one video: no N×N mask), others through the block-diagonal Mask [1, N, N].
type visionSegments struct {
	Len  int
	Mask *Node
	// KeyBias [B, N] is added to the attention logits of each key (STTS's log-score, with Mask
	// only; nil: none).
	KeyBias *Node
}

// newVisionSegments cuts n tokens into segments of the given lengths (empty ones skipped).
func newVisionSegments(g *Graph, lengths []int, n int) visionSegments {
	l := 0
	for _, x := range lengths {
		switch {
		case x == 0:
		case l == 0:
			l = x
		case x != l:
			return visionSegments{Mask: SegmentMask(g, segmentsOf(lengths, n))}
		}
	}
	return visionSegments{Len: l}
}

// qwenVisionAttention is VisionAttention: the fused qkv projection (q, k, v its column blocks),
// 2-D rotary positions on q and k, attention within each segment, proj.
func qwenVisionAttention(scope *model.Scope, cfg QwenVisionConfig, x, cos, sin *Node, seg visionSegments) *Node {
	d := x.Shape().Dimensions
	b, n, dim := d[0], d[1], d[2]
	hd := dim / cfg.Heads
	qkv := LinearSplit(scope.In("qkv"), x, 3*dim, 3, true)
	q := Reshape(qkv[0], b, n, cfg.Heads, hd)
	k := Reshape(qkv[1], b, n, cfg.Heads, hd)
	v := Reshape(qkv[2], b, n, cfg.Heads, hd)
	q, k = ApplyRope(q, cos, sin), ApplyRope(k, cos, sin)
	var o *Node
	if seg.Mask != nil {
		o = AttentionCoreBias(q, k, v, seg.Mask, seg.KeyBias)
	} else { // equal segments: a batch of n/Len sequences
		s := b * n / seg.Len
		o = AttentionCore(Reshape(q, s, seg.Len, cfg.Heads, hd), Reshape(k, s, seg.Len, cfg.Heads, hd), Reshape(v, s, seg.Len, cfg.Heads, hd), nil)
	}
	return Linear(scope.In("proj"), Reshape(o, b, n, dim), dim, true)
}

// qwenPatchMerger is PatchMerger / Qwen2_5_VLPatchMerger: ln_q over each patch feature, each
// merge² consecutive features concatenated, Linear → GELU → Linear.
func qwenPatchMerger(scope *model.Scope, cfg QwenVisionConfig, x *Node) *Node {
	n := x.Shape().Dimensions[0]
	unit := cfg.MergeSize * cfg.MergeSize
	if cfg.Arch == Qwen25VL {
		x = RMSNorm(scope.In("ln_q"), x, 1e-6, false)
	} else {
		x = LayerNormHF(scope.In("ln_q"), x, 1e-6)
	}
	x = Reshape(x, n/unit, unit*cfg.Hidden)
	mlp := scope.In("mlp")
	x = ActivationHF("gelu", Linear(mlp.In("0"), x, unit*cfg.Hidden, true))
	return Linear(mlp.In("2"), x, cfg.OutHidden, true)
}

// qwenVisionRotary is rot_pos_emb: for every patch (in pixel_values order: frames, then merge
// groups row-major, then the group's patches row-major) its row and column, times the inverse
// frequencies 1/10000^(2i/(hd/2)) of a head_dim/2 rotary embedding: [N][hd/2] = [row·f, col·f].
func qwenVisionRotary(cfg QwenVisionConfig, grids []Grid) [][]float32 {
	hd := cfg.Hidden / cfg.Heads
	inv := Rope{Theta: 10000, Dim: hd / 2, Type: "default"}.InvFreq()
	m := cfg.MergeSize
	var out [][]float32
	for _, gr := range grids {
		for range gr.T {
			for bh := range gr.H / m {
				for bw := range gr.W / m {
					for ih := range m {
						for iw := range m {
							row, col := float32(bh*m+ih), float32(bw*m+iw)
							f := make([]float32, 0, 2*len(inv))
							for _, v := range inv {
								f = append(f, row*v)
							}
							for _, v := range inv {
								f = append(f, col*v)
							}
							out = append(out, f)
						}
					}
				}
			}
		}
	}
	return out
}

// frameLengths are the attention segments of the full-attention blocks (cu_seqlens): each
// temporal patch of each grid.
func frameLengths(grids []Grid) []int {
	var out []int
	for _, gr := range grids {
		for range gr.T {
			out = append(out, gr.H*gr.W)
		}
	}
	return out
}

// segmentsOf numbers the tokens of consecutive segments of the given lengths (empty ones skipped,
// as torch.unique_consecutive drops repeated boundaries).
func segmentsOf(lengths []int, n int) []int32 {
	out := make([]int32, 0, n)
	for s, l := range lengths {
		for range l {
			out = append(out, int32(s))
		}
	}
	if len(out) != n {
		panic(fmt.Sprintf("models: segments cover %d of %d tokens", len(out), n))
	}
	return out
}

// SegmentMask is the block-diagonal attention mask [1, N, N] of tokens numbered by segment:
// token i sees token j when they are in the same segment (cu_seqlens as a mask).
func SegmentMask(g *Graph, segments []int32) *Node {
	s := Const(g, segments)
	n := len(segments)
	return InsertAxes(Equal(BroadcastToDims(InsertAxes(s, 1), n, n), BroadcastToDims(InsertAxes(s, 0), n, n)), 0)
}

// permuteGroups reorders x [N, D] by groups of `unit` consecutive rows: output group i is input
// group order[i].
func permuteGroups(x *Node, order []int, unit int) *Node {
	d := x.Shape().Dimensions
	idx := make([]int32, 0, len(order)*unit)
	for _, gi := range order {
		for j := range unit {
			idx = append(idx, int32(gi*unit+j))
		}
	}
	return Reshape(Gather(x, InsertAxes(Const(x.Graph(), idx), -1)), d...)
}

// QwenVLInputs are the inputs of a Qwen2-VL / Qwen2.5-VL forward pass.
type QwenVLInputs struct {
	IDs        *Node  // [B, T] int32, with image and video placeholders
	Positions  *Node  // [3, B, T] int32: QwenRopeIndex's (t, h, w) positions
	Images     *Node  // pixel_values [Ni, C·T·P·P] or nil
	ImageGrids []Grid // image_grid_thw
	Videos     *Node  // pixel_values_videos [Nv, C·T·P·P] or nil
	VideoGrids []Grid // video_grid_thw
}

// QwenVLEmbeds is the decoder's input: the token embeddings with the image and then the video
// features scattered in at their placeholders (scope: the root). The images' and videos' patches
// go through the tower in one pass: every attention segment lies within one frame of one grid,
// so this equals transformers' separate get_image_features and get_video_features. For Qwen3-VL
// it also returns the DeepStack terms, one [B, T, D] per deepstack layer: the features at the
// vision positions, zero elsewhere (nil without images or videos).
func QwenVLEmbeds(scope *model.Scope, cfg QwenVLConfig, in QwenVLInputs) (x *Node, deepstack []*Node) {
	m := scope.At("model")
	x = DecoderEmbed(m.In("language_model"), cfg.Text, in.IDs, dtypes.Float32)
	var patches []*Node
	var grids []Grid
	if in.Images != nil {
		patches, grids = append(patches, in.Images), append(grids, in.ImageGrids...)
	}
	if in.Videos != nil {
		patches, grids = append(patches, in.Videos), append(grids, in.VideoGrids...)
	}
	if len(patches) == 0 {
		return x, nil
	}
	var f *Node
	var deep []*Node
	if cfg.Vision.Arch == Qwen3VL {
		f, deep = Qwen3VisionTower(m.In("visual"), cfg.Vision, Concatenate(patches, 0), grids)
	} else {
		f = QwenVisionTower(m.In("visual"), cfg.Vision, Concatenate(patches, 0), grids)
	}
	ni := 0
	for _, g := range in.ImageGrids {
		ni += g.Tokens(cfg.Vision.MergeSize)
	}
	nf := f.Shape().Dimensions[0]
	// scatter puts the image rows of f at the image placeholders and the video rows at the video
	// placeholders of base.
	scatter := func(base, f *Node) *Node {
		if in.Images != nil {
			base = ScatterImageFeatures(base, in.IDs, InsertAxes(Slice(f, AxisRange(0, ni)), 0), cfg.ImageToken)
		}
		if in.Videos != nil {
			base = ScatterImageFeatures(base, in.IDs, InsertAxes(Slice(f, AxisRange(ni, nf)), 0), cfg.VideoToken)
		}
		return base
	}
	x = scatter(x, f)
	for _, d := range deep { // _deepstack_process adds these at the vision positions
		deepstack = append(deepstack, scatter(ZerosLike(x), d))
	}
	return x, deepstack
}

// QwenVL is the forward pass: logits [B, T, V].
func QwenVL(scope *model.Scope, cfg QwenVLConfig, in QwenVLInputs) *Node {
	scope = WithInit(scope)
	dec := scope.At("model").In("language_model")
	x, deep := QwenVLEmbeds(scope, cfg, in)
	cos, sin := MRopeCosSin(cfg.Text.Rope, cfg.MRopeBands(), in.Positions)
	h := DecoderRotary(dec, cfg.Text, x, cos, sin, nil, nil, DeepstackAfter(deep))
	return LMHead(scope.In("lm_head"), dec, cfg.Text, h)
}

// DeepstackAfter is the decoder hook adding the i-th DeepStack term after layer i (nil: none).
func DeepstackAfter(deep []*Node) func(int, *Node) *Node {
	if len(deep) == 0 {
		return nil
	}
	return func(i int, h *Node) *Node {
		if i < len(deep) {
			h = Add(h, deep[i])
		}
		return h
	}
}

// MRopeBands assigns each of the head_dim/2 rotary frequencies to the temporal (0), height (1) or
// width (2) position: Qwen2-VL's and Qwen2.5-VL's consecutive mrope_section bands, Qwen3-VL's
// interleaved ones (InterleavedMRopeBands).
func (c QwenVLConfig) MRopeBands() []int {
	half := c.Text.HeadDim / 2
	if c.Vision.Arch == Qwen3VL {
		return InterleavedMRopeBands(c.MRopeSection, half)
	}
	out := make([]int, 0, half)
	for band, s := range c.MRopeSection {
		for range s {
			out = append(out, band)
		}
	}
	return out
}

// MRopeCosSin is Qwen2VLRotaryEmbedding with apply_multimodal_rotary_pos_emb's band selection
// (Qwen3-VL: apply_interleaved_mrope): positions [3, B, T] (int32; temporal, height, width) →
// cos, sin [B, T, head_dim], rotary frequency j rotating by the position bands[j] names.
func MRopeCosSin(r Rope, bands []int, positions *Node) (cos, sin *Node) {
	g := positions.Graph()
	inv := r.InvFreq()
	var freqs *Node
	for c := range 3 {
		band := make([]float32, len(inv))
		for j, b := range bands {
			if b == c {
				band[j] = inv[j]
			}
		}
		p := Squeeze(Slice(positions, AxisRange(c, c+1)), 0) // [B, T]
		f := Mul(InsertAxes(ConvertDType(p, dtypes.Float32), -1), ExpandLeftToRank(Const(g, band), 3))
		if freqs == nil {
			freqs = f
		} else {
			freqs = Add(freqs, f)
		}
	}
	emb := Concatenate([]*Node{freqs, freqs}, -1)
	return Cos(emb), Sin(emb)
}

// QwenRopeIndex is get_rope_index for one unpadded sequence: the (temporal, height, width)
// position of every token and the rope delta (max position + 1 − length), which the generated
// tokens' positions add to their index. Text tokens count up on all three axes from one past the
// largest position before them; the tokens of a vision grid (an image_token_id or video_token_id
// run after vision_start_token_id) are at (t·s, row, col) after the preceding text, where s is 1
// for Qwen2-VL and for Qwen2.5-VL's images, and second_per_grid_t (truncated to an integer, as
// transformers' int64 tensor does) × tokens_per_second for Qwen2.5-VL's videos. secondsPerGrid
// nil means 1 s per grid.
func QwenRopeIndex(cfg QwenVLConfig, ids []int, images, videos []Grid, secondsPerGrid []float64) (pos [3][]int, delta int) {
	n := len(ids)
	for c := range pos {
		pos[c] = make([]int, 0, n)
	}
	if cfg.Vision.Arch == Qwen3VL { // a timestamp precedes each frame: one grid per frame
		var split []Grid
		for _, v := range videos {
			for range v.T {
				split = append(split, Grid{T: 1, H: v.H, W: v.W})
			}
		}
		videos = split
	}
	if len(images) == 0 && len(videos) == 0 {
		for c := range pos {
			for i := range n {
				pos[c] = append(pos[c], i)
			}
		}
		return pos, 0
	}
	nImg, nVid := 0, 0
	for i, id := range ids {
		if id == cfg.VisionStart && i+1 < n {
			switch ids[i+1] {
			case cfg.ImageToken:
				nImg++
			case cfg.VideoToken:
				nVid++
			}
		}
	}
	index := func(tok, from int) int {
		for i := from; i < n; i++ {
			if ids[i] == tok {
				return i
			}
		}
		return n + 1
	}
	next := 0 // one past the largest position so far
	add := func(t, h, w int) {
		pos[0], pos[1], pos[2] = append(pos[0], t), append(pos[1], h), append(pos[2], w)
		next = max(next, t+1, h+1, w+1)
	}
	st, ii, vi := 0, 0, 0
	m := cfg.Vision.MergeSize
	for range nImg + nVid {
		edImg, edVid := n+1, n+1
		if ii < nImg {
			edImg = index(cfg.ImageToken, st)
		}
		if vi < nVid {
			edVid = index(cfg.VideoToken, st)
		}
		var gr Grid
		var ed int
		tpos := func(t int) int { return t } // Qwen2-VL: the temporal patch index
		if edImg < edVid {
			gr, ed = images[ii], edImg
			ii++
			if cfg.Vision.Arch == Qwen25VL { // second_per_grid_t = 0
				tpos = func(int) int { return 0 }
			}
		} else {
			gr, ed = videos[vi], edVid
			if cfg.Vision.Arch == Qwen25VL {
				sec := 1.0
				if secondsPerGrid != nil {
					sec = secondsPerGrid[vi]
				}
				s := float64(int64(sec)) // torch.as_tensor(second_per_grid_t, dtype=int64)
				tpos = func(t int) int { return int(float64(t) * s * cfg.Vision.TokensPerSecond) }
			}
			vi++
		}
		base := next
		for i := range ed - st {
			add(base+i, base+i, base+i)
		}
		base += ed - st
		lh, lw := gr.H/m, gr.W/m
		for t := range gr.T {
			for h := range lh {
				for w := range lw {
					add(base+tpos(t), base+h, base+w)
				}
			}
		}
		st = ed + gr.T*lh*lw
	}
	base := next
	for i := range n - st {
		add(base+i, base+i, base+i)
	}
	return pos, next - n
}
