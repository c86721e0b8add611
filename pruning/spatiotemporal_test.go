package pruning

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// uniformFrame builds one frame whose patch i is the d-dimensional vector (vals[i], …, vals[i]).
func uniformFrame(d int, vals ...float32) [][]float32 {
	frame := make([][]float32, len(vals))
	for i, v := range vals {
		frame[i] = make([]float32, d)
		for k := range d {
			frame[i][k] = v
		}
	}
	return frame
}

// spatialOnly disables the temporal rule (cosine similarity never exceeds 2).
func spatialOnly() SpatiotemporalConfig {
	cfg := DefaultSpatiotemporal()
	cfg.TemporalCos = 2
	return cfg
}

func TestSpatiotemporalDefaults(t *testing.T) {
	require.Equal(t, SpatiotemporalConfig{SpatialL2: 3.0, MaxComponent: 10, TemporalCos: 0.9999}, DefaultSpatiotemporal())
}

// A 4×4 frame: rows 0–2 are one uniform region of 12 patches (with ±1 noise, still < 3.0 apart),
// row 3 holds four distinct patches. The region is dropped, the distinct patches kept.
func TestSpatiotemporalSpatialUniformRegion(t *testing.T) {
	frame := uniformFrame(3,
		100, 101, 100, 101,
		101, 100, 101, 100,
		100, 101, 100, 101,
		10, 50, 150, 200)
	keep := SpatiotemporalKeep([][][]float32{frame}, 4, DefaultSpatiotemporal())
	want := []bool{
		false, false, false, false,
		false, false, false, false,
		false, false, false, false,
		true, true, true, true}
	require.Equal(t, [][]bool{want}, keep)
	require.Equal(t, []int{12, 13, 14, 15}, KeptPositions(keep))
}

// Joining is transitive: a gradient whose neighbours differ by 1 is one component of 12 (dropped)
// although its ends are 11 apart.
func TestSpatiotemporalSpatialGradientChains(t *testing.T) {
	frame := uniformFrame(1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	keep := SpatiotemporalKeep([][][]float32{frame}, 12, DefaultSpatiotemporal())
	require.Equal(t, make([]bool, 12), keep[0])
}

// L2 threshold: 10 equal patches plus one at distance δ on a 1×11 row. δ < 3.0 joins it (11 > 10:
// all dropped); δ = 3.0 exactly or above does not (10 and 1: all kept).
func TestSpatiotemporalSpatialL2Boundary(t *testing.T) {
	for _, tc := range []struct {
		delta float32
		kept  bool
	}{{2.999, false}, {3.0, true}, {3.001, true}} {
		vals := []float32{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100 + tc.delta}
		keep := SpatiotemporalKeep([][][]float32{uniformFrame(1, vals...)}, 11, spatialOnly())
		for i, k := range keep[0] {
			require.Equal(t, tc.kept, k, "delta %g patch %d", tc.delta, i)
		}
	}
	// The distance is Euclidean over the whole pixel vector, not per value: in 4 dimensions a
	// difference of 1.4 per value (L2 2.8, L1 5.6) joins, 1.6 per value (L2 3.2, max 1.6) does not.
	for _, tc := range []struct {
		delta float32
		kept  bool
	}{{1.4, false}, {1.6, true}} {
		frame := uniformFrame(4, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100+tc.delta)
		keep := SpatiotemporalKeep([][][]float32{frame}, 11, spatialOnly())
		require.Equal(t, tc.kept, keep[0][0], "4-d delta %g", tc.delta)
		require.Equal(t, tc.kept, keep[0][10], "4-d delta %g", tc.delta)
	}
}

// Component size: exactly MaxComponent (10) patches are kept, 11 are dropped; measured in 2-D with
// vertical links too (a 3×4 grid).
func TestSpatiotemporalSpatialComponentSize(t *testing.T) {
	// 10 patches of value 50 (rows 0–1 and the first two of row 2), two distinct ones.
	ten := uniformFrame(3,
		50, 50, 50, 50,
		50, 50, 50, 50,
		50, 50, 150, 250)
	keep := SpatiotemporalKeep([][][]float32{ten}, 4, spatialOnly())
	require.Equal(t, []bool{true, true, true, true, true, true, true, true, true, true, true, true}, keep[0])

	eleven := uniformFrame(3,
		50, 50, 50, 50,
		50, 50, 50, 50,
		50, 50, 50, 250)
	keep = SpatiotemporalKeep([][][]float32{eleven}, 4, spatialOnly())
	require.Equal(t, []bool{false, false, false, false, false, false, false, false, false, false, false, true}, keep[0])

	// Only 4-neighbours link: a checkerboard has 12 equal patches of each colour, all diagonal
	// neighbours, so every component has one patch and everything is kept.
	var vals []float32
	for i := range 24 {
		vals = append(vals, float32(((i/6)+(i%6))%2)*200)
	}
	keep = SpatiotemporalKeep([][][]float32{uniformFrame(3, vals...)}, 6, spatialOnly())
	for i, k := range keep[0] {
		require.True(t, k, "checkerboard patch %d", i)
	}
}

// rotated is the 2-D vector of length 100 at angle theta.
func rotated(theta float64) []float32 {
	return []float32{float32(100 * math.Cos(theta)), float32(100 * math.Sin(theta))}
}

// Temporal rule: a static patch is kept in frame 0 and dropped afterwards; a changing one is kept.
func TestSpatiotemporalTemporalStaticVsChanging(t *testing.T) {
	static := []float32{10, 20, 30}
	video := [][][]float32{
		{static, {200, 0, 0}},
		{static, {0, 200, 0}},
		{static, {0, 0, 200}},
	}
	keep := SpatiotemporalKeep(video, 1, DefaultSpatiotemporal())
	require.Equal(t, [][]bool{{true, true}, {false, true}, {false, true}}, keep)
	require.Equal(t, []int{0, 1, 3, 5}, KeptPositions(keep))

	// Cosine similarity ignores scale: a patch that only gets brighter is dropped.
	keep = SpatiotemporalKeep([][][]float32{{{10, 20, 30}}, {{20, 40, 60}}}, 1, DefaultSpatiotemporal())
	require.Equal(t, [][]bool{{true}, {false}}, keep)

	// Threshold: cos 0.99995 (> 0.9999) is dropped, cos 0.99985 kept.
	for _, tc := range []struct {
		cos  float64
		kept bool
	}{{0.99995, false}, {0.99985, true}} {
		video := [][][]float32{{rotated(0)}, {rotated(math.Acos(tc.cos))}}
		keep := SpatiotemporalKeep(video, 1, DefaultSpatiotemporal())
		require.Equal(t, [][]bool{{true}, {tc.kept}}, keep, "cos %g", tc.cos)
	}

	// All-zero patches count as identical; zero vs non-zero as dissimilar.
	keep = SpatiotemporalKeep([][][]float32{{{0, 0}}, {{0, 0}}, {{5, 5}}, {{0, 0}}}, 1, DefaultSpatiotemporal())
	require.Equal(t, [][]bool{{true}, {false}, {true}, {true}}, keep)
}

// "Last kept frame": a slow drift of 0.01 rad per frame (cos 0.99995 between consecutive frames)
// is compared with the last kept patch, not with frame t−1, so it is kept once the drift from that
// patch exceeds the threshold (0.02 rad: cos 0.9998).
func TestSpatiotemporalTemporalLastKeptFrame(t *testing.T) {
	video := [][][]float32{
		{rotated(0)},     // kept: nothing to compare with
		{rotated(0.01)},  // vs frame 0: cos 0.99995 → dropped
		{rotated(0.02)},  // vs frame 0 (last kept): cos 0.9998 → kept (vs frame 1 it would drop)
		{rotated(0.025)}, // vs frame 2: cos 0.9999875 → dropped
		{rotated(0.035)}, // vs frame 2: cos 0.99986 → kept
	}
	keep := SpatiotemporalKeep(video, 1, DefaultSpatiotemporal())
	require.Equal(t, [][]bool{{true}, {false}, {true}, {false}, {true}}, keep)
}

// How the rules combine: both are evaluated on the raw frame and a patch is kept iff neither drops
// it.
func TestSpatiotemporalRulesCombine(t *testing.T) {
	cfg := DefaultSpatiotemporal()
	// Six coloured patches: far apart from each other and from grey, and (not being grey) with
	// cosine similarity < 0.9999 to grey, so the temporal rule never drops them against grey.
	colours := [][]float32{{10, 200, 30}, {200, 10, 30}, {30, 10, 200}, {10, 30, 200}, {200, 30, 10}, {30, 200, 10}}

	// Spatial components include temporally dropped patches: patches 0–5 are static grey (dropped
	// in frame 1 by the temporal rule), and in frame 1 patches 6–11 turn grey and join them into one
	// uniform region of 12, so they are dropped too, although the temporal rule keeps them (on the
	// temporal survivors alone they would be a component of 6, and kept).
	f0 := append(uniformFrame(3, 200, 200, 200, 200, 200, 200), colours...)
	f1 := uniformFrame(3, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)
	keep := SpatiotemporalKeep([][][]float32{f0, f1}, 12, cfg)
	require.Equal(t, [][]bool{
		{true, true, true, true, true, true, true, true, true, true, true, true},
		make([]bool, 12),
	}, keep)

	// A spatially dropped patch is no temporal reference: in frame 0 all 12 patches are one
	// uniform region (dropped); in frame 1 patches 0–5 are unchanged but 6–11 differ, so the
	// region has 6 patches and patches 0–5 are kept, since they were never kept before.
	keep = SpatiotemporalKeep([][][]float32{f1, f0}, 12, cfg)
	require.Equal(t, [][]bool{
		make([]bool, 12),
		{true, true, true, true, true, true, true, true, true, true, true, true},
	}, keep)
	require.Equal(t, []int{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}, KeptPositions(keep))
}

func TestSpatiotemporalPanicsOnBadGrid(t *testing.T) {
	require.Panics(t, func() { SpatiotemporalKeep([][][]float32{uniformFrame(1, 1, 2, 3)}, 2, DefaultSpatiotemporal()) })
	require.Panics(t, func() {
		SpatiotemporalKeep([][][]float32{uniformFrame(1, 1, 2), uniformFrame(1, 1)}, 1, DefaultSpatiotemporal())
	})
	require.Empty(t, SpatiotemporalKeep(nil, 4, DefaultSpatiotemporal()))
}

// RawPatches on a 2-frame 4×4 video with 2×2 patches: value = (t·1000 + y·100 + x·10 + c)/255 so
// the 0–255 output reads back each pixel's coordinates.
func TestSpatiotemporalRawPatchesLayout(t *testing.T) {
	const T, S, P = 2, 4, 2
	frames := make([]float32, T*S*S*3)
	for f := range T {
		for y := range S {
			for x := range S {
				for c := range 3 {
					frames[((f*S+y)*S+x)*3+c] = float32(f*1000+y*100+x*10+c) / 255
				}
			}
		}
	}
	patches := RawPatches(frames, T, S, P)
	require.Len(t, patches, T)
	for f := range T {
		require.Len(t, patches[f], (S/P)*(S/P))
		for py := range S / P {
			for px := range S / P {
				vec := patches[f][py*(S/P)+px]
				require.Len(t, vec, P*P*3)
				for dy := range P {
					for dx := range P {
						for c := range 3 {
							want := float64(f*1000 + (py*P+dy)*100 + (px*P+dx)*10 + c)
							require.InDelta(t, want, float64(vec[(dy*P+dx)*3+c]), 1e-3)
						}
					}
				}
			}
		}
	}
	// Spot check: frame 1, patch (row 1, col 0) = patch 2, its pixel (dy 1, dx 1), channel 2 is
	// pixel (y 3, x 1).
	require.InDelta(t, 1000+300+10+2, float64(patches[1][2][(1*P+1)*3+2]), 1e-3)

	require.Panics(t, func() { RawPatches(frames, T, S, 3) })
	require.Panics(t, func() { RawPatches(frames[1:], T, S, P) })
}

// End to end: a video of a uniform grey background with a small moving bright square. The
// background (one large uniform region) is dropped; the square's patches are kept where it is.
func TestSpatiotemporalRawPatchesEndToEnd(t *testing.T) {
	const T, S, P = 3, 16, 2 // 8×8 patch grid
	frames := make([]float32, T*S*S*3)
	for f := range T {
		for y := range S {
			for x := range S {
				v := float32(0.5)
				if y >= 4 && y < 6 && x >= 4*f && x < 4*f+2 { // one 2×2-pixel square = one patch
					v = float32(x+y) / 40
				}
				for c := range 3 {
					frames[((f*S+y)*S+x)*3+c] = v
				}
			}
		}
	}
	keep := SpatiotemporalKeep(RawPatches(frames, T, S, P), S/P, DefaultSpatiotemporal())
	for f := range T {
		square := 2*(S/P) + 2*f // patch row 2, column 2f
		for i, k := range keep[f] {
			require.Equal(t, i == square, k, "frame %d patch %d", f, i)
		}
	}
}
