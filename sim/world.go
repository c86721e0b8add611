// Package sim is a procedural, pure-Go 2-D tabletop robot world: a top-down table with
// coloured objects and bowls, one gripper, language task templates (pick, place, push,
// pick_any), a renderer for scene and wrist cameras, a scripted expert that records
// demonstrations (RecordEpisode) and a batched closed-loop evaluator (Evaluate).
//
// Coordinates: the table is the unit square, x to the right and y downwards (the image row),
// so the "top" edge is y = 0. Everything random is a deterministic function of a seed.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelml/reel/data"
)

// Dimensions of the robot state (x, y, gripper closed 0/1, holding 0/1) and of an action
// (dx, dy, grip).
const (
	StateDim  = 4
	ActionDim = 3
)

// StateNames and ActionNames name the state and action values (as a LeRobot dataset's
// features record them).
func StateNames() []string  { return []string{"x", "y", "gripper_closed", "holding"} }
func ActionNames() []string { return []string{"dx", "dy", "grip"} }

// World constants, in table units (the table is the unit square).
const (
	// MaxStep is how far the gripper moves for |dx| = 1 or |dy| = 1.
	MaxStep = 0.06
	// Reach is how far beyond an object's radius a closing gripper still grasps it.
	Reach = 0.03
	// EdgeZone is how close (centre to edge) a pushed object must get to its target edge.
	EdgeZone = 0.1

	minRadius, maxRadius     = 0.06, 0.08 // object radius range
	minBowl, maxBowl         = 0.11, 0.13 // bowl radius range
	minTargetDist            = 0.3        // the target's least distance from the gripper start
	minTwinDist, maxTwinDist = 0.25, 0.4  // pick_any: distance of each twin from the gripper start
	sceneTries               = 500        // whole-scene tries before NewWorld gives up
	placeTries               = 100        // position tries per object or bowl
	solveSteps               = 50         // the noise-free expert must solve a scene within this many steps
)

// Camera names.
const (
	CameraScene = "scene"
	CameraWrist = "wrist"
)

var families = []string{"pick", "place", "push", "pick_any"}

var edges = []string{"left", "right", "top", "bottom"}

// AllFamilies returns every task family, in a fixed order.
func AllFamilies() []string { return slices.Clone(families) }

// Config describes the procedural worlds. The zero value is not valid: start from DefaultConfig.
type Config struct {
	ImageSize  int      // side of every camera image, in pixels
	MinObjects int      // objects per scene (targets and distractors), at least
	MaxObjects int      // and at most; pick_any scenes always have two or more
	Bowls      int      // bowls per scene, 1 or 2
	Families   []string // task families to sample uniformly; empty means all
	Shapes     []string // object shapes; empty means data.AllShapes()
	Colors     []string // object and bowl colours; empty means data.AllColors()
	Wrist      bool     // also render a wrist camera centred on the gripper
	// Variation in [0, 1]: 0 is a flat background, fixed lighting and no camera jitter; 1 adds
	// textured or gradient backgrounds, brightness/tint changes and camera shifts of ±1.5 px.
	Variation   float64
	MaxSteps    int     // episode length limit
	ExpertNoise float64 // standard deviation of the Gaussian noise on the expert's dx, dy
	// SuccessTail is for reward episodes only (RecordRewardEpisode): frames recorded after a
	// solved episode's decision step, the gripper heading back to where it started with its
	// grip unchanged, so that the decisive step is no longer the last one. The task stays
	// solved in every tail frame (the tail ends early where a step would undo it). 0 ends a
	// solved episode at its decision step.
	SuccessTail int
}

// DefaultConfig returns the small configuration: 32-px scene camera, 2–4 objects, one bowl,
// all families, no variation, 60 steps, expert noise 0.1.
func DefaultConfig() Config {
	return Config{ImageSize: 32, MinObjects: 2, MaxObjects: 4, Bowls: 1, MaxSteps: 60, ExpertNoise: 0.1}
}

// Validate checks every field and returns a one-line error naming the first bad one.
func (c Config) Validate() error {
	switch {
	case c.ImageSize < 8 || c.ImageSize > 512:
		return fmt.Errorf("sim config: ImageSize must be in [8, 512], got %d", c.ImageSize)
	case c.MinObjects < 1:
		return fmt.Errorf("sim config: MinObjects must be at least 1, got %d", c.MinObjects)
	case c.MaxObjects < c.MinObjects || c.MaxObjects > 6:
		return fmt.Errorf("sim config: MaxObjects must be in [MinObjects=%d, 6], got %d", c.MinObjects, c.MaxObjects)
	case c.Bowls < 1 || c.Bowls > 2:
		return fmt.Errorf("sim config: Bowls must be 1 or 2, got %d", c.Bowls)
	case !(c.Variation >= 0 && c.Variation <= 1):
		return fmt.Errorf("sim config: Variation must be in [0, 1], got %g", c.Variation)
	case c.MaxSteps < 1 || c.MaxSteps > 100000:
		return fmt.Errorf("sim config: MaxSteps must be in [1, 100000], got %d", c.MaxSteps)
	case !(c.ExpertNoise >= 0 && c.ExpertNoise <= 1):
		return fmt.Errorf("sim config: ExpertNoise must be in [0, 1], got %g", c.ExpertNoise)
	case c.SuccessTail < 0 || c.SuccessTail > 1000:
		return fmt.Errorf("sim config: SuccessTail must be in [0, 1000], got %d", c.SuccessTail)
	}
	if err := checkList("Families", c.Families, KnownFamilies()); err != nil {
		return err
	}
	if err := checkList("Shapes", c.Shapes, data.AllShapes()); err != nil {
		return err
	}
	if err := checkList("Colors", c.Colors, data.AllColors()); err != nil {
		return err
	}
	if n := len(c.colors()); n < c.Bowls {
		return fmt.Errorf("sim config: Colors must list at least Bowls=%d colours (bowls differ in colour), got %d", c.Bowls, n)
	}
	if len(c.colors())*len(c.shapes()) < 2 {
		return fmt.Errorf("sim config: Colors × Shapes must allow at least 2 kinds of object, got %v × %v", c.colors(), c.shapes())
	}
	return nil
}

func checkList(field string, got, known []string) error {
	for i, s := range got {
		if !slices.Contains(known, s) {
			return fmt.Errorf("sim config: %s: unknown %q (known: %v)", field, s, known)
		}
		if slices.Contains(got[:i], s) {
			return fmt.Errorf("sim config: %s: %q listed twice", field, s)
		}
	}
	return nil
}

func orAll(list []string, all func() []string) []string {
	if len(list) == 0 {
		return all()
	}
	return list
}

func (c Config) families() []string { return orAll(c.Families, AllFamilies) }
func (c Config) shapes() []string   { return orAll(c.Shapes, data.AllShapes) }
func (c Config) colors() []string   { return orAll(c.Colors, data.AllColors) }

// Words returns every word an instruction can contain, for the tokenizer vocabulary.
func Words() []string {
	w := []string{"pick", "up", "the", "a", "put", "in", "bowl", "push", "to", "edge"}
	w = append(w, edges...)
	return append(append(w, data.AllColors()...), data.AllShapes()...)
}

type object struct {
	Shape, Color string
	X, Y, R      float64
}

type bowl struct {
	Color   string
	X, Y, R float64
}

// World is one procedural scene with its task. It is not safe for concurrent use.
type World struct {
	cfg    Config
	seed   uint64
	objs   []object
	bowls  []bowl
	gx, gy float64
	closed bool
	held   int // index into objs, -1 when empty-handed
	steps  int

	family, instr string
	target        int    // the object the task is about
	twin          int    // pick_any: the second valid target; -1 otherwise
	bowl          int    // place: the goal bowl
	edge          string // push: the goal edge
	choice        int    // pick_any: the twin the expert committed to; -1 before its first call

	look look // rendering parameters (render.go)
}

// NewWorld validates cfg and samples a scene, its task and the gripper start from seed.
func NewWorld(cfg Config, seed uint64) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := data.NewRand(seed)
	fams := cfg.families()
	family := fams[rng.IntN(len(fams))] // drawn once: rejections do not skew the family mix
	for range sceneTries {
		w := &World{cfg: cfg, seed: seed, held: -1, twin: -1, choice: -1, family: family}
		if w.sample(rng) && w.solvable() {
			w.look = newLook(cfg, seed)
			return w, nil
		}
	}
	return nil, fmt.Errorf("sim: could not sample a solvable scene for seed %d in %d tries (too many objects?)", seed, sceneTries)
}

func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// fits reports whether an object of radius r at (x, y) lies on the table with a margin and
// clear of the gripper, the bowls and every object placed so far.
func (w *World) fits(x, y, r float64) bool {
	if x < r+0.02 || x > 1-r-0.02 || y < r+0.02 || y > 1-r-0.02 || math.Hypot(x-w.gx, y-w.gy) < r+0.07 {
		return false
	}
	for _, b := range w.bowls {
		if math.Hypot(x-b.X, y-b.Y) < b.R+r+0.02 {
			return false
		}
	}
	for _, o := range w.objs {
		if math.Hypot(x-o.X, y-o.Y) < o.R+r+0.03 {
			return false
		}
	}
	return true
}

// place appends an object at a random free position at least far from the gripper; false
// when none was found.
func (w *World) place(rng *rand.Rand, shape, color string, r, far float64) bool {
	for range placeTries {
		x, y := rng.Float64(), rng.Float64()
		if w.fits(x, y, r) && math.Hypot(x-w.gx, y-w.gy) >= far {
			w.objs = append(w.objs, object{shape, color, x, y, r})
			return true
		}
	}
	return false
}

// sample draws one candidate scene; false when the layout could not be completed.
func (w *World) sample(rng *rand.Rand) bool {
	cfg := w.cfg
	shapes, colors := cfg.shapes(), cfg.colors()
	w.gx, w.gy = uniform(rng, 0.15, 0.85), uniform(rng, 0.15, 0.85)
	perm := rng.Perm(len(colors))
	for i := range cfg.Bowls {
		R, ok := uniform(rng, minBowl, maxBowl), false
		for t := 0; t < placeTries && !ok; t++ {
			b := bowl{colors[perm[i]], uniform(rng, R+0.01, 1-R-0.01), uniform(rng, R+0.01, 1-R-0.01), R}
			ok = !slices.ContainsFunc(w.bowls, func(o bowl) bool { return math.Hypot(b.X-o.X, b.Y-o.Y) < b.R+o.R+0.03 })
			if ok {
				w.bowls = append(w.bowls, b)
			}
		}
		if !ok {
			return false
		}
	}
	if w.family == FamilyChain {
		return w.sampleChain(rng) // chain.go
	}
	n := cfg.MinObjects + rng.IntN(cfg.MaxObjects-cfg.MinObjects+1)
	shape, color := shapes[rng.IntN(len(shapes))], colors[rng.IntN(len(colors))]
	r := uniform(rng, minRadius, maxRadius)
	w.target = 0
	if w.family == "pick_any" {
		n = max(n, 2)
		ok := false
		for t := 0; t < placeTries && !ok; t++ {
			a, d := uniform(rng, 0, 2*math.Pi), uniform(rng, minTwinDist, maxTwinDist)
			x0, y0, x1, y1 := w.gx+d*math.Cos(a), w.gy+d*math.Sin(a), w.gx-d*math.Cos(a), w.gy-d*math.Sin(a)
			if ok = w.fits(x0, y0, r) && w.fits(x1, y1, r); ok {
				w.objs = append(w.objs, object{shape, color, x0, y0, r}, object{shape, color, x1, y1, r})
				w.twin = 1
			}
		}
		if !ok {
			return false
		}
	} else if !w.place(rng, shape, color, r, minTargetDist) {
		return false
	}
	for len(w.objs) < n {
		s, c := shapes[rng.IntN(len(shapes))], colors[rng.IntN(len(colors))]
		if s == shape && c == color {
			continue // the target kind stays unique (pick_any: exactly the two twins)
		}
		if !w.place(rng, s, c, uniform(rng, minRadius, maxRadius), 0) {
			return false
		}
	}
	what := color + " " + shape
	switch w.family {
	case "pick":
		w.instr = "pick up the " + what
	case "pick_any":
		w.instr = "pick up a " + what
	case "place":
		w.bowl = rng.IntN(len(w.bowls))
		w.instr = "put the " + what + " in the " + w.bowls[w.bowl].Color + " bowl"
	case "push":
		w.edge = edges[rng.IntN(len(edges))]
		if d := w.edgeDist(w.objs[0]); d < 0.3 || 1-d < r+0.06 { // room to push, and behind
			return false
		}
		w.instr = "push the " + what + " to the " + w.edge + " edge"
	}
	return true
}

// edgeDist is the distance of o's centre from the push goal edge.
func (w *World) edgeDist(o object) float64 {
	switch w.edge {
	case "left":
		return o.X
	case "right":
		return 1 - o.X
	case "top":
		return o.Y
	}
	return 1 - o.Y
}

func (w *World) clone() *World {
	c := *w
	c.objs = slices.Clone(w.objs)
	return &c
}

// solvable runs the noise-free expert (for pick_any, once per twin) and accepts the scene
// only when it succeeds within solveSteps steps (whatever MaxSteps is) and its empty gripper never comes close to
// any object other than the one it is going for: demonstrations then never knock distractors.
func (w *World) solvable() bool {
	choices := []int{w.target}
	if w.twin >= 0 {
		choices = append(choices, w.twin)
	}
	for _, ch := range choices {
		c := w.clone()
		c.choice, c.cfg.MaxSteps = ch, solveSteps
		for !c.Done() {
			c.Step(c.expertAction())
			for i, o := range c.objs {
				if i != ch && c.held < 0 && math.Hypot(o.X-c.gx, o.Y-c.gy) < o.R+0.015 {
					return false
				}
			}
		}
		if !c.Success() {
			return false
		}
	}
	return true
}

// Instruction is the task in words, e.g. "put the red square in the blue bowl".
func (w *World) Instruction() string { return w.instr }

// Family is the task family: pick, place, push, pick_any or the opt-in chain.
func (w *World) Family() string { return w.family }

// Seed is the seed the world was sampled from.
func (w *World) Seed() uint64 { return w.seed }

// Steps is the number of actions executed so far.
func (w *World) Steps() int { return w.steps }

// State returns the robot state: gripper x, y, closed (0/1), holding (0/1).
func (w *World) State() []float32 {
	return []float32{float32(w.gx), float32(w.gy), b2f(w.closed), b2f(w.held >= 0)}
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// Success reports whether the task is solved in the current state.
func (w *World) Success() bool {
	t := w.objs[w.target]
	switch w.family {
	case "pick", FamilyChain:
		return w.held == w.target
	case "pick_any":
		return w.held >= 0 && (w.held == w.target || w.held == w.twin)
	case "place":
		b := w.bowls[w.bowl]
		return w.held != w.target && math.Hypot(t.X-b.X, t.Y-b.Y) < b.R
	}
	return w.edgeDist(t) < EdgeZone
}

// Done reports whether the episode is over: solved or MaxSteps actions executed.
func (w *World) Done() bool { return w.steps >= w.cfg.MaxSteps || w.Success() }

func clamp(v, lo, hi float64) float64 {
	if v != v { // NaN
		return (lo + hi) / 2
	}
	return max(lo, min(hi, v))
}

// Step executes one action (dx, dy, grip); missing or NaN components count as 0 and a Step
// after Done does nothing. The gripper moves first by (dx, dy)·MaxStep, each clamped to
// [-1, 1], staying on the table; a held object moves with it and an open gripper pushes
// the objects it moves into. Then grip > 0 closes the gripper, grasping the nearest free
// object within reach when empty-handed, and grip ≤ 0 opens it, releasing what it holds.
func (w *World) Step(action []float32) {
	if w.Done() {
		return
	}
	w.advance(action)
}

// advance is Step without the Done check: reward episodes record frames after success.
func (w *World) advance(action []float32) {
	var a [ActionDim]float64
	for i := range min(len(action), ActionDim) {
		a[i] = clamp(float64(action[i]), -1, 1)
	}
	px, py := w.gx, w.gy
	w.gx, w.gy = clamp(px+a[0]*MaxStep, 0, 1), clamp(py+a[1]*MaxStep, 0, 1)
	if w.held >= 0 {
		w.snap(w.held)
	} else if !w.closed {
		w.push(px, py)
	}
	w.closed = a[2] > 0
	switch {
	case !w.closed:
		w.held = -1
	case w.held < 0:
		best := math.Inf(1)
		for i, o := range w.objs {
			if d := math.Hypot(o.X-w.gx, o.Y-w.gy); d < o.R+Reach && d < best {
				w.held, best = i, d
			}
		}
		if w.held >= 0 {
			w.snap(w.held)
		}
	}
	w.steps++
}

// snap puts object i under the gripper, kept on the table.
func (w *World) snap(i int) {
	o := &w.objs[i]
	o.X, o.Y = clamp(w.gx, o.R, 1-o.R), clamp(w.gy, o.R, 1-o.R)
}

// push moves every object the gripper (which came from px, py) moved into along the motion,
// just far enough to stay in contact: its centre ends at distance R from the gripper.
func (w *World) push(px, py float64) {
	mx, my := w.gx-px, w.gy-py
	m := math.Hypot(mx, my)
	if m == 0 {
		return
	}
	ux, uy := mx/m, my/m
	for i := range w.objs {
		o := &w.objs[i]
		vx, vy := o.X-w.gx, o.Y-w.gy
		d2 := vx*vx + vy*vy
		if d2 >= o.R*o.R || d2 >= (o.X-px)*(o.X-px)+(o.Y-py)*(o.Y-py) {
			continue // out of contact, or the gripper is moving away from it
		}
		vu := vx*ux + vy*uy
		t := -vu + math.Sqrt(vu*vu-d2+o.R*o.R)
		o.X, o.Y = clamp(o.X+t*ux, o.R, 1-o.R), clamp(o.Y+t*uy, o.R, 1-o.R)
	}
}
