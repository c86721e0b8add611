package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/reelml/reel/text"
)

// MaxVideoObjects is the largest number of objects a VideoConfig may ask for.
const MaxVideoObjects = 8

// VideoConfig configures a VideoGenerator of synthetic moving-objects videos.
type VideoConfig struct {
	Size                   int // frame side in pixels, 4..4096
	Frames                 int // T, 1..1024
	MinObjects, MaxObjects int // 1 <= Min <= Max <= MaxVideoObjects
	// Shapes and Colors used; empty means all (AllShapes / AllColors).
	Shapes, Colors []string
	// MinSize, MaxSize: object size (side of its bounding box) as a fraction of the frame side,
	// 0 < MinSize <= MaxSize <= 1.
	MinSize, MaxSize float64
	// Background: solid|gradient|noise|mixed ("" means mixed), or checker, which mixed never
	// draws (as for SceneConfig). The background does not change over the video.
	Background string
	// MaxSpeed is the largest object speed, as a fraction of the frame side per frame, 0..1.
	MaxSpeed float64
	// AppearLeave lets objects appear after the first frame or leave before the last one
	// (only for videos of 4 frames or more).
	AppearLeave bool
}

// DefaultVideoConfig is 8 frames of 32×32 with all shapes and colours, 1–4 objects of size
// 0.15–0.25 moving at up to 0.05 of the side per frame over a mixed background, objects
// appearing and leaving.
func DefaultVideoConfig() VideoConfig {
	return VideoConfig{
		Size: 32, Frames: 8, MinObjects: 1, MaxObjects: 4,
		Shapes: AllShapes(), Colors: AllColors(),
		MinSize: 0.15, MaxSize: 0.25,
		Background: "mixed", MaxSpeed: 0.05, AppearLeave: true,
	}
}

// VideoObject is one shape moving through a video. Its centre is (X, Y) at frame Start; from
// then on it moves by its velocity every frame, the velocity turning by Turn radians after
// each move, and bounces off the borders so that its bounding box stays inside the frame.
// With MoveEnd > MoveStart it only moves in the frames of [MoveStart, MoveEnd) (frame t moves
// it from its frame t-1 position), holding its position before and after. With NewColor set,
// it is drawn in NewColor from frame ChangeAt on. The zero values of MoveStart, MoveEnd,
// ChangeAt and NewColor leave it moving in every frame, in Color.
type VideoObject struct {
	Shape, Color string
	Size         float64 // side of its bounding box, as a fraction of the frame side
	X, Y         float64 // centre at frame Start, fractions of the side (Y grows downwards)
	VX, VY       float64 // velocity per frame, fractions of the side
	Turn         float64 // change of velocity direction per frame, radians (0 = straight line)
	Start, End   int     // visible in frames [Start, End)
	// MoveStart, MoveEnd: when MoveEnd > MoveStart, the object moves only in frames
	// [MoveStart, MoveEnd); otherwise in every frame after Start.
	MoveStart, MoveEnd int
	// ChangeAt, NewColor: when NewColor != "", the object is drawn in NewColor from frame
	// ChangeAt on (and in Color before).
	ChangeAt int
	NewColor string
}

// movesAt reports whether o moves from its frame t-1 position to a new one at frame t (given
// t is after its start).
func (o VideoObject) movesAt(t int) bool {
	return o.MoveEnd <= o.MoveStart || (t >= o.MoveStart && t < o.MoveEnd)
}

// ColorAt returns the colour o is drawn in at frame t: NewColor from ChangeAt on when set,
// Color otherwise.
func (o VideoObject) ColorAt(t int) string {
	if o.NewColor != "" && t >= o.ChangeAt {
		return o.NewColor
	}
	return o.Color
}

// VideoScene fully describes a synthetic video; VideoGenerator.Render is a pure function of it.
type VideoScene struct {
	// Objects are drawn in order, later ones on top.
	Objects []VideoObject
	// Background holds the background fields of an image Scene; its Objects are ignored.
	Background Scene
}

// Video is a clip of T frames, synthetic or decoded from a file.
type Video struct {
	T, Size int
	// Frames is T×Size×Size×3 (frame-major, HWC) with values in [0,1].
	Frames []float32
	// Masks is T×Size×Size: 0 for background, k for object k-1 of Scene.Objects (the topmost
	// object covering the pixel). nil for decoded real videos.
	Masks []uint8
	// Caption describes the video: built by Caption for synthetic videos, read from the
	// dataset for real ones.
	Caption string
	// Scene is the generating scene of a synthetic video, nil for real videos.
	Scene *VideoScene
	// Source is the file the video was decoded from, "" for synthetic videos.
	Source string
}

// NumObjects returns the number of objects visible in at least one frame of a synthetic video
// (objects hidden behind others in every frame do not count), or 0 if unknown.
func (v *Video) NumObjects() int {
	if v.Masks == nil {
		if v.Scene == nil {
			return 0
		}
		n := 0
		for _, o := range v.Scene.Objects {
			if max(0, o.Start) < min(v.T, o.End) {
				n++
			}
		}
		return n
	}
	var seen [256]bool
	n := 0
	for _, id := range v.Masks {
		if id != 0 && !seen[id] {
			seen[id] = true
			n++
		}
	}
	return n
}

// VideoGenerator samples and renders synthetic videos of moving shapes with exact instance
// masks and captions. It is immutable and safe for concurrent use; all randomness comes from the
// *rand.Rand passed to Sample.
type VideoGenerator struct {
	cfg    VideoConfig
	scenes *SceneGenerator // draws and renders the backgrounds
}

// NewVideoGenerator validates cfg and returns a generator. Errors are one line naming the field.
func NewVideoGenerator(cfg VideoConfig) (*VideoGenerator, error) {
	if cfg.Size < 4 || cfg.Size > 4096 {
		return nil, fmt.Errorf("video config: Size %d out of range [4, 4096]", cfg.Size)
	}
	if cfg.Frames < 1 || cfg.Frames > 1024 {
		return nil, fmt.Errorf("video config: Frames %d out of range [1, 1024]", cfg.Frames)
	}
	if cfg.MinObjects < 1 || cfg.MaxObjects < cfg.MinObjects || cfg.MaxObjects > MaxVideoObjects {
		return nil, fmt.Errorf("video config: MinObjects, MaxObjects = %d, %d invalid: need 1 <= min <= max <= %d",
			cfg.MinObjects, cfg.MaxObjects, MaxVideoObjects)
	}
	var err error
	if cfg.Shapes, cfg.Colors, err = resolvePalette(cfg.Shapes, cfg.Colors, "video config: Shapes: ", "video config: Colors: "); err != nil {
		return nil, err
	}
	if !(cfg.MinSize > 0) || !(cfg.MaxSize >= cfg.MinSize) || cfg.MaxSize > 1 {
		return nil, fmt.Errorf("video config: MinSize, MaxSize = %g, %g invalid: need 0 < min <= max <= 1",
			cfg.MinSize, cfg.MaxSize)
	}
	if cfg.Background == "" {
		cfg.Background = "mixed"
	}
	switch cfg.Background {
	case "solid", "gradient", "noise", "mixed", "checker":
	default:
		return nil, fmt.Errorf("video config: Background %q unknown (want solid|gradient|noise|mixed|checker)",
			cfg.Background)
	}
	if !(cfg.MaxSpeed >= 0 && cfg.MaxSpeed <= 1) {
		return nil, fmt.Errorf("video config: MaxSpeed %g not in [0, 1]", cfg.MaxSpeed)
	}
	scenes, err := NewSceneGenerator(SceneConfig{
		ImageSize: cfg.Size, Shapes: cfg.Shapes, Colors: cfg.Colors,
		MinSize: cfg.MinSize, MaxSize: cfg.MaxSize, Background: cfg.Background,
	})
	if err != nil {
		return nil, fmt.Errorf("video config: %w", err)
	}
	return &VideoGenerator{cfg: cfg, scenes: scenes}, nil
}

// Config returns the (defaulted) configuration.
func (g *VideoGenerator) Config() VideoConfig {
	c := g.cfg
	c.Shapes = slices.Clone(c.Shapes)
	c.Colors = slices.Clone(c.Colors)
	return c
}

// Sampling parameters.
const (
	videoAttempts = 10   // whole-video resamplings until every object is visible
	kindTries     = 20   // draws of (colour, shape) looking for one not yet in the video
	stillProb     = 0.25 // probability that an object does not move
	turnProb      = 0.3  // probability that a moving object turns
	minTurn       = 0.15 // |Turn| range of turning objects, radians per frame
	maxTurn       = 0.4
	appearProb    = 0.25 // probabilities, with AppearLeave, that an object appears / leaves
	leaveProb     = 0.25
	motionTries   = 30  // velocity draws looking for a clear direction of motion
	dominance     = 1.5 // the main axis of a sampled motion is at least this times the other one
	stillEps      = 0.02
)

// Sample draws a video: a number of objects uniform in [MinObjects, MaxObjects], each with a
// distinct (colour, shape) when the config allows it, placed apart at their first frame. An
// object stays still with probability 1/4; otherwise it moves at a speed in
// [0.4, 1]×MaxSpeed in a random direction, turning with probability 0.3, and its velocity is
// redrawn until its net displacement is clearly left, right, up or down, so that the caption
// describes it well. With AppearLeave, each object appears late / leaves early with
// probability 1/4 each. A video in which some object is hidden behind others in every frame is
// redrawn (up to 10 times, after which such objects are dropped). The result is a
// deterministic function of rng.
func (g *VideoGenerator) Sample(rng *rand.Rand) Video {
	var v Video
	for range videoAttempts {
		v = g.Render(g.sampleScene(rng))
		if v.NumObjects() == len(v.Scene.Objects) {
			return v
		}
	}
	// Hidden objects paint no pixel: dropping them leaves every frame unchanged.
	var seen [256]bool
	for _, id := range v.Masks {
		seen[id] = true
	}
	s := VideoScene{Background: v.Scene.Background}
	for k, o := range v.Scene.Objects {
		if seen[k+1] {
			s.Objects = append(s.Objects, o)
		}
	}
	return g.Render(s)
}

func (g *VideoGenerator) sampleScene(rng *rand.Rand) VideoScene {
	c := &g.cfg
	n := c.MinObjects + rng.IntN(c.MaxObjects-c.MinObjects+1)
	s := VideoScene{Background: g.scenes.sampleBackground(rng)}
	for range n {
		o := VideoObject{Start: 0, End: c.Frames}
		for try := 0; try < kindTries; try++ {
			o.Shape = c.Shapes[rng.IntN(len(c.Shapes))]
			o.Color = c.Colors[rng.IntN(len(c.Colors))]
			same := func(p VideoObject) bool { return p.Shape == o.Shape && p.Color == o.Color }
			if !slices.ContainsFunc(s.Objects, same) {
				break
			}
		}
		o.Size = c.MinSize + rng.Float64()*(c.MaxSize-c.MinSize)
		if c.AppearLeave && c.Frames >= 4 {
			span := max(1, c.Frames/3)
			if rng.Float64() < appearProb {
				o.Start = 1 + rng.IntN(span)
			}
			if rng.Float64() < leaveProb {
				o.End = c.Frames - 1 - rng.IntN(span)
			}
		}
		g.place(rng, &o, s.Objects)
		g.sampleMotion(rng, &o)
		s.Objects = append(s.Objects, o)
	}
	return s
}

// place draws the starting centre of o, away from the starting boxes of the objects before it
// when possible (rejection sampling, overlapping after placeTries tries).
func (g *VideoGenerator) place(rng *rand.Rand, o *VideoObject, before []VideoObject) {
	placed := make([]Object, len(before))
	for i, p := range before {
		placed[i] = Object{X: p.X, Y: p.Y, Size: p.Size}
	}
	r := o.Size / 2
	margin := 1 / float64(g.cfg.Size)
	for try := 0; try < placeTries; try++ {
		o.X = r + rng.Float64()*(1-2*r)
		o.Y = r + rng.Float64()*(1-2*r)
		if !collides(placed, Object{X: o.X, Y: o.Y, Size: o.Size}, margin) {
			return
		}
	}
}

// sampleMotion draws the velocity and turn of o (see Sample), leaving it still when no clear
// motion is possible (MaxSpeed too small, or fewer than two visible frames).
func (g *VideoGenerator) sampleMotion(rng *rand.Rand, o *VideoObject) {
	if g.cfg.MaxSpeed == 0 || o.End-o.Start < 2 || rng.Float64() < stillProb {
		return
	}
	minMove := max(2*stillEps, 1.5/float64(g.cfg.Size))
	for try := 0; try < motionTries; try++ {
		speed := g.cfg.MaxSpeed * (0.4 + 0.6*rng.Float64())
		a := rng.Float64() * 2 * math.Pi
		o.VX, o.VY = speed*math.Cos(a), speed*math.Sin(a)
		o.Turn = 0
		if o.End-o.Start >= 3 && rng.Float64() < turnProb {
			o.Turn = minTurn + rng.Float64()*(maxTurn-minTurn)
			if rng.IntN(2) == 0 {
				o.Turn = -o.Turn
			}
		}
		dx, dy := o.displacement(g.cfg.Frames)
		major, minor := max(math.Abs(dx), math.Abs(dy)), min(math.Abs(dx), math.Abs(dy))
		if major >= minMove && major >= dominance*minor {
			return
		}
	}
	o.VX, o.VY, o.Turn = 0, 0, 0
}

// centres returns the centre of o at every frame in [0, frames); before Start it is the
// starting centre (a negative Start counts as 0), and it only changes in the frames where o
// moves (see VideoObject.MoveStart). The centre is kept in [Size/2, 1-Size/2] on
// both axes by reflecting off the borders (an object larger than the frame sits at its middle).
func (o VideoObject) centres(frames int) [][2]float64 {
	lo, hi := o.Size/2, 1-o.Size/2
	x, vx := bounce(o.X, o.VX, lo, hi)
	y, vy := bounce(o.Y, o.VY, lo, hi)
	sin, cos := math.Sincos(o.Turn)
	out := make([][2]float64, max(0, frames))
	start := max(0, o.Start)
	for t := range out {
		if t > start && o.movesAt(t) {
			x, vx = bounce(x+vx, vx, lo, hi)
			y, vy = bounce(y+vy, vy, lo, hi)
			vx, vy = vx*cos-vy*sin, vx*sin+vy*cos
		}
		out[t] = [2]float64{x, y}
	}
	return out
}

// bounce folds position p into [lo, hi] by reflecting it off the ends (as many times as
// needed) and returns it with velocity v, negated if an odd number of reflections happened.
func bounce(p, v, lo, hi float64) (float64, float64) {
	if !(hi > lo) {
		return 0.5, v
	}
	if p >= lo && p <= hi {
		return p, v
	}
	l := hi - lo
	m := math.Mod(p-lo, 2*l)
	if m < 0 {
		m += 2 * l
	}
	if m > l {
		return lo + 2*l - m, -v
	}
	return lo + m, v
}

// visible returns the frames [start, end) of a video of the given length in which o is drawn.
func (o VideoObject) visible(frames int) (start, end int) {
	return max(0, o.Start), min(frames, o.End)
}

// displacement returns the centre at the last visible frame minus the centre at the first one
// (0, 0 if o is never visible).
func (o VideoObject) displacement(frames int) (dx, dy float64) {
	start, end := o.visible(frames)
	if start >= end {
		return 0, 0
	}
	c := o.centres(end)
	return c[end-1][0] - c[start][0], c[end-1][1] - c[start][1]
}

// Render draws the scene as a video of Config().Frames frames: the background of
// s.Background in every frame, then each object in its visible frames at its centre for that
// frame in its colour for that frame (see VideoObject), later objects on top. Masks record the
// topmost object of every pixel, covering exactly the pixels painted with its colour. Render is
// a pure function of s; it panics if s has more than 255 objects (the mask range).
func (g *VideoGenerator) Render(s VideoScene) Video {
	if len(s.Objects) > 255 {
		panic(fmt.Sprintf("data: VideoGenerator.Render: %d objects, at most 255", len(s.Objects)))
	}
	n, frames := g.cfg.Size, g.cfg.Frames
	s.Objects = slices.Clone(s.Objects)
	s.Background.Objects = nil
	bg := g.scenes.Render(s.Background)
	paths := make([][][2]float64, len(s.Objects))
	for k, o := range s.Objects {
		paths[k] = o.centres(frames)
	}
	v := Video{
		T: frames, Size: n,
		Frames:  make([]float32, frames*n*n*3),
		Masks:   make([]uint8, frames*n*n),
		Caption: Caption(s, frames),
		Scene:   &s,
	}
	for t := range frames {
		img, mask := v.Frames[t*n*n*3:(t+1)*n*n*3], v.Masks[t*n*n:(t+1)*n*n]
		copy(img, bg)
		for k, o := range s.Objects {
			if start, end := o.visible(frames); t < start || t >= end {
				continue
			}
			rgb, id, c := colorRGB[o.ColorAt(t)], uint8(k+1), paths[k][t]
			objectPixels(n, Object{Shape: o.Shape, Color: o.Color, X: c[0], Y: c[1], Size: o.Size}, func(i int) {
				copy(img[i*3:i*3+3], rgb[:])
				mask[i] = id
			})
		}
	}
	return v
}

// videoCaptionWords are the non-attribute words of captions.
var videoCaptionWords = []string{
	"a", "an", "moves", "left", "right", "rises", "falls", "stays", "still",
	"turns", "appears", "leaves", "then", "and", "while", "nothing",
}

// VideoVocab returns the vocabulary of every word a video caption can contain: the caption
// words, all shapes and all colours, after the special tokens. Its order is fixed.
func VideoVocab() *text.Vocab {
	words := slices.Clone(videoCaptionWords)
	words = append(words, allShapes...)
	words = append(words, allColors...)
	return text.NewVocab(words)
}

// Caption describes a video of the given number of frames rendered from s: one clause per
// object visible in some frame, in scene order, the first two joined by " while " and the
// others by " and ", e.g.
//
//	a red circle moves left while an orange square appears then falls and a green cross stays still
//
// A clause is "a|an COLOR SHAPE", then "appears then" if the object is not there in the first
// frame, then its motion, then "then leaves" if it is gone before the last frame. The motion
// follows the net displacement of the centre between the first and last visible frames:
// "stays still" if it is under 0.02 of the side, otherwise "moves left", "moves right",
// "rises" or "falls" along the larger axis, preceded by "turns and" for a turning object
// (Turn != 0) visible in at least 3 frames. COLOR is the colour of the first visible frame; an
// object whose colour differs in its last visible frame (VideoObject.NewColor) adds "then turns
// NEWCOLOR" after its motion, e.g. "a red circle stays still then turns blue". A scene without
// visible objects is "nothing moves". All words are lower-case and in VideoVocab.
func Caption(s VideoScene, frames int) string {
	var clauses []string
	for _, o := range s.Objects {
		start, end := o.visible(frames)
		if start >= end {
			continue
		}
		var parts []string
		if start > 0 {
			parts = append(parts, "appears")
		}
		dx, dy := o.displacement(frames)
		var motion string
		switch {
		case math.Hypot(dx, dy) < stillEps:
			motion = "stays still"
		case math.Abs(dx) >= math.Abs(dy) && dx < 0:
			motion = "moves left"
		case math.Abs(dx) >= math.Abs(dy):
			motion = "moves right"
		case dy < 0:
			motion = "rises"
		default:
			motion = "falls"
		}
		if o.Turn != 0 && motion != "stays still" && end-start >= 3 {
			motion = "turns and " + motion
		}
		parts = append(parts, motion)
		first, last := o.ColorAt(start), o.ColorAt(end-1)
		if last != first {
			parts = append(parts, "turns "+last)
		}
		if end < frames {
			parts = append(parts, "leaves")
		}
		article := "a"
		if first != "" && strings.ContainsRune("aeiou", rune(first[0])) {
			article = "an"
		}
		clauses = append(clauses, article+" "+first+" "+o.Shape+" "+strings.Join(parts, " then "))
	}
	if len(clauses) == 0 {
		return "nothing moves"
	}
	var b strings.Builder
	for i, c := range clauses {
		switch {
		case i == 1:
			b.WriteString(" while ")
		case i > 1:
			b.WriteString(" and ")
		}
		b.WriteString(c)
	}
	return b.String()
}
