package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/reelml/reel/internal/rng"
)

var allShapes = []string{"circle", "square", "triangle", "diamond", "cross"}

var allColors = []string{"red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"}

// High-contrast RGB values, chosen to stand out on dark/grey backgrounds.
var colorRGB = map[string][3]float32{
	"red":    {1.00, 0.10, 0.10},
	"green":  {0.10, 0.90, 0.10},
	"blue":   {0.20, 0.40, 1.00},
	"yellow": {1.00, 1.00, 0.10},
	"purple": {0.75, 0.15, 0.95},
	"orange": {1.00, 0.55, 0.00},
	"white":  {1.00, 1.00, 1.00},
	"cyan":   {0.00, 1.00, 1.00},
}

// ColorRGB returns the RGB value of a colour name of AllColors (shared by every renderer, so a
// colour word means the same pixels in scenes, videos and the robot simulator).
func ColorRGB(name string) [3]float32 { return colorRGB[name] }

// AllShapes returns every shape the generator knows, in a fixed order.
func AllShapes() []string { return slices.Clone(allShapes) }

// AllColors returns every colour the generator knows, in a fixed order.
func AllColors() []string { return slices.Clone(allColors) }

func plural(shape string) string {
	if shape == "cross" {
		return "crosses"
	}
	return shape + "s"
}

// Example is one image with a question and its answer.
type Example struct {
	// Image is Size×Size×3 (HWC) with values in [0,1]. Images loaded by
	// LoadFolder may be shared between examples: do not modify.
	Image    []float32
	Size     int
	Question string
	Answer   string
	// Kind is counting|color|shape|position|presence for synthetic examples;
	// whatever the JSONL says (default "general") for folder data.
	Kind string
	// Scene is the generating scene for synthetic examples, nil otherwise.
	Scene *Scene
	// Variant names a sub-population for per-variant metrics, e.g. the distribution shift of an
	// out-of-distribution counting example (see OODShifts); empty otherwise.
	Variant string
}

// SceneConfig configures a SceneGenerator.
type SceneConfig struct {
	ImageSize              int
	MinObjects, MaxObjects int // 0 <= Min <= Max <= MaxCount
	// Shapes and Colors used; empty means all (AllShapes / AllColors).
	Shapes, Colors []string
	// MinSize, MaxSize: object size (side of its bounding box) as a fraction
	// of the image side, 0 < MinSize <= MaxSize <= 1.
	MinSize, MaxSize float64
	// Overlap allows objects to overlap; otherwise bounding boxes are kept
	// at least one pixel apart.
	Overlap bool
	// Background: solid|gradient|noise|mixed ("" means mixed), or checker, which mixed never
	// draws and is kept for out-of-distribution evaluation.
	Background string
	// CountingFraction is the probability that Example(rng, "") asks a
	// counting question.
	CountingFraction float64
}

// DefaultSceneConfig is a 32×32 counting/VQA setup with all shapes and
// colours, 1–6 non-overlapping objects of size 0.14–0.22.
func DefaultSceneConfig() SceneConfig {
	return SceneConfig{
		ImageSize: 32, MinObjects: 1, MaxObjects: 6,
		Shapes: AllShapes(), Colors: AllColors(),
		MinSize: 0.14, MaxSize: 0.22,
		Background: "mixed", CountingFraction: 0.5,
	}
}

// Object is one shape in a scene.
type Object struct {
	Shape, Color string
	// X, Y: centre, as fractions of the image side (Y grows downwards);
	// Size: side of the bounding box as a fraction of the image side.
	X, Y, Size float64
}

// Scene fully describes an image; Render is a pure function of it.
type Scene struct {
	Objects []Object
	// Background is solid|gradient|noise|checker (never mixed).
	Background string
	// Cell is the square side, in pixels, of a checker background.
	Cell int
	// Base is the background colour; for gradients it blends into Base2
	// along the unit direction (GradDX, GradDY).
	Base, Base2    [3]float32
	GradDX, GradDY float32
	// NoiseAmp is the amplitude of the uniform grey noise added for "noise"
	// backgrounds, drawn from NoiseSeed.
	NoiseAmp  float32
	NoiseSeed uint64
}

// Count returns how many objects have the given colour and shape; an empty
// colour or shape matches any.
func (s *Scene) Count(color, shape string) int {
	n := 0
	for _, o := range s.Objects {
		if (color == "" || o.Color == color) && (shape == "" || o.Shape == shape) {
			n++
		}
	}
	return n
}

// SceneGenerator samples and renders synthetic scenes and questions. It is
// immutable and safe for concurrent use; all randomness comes from the
// *rand.Rand passed to each call, so results are a deterministic function of
// the rand source.
type SceneGenerator struct {
	cfg SceneConfig
}

// NewSceneGenerator validates cfg and returns a generator.
func NewSceneGenerator(cfg SceneConfig) (*SceneGenerator, error) {
	if cfg.ImageSize < 4 || cfg.ImageSize > 4096 {
		return nil, fmt.Errorf("scene config: image size %d out of range [4, 4096]", cfg.ImageSize)
	}
	if cfg.MinObjects < 0 || cfg.MaxObjects < cfg.MinObjects || cfg.MaxObjects > MaxCount {
		return nil, fmt.Errorf("scene config: objects range [%d, %d] invalid: need 0 <= min <= max <= %d", cfg.MinObjects, cfg.MaxObjects, MaxCount)
	}
	var err error
	if cfg.Shapes, cfg.Colors, err = resolvePalette(cfg.Shapes, cfg.Colors, "scene config: ", "scene config: "); err != nil {
		return nil, err
	}
	if !(cfg.MinSize > 0) || cfg.MaxSize < cfg.MinSize || cfg.MaxSize > 1 {
		return nil, fmt.Errorf("scene config: object size range [%g, %g] invalid: need 0 < min <= max <= 1", cfg.MinSize, cfg.MaxSize)
	}
	if cfg.Background == "" {
		cfg.Background = "mixed"
	}
	switch cfg.Background {
	case "solid", "gradient", "noise", "mixed", "checker":
	default:
		return nil, fmt.Errorf("scene config: unknown background %q (want solid|gradient|noise|mixed|checker)", cfg.Background)
	}
	if !(cfg.CountingFraction >= 0 && cfg.CountingFraction <= 1) {
		return nil, fmt.Errorf("scene config: counting fraction %g not in [0, 1]", cfg.CountingFraction)
	}
	return &SceneGenerator{cfg: cfg}, nil
}

// resolvePalette returns copies of shapes and colors, an empty list meaning all of them, after
// checking that every entry is known and listed once. shapeErr and colorErr prefix the errors.
func resolvePalette(shapes, colors []string, shapeErr, colorErr string) ([]string, []string, error) {
	shapes, colors = slices.Clone(shapes), slices.Clone(colors)
	if len(shapes) == 0 {
		shapes = AllShapes()
	}
	if len(colors) == 0 {
		colors = AllColors()
	}
	for i, s := range shapes {
		if !slices.Contains(allShapes, s) {
			return nil, nil, fmt.Errorf("%sunknown shape %q (known: %v)", shapeErr, s, allShapes)
		}
		if slices.Contains(shapes[:i], s) {
			return nil, nil, fmt.Errorf("%sduplicate shape %q", shapeErr, s)
		}
	}
	for i, c := range colors {
		if _, ok := colorRGB[c]; !ok {
			return nil, nil, fmt.Errorf("%sunknown color %q (known: %v)", colorErr, c, allColors)
		}
		if slices.Contains(colors[:i], c) {
			return nil, nil, fmt.Errorf("%sduplicate color %q", colorErr, c)
		}
	}
	return shapes, colors, nil
}

// Config returns the (defaulted) configuration.
func (g *SceneGenerator) Config() SceneConfig {
	c := g.cfg
	c.Shapes = slices.Clone(c.Shapes)
	c.Colors = slices.Clone(c.Colors)
	return c
}

// NewRand returns a PCG-backed *rand.Rand seeded from seed.
func NewRand(seed uint64) *rand.Rand { return rng.New(seed) }

const (
	placeTries    = 200 // position tries per object
	placeRestarts = 30  // whole-scene restarts before giving up
)

// Sample draws a scene whose number of objects is uniform in
// [minObjects, maxObjects] (clamped to [0, MaxCount]). Without Overlap,
// objects are placed by rejection sampling so that their bounding boxes are
// at least one pixel apart; when an object cannot be placed, the whole
// placement is retried (up to 30 times). If every retry fails (the objects
// cannot fit), the attempt with the most objects is kept, so the scene may
// then hold fewer than requested; answers are always computed from the
// returned scene.
func (g *SceneGenerator) Sample(rng *rand.Rand, minObjects, maxObjects int) Scene {
	minObjects = max(0, min(minObjects, MaxCount))
	maxObjects = max(minObjects, min(maxObjects, MaxCount))
	n := minObjects + rng.IntN(maxObjects-minObjects+1)
	s := g.sampleBackground(rng)
	margin := 1 / float64(g.cfg.ImageSize)
	var best []Object
	for restart := 0; restart < placeRestarts; restart++ {
		objs := make([]Object, 0, n)
		for k := 0; k < n; k++ {
			o := Object{
				Shape: g.cfg.Shapes[rng.IntN(len(g.cfg.Shapes))],
				Color: g.cfg.Colors[rng.IntN(len(g.cfg.Colors))],
				Size:  g.cfg.MinSize + rng.Float64()*(g.cfg.MaxSize-g.cfg.MinSize),
			}
			r := o.Size / 2
			placed := false
			for t := 0; t < placeTries && !placed; t++ {
				o.X = r + rng.Float64()*(1-2*r)
				o.Y = r + rng.Float64()*(1-2*r)
				placed = g.cfg.Overlap || !collides(objs, o, margin)
			}
			if !placed {
				break
			}
			objs = append(objs, o)
		}
		if len(objs) > len(best) || best == nil {
			best = objs
		}
		if len(objs) == n {
			break
		}
	}
	s.Objects = best
	return s
}

func collides(objs []Object, o Object, margin float64) bool {
	for _, p := range objs {
		d := (o.Size+p.Size)/2 + margin
		if math.Abs(o.X-p.X) < d && math.Abs(o.Y-p.Y) < d {
			return true
		}
	}
	return false
}

func (g *SceneGenerator) sampleBackground(rng *rand.Rand) Scene {
	kind := g.cfg.Background
	if kind == "mixed" {
		kind = [...]string{"solid", "gradient", "noise"}[rng.IntN(3)]
	}
	grey := func(lo, hi float64) [3]float32 {
		l := lo + rng.Float64()*(hi-lo)
		var c [3]float32
		for i := range c { // slight tint, staying greyish and dark
			c[i] = float32(min(0.3, max(0, l+(rng.Float64()*2-1)*0.03)))
		}
		return c
	}
	s := Scene{Background: kind}
	switch kind {
	case "solid":
		s.Base = grey(0, 0.3)
	case "gradient":
		s.Base = grey(0, 0.3)
		s.Base2 = grey(0, 0.3)
		a := rng.Float64() * 2 * math.Pi
		s.GradDX, s.GradDY = float32(math.Cos(a)), float32(math.Sin(a))
	case "noise":
		s.Base = grey(0.05, 0.25)
		s.NoiseAmp = 0.05
		s.NoiseSeed = rng.Uint64()
	case "checker":
		s.Base = grey(0, 0.12)
		s.Base2 = grey(0.18, 0.3)
		s.Cell = 2 + rng.IntN(max(1, g.cfg.ImageSize/8))
	}
	return s
}

func clamp01(v float32) float32 { return min(1, max(0, v)) }

// Render draws the scene as ImageSize×ImageSize×3 (HWC) values in [0,1]. It
// is a pure function of s; objects are drawn in order (later on top), only
// within each object's bounding box. Every object paints at least its centre
// pixel, so even tiny objects are visible.
func (g *SceneGenerator) Render(s Scene) []float32 {
	n := g.cfg.ImageSize
	img := make([]float32, n*n*3)
	inv := 1 / float32(n)
	switch s.Background {
	case "gradient":
		for y := 0; y < n; y++ {
			py := (float32(y)+0.5)*inv - 0.5
			for x := 0; x < n; x++ {
				px := (float32(x)+0.5)*inv - 0.5
				t := clamp01(0.5 + px*s.GradDX + py*s.GradDY)
				p := img[(y*n+x)*3:]
				for c := 0; c < 3; c++ {
					p[c] = s.Base[c]*(1-t) + s.Base2[c]*t
				}
			}
		}
	case "noise":
		for i := 0; i < n*n; i++ {
			u := float32(rng.Mix64(s.NoiseSeed^uint64(i)*0x2545f4914f6cdd1d)>>40) / (1 << 24)
			d := (2*u - 1) * s.NoiseAmp
			p := img[i*3:]
			for c := 0; c < 3; c++ {
				p[c] = clamp01(s.Base[c] + d)
			}
		}
	case "checker":
		cell := max(1, s.Cell)
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				c := s.Base
				if (x/cell+y/cell)%2 == 1 {
					c = s.Base2
				}
				copy(img[(y*n+x)*3:], c[:])
			}
		}
	default: // solid
		for i := 0; i < n*n; i++ {
			copy(img[i*3:i*3+3], s.Base[:])
		}
	}
	for _, o := range s.Objects {
		drawObject(img, n, o)
	}
	return img
}

// InsideShape reports whether offset (dx, dy), in units of the object radius, is inside shape
// (triangles point up). Every renderer draws shapes with it.
func InsideShape(shape string, dx, dy float64) bool {
	ax, ay := math.Abs(dx), math.Abs(dy)
	switch shape {
	case "circle":
		return dx*dx+dy*dy <= 1
	case "square":
		return ax <= 0.85 && ay <= 0.85
	case "triangle": // pointing up: apex at dy=-1, base at dy=+1
		return ay <= 1 && ax <= (dy+1)/2
	case "diamond":
		return ax+ay <= 1
	case "cross":
		return (ax <= 0.34 && ay <= 1) || (ay <= 0.34 && ax <= 1)
	}
	return false
}

func drawObject(img []float32, n int, o Object) {
	rgb := colorRGB[o.Color]
	objectPixels(n, o, func(i int) { copy(img[i*3:], rgb[:]) })
}

// objectPixels calls fn with the index y*n+x of every pixel that o covers on an n×n image:
// the pixels whose centre lies inside the shape (insideShape), searched only within its
// bounding box, or its centre pixel alone if there are none. drawObject paints exactly these
// pixels, so instance masks built with objectPixels agree exactly with the rendered image.
func objectPixels(n int, o Object, fn func(i int)) {
	r := o.Size / 2
	side := float64(n)
	x0, x1 := max(0, int(math.Floor((o.X-r)*side))), min(n-1, int(math.Ceil((o.X+r)*side)))
	y0, y1 := max(0, int(math.Floor((o.Y-r)*side))), min(n-1, int(math.Ceil((o.Y+r)*side)))
	painted := false
	if r > 0 {
		for y := y0; y <= y1; y++ {
			dy := ((float64(y)+0.5)/side - o.Y) / r
			for x := x0; x <= x1; x++ {
				dx := ((float64(x)+0.5)/side - o.X) / r
				if InsideShape(o.Shape, dx, dy) {
					fn(y*n + x)
					painted = true
				}
			}
		}
	}
	if !painted {
		x, y := min(n-1, max(0, int(o.X*side))), min(n-1, max(0, int(o.Y*side)))
		fn(y*n + x)
	}
}

// Example draws a scene with MinObjects..MaxObjects objects and a question
// about it. kind:
//   - "": counting with probability CountingFraction, otherwise "general";
//   - "counting": a counting question;
//   - "general": color, shape, position or presence, chosen uniformly among
//     those well-defined for the scene (presence always is);
//   - "color", "shape", "position", "presence": that kind when well-defined
//     for the scene, otherwise presence.
//
// Any other kind panics. Use CountingExample for out-of-range counts.
func (g *SceneGenerator) Example(rng *rand.Rand, kind string) Example {
	switch kind {
	case "":
		if rng.Float64() < g.cfg.CountingFraction {
			kind = "counting"
		} else {
			kind = "general"
		}
	case "counting", "general", "color", "shape", "position", "presence":
	default:
		panic(fmt.Sprintf("data: unknown example kind %q (want \"\", counting, general, color, shape, position or presence)", kind))
	}
	if kind == "counting" {
		return g.CountingExample(rng, g.cfg.MinObjects, g.cfg.MaxObjects)
	}
	s := g.Sample(rng, g.cfg.MinObjects, g.cfg.MaxObjects)
	var q, a, k string
	switch kind {
	case "general":
		q, a, k = g.generalQA(rng, &s)
	default:
		q, a, k = g.specificQA(rng, &s, kind)
	}
	return g.finish(s, q, a, k)
}

// CountingExample draws a scene with a number of objects uniform in
// [minObjects, maxObjects] (clamped to [0, MaxCount]; may exceed the config's
// MaxObjects, e.g. for out-of-distribution evaluation) and asks a counting
// question about it.
func (g *SceneGenerator) CountingExample(rng *rand.Rand, minObjects, maxObjects int) Example {
	s := g.Sample(rng, minObjects, maxObjects)
	q, a := g.countingQA(rng, &s, true, true)
	return g.finish(s, q, a, "counting")
}

func (g *SceneGenerator) finish(s Scene, q, a, kind string) Example {
	return Example{Image: g.Render(s), Size: g.cfg.ImageSize, Question: q, Answer: a, Kind: kind, Scene: &s}
}

// countingQA: "how many [color] (objects|<shape plural>) ?". Attributes are
// taken from an object of the scene with probability 0.8 (answer >= 1),
// otherwise drawn from the config (answer may be 0).
//
// colorOK/shapeOK = false never name a colour/shape (out-of-distribution scenes whose colours or
// shapes were never seen in training, so their words were never trained either).
func (g *SceneGenerator) countingQA(rng *rand.Rand, s *Scene, colorOK, shapeOK bool) (q, a string) {
	v := rng.IntN(10)
	useColor, useShape := v >= 6 && colorOK, (v == 4 || v == 5 || v >= 8) && shapeOK
	color, shape := "", ""
	if useColor || useShape {
		if len(s.Objects) > 0 && rng.Float64() < 0.8 {
			o := s.Objects[rng.IntN(len(s.Objects))]
			color, shape = o.Color, o.Shape
		} else {
			color = g.cfg.Colors[rng.IntN(len(g.cfg.Colors))]
			shape = g.cfg.Shapes[rng.IntN(len(g.cfg.Shapes))]
		}
		if !useColor {
			color = ""
		}
		if !useShape {
			shape = ""
		}
	}
	q = "how many "
	if color != "" {
		q += color + " "
	}
	if shape != "" {
		q += plural(shape)
	} else {
		q += "objects"
	}
	return q + " ?", strconv.Itoa(s.Count(color, shape))
}

// posMargin: objects closer than this to the middle line are not asked about.
const posMargin = 0.04

type posCand struct {
	o        Object
	vertical bool // top/bottom instead of left/right
}

func (g *SceneGenerator) colorCands(s *Scene) []string {
	var c []string
	for _, sh := range g.cfg.Shapes {
		if s.Count("", sh) == 1 {
			c = append(c, sh)
		}
	}
	return c
}

func (g *SceneGenerator) shapeCands(s *Scene) []string {
	var c []string
	for _, col := range g.cfg.Colors {
		if s.Count(col, "") == 1 {
			c = append(c, col)
		}
	}
	return c
}

func (g *SceneGenerator) posCands(s *Scene) []posCand {
	var c []posCand
	for _, o := range s.Objects {
		if s.Count(o.Color, o.Shape) != 1 {
			continue
		}
		if math.Abs(o.X-0.5) >= posMargin {
			c = append(c, posCand{o, false})
		}
		if math.Abs(o.Y-0.5) >= posMargin {
			c = append(c, posCand{o, true})
		}
	}
	return c
}

func (g *SceneGenerator) generalQA(rng *rand.Rand, s *Scene) (q, a, kind string) {
	kinds := make([]string, 0, 4)
	if len(g.colorCands(s)) > 0 {
		kinds = append(kinds, "color")
	}
	if len(g.shapeCands(s)) > 0 {
		kinds = append(kinds, "shape")
	}
	if len(g.posCands(s)) > 0 {
		kinds = append(kinds, "position")
	}
	kinds = append(kinds, "presence")
	return g.specificQA(rng, s, kinds[rng.IntN(len(kinds))])
}

func (g *SceneGenerator) specificQA(rng *rand.Rand, s *Scene, kind string) (q, a, k string) {
	switch kind {
	case "color":
		if c := g.colorCands(s); len(c) > 0 {
			sh := c[rng.IntN(len(c))]
			for _, o := range s.Objects {
				if o.Shape == sh {
					return "what color is the " + sh + " ?", o.Color, "color"
				}
			}
		}
	case "shape":
		if c := g.shapeCands(s); len(c) > 0 {
			col := c[rng.IntN(len(c))]
			for _, o := range s.Objects {
				if o.Color == col {
					return "what shape is the " + col + " object ?", o.Shape, "shape"
				}
			}
		}
	case "position":
		if c := g.posCands(s); len(c) > 0 {
			p := c[rng.IntN(len(c))]
			name := p.o.Color + " " + p.o.Shape
			if p.vertical {
				a = "bottom"
				if p.o.Y < 0.5 {
					a = "top"
				}
				return "is the " + name + " top or bottom ?", a, "position"
			}
			a = "right"
			if p.o.X < 0.5 {
				a = "left"
			}
			return "is the " + name + " left or right ?", a, "position"
		}
	}
	q, a = g.presenceQA(rng, s)
	return q, a, "presence"
}

// presenceQA: "is there a <color> <shape> ?", aiming for yes/no 50/50.
func (g *SceneGenerator) presenceQA(rng *rand.Rand, s *Scene) (q, a string) {
	wantYes := rng.IntN(2) == 0
	var color, shape string
	if wantYes && len(s.Objects) > 0 {
		o := s.Objects[rng.IntN(len(s.Objects))]
		color, shape = o.Color, o.Shape
	} else {
		var absent [][2]string
		for _, c := range g.cfg.Colors {
			for _, sh := range g.cfg.Shapes {
				if s.Count(c, sh) == 0 {
					absent = append(absent, [2]string{c, sh})
				}
			}
		}
		if len(absent) > 0 {
			p := absent[rng.IntN(len(absent))]
			color, shape = p[0], p[1]
		} else { // every combination present
			o := s.Objects[rng.IntN(len(s.Objects))]
			color, shape = o.Color, o.Shape
		}
	}
	article := "a"
	if color == "orange" {
		article = "an"
	}
	a = "no"
	if s.Count(color, shape) > 0 {
		a = "yes"
	}
	return "is there " + article + " " + color + " " + shape + " ?", a
}
