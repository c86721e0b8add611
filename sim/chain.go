package sim

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The chain family (opt-in: never among the default families, so recipes that list none or the
// four classic ones see the same worlds as before) names its target through a chain of spatial
// references: "pick up the left to the top to the red circle" is the object next to the left (in
// the x order of the scene's objects) of the object next above (in the y order) the only red
// circle. Each hop depends on where the previous one landed, so resolving the target is an
// iterated computation on the scene, the kind of multi-step case the recurrent-depth paper
// ("Recurrent-Depth VLA: Implicit Test-Time Compute Scaling of Vision-Language-Action Models via
// Latent Iterative Reasoning") reports one iteration failing on. The instruction reuses the
// simulator's words (Words), so vocabularies are unchanged.
//
// Every pair of objects is at least ChainGap apart along x and along y, so each order is visible
// in the image (3 px at 32 px); the anchor's colour and shape are unique in the scene; a chain
// never comes back to an object it visited, and the target is at least minTargetDist from the
// gripper start. Success is holding the target, as for pick.
const (
	FamilyChain     = "chain"
	ChainMinObjects = 4   // a chain scene has at least this many objects, whatever MinObjects is
	ChainMaxHops    = 3   // hops per chain, drawn uniformly in [1, ChainMaxHops]
	ChainGap        = 0.1 // least |Δx| and |Δy| between any two objects
	chainPlaceTries = 200 // position tries per object
)

// optInFamilies are families a recipe may name but that AllFamilies (the default) leaves out.
var optInFamilies = []string{FamilyChain}

// KnownFamilies returns every family a Config may name: AllFamilies, then the opt-in ones.
func KnownFamilies() []string { return append(AllFamilies(), optInFamilies...) }

// chainDirs are the hop words: the neighbour to the left / right in the x order, to the top /
// bottom in the y order (y grows downwards).
var chainDirs = []string{"left", "right", "top", "bottom"}

// chainNeighbour returns the index of the object next to objs[i] in direction dir (the nearest
// one along that axis on that side), or -1 when objs[i] is the last one that way.
func chainNeighbour(objs []object, i int, dir string) int {
	best, bestD := -1, math.Inf(1)
	for j, o := range objs {
		var d float64
		switch dir {
		case "left":
			d = objs[i].X - o.X
		case "right":
			d = o.X - objs[i].X
		case "top":
			d = objs[i].Y - o.Y
		default:
			d = o.Y - objs[i].Y
		}
		if j != i && d > 0 && d < bestD {
			best, bestD = j, d
		}
	}
	return best
}

// chainFits is fits plus the chain family's separation along both axes.
func (w *World) chainFits(x, y, r float64) bool {
	if !w.fits(x, y, r) {
		return false
	}
	return !slices.ContainsFunc(w.objs, func(o object) bool { return math.Abs(o.X-x) < ChainGap || math.Abs(o.Y-y) < ChainGap })
}

// sampleChain draws a chain scene and its instruction; false when the layout or the walk could
// not be completed. The anchor is objs[0]; w.target is where the walk ends.
func (w *World) sampleChain(rng *rand.Rand) bool {
	cfg := w.cfg
	shapes, colors := cfg.shapes(), cfg.colors()
	n := max(ChainMinObjects, cfg.MinObjects+rng.IntN(cfg.MaxObjects-cfg.MinObjects+1))
	shape, color := shapes[rng.IntN(len(shapes))], colors[rng.IntN(len(colors))]
	for len(w.objs) < n {
		s, c := shape, color
		if len(w.objs) > 0 {
			s, c = shapes[rng.IntN(len(shapes))], colors[rng.IntN(len(colors))]
			if s == shape && c == color {
				continue // the anchor's kind stays unique
			}
		}
		r, ok := uniform(rng, minRadius, maxRadius), false
		for t := 0; t < chainPlaceTries && !ok; t++ {
			x, y := rng.Float64(), rng.Float64()
			if ok = w.chainFits(x, y, r); ok {
				w.objs = append(w.objs, object{s, c, x, y, r})
			}
		}
		if !ok {
			return false
		}
	}
	// The target is drawn first, uniformly among the objects other than the anchor, and kept
	// only when walks of every length 1..ChainMaxHops reach it; then the hop count, then a walk
	// of that length uniformly among those that reach it. So the scene and its target are the
	// same whatever the hop count, and no rule that ignores the hops can do better on short
	// chains than on long ones. (A walk drawn first ends, the more hops it takes, at objects
	// far from the anchor: "the object farthest from the anchor" was right 0.18, 0.42 and 0.51
	// of the time at 1, 2 and 3 hops. TestChainHopBlindRules.)
	w.target = 1 + rng.IntN(len(w.objs)-1)
	if t := w.objs[w.target]; math.Hypot(t.X-w.gx, t.Y-w.gy) < minTargetDist {
		return false
	}
	walks := make([][][]string, ChainMaxHops+1)
	for h := 1; h <= ChainMaxHops; h++ {
		if walks[h] = chainWalks(w.objs, []int{0}, nil, h, w.target); len(walks[h]) == 0 {
			return false
		}
	}
	hops := 1 + rng.IntN(ChainMaxHops)
	dirs := walks[hops][rng.IntN(len(walks[hops]))]
	w.instr = "pick up the"
	for k := hops - 1; k >= 0; k-- { // the last hop is named first
		w.instr += " " + dirs[k] + " to the"
	}
	w.instr += " " + color + " " + shape
	return true
}

// chainWalks lists, in a fixed order, the hop directions that continue path (objects visited,
// never twice) with hops more hops and end at target.
func chainWalks(objs []object, path []int, dirs []string, hops, target int) [][]string {
	if hops == 0 {
		if path[len(path)-1] == target {
			return [][]string{slices.Clone(dirs)}
		}
		return nil
	}
	var out [][]string
	for _, d := range chainDirs {
		next := chainNeighbour(objs, path[len(path)-1], d)
		if next < 0 || slices.Contains(path, next) || (next == target) != (hops == 1) {
			continue
		}
		out = append(out, chainWalks(objs, append(slices.Clone(path), next), append(slices.Clone(dirs), d), hops-1, target)...)
	}
	return out
}

// ChainHops returns the number of hops in a chain instruction (0 for other families).
func ChainHops(instr string) int {
	n := 0
	for i := 0; i+3 <= len(instr); i++ {
		if instr[i:i+3] == " to" && (i+3 == len(instr) || instr[i+3] == ' ') {
			n++
		}
	}
	return n
}
