package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
)

// resolveChain reads a chain instruction the way a person would, independently of the sampler:
// find the only object of the named colour and shape, then apply the hops innermost first, each
// hop ranking all objects along its axis (sort) and stepping one rank.
func resolveChain(t *testing.T, w *World) int {
	t.Helper()
	words := strings.Fields(w.Instruction())
	if len(words) < 7 || strings.Join(words[:3], " ") != "pick up the" {
		t.Fatalf("instruction %q: want 'pick up the DIR to the ... COLOR SHAPE'", w.Instruction())
	}
	color, shape := words[len(words)-2], words[len(words)-1]
	anchor := -1
	for i, o := range w.objs {
		if o.Color == color && o.Shape == shape {
			if anchor >= 0 {
				t.Fatalf("instruction %q: two %s %ss in the scene", w.Instruction(), color, shape)
			}
			anchor = i
		}
	}
	if anchor < 0 {
		t.Fatalf("instruction %q: no %s %s in the scene", w.Instruction(), color, shape)
	}
	var dirs []string
	for k := 3; k < len(words)-2; k += 3 {
		if words[k+1] != "to" || words[k+2] != "the" {
			t.Fatalf("instruction %q: malformed hop at word %d", w.Instruction(), k)
		}
		dirs = append(dirs, words[k])
	}
	cur := anchor
	for k := len(dirs) - 1; k >= 0; k-- {
		idx := make([]int, len(w.objs))
		for i := range idx {
			idx[i] = i
		}
		key := func(i int) float64 {
			if dirs[k] == "left" || dirs[k] == "right" {
				return w.objs[i].X
			}
			return w.objs[i].Y
		}
		sort.Slice(idx, func(a, b int) bool { return key(idx[a]) < key(idx[b]) })
		rank := slices.Index(idx, cur)
		if dirs[k] == "left" || dirs[k] == "top" {
			rank--
		} else {
			rank++
		}
		if rank < 0 || rank >= len(idx) {
			t.Fatalf("instruction %q: hop %q walks off the scene", w.Instruction(), dirs[k])
		}
		cur = idx[rank]
	}
	return cur
}

func TestChainFamilyIsOptIn(t *testing.T) {
	if slices.Contains(AllFamilies(), FamilyChain) {
		t.Fatalf("AllFamilies %v must not contain the opt-in %q", AllFamilies(), FamilyChain)
	}
	if !slices.Contains(KnownFamilies(), FamilyChain) {
		t.Fatalf("KnownFamilies %v lacks %q", KnownFamilies(), FamilyChain)
	}
	// A default configuration never draws a chain world.
	for i := range 200 {
		w, err := NewWorld(DefaultConfig(), TrainSeed(7, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if w.Family() == FamilyChain {
			t.Fatalf("seed %d: default config drew a chain world", i)
		}
	}
}

// The instruction determines the target uniquely, orders are visible, hop counts cover 1…3 and
// the scripted expert solves the worlds.
func TestChainWorlds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Families = []string{FamilyChain}
	cfg.MinObjects, cfg.MaxObjects = 2, 4
	cfg.Shapes, cfg.Colors = []string{"circle", "square", "triangle"}, []string{"red", "green", "blue", "yellow"}
	hops := map[int]int{}
	solved, n := 0, 150
	for i := range n {
		seed := TrainSeed(3, int64(i))
		w, err := NewWorld(cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		if w.Family() != FamilyChain || len(w.objs) < ChainMinObjects {
			t.Fatalf("seed %d: family %q with %d objects", i, w.Family(), len(w.objs))
		}
		for a := range w.objs {
			for b := range a {
				if dx, dy := math.Abs(w.objs[a].X-w.objs[b].X), math.Abs(w.objs[a].Y-w.objs[b].Y); dx < ChainGap || dy < ChainGap {
					t.Fatalf("seed %d: objects %d and %d only %.3f, %.3f apart", i, a, b, dx, dy)
				}
			}
		}
		if got := resolveChain(t, w); got != w.target {
			t.Fatalf("seed %d: %q resolves to object %d, the task's target is %d", i, w.Instruction(), got, w.target)
		}
		if f := FamilyOf(w.Instruction()); f != FamilyChain {
			t.Fatalf("seed %d: FamilyOf(%q) = %q", i, w.Instruction(), f)
		}
		h := ChainHops(w.Instruction())
		if h < 1 || h > ChainMaxHops {
			t.Fatalf("seed %d: %q has %d hops", i, w.Instruction(), h)
		}
		hops[h]++
		ep, err := RecordEpisode(cfg, seed, i) // the noisy expert, as in the training data
		if err != nil {
			t.Fatal(err)
		}
		if ep.Success {
			solved++
		}
	}
	for h := 1; h <= ChainMaxHops; h++ {
		if hops[h] < n/6 {
			t.Errorf("hop count %d drawn %d times of %d: %v", h, hops[h], n, hops)
		}
	}
	if solved < n*9/10 {
		t.Errorf("noisy expert solved %d of %d chain worlds, want ≥ 90%%", solved, n)
	}
	// Deterministic in the seed.
	a, _ := NewWorld(cfg, 99)
	b, _ := NewWorld(cfg, 99)
	if a.Instruction() != b.Instruction() || a.target != b.target || !slices.Equal(a.objs, b.objs) {
		t.Fatal("same seed, different chain world")
	}
}

// Mixing chain with pick keeps every instruction within the simulator's words.
func TestChainWordsKnown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Families = []string{"pick", FamilyChain}
	cfg.MinObjects, cfg.MaxObjects = 2, 4
	for i := range 50 {
		w, err := NewWorld(cfg, TrainSeed(5, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if f := FamilyOf(w.Instruction()); f != w.Family() {
			t.Fatalf("FamilyOf(%q) = %q, the world's family is %q", w.Instruction(), f, w.Family())
		}
		for _, word := range strings.Fields(w.Instruction()) {
			if !slices.Contains(Words(), word) {
				t.Fatalf("%q: word %q not in Words()", w.Instruction(), word)
			}
		}
	}
}

// Evaluation results split chain worlds by hop count, and the split adds up to the family.
func TestChainSummaryByHops(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Families = []string{"pick", FamilyChain}
	var worlds []*World
	want := map[string]int{}
	for i := range 60 {
		w, err := NewWorld(cfg, EvalSeed(1, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		worlds = append(worlds, w)
		if w.Family() == FamilyChain {
			want[fmt.Sprintf("chain_%dhop", ChainHops(w.Instruction()))]++
		}
	}
	res := summarize(worlds)
	sum := 0
	for k, n := range want {
		if res.Families[k].N != n {
			t.Errorf("%s: n = %d, want %d", k, res.Families[k].N, n)
		}
		sum += n
	}
	if res.Families[FamilyChain].N != sum || res.N != len(worlds) {
		t.Errorf("chain n = %d (hops sum %d), all n = %d of %d", res.Families[FamilyChain].N, sum, res.N, len(worlds))
	}
}

// Rules that do not follow the chain, and how often each picks the target on 4000 held-out worlds
// of rdvla-chain-tiny's scenes (always 4 objects: a random object other than the anchor is right
// 1/3 of the time). These are the floors docs/rdvla.md compares the trained heads with:
//   - farthest: the object farthest from the anchor (reads no hop word). It must do no better on
//     short chains than on long ones. Before the sampler drew the target first, a walk ended, the
//     more hops it took, far from the anchor: it was right 0.18, 0.42 and 0.51 of the time at 1,
//     2 and 3 hops.
//   - lastNamed: the object last in the direction named first, the last hop's (reads one word; a
//     random one when that is the anchor). With the first sampler the target was that object
//     0.34, 0.42 and 0.58 of the time.
//   - bag: the object whose direction from the anchor best matches the sum of the hop words'
//     directions (reads every word, not their order).
//   - ranks: the object whose x and y ranks are offset from the anchor's by the net count of
//     right − left and bottom − top words (reads every word, not their order; exact for a 1-hop
//     chain when nothing else ties).
func TestChainHopBlindRules(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Families = []string{FamilyChain}
	cfg.MinObjects, cfg.MaxObjects = 2, 4
	cfg.Shapes = []string{"circle", "square", "triangle"}
	cfg.Colors = []string{"red", "green", "blue", "yellow"}
	unit := map[string][2]float64{"left": {-1, 0}, "right": {1, 0}, "top": {0, -1}, "bottom": {0, 1}}
	n := map[int]float64{}
	right := map[string]map[int]float64{"farthest": {}, "lastNamed": {}, "bag": {}, "ranks": {}}
	for i := range 4000 {
		w, err := NewWorld(cfg, EvalSeed(12345, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(w.objs) != ChainMinObjects {
			t.Fatalf("world %d has %d objects, want %d", i, len(w.objs), ChainMinObjects)
		}
		h := ChainHops(w.instr)
		n[h]++
		words := strings.Fields(strings.TrimPrefix(w.instr, "pick up the "))
		var sx, sy float64
		for _, f := range words {
			sx, sy = sx+unit[f][0], sy+unit[f][1]
		}
		rank := func(j int, y bool) float64 {
			r := 0.0
			for _, o := range w.objs {
				if (!y && o.X < w.objs[j].X) || (y && o.Y < w.objs[j].Y) {
					r++
				}
			}
			return r
		}
		a := w.objs[0] // the anchor
		// credit is how often a rule picking uniformly among the best-scoring objects other than
		// the anchor picks the target: 1/k when the target is one of k ties, else 0.
		credit := func(score func(j int, o object) float64) float64 {
			bs, best := math.Inf(-1), []int(nil)
			for j, o := range w.objs {
				switch sc := score(j, o); {
				case j == 0:
				case sc > bs+1e-9:
					bs, best = sc, []int{j}
				case sc > bs-1e-9:
					best = append(best, j)
				}
			}
			if slices.Contains(best, w.target) {
				return 1 / float64(len(best))
			}
			return 0
		}
		right["farthest"][h] += credit(func(_ int, o object) float64 { return math.Hypot(o.X-a.X, o.Y-a.Y) })
		right["lastNamed"][h] += credit(func(j int, _ object) float64 { return float64(b2f(chainNeighbour(w.objs, j, words[0]) < 0)) })
		right["bag"][h] += credit(func(_ int, o object) float64 {
			return ((o.X-a.X)*sx + (o.Y-a.Y)*sy) / math.Hypot(o.X-a.X, o.Y-a.Y)
		})
		right["ranks"][h] += credit(func(j int, _ object) float64 {
			return -math.Abs(rank(j, false)-rank(0, false)-sx) - math.Abs(rank(j, true)-rank(0, true)-sy)
		})
	}
	want := map[string][3]float64{"farthest": {0.29, 0.28, 0.29}, "lastNamed": {0.43, 0.48, 0.57}, "bag": {0.47, 0.48, 0.45}, "ranks": {0.72, 0.42, 0.58}}
	for rule, w := range want {
		for h := 1; h <= ChainMaxHops; h++ {
			got := right[rule][h] / n[h]
			t.Logf("%s, %d hops (%.0f worlds): %.3f", rule, h, n[h], got)
			if math.Abs(got-w[h-1]) > 0.01 {
				t.Errorf("%s, %d hops: right %.3f of the time, docs/rdvla.md says %.2f", rule, h, got, w[h-1])
			}
			if f1 := right["farthest"][1] / n[1]; rule == "farthest" && got > f1+0.03 {
				t.Errorf("%d hops: a rule that reads no hop word does better than on 1 hop (%.3f against %.3f)", h, got, f1)
			}
		}
	}
}
