package pruning

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
)

// tinyVideoVLM is a 2-frame-grid video VLM small enough for exact comparisons.
func tinyVideoVLM(motion bool) models.VideoVLMConfig {
	return models.VideoVLMConfig{
		Vision: models.ViTConfig{ImageSize: 12, PatchSize: 2, Dim: 16, Layers: 3, Heads: 2, MLPRatio: 2},
		Frames: 3, ScoreAfter: 1, Motion: motion, TextDim: 16, TextLayers: 1, TextHeads: 2, MLPRatio: 2,
		MaxTextLen: 4, VocabSize: 11,
	}
}

func videoInputs(rng *rand.Rand, b int, cfg models.VideoVLMConfig, static bool) (video, tokens *tensors.Tensor) {
	s := cfg.Vision.ImageSize
	frame := s * s * 3
	v := make([]float32, b*cfg.Frames*frame)
	for i := range v {
		v[i] = rng.Float32()
	}
	if static { // every frame a copy of the first
		for vi := range b {
			base := vi * cfg.Frames * frame
			for f := 1; f < cfg.Frames; f++ {
				copy(v[base+f*frame:base+(f+1)*frame], v[base:base+frame])
			}
		}
	}
	tok := make([]int32, b*cfg.MaxTextLen)
	for i := range tok {
		tok[i] = int32(rng.IntN(cfg.VocabSize))
	}
	return tensors.FromFlatDataAndDimensions(v, b, cfg.Frames, s, s, 3), tensors.FromFlatDataAndDimensions(tok, b, cfg.MaxTextLen)
}

func logitsOf(t *testing.T, be compute.Backend, store *model.Store, cfg models.VideoVLMConfig, sel *Selector, args ...any) []float32 {
	e, err := model.NewExecCanonical(be, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		s := *sel
		if s.Mode == "spatiotemporal" {
			s.Packed = &PackedNodes{Gather: in[2], SlotValid: in[3], Mask: in[4], UnpackIdx: in[5], Valid: in[6]}
		}
		logits, _ := models.VideoVLM(scope, cfg, s.TokenSelector(), in[0], in[1])
		return []*Node{logits}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(args...)
	require.NoError(t, err)
	return tensors.MustCopyFlatData[float32](out[0])
}

// TestVideoVLMMotion: the motion projection sees only change since the previous frame: on a
// static video the model computes exactly what it computes without it; on a moving one it does not.
func TestVideoVLMMotion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 8))
	be := backend(t)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(2))
	sel := &Selector{Mode: "none", Group: 3, Grid: 6, Frames: 3}
	with, without := tinyVideoVLM(true), tinyVideoVLM(false)
	v0, t0 := videoInputs(rng, 2, with, false)
	require.NotEmpty(t, logitsOf(t, be, store, with, sel, v0, t0)) // creates every variable
	// Give the motion projection weights that matter (it starts like every other layer; make sure).
	found := false
	for v := range store.IterVariables() {
		if strings.Contains(v.Scope(), "motion") {
			found = true
			w := tensors.MustCopyFlatData[float32](v.MustValue())
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			v.MustSetValue(tensors.FromFlatDataAndDimensions(w, v.Shape().Dimensions...))
		}
	}
	require.True(t, found, "the motion projection has variables")
	for _, static := range []bool{true, false} {
		video, tok := videoInputs(rng, 2, with, static)
		a, b := logitsOf(t, be, store, with, sel, video, tok), logitsOf(t, be, store, without, sel, video, tok)
		diff := 0.0
		for i := range a {
			diff = max(diff, float64(abs32(a[i]-b[i])))
		}
		if static {
			require.Zero(t, diff, "a static video has no motion")
		} else {
			require.Greater(t, diff, 1e-3, "a changing video must be seen by the motion projection")
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestVideoVLMPackedMatchesAlone: with spatiotemporal pruning's variable keep counts, packing several videos
// into shared rows (and padding their decoder prefixes) gives each video the logits it gets when
// it is the only video in the batch.
func TestVideoVLMPackedMatchesAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	cfg := tinyVideoVLM(true)
	const B, N = 3, 3 * 4 // 3 frames × (6/3)² groups
	keep := [][]bool{
		{true, true, true, true, false, false, true, false, false, false, false, false},
		{true, false, true, true, true, true, true, true, false, true, true, true},
		{false, true, false, false, false, false, false, false, false, false, false, true},
	}
	sel := &Selector{Mode: "spatiotemporal", Group: 3, Grid: 6, Frames: 3}
	be := backend(t)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	video, tok := videoInputs(rng, B, cfg, false)
	pb, err := PackKept(keep)
	require.NoError(t, err)
	require.Less(t, pb.Rows, B)
	args := []any{video, tok}
	for _, x := range pb.Tensors() {
		args = append(args, x)
	}
	all := logitsOf(t, be, store, cfg, sel, args...)
	per := len(all) / B
	vs, ts := tensors.MustCopyFlatData[float32](video), tensors.MustCopyFlatData[int32](tok)
	vn, tn := len(vs)/B, len(ts)/B
	s := cfg.Vision.ImageSize
	for v := range B {
		one, err := PackKept(keep[v : v+1])
		require.NoError(t, err)
		args := []any{tensors.FromFlatDataAndDimensions(vs[v*vn:(v+1)*vn], 1, cfg.Frames, s, s, 3),
			tensors.FromFlatDataAndDimensions(ts[v*tn:(v+1)*tn], 1, cfg.MaxTextLen)}
		for _, x := range one.Tensors() {
			args = append(args, x)
		}
		alone := logitsOf(t, be, store, cfg, sel, args...)
		require.InDeltaSlice(t, toF64(alone), toF64(all[v*per:(v+1)*per]), 1e-4, "video %d", v)
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
