package models

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Qwen3-VL (Bai et al., "Qwen3-VL Technical Report", arXiv:2511.21631) as huggingface/transformers
// src/transformers/models/qwen3_vl/modeling_qwen3_vl.py implements Qwen3VLForConditionalGeneration:
// Qwen2-VL's design (qwen2vl.go) with
//
//   - a biased Conv3d patch embedding plus learned absolute position embeddings: a square table of
//     num_position_embeddings rows bilinearly resampled to each grid (fast_pos_embed_interpolate);
//   - LayerNorm blocks with a linear_fc1 → act → linear_fc2 MLP (tanh GELU), attention as in
//     Qwen2-VL (2-D rotary positions, per-frame segments);
//   - the merger's LayerNorm before the 2×2 concatenation, and DeepStack (Meng et al., "DeepStack:
//     Deeply Stacking Visual Tokens is Surprisingly Simple and Effective for LMMs",
//     arXiv:2406.04334): after each block of deepstack_visual_indexes a merger with its LayerNorm
//     after the concatenation (use_postshuffle_norm) makes features that are added to the decoder's
//     hidden states at the vision positions after decoder layer 0, 1, …;
//   - a Qwen3 decoder (RMSNorm on each head's queries and keys, head_dim of its own, no biases) with
//     interleaved M-RoPE: rotary frequency j reads the height position when j ≡ 1 (mod 3) and
//     j < 3·section[1], the width when j ≡ 2 (mod 3) and j < 3·section[2], else the temporal one
//     (apply_interleaved_mrope);
//   - get_rope_index with one grid per video frame (the processor writes a timestamp before each
//     frame), so every vision token's temporal position is 0 past its block's start.
//
// Scopes: model/visual/{patch_embed/proj, pos_embed, blocks/<i>/{norm1, norm2, attn/{qkv, proj},
// mlp/{linear_fc1, linear_fc2}}, merger/{norm, linear_fc1, linear_fc2},
// deepstack_merger_list/<k>/…}, model/language_model/…, lm_head.

// Qwen3VL is the Qwen3-VL vision tower kind (model_type).
const Qwen3VL = "qwen3_vl"

// Qwen3VisionTower encodes patches [N, C·T·P·P] of the grids (scope model/visual) into merged
// features [N/merge², OutHidden] and the DeepStack features, one [N/merge², OutHidden] per
// deepstack_visual_indexes entry.
func Qwen3VisionTower(scope *model.Scope, cfg QwenVisionConfig, patches *Node, grids []Grid) (*Node, []*Node) {
	g := patches.Graph()
	n := patches.Shape().Dimensions[0]
	total := 0
	for _, gr := range grids {
		total += gr.Patches()
	}
	if total != n {
		panic(fmt.Sprintf("models: %d patch rows for grids %v of %d patches", n, grids, total))
	}
	hd := cfg.Hidden / cfg.Heads
	proj := scope.In("patch_embed").In("proj")
	w := proj.VariableWithShape("weight", shapes.Make(patches.DType(), cfg.Hidden, cfg.Channels, cfg.TemporalPatch, cfg.PatchSize, cfg.PatchSize)).NodeValue(g)
	bias := proj.VariableWithShape("bias", shapes.Make(patches.DType(), cfg.Hidden)).NodeValue(g)
	x := DotGeneral(patches, []int{1}, nil, Reshape(w, cfg.Hidden, cfg.PatchDim()), []int{1}, nil)
	x = Add(x, InsertAxes(bias, 0))
	x = Add(x, qwen3PosEmbed(scope.In("pos_embed"), cfg, grids, g, x))

	var flat []float32
	for _, f := range qwenVisionRotary(cfg, grids) {
		flat = append(append(flat, f...), f...)
	}
	emb := Reshape(Const(g, flat), 1, n, hd)
	cos, sin := Cos(emb), Sin(emb)
	seg := newVisionSegments(g, frameLengths(grids), n)
	x = InsertAxes(x, 0)
	blocks, deepScope := scope.In("blocks"), scope.In("deepstack_merger_list")
	var deep []*Node
	for i := range cfg.Depth {
		x = Remat(x, func(x *Node) *Node { return qwen3VisionBlock(blocks.In("%d", i), cfg, x, cos, sin, seg) })
		if k := slices.Index(cfg.DeepstackIndexes, i); k >= 0 {
			deep = append(deep, qwen3Merger(deepScope.In("%d", k), cfg, Reshape(x, n, cfg.Hidden), true))
		}
	}
	return qwen3Merger(scope.In("merger"), cfg, Reshape(x, n, cfg.Hidden), false), deep
}

// qwen3PosEmbed is fast_pos_embed_interpolate: for every patch (processor order) the four table
// rows around its (row, col) mapped onto the square table by linspace, bilinearly weighted; the
// indices and weights are computed on the host as transformers computes them (float32 linspace).
func qwen3PosEmbed(scope *model.Scope, cfg QwenVisionConfig, grids []Grid, g *Graph, like *Node) *Node {
	side := int(math.Round(math.Sqrt(float64(cfg.NumPositionEmbeddings))))
	table := EmbeddingTable(scope, cfg.NumPositionEmbeddings, cfg.Hidden, like.DType(), g)
	var idx [4][]int32
	var wts [4][]float32
	m := cfg.MergeSize
	for _, gr := range grids {
		hs, ws := linspace32(float32(side-1), gr.H), linspace32(float32(side-1), gr.W)
		for range gr.T {
			for bh := range gr.H / m {
				for bw := range gr.W / m {
					for ih := range m {
						for iw := range m {
							hv, wv := hs[bh*m+ih], ws[bw*m+iw]
							hf, wf := int(hv), int(wv)
							hc, wc := min(hf+1, side-1), min(wf+1, side-1)
							dh, dw := hv-float32(hf), wv-float32(wf)
							for k, v := range [4][3]any{{hf, wf, (1 - dh) * (1 - dw)}, {hf, wc, (1 - dh) * dw}, {hc, wf, dh * (1 - dw)}, {hc, wc, dh * dw}} {
								idx[k] = append(idx[k], int32(v[0].(int)*side+v[1].(int)))
								wts[k] = append(wts[k], v[2].(float32))
							}
						}
					}
				}
			}
		}
	}
	var sum *Node
	for k := range 4 {
		rows := Gather(table, InsertAxes(Const(g, idx[k]), -1))
		p := Mul(rows, InsertAxes(Const(g, wts[k]), -1))
		if sum == nil {
			sum = p
		} else {
			sum = Add(sum, p)
		}
	}
	return sum
}

// linspace32 is torch.linspace(0, end, steps) in float32 (the first half counted up from 0, the
// second down from end, as torch's CPU kernel does).
func linspace32(end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		return out
	}
	step := end / float32(steps-1)
	for i := range steps {
		if i < steps/2 {
			out[i] = step * float32(i)
		} else {
			out[i] = end - step*float32(steps-1-i)
		}
	}
	return out
}

// qwen3VisionBlock is Qwen3VLVisionBlock on x [1, N, D].
func qwen3VisionBlock(scope *model.Scope, cfg QwenVisionConfig, x, cos, sin *Node, seg visionSegments) *Node {
	x = Add(x, qwenVisionAttention(scope.In("attn"), cfg, LayerNormHF(scope.In("norm1"), x, 1e-6), cos, sin, seg))
	h := LayerNormHF(scope.In("norm2"), x, 1e-6)
	mlp := scope.In("mlp")
	h = Linear(mlp.In("linear_fc2"), ActivationHF(cfg.Act, Linear(mlp.In("linear_fc1"), h, cfg.Intermediate, true)), cfg.Hidden, true)
	return Add(x, h)
}

// qwen3Merger is Qwen3VLVisionPatchMerger on x [N, D]: LayerNorm over each feature and then the
// merge² concatenation, or (postShuffle, the DeepStack mergers) over the concatenation; then
// linear_fc1 → GELU → linear_fc2.
func qwen3Merger(scope *model.Scope, cfg QwenVisionConfig, x *Node, postShuffle bool) *Node {
	n := x.Shape().Dimensions[0]
	unit := cfg.MergeSize * cfg.MergeSize
	if postShuffle {
		x = LayerNormHF(scope.In("norm"), Reshape(x, n/unit, unit*cfg.Hidden), 1e-6)
	} else {
		x = Reshape(LayerNormHF(scope.In("norm"), x, 1e-6), n/unit, unit*cfg.Hidden)
	}
	x = ActivationHF("gelu", Linear(scope.In("linear_fc1"), x, unit*cfg.Hidden, true))
	return Linear(scope.In("linear_fc2"), x, cfg.OutHidden, true)
}

// InterleavedMRopeBands is Qwen3-VL's assignment of the head_dim/2 rotary frequencies to the
// (temporal, height, width) positions: 1 (height) at j = 1, 4, … below 3·section[1], 2 (width) at
// j = 2, 5, … below 3·section[2], 0 elsewhere.
func InterleavedMRopeBands(section []int, half int) []int {
	out := make([]int, half)
	for c := 1; c <= 2; c++ {
		for j := c; j < 3*section[c] && j < half; j += 3 {
			out[j] = c
		}
	}
	return out
}
