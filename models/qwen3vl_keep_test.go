package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// tinyQwen3VL is a random Qwen3-VL of CI size: a 2-block tower (DeepStack after block 0) of
// 4-pixel patches, 2×2 merge, a 2-layer Qwen3 decoder.
func tinyQwen3VL() QwenVLConfig {
	return QwenVLConfig{
		Vision: QwenVisionConfig{Arch: Qwen3VL, Depth: 2, Hidden: 32, Intermediate: 64, Heads: 2, OutHidden: 32,
			Act: "gelu_pytorch_tanh", Channels: 3, PatchSize: 4, TemporalPatch: 2, MergeSize: 2,
			NumPositionEmbeddings: 16, DeepstackIndexes: []int{0}},
		Text: DecoderConfig{Arch: "qwen3", VocabSize: 64, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2,
			HeadDim: 8, Eps: 1e-6, Act: "silu", QKNorm: true, Rope: Rope{Theta: 10000, Dim: 8, Type: "default"}},
		MRopeSection: []int{2, 1, 1}, VisionStart: 60, VisionEnd: 61, ImageToken: 62, VideoToken: 63,
	}
}

// qwen3Prompt is text, then one vision_start / pads / vision_end block per temporal patch (the
// pads of the tokens keep marks; nil: all), then text, with the kept tokens' get_rope_index
// positions of the unpruned prompt.
func qwen3Prompt(cfg QwenVLConfig, grid Grid, keep []bool) (ids []int32, pos [3][]int32) {
	perFrame := grid.Tokens(cfg.Vision.MergeSize) / grid.T
	full := []int{1, 2}
	for range grid.T {
		full = append(full, cfg.VisionStart)
		for range perFrame {
			full = append(full, cfg.VideoToken)
		}
		full = append(full, cfg.VisionEnd)
	}
	full = append(full, 3, 4, 5)
	p, _ := QwenRopeIndex(cfg, full, nil, []Grid{grid}, nil)
	v := 0
	for i, id := range full {
		if id == cfg.VideoToken {
			v++
			if keep != nil && !keep[v-1] {
				continue
			}
		}
		ids = append(ids, int32(id))
		for c := range 3 {
			pos[c] = append(pos[c], int32(p[c][i]))
		}
	}
	return ids, pos
}

// Hiding pruned tokens as keys (Keep, a batch of videos pruned differently) gives the outputs of
// removing them (Rows: the tower and the decoder on the kept tokens alone, one video per graph),
// at every position the removal keeps; with every token kept it gives QwenVL's.
func TestQwen3VLKeepHidingIsRemoving(t *testing.T) {
	backend := goBackend(t)
	cfg := tinyQwen3VL()
	require.NoError(t, cfg.Validate())
	grid := Grid{T: 3, H: 4, W: 4} // 3 temporal patches of 2×2 merged tokens
	const b = 2
	nTok, unit, pd := grid.Tokens(2), 4, cfg.Vision.PatchDim()
	rng := rand.New(rand.NewPCG(5, 6))
	px := make([]float32, b*grid.Patches()*pd)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	// Video 0 loses a whole temporal patch (tokens 4–7) and two more; video 1 keeps 9 of 12.
	keeps := [b][]bool{
		{true, false, true, true, false, false, false, false, true, true, false, true},
		{true, true, true, true, true, false, true, true, false, true, true, false},
	}
	store := model.NewStore()
	run := func(fn func(scope *model.Scope, g *Graph) *Node) [][][]float32 {
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, _ []*Node) []*Node {
			return []*Node{fn(scope, g)}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		out, err := e.Exec()
		require.NoError(t, err)
		return out[0].Value().([][][]float32)
	}
	batchIDs := func(g *Graph, rows [][]int32, pos [][3][]int32) (*Node, *Node) {
		l := len(rows[0])
		var flatIDs, flatPos []int32
		for _, r := range rows {
			flatIDs = append(flatIDs, r...)
		}
		for c := range 3 {
			for _, p := range pos {
				flatPos = append(flatPos, p[c]...)
			}
		}
		return Reshape(Const(g, flatIDs), len(rows), l), Reshape(Const(g, flatPos), 3, len(rows), l)
	}
	ids, pos := qwen3Prompt(cfg, grid, nil)
	hidden := func(keep [b][]bool) [][][]float32 {
		return run(func(scope *model.Scope, g *Graph) *Node {
			idn, posn := batchIDs(g, [][]int32{ids, ids}, [][3][]int32{pos, pos})
			return Qwen3VLKeep(scope, cfg, Qwen3VLKeepInputs{Patches: Reshape(Const(g, px), b, grid.Patches(), pd), Grid: grid,
				Keep: Reshape(Const(g, slices.Concat(keep[0], keep[1])), b, nTok), IDs: idn, Positions: posn})
		})
	}
	got := hidden(keeps)

	maxDiff := func(a, c [][]float32) float64 {
		m := 0.0
		for i := range a {
			for j := range a[i] {
				m = math.Max(m, math.Abs(float64(a[i][j]-c[i][j])))
			}
		}
		return m
	}
	for v := range b {
		var rows []int
		var kept []float32
		for i, k := range keeps[v] {
			if k {
				rows = append(rows, i)
				kept = append(kept, px[(v*grid.Patches()+i*unit)*pd:(v*grid.Patches()+(i+1)*unit)*pd]...)
			}
		}
		rids, rpos := qwen3Prompt(cfg, grid, keeps[v])
		want := run(func(scope *model.Scope, g *Graph) *Node {
			idn, posn := batchIDs(g, [][]int32{rids}, [][3][]int32{rpos})
			return Qwen3VLKeep(scope, cfg, Qwen3VLKeepInputs{Patches: Reshape(Const(g, kept), 1, len(rows)*unit, pd), Grid: grid,
				Rows: rows, IDs: idn, Positions: posn})
		})[0]
		// The positions of the hidden run that the removal keeps.
		var at [][]float32
		tok := 0
		for i, id := range ids {
			if id == int32(cfg.VideoToken) {
				tok++
				if !keeps[v][tok-1] {
					continue
				}
			}
			at = append(at, got[v][i])
		}
		require.Len(t, at, len(want))
		d := maxDiff(at, want)
		t.Logf("video %d: %d of %d tokens kept, hidden vs removed max |Δlogit| %.2g over %d positions", v, len(rows), nTok, d, len(want))
		require.Less(t, d, 1e-5)
	}

	// Every token kept: QwenVL (transformers' layout, verified against its PyTorch twin in hf).
	all := [b][]bool{slices.Repeat([]bool{true}, nTok), slices.Repeat([]bool{true}, nTok)}
	keptAll := hidden(all)
	ref := run(func(scope *model.Scope, g *Graph) *Node {
		idn, posn := batchIDs(g, [][]int32{ids, ids}, [][3][]int32{pos, pos})
		return QwenVL(scope, cfg, QwenVLInputs{IDs: idn, Positions: posn, Videos: Reshape(Const(g, px), b*grid.Patches(), pd),
			VideoGrids: []Grid{grid, grid}})
	})
	for v := range b {
		d := maxDiff(keptAll[v], ref[v])
		t.Logf("video %d: keep-all vs QwenVL max |Δlogit| %.2g; pruning moves the last logits by %.2g", v, d,
			maxDiff(keptAll[v][len(ids)-1:], got[v][len(ids)-1:]))
		require.Less(t, d, 1e-5)
		require.Greater(t, maxDiff(keptAll[v][len(ids)-1:], got[v][len(ids)-1:]), 1e-4, "pruning must change the answer logits")
	}
}
