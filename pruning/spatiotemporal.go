package pruning

// Spatiotemporal token pruning, the paper's name for its training-free heuristic ("Video-Based
// Reward Modeling for Computer-Use Agents", Song et al., arXiv:2603.10178, which trains the ExeVRM
// reward model with it; limenlp/ExeVRM src/llamafactory/model/model_utils/stp.py (spatial) and
// ttp.py (temporal)): the training-free baseline that STTS is compared against. It decides, before any network runs,
// which raw-pixel patches of a video become tokens. Paper rules, verbatim:
//
//	Spatial: union-find over neighbouring raw-pixel patches with L2 distance < 3.0; drop
//	components larger than 10 patches (large uniform regions).
//	Temporal: drop a patch whose cosine similarity with the last kept frame's patch is > 0.9999.
//	Kept tokens keep original position IDs.
//
// Everything here is plain host-side Go: it works on pixel values, not on graphs.

import (
	"fmt"
	"math"
)

// SpatiotemporalConfig holds the thresholds of the spatiotemporal pruning rules.
type SpatiotemporalConfig struct {
	// SpatialL2 (paper: 3.0) is the L2 distance between neighbouring patches' raw pixel vectors
	// (pixel values on the 0–255 scale) below which (strictly) the two patches are joined.
	SpatialL2 float64
	// MaxComponent (paper: 10): components with more patches than this are dropped; a component
	// of exactly MaxComponent patches is kept.
	MaxComponent int
	// TemporalCos (paper: 0.9999): a patch whose cosine similarity with its reference is strictly
	// greater than this is dropped.
	TemporalCos float64
}

// DefaultSpatiotemporal returns the paper's thresholds: "L2 distance < 3.0", "components larger than 10
// patches", "cosine similarity ... > 0.9999".
func DefaultSpatiotemporal() SpatiotemporalConfig {
	return SpatiotemporalConfig{SpatialL2: 3.0, MaxComponent: 10, TemporalCos: 0.9999}
}

// SpatiotemporalKeep decides which patches of a video to keep. patches is [T][H·W][D] raw pixel vectors
// (row-major patch grid of side gridW, values 0–255, e.g. from RawPatches); it returns keep
// [T][H·W]. Kept tokens keep their original position IDs (KeptPositions lists them); nothing is
// re-indexed here.
//
// Spatial rule ("union-find over neighbouring raw-pixel patches with L2 distance < 3.0; drop
// components larger than 10 patches"): per frame, every pair of 4-neighbours (left/right,
// up/down; diagonals are not neighbours) whose pixel vectors are at L2 distance strictly below
// cfg.SpatialL2 is joined; joining is transitive, so a slow gradient forms one component even
// when its ends differ a lot. Every patch of a component with more than cfg.MaxComponent patches
// is dropped. Components are computed on the whole frame, as it is.
//
// Temporal rule ("drop a patch whose cosine similarity with the last kept frame's patch is >
// 0.9999"): the patch at position i of frame t is compared with the patch at position i of the
// last frame t' < t in which position i was kept (the final decision, both rules applied), and is
// dropped if their cosine similarity is strictly greater than cfg.TemporalCos. A position that
// has never been kept, frame 0 included, is compared with nothing and is not dropped by this rule.
// Comparing with the last *kept* patch rather than with frame t−1 means a slow drift is caught
// once it has accumulated: what the model saw is the reference. Cosine similarity of two all-zero
// vectors counts as 1 (identical), of a zero and a non-zero vector as 0. Cosine similarity does
// not see brightness scaling: a patch that only gets uniformly brighter is dropped.
//
// How the rules combine: the text gives two independent drop rules, the spatial one describing a
// property of the frame ("large uniform regions"), so each is evaluated on the raw frame and a
// patch is kept iff neither rule drops it (the drops are united). In particular the spatial
// components include temporally dropped patches (a uniform region is as large as it is in the
// image), and a spatially dropped patch is not a temporal reference for later frames (it was not
// kept). This reading is order-free, unlike "temporal first, then spatial on what remains", which
// would let a static background shrink a uniform region below the size limit.
//
// It panics if gridW does not divide H·W or frames have different patch counts.
func SpatiotemporalKeep(patches [][][]float32, gridW int, cfg SpatiotemporalConfig) [][]bool {
	keep := make([][]bool, len(patches))
	if len(patches) == 0 {
		return keep
	}
	hw := len(patches[0])
	if gridW <= 0 || hw%gridW != 0 {
		panic(fmt.Sprintf("SpatiotemporalKeep: grid width %d does not divide %d patches", gridW, hw))
	}
	// ref[i] is the patch at position i in the last frame where i was kept (nil: never kept).
	ref := make([][]float32, hw)
	for t, frame := range patches {
		if len(frame) != hw {
			panic(fmt.Sprintf("SpatiotemporalKeep: frame %d has %d patches, frame 0 has %d", t, len(frame), hw))
		}
		spatialDrop := dropUniformRegions(frame, gridW, cfg)
		keep[t] = make([]bool, hw)
		for i, patch := range frame {
			temporalDrop := ref[i] != nil && cosine(ref[i], patch) > cfg.TemporalCos
			if !spatialDrop[i] && !temporalDrop {
				keep[t][i] = true
				ref[i] = patch
			}
		}
	}
	return keep
}

// dropUniformRegions applies the spatial rule to one frame ([H·W][D], row-major grid of width
// gridW): union-find over 4-neighbours at L2 distance < cfg.SpatialL2, then drop[i] is true iff
// the component of patch i has more than cfg.MaxComponent patches.
func dropUniformRegions(frame [][]float32, gridW int, cfg SpatiotemporalConfig) []bool {
	hw := len(frame)
	uf := newUnionFind(hw)
	for i := range hw {
		if (i+1)%gridW != 0 && l2(frame[i], frame[i+1]) < cfg.SpatialL2 { // right neighbour
			uf.union(i, i+1)
		}
		if i+gridW < hw && l2(frame[i], frame[i+gridW]) < cfg.SpatialL2 { // neighbour below
			uf.union(i, i+gridW)
		}
	}
	drop := make([]bool, hw)
	for i := range hw {
		drop[i] = uf.componentSize(i) > cfg.MaxComponent
	}
	return drop
}

// KeptPositions lists the original position IDs of the kept patches, frame-major: patch i of
// frame t has ID t·(H·W)+i ("kept tokens keep original position IDs"). Its length is the token
// count of the video, e.g. a sequence length for PackFFD.
func KeptPositions(keep [][]bool) []int {
	var ids []int
	for t, frame := range keep {
		for i, k := range frame {
			if k {
				ids = append(ids, t*len(frame)+i)
			}
		}
	}
	return ids
}

// RawPatches cuts a video [T×S×S×3 float32 in 0..1, frame-major HWC] into [T][(S/p)²][p·p·3]
// patch vectors on the 0–255 scale (the scale of the paper's thresholds), row-major patch order:
// patch py·(S/p)+px of frame t holds pixel (py·p+dy, px·p+dx), channel c, at element
// (dy·p+dx)·3+c. It panics if p does not divide s or len(frames) ≠ t·s·s·3.
func RawPatches(frames []float32, t, s, p int) [][][]float32 {
	if p <= 0 || s%p != 0 {
		panic(fmt.Sprintf("RawPatches: patch size %d does not divide image size %d", p, s))
	}
	if len(frames) != t*s*s*3 {
		panic(fmt.Sprintf("RawPatches: %d values for a %d×%d×%d×3 video", len(frames), t, s, s))
	}
	g, d := s/p, p*p*3
	out := make([][][]float32, t)
	for f := range t {
		data := make([]float32, g*g*d) // one backing array per frame
		out[f] = make([][]float32, g*g)
		for py := range g {
			for px := range g {
				vec := data[(py*g+px)*d : (py*g+px+1)*d]
				for dy := range p {
					for dx := range p {
						src := ((f*s+py*p+dy)*s + px*p + dx) * 3
						for c := range 3 {
							vec[(dy*p+dx)*3+c] = frames[src+c] * 255
						}
					}
				}
				out[f][py*g+px] = vec
			}
		}
	}
	return out
}

// l2 is the Euclidean distance of two vectors, accumulated in float64.
func l2(a, b []float32) float64 {
	var s float64
	for k := range a {
		d := float64(a[k]) - float64(b[k])
		s += d * d
	}
	return math.Sqrt(s)
}

// cosine is the cosine similarity of two vectors in float64: 1 if both are zero, 0 if only one is.
func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for k := range a {
		x, y := float64(a[k]), float64(b[k])
		dot += x * y
		na += x * x
		nb += y * y
	}
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// unionFind is a disjoint-set forest with path compression and union by size.
type unionFind struct {
	parent, size []int
}

func newUnionFind(n int) *unionFind {
	u := &unionFind{parent: make([]int, n), size: make([]int, n)}
	for i := range n {
		u.parent[i] = i
		u.size[i] = 1
	}
	return u
}

// find returns the root of x's set, pointing every node on the way directly at it.
func (u *unionFind) find(x int) int {
	root := x
	for u.parent[root] != root {
		root = u.parent[root]
	}
	for x != root {
		next := u.parent[x]
		u.parent[x] = root
		x = next
	}
	return root
}

// union merges the sets of a and b, hanging the smaller tree under the larger.
func (u *unionFind) union(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if u.size[ra] < u.size[rb] {
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
	u.size[ra] += u.size[rb]
}

// componentSize is the number of elements in x's set.
func (u *unionFind) componentSize(x int) int { return u.size[u.find(x)] }
