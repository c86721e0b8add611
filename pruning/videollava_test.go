package pruning

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
)

// tinyVideoLlava: a 4-layer SigLIP tower on 12×12 frames (6×6 patches, 2×2 groups: 9 per frame),
// scoring after layer 1, the projector reading layer 3's output (vision_feature_layer −2, so the
// last layer runs unused, as in transformers).
func tinyVideoLlava() models.VideoLlavaConfig {
	enc := models.EncoderConfig{Hidden: 16, Intermediate: 32, Layers: 4, Heads: 2, Eps: 1e-6, Act: "gelu_pytorch_tanh"}
	return models.VideoLlavaConfig{
		Llava: models.LlavaConfig{
			Vision:        models.VisionConfig{Arch: "siglip", EncoderConfig: enc, ImageSize: 12, PatchSize: 2, Channels: 3},
			Text:          models.DecoderConfig{Hidden: 24},
			FeatureLayers: []int{-2}, SelectStrategy: "full", ProjectorAct: "gelu", ProjectorBias: true,
		},
		Frames: 3, ScoreAfter: 1, Group: 2,
	}
}

// TestVideoLlavaPrunedTower checks the pretrained-tower STTS path against the LLaVA's own image
// features (models.LlavaImageFeatures, checked against transformers' modeling code in package
// hf), computed frame by frame:
//   - unpruned, the video path (all frames in one sequence, a per-frame attention mask, patches
//     regrouped) gives every patch exactly its frame's per-frame LLaVA feature;
//   - with random pruning at keep 0.5, it keeps ⌈0.5·27⌉ = 14 of the video's 27 groups (frame 0's
//     9 always), and each kept patch's feature is what the tower's later layers compute on its
//     frame's kept patches alone, from the unpruned layers' output;
//   - STTS keeps the same count and returns its auxiliary loss.
func TestVideoLlavaPrunedTower(t *testing.T) {
	cfg := tinyVideoLlava()
	require.NoError(t, cfg.Validate())
	be := backend(t)
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	rng := rand.New(rand.NewPCG(4, 5))
	const b, frames, s, grid, gs, per = 2, 3, 12, 6, 2, 9 // per: groups per frame
	pix := make([]float32, b*frames*3*s*s)
	for i := range pix {
		pix[i] = rng.Float32()*2 - 1
	}
	pixels := tensors.FromFlatDataAndDimensions(pix, b, frames, 3, s, s)
	ranks := make([]float32, b*frames*per)
	for i := range ranks {
		ranks[i] = rng.Float32()
	}
	rankT := tensors.FromFlatDataAndDimensions(ranks, b, frames*per)

	run := func(mode string, keep float64) (feats []float32, dims []int, aux bool) {
		e, err := model.NewExecCanonical(be, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			sel := &Selector{Mode: mode, Group: gs, Grid: grid, Frames: frames, Keep: keep, RandomRank: in[1]}
			f, a := models.VideoLlavaFeatures(scope, cfg, sel.TokenSelector(), in[0])
			if a == nil {
				a = ScalarZero(g, f.DType())
			} else {
				aux = true
			}
			return []*Node{f, a}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		out, err := e.Exec(pixels, rankT)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out[0]), out[0].Shape().Dimensions, aux
	}
	full, dims, _ := run("none", 1)
	require.Equal(t, []int{b, frames * grid * grid, 24}, dims)

	// The LLaVA's features of every frame alone, and its tower's hidden states.
	e, err := model.NewExecCanonical(be, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		px := Reshape(in[0], b*frames, 3, s, s)
		scope = models.WithInit(scope)
		out := models.VisionTower(scope.At("model").In("vision_tower").In("vision_model"), cfg.Llava.Vision, px)
		return []*Node{models.LlavaImageFeatures(scope, cfg.Llava, px), out.HiddenStates[cfg.ScoreAfter+1]}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(pixels)
	require.NoError(t, err)
	ref := tensors.MustCopyFlatData[float32](out[0])    // [B·T, P, 24], patches row-major
	hidden := tensors.MustCopyFlatData[float32](out[1]) // [B·T, P, 16] after layer ScoreAfter
	// patch is the row-major index of patch j of group q (raster order in both).
	patch := func(q, j int) int { return (q/3*gs+j/gs)*grid + q%3*gs + j%gs }
	for vi := range b {
		for f := range frames {
			for q := range per {
				for j := range gs * gs {
					got := full[((vi*frames+f)*grid*grid+q*gs*gs+j)*24:][:24]
					want := ref[((vi*frames+f)*grid*grid+patch(q, j))*24:][:24]
					require.InDeltaSlice(t, want, got, 1e-5, "video %d frame %d group %d patch %d", vi, f, q, j)
				}
			}
		}
	}

	kept, dims, _ := run("random", 0.5)
	k := KeepCount(frames*per, per, 0.5)
	require.Equal(t, 14, k)
	require.Equal(t, []int{b, k * gs * gs, 24}, dims, "the tower's later layers and the projector see the kept groups only")
	for vi := range b {
		// The kept groups: frame 0, then the highest random ranks (as Prune ranks them).
		idx := make([]int, frames*per)
		for i := range idx {
			idx[i] = i
		}
		r := ranks[vi*frames*per:][:frames*per]
		score := func(i int) float32 {
			if i < per {
				return r[i] + 2
			}
			return r[i]
		}
		sort.SliceStable(idx, func(x, y int) bool { return score(idx[x]) > score(idx[y]) })
		keptGroups := append([]int(nil), idx[:k]...)
		sort.Ints(keptGroups)
		row := 0
		for f := range frames {
			var groups []int
			for _, q := range keptGroups {
				if q/per == f {
					groups = append(groups, q%per)
				}
			}
			if f == 0 {
				require.Len(t, groups, per, "frame 0 is always kept")
			}
			if len(groups) == 0 {
				continue
			}
			// The frame's kept patches alone through the remaining layers and the projector.
			np := len(groups) * gs * gs
			x := make([]float32, 0, np*16)
			for _, q := range groups {
				for j := range gs * gs {
					x = append(x, hidden[((vi*frames+f)*grid*grid+patch(q, j))*16:][:16]...)
				}
			}
			want := frameFeatures(t, be, store, cfg, tensors.FromFlatDataAndDimensions(x, 1, np, 16))
			got := kept[(vi*k*gs*gs+row)*24:][:np*24]
			require.InDeltaSlice(t, want, got, 1e-5, "video %d frame %d", vi, f)
			row += np
		}
		require.Equal(t, k*gs*gs, row)
	}

	_, dims, aux := run("stts", 0.5)
	require.Equal(t, []int{b, k * gs * gs, 24}, dims)
	require.True(t, aux, "STTS returns its auxiliary loss")
}

// frameFeatures runs one frame's kept patch tokens x [1, N, D] (after layer ScoreAfter) through
// the tower's layers up to vision_feature_layer and the projector, with the store's weights.
func frameFeatures(t *testing.T, be compute.Backend, store *model.Store, cfg models.VideoLlavaConfig, x *tensors.Tensor) []float32 {
	e, err := model.NewExecCanonical(be, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope = models.WithInit(scope)
		m := scope.At("model")
		layers := m.In("vision_tower").In("vision_model").In("encoder").In("layers")
		h := in[0]
		for i := cfg.ScoreAfter + 1; i < cfg.Llava.Vision.Layers-1; i++ { // vision_feature_layer −2
			h = models.EncoderLayerHF(layers.In("%d", i), cfg.Llava.Vision.EncoderConfig, h).Done()
		}
		p := m.In("multi_modal_projector")
		h = models.ActivationHF("gelu", models.Linear(p.In("linear_1"), h, 24, true))
		return []*Node{models.Linear(p.In("linear_2"), h, 24, true)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	out, err := e.Exec(x)
	require.NoError(t, err)
	return tensors.MustCopyFlatData[float32](out[0])
}
