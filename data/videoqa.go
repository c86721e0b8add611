package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/reelml/reel/text"
)

// VideoQAConfig configures a VideoQAGenerator of synthetic video question answering examples.
type VideoQAConfig struct {
	// Video gives the clip size, frames (at least 2), number of objects, shapes, colours,
	// sizes, background and the largest speed. Its AppearLeave lets count questions have up to
	// two objects appear or leave; Turn is never used (moving objects go straight).
	Video VideoConfig
	// MotionFrames is the number of frames, 1..Frames-1, in which the (few) moving objects of
	// a video move, all in the same window starting at a random frame >= 1; the rest of the
	// clip is static (temporal redundancy). E.g. 3 of 16.
	MotionFrames int
	// Kinds are the question kinds used, from VideoQAKinds; empty means all.
	Kinds []string
}

// VideoQAExample is one synthetic video with a question about it.
type VideoQAExample struct {
	Video    Video
	Question string
	// Answer is always a single word (a number, a shape, a colour or a direction), so exact
	// match is well defined.
	Answer string
	Kind   string
}

// VideoQAKinds are the question kinds of VideoQAGenerator:
//   - count: "how many objects are there at the end ?" or "how many COLOR objects are there at
//     the end ?" → "0".."8", the objects (of that colour) visible in the last frame;
//   - moved: "which shape moved ?" → the shape of the only object that moves;
//   - direction: "which way did the COLOR SHAPE move ?" → left, right, up or down;
//   - color_change: "what colour did the SHAPE turn ?" → the colour the only object that
//     changes colour turns;
//   - appeared: "which shape appeared ?" → the shape of the only object that appears after the
//     first frame.
var VideoQAKinds = []string{"count", "moved", "direction", "color_change", "appeared"}

// DefaultVideoQAConfig is 16 frames of 32×32 with all shapes and colours, 1–4 objects of size
// 0.15–0.25 over a mixed background, moving at up to 0.05 of the side per frame during 3
// frames, objects appearing and leaving in count questions, all question kinds.
func DefaultVideoQAConfig() VideoQAConfig {
	v := DefaultVideoConfig()
	v.Frames = 16
	return VideoQAConfig{Video: v, MotionFrames: 3, Kinds: slices.Clone(VideoQAKinds)}
}

// VideoQAGenerator samples synthetic video QA examples whose answers are exact by
// construction: objects never overlap (their bounding boxes stay at least a pixel apart in
// every frame both are visible), moving objects move in a straight line along one axis by at
// least 3 pixels without bouncing, and the object a question is about is the only one that
// does what the question asks (moves, changes colour, appears) and has a unique shape (or,
// for direction questions, a unique colour and shape). Most frames equal their predecessor:
// changes only happen during the MotionFrames motion window, at the colour change, and at
// appearances / departures. It is immutable and safe for concurrent use; all randomness comes
// from the *rand.Rand passed to Example.
type VideoQAGenerator struct {
	cfg   VideoQAConfig
	video *VideoGenerator
}

// minMovePixels is the smallest net displacement, in pixels, of a moving object.
const minMovePixels = 3

// NewVideoQAGenerator validates cfg and returns a generator. Errors are one line naming the
// field.
func NewVideoQAGenerator(cfg VideoQAConfig) (*VideoQAGenerator, error) {
	video, err := NewVideoGenerator(cfg.Video)
	if err != nil {
		return nil, fmt.Errorf("video QA config: Video.%s", strings.TrimPrefix(err.Error(), "video config: "))
	}
	cfg.Video = video.Config()
	v := &cfg.Video
	if v.Frames < 2 {
		return nil, fmt.Errorf("video QA config: Video.Frames %d: need at least 2 frames", v.Frames)
	}
	if cfg.MotionFrames < 1 || cfg.MotionFrames > v.Frames-1 {
		return nil, fmt.Errorf("video QA config: MotionFrames %d out of range [1, Frames-1 = %d]",
			cfg.MotionFrames, v.Frames-1)
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = slices.Clone(VideoQAKinds)
	} else {
		cfg.Kinds = slices.Clone(cfg.Kinds)
	}
	one := v.MaxObjects == 1
	for i, k := range cfg.Kinds {
		if !slices.Contains(VideoQAKinds, k) {
			return nil, fmt.Errorf("video QA config: Kinds: unknown kind %q (known: %v)", k, VideoQAKinds)
		}
		if slices.Contains(cfg.Kinds[:i], k) {
			return nil, fmt.Errorf("video QA config: Kinds: duplicate kind %q", k)
		}
		switch k {
		case "moved", "direction":
			if px := maxMove(cfg, v.MaxSize) * float64(v.Size); !(px >= minMovePixels) {
				return nil, fmt.Errorf("video QA config: Kinds: %s needs moves of %d pixels, but "+
					"min(Video.MaxSpeed×MotionFrames, 1-Video.MaxSize)×Video.Size = %g", k, minMovePixels, px)
			}
		}
		switch {
		case (k == "moved" || k == "appeared" || k == "color_change") && len(v.Shapes) < 2 && !one:
			return nil, fmt.Errorf("video QA config: Kinds: %s needs at least 2 Video.Shapes (or MaxObjects 1)", k)
		case k == "direction" && len(v.Shapes)*len(v.Colors) < 2 && !one:
			return nil, fmt.Errorf("video QA config: Kinds: %s needs at least 2 Video.Shapes or Colors (or MaxObjects 1)", k)
		case k == "color_change" && len(v.Colors) < 2:
			return nil, fmt.Errorf("video QA config: Kinds: %s needs at least 2 Video.Colors", k)
		}
	}
	return &VideoQAGenerator{cfg: cfg, video: video}, nil
}

// maxMove is the largest net displacement (fraction of the side) of a moving object of the
// given size: MaxSpeed×MotionFrames, limited so that it crosses the frame without bouncing.
func maxMove(cfg VideoQAConfig, size float64) float64 {
	return min(cfg.Video.MaxSpeed*float64(cfg.MotionFrames), 1-size-4*moveEps)
}

// moveEps keeps moving objects strictly inside the frame, away from bounces.
const moveEps = 1e-6

// Config returns the (defaulted) configuration.
func (g *VideoQAGenerator) Config() VideoQAConfig {
	c := g.cfg
	c.Video = g.video.Config()
	c.Kinds = slices.Clone(c.Kinds)
	return c
}

// VideoQAVocab returns the vocabulary of every word of VideoQAGenerator questions and answers,
// after the special tokens: the question words, the directions, all shapes, all colours and
// "0".."8". Its order is fixed.
func VideoQAVocab() *text.Vocab {
	words := []string{
		"?", "how", "many", "objects", "are", "there", "at", "the", "end",
		"which", "shape", "moved", "way", "did", "move", "what", "colour", "turn", "appeared",
		"left", "right", "up", "down",
	}
	words = append(words, allShapes...)
	words = append(words, allColors...)
	for i := 0; i <= MaxVideoObjects; i++ {
		words = append(words, strconv.Itoa(i))
	}
	return text.NewVocab(words)
}

// Example draws a video and a question of the given kind about it; kind "" picks one uniformly
// among Config().Kinds. It panics on a kind not in Config().Kinds. The number of objects is
// uniform in [MinObjects, MaxObjects], fewer when some cannot be placed apart from the others
// (200 position tries each). Per kind:
//   - count: up to 2 objects move (during the motion window) and, with Video.AppearLeave, up
//     to 2 objects appear or leave at random frames; the colour asked about (half of the
//     questions) is that of a random object or, half of the time, any colour;
//   - moved: one object moves, the others stay still;
//   - direction: the object asked about moves, and (half of the time) another one moves too;
//   - color_change: one object changes colour at a random frame in [1, Frames-1], nothing
//     moves;
//   - appeared: one object appears at a random frame in [1, Frames-1]; half of the time
//     another one moves.
//
// The result is a deterministic function of rng.
func (g *VideoQAGenerator) Example(rng *rand.Rand, kind string) VideoQAExample {
	if kind == "" {
		kind = g.cfg.Kinds[rng.IntN(len(g.cfg.Kinds))]
	}
	if !slices.Contains(g.cfg.Kinds, kind) {
		panic(fmt.Sprintf("data: VideoQAGenerator.Example: kind %q not in the configured kinds %v", kind, g.cfg.Kinds))
	}
	c := &g.cfg.Video
	b := &qaScene{g: g, rng: rng, window: 1 + rng.IntN(c.Frames-g.cfg.MotionFrames)}
	n := c.MinObjects + rng.IntN(c.MaxObjects-c.MinObjects+1)
	var q, a string
	switch kind {
	case "count":
		movers := 0
		if maxMove(g.cfg, c.MaxSize)*float64(c.Size) >= minMovePixels {
			movers = rng.IntN(min(n, 2) + 1)
		}
		for i := range n {
			o := b.object(b.anyKind())
			b.add(o, i < movers)
		}
		if c.AppearLeave {
			events := min(len(b.objs), rng.IntN(3))
			for _, k := range rng.Perm(len(b.objs))[:events] {
				o := &b.objs[k]
				if rng.IntN(2) == 0 {
					o.Start = 1 + rng.IntN(c.Frames-1)
				} else {
					o.End = 1 + rng.IntN(c.Frames-1)
				}
			}
		}
		color := ""
		if rng.IntN(2) == 0 {
			if rng.IntN(2) == 0 && len(b.objs) > 0 {
				color = b.objs[rng.IntN(len(b.objs))].Color
			} else {
				color = c.Colors[rng.IntN(len(c.Colors))]
			}
		}
		count := 0
		for _, o := range b.objs {
			if o.Start < c.Frames && o.End >= c.Frames && (color == "" || o.ColorAt(c.Frames-1) == color) {
				count++
			}
		}
		q, a = "how many objects are there at the end ?", strconv.Itoa(count)
		if color != "" {
			q = "how many " + color + " objects are there at the end ?"
		}
	case "moved":
		t := b.object(b.anyKind())
		b.add(t, true)
		other := func(s, _ string) bool { return s != t.Shape }
		for range n - 1 {
			b.addKind(other, false)
		}
		q, a = "which shape moved ?", t.Shape
	case "direction":
		t := b.object(b.anyKind())
		dir := b.add(t, true)
		other := func(s, col string) bool { return s != t.Shape || col != t.Color }
		moving := rng.IntN(2) == 0
		for i := range n - 1 {
			b.addKind(other, moving && i == 0)
		}
		q, a = "which way did the "+t.Color+" "+t.Shape+" move ?", dir
	case "color_change":
		t := b.object(b.anyKind())
		news := slices.DeleteFunc(slices.Clone(c.Colors), func(col string) bool { return col == t.Color })
		t.NewColor = news[rng.IntN(len(news))]
		t.ChangeAt = 1 + rng.IntN(c.Frames-1)
		b.add(t, false)
		other := func(s, _ string) bool { return s != t.Shape }
		for range n - 1 {
			b.addKind(other, false)
		}
		q, a = "what colour did the "+t.Shape+" turn ?", t.NewColor
	case "appeared":
		t := b.object(b.anyKind())
		t.Start = 1 + rng.IntN(c.Frames-1)
		b.add(t, false)
		other := func(s, _ string) bool { return s != t.Shape }
		moving := rng.IntN(2) == 0 && maxMove(g.cfg, c.MaxSize)*float64(c.Size) >= minMovePixels
		for i := range n - 1 {
			b.addKind(other, moving && i == 0)
		}
		q, a = "which shape appeared ?", t.Shape
	}
	rng.Shuffle(len(b.objs), func(i, j int) { b.objs[i], b.objs[j] = b.objs[j], b.objs[i] })
	s := VideoScene{Objects: b.objs, Background: g.video.scenes.sampleBackground(rng)}
	return VideoQAExample{Video: g.video.Render(s), Question: q, Answer: a, Kind: kind}
}

// qaScene builds the objects of one VideoQAExample.
type qaScene struct {
	g      *VideoQAGenerator
	rng    *rand.Rand
	window int // first frame of the motion window
	objs   []VideoObject
	paths  [][][2]float64 // centres of objs at every frame
}

// anyKind draws any (shape, colour), preferring one not yet in the scene.
func (b *qaScene) anyKind() (string, string) {
	shape, color, _ := b.kind(func(s, c string) bool {
		return !slices.ContainsFunc(b.objs, func(o VideoObject) bool { return o.Shape == s && o.Color == c })
	})
	if shape == "" {
		shape, color, _ = b.kind(func(string, string) bool { return true })
	}
	return shape, color
}

// kind draws a (shape, colour) uniformly among those ok accepts; ok is false if there is none.
func (b *qaScene) kind(ok func(shape, color string) bool) (shape, color string, found bool) {
	c := &b.g.cfg.Video
	var pairs [][2]string
	for _, s := range c.Shapes {
		for _, col := range c.Colors {
			if ok(s, col) {
				pairs = append(pairs, [2]string{s, col})
			}
		}
	}
	if len(pairs) == 0 {
		return "", "", false
	}
	p := pairs[b.rng.IntN(len(pairs))]
	return p[0], p[1], true
}

// object returns a still object of the given kind, visible all clip long, of a random size.
func (b *qaScene) object(shape, color string) VideoObject {
	c := &b.g.cfg.Video
	return VideoObject{
		Shape: shape, Color: color, End: c.Frames,
		Size: c.MinSize + b.rng.Float64()*(c.MaxSize-c.MinSize),
	}
}

// addKind adds an object of a kind that ok accepts, preferring one not yet in the scene (it
// adds none if ok accepts no kind).
func (b *qaScene) addKind(ok func(shape, color string) bool, move bool) {
	shape, color, found := b.kind(func(s, col string) bool {
		return ok(s, col) && !slices.ContainsFunc(b.objs, func(o VideoObject) bool { return o.Shape == s && o.Color == col })
	})
	if !found {
		if shape, color, found = b.kind(ok); !found {
			return
		}
	}
	b.add(b.object(shape, color), move)
}

// add places o (moving it, if move, along a random axis during the motion window) apart from
// the objects already added, in every frame both are visible, and returns its direction of
// motion ("" for a still object). It drops o if it finds no such place in placeTries tries;
// the first object always fits.
func (b *qaScene) add(o VideoObject, move bool) string {
	cfg, c, rng := &b.g.cfg, &b.g.cfg.Video, b.rng
	dir := ""
	var dx, dy float64
	if move {
		hi := maxMove(*cfg, o.Size)
		lo := min(hi, max(minMovePixels/float64(c.Size), 0.4*c.MaxSpeed*float64(cfg.MotionFrames)))
		d := lo + rng.Float64()*(hi-lo)
		dir = [...]string{"left", "right", "up", "down"}[rng.IntN(4)]
		switch dir {
		case "left":
			dx = -d
		case "right":
			dx = d
		case "up":
			dy = -d
		case "down":
			dy = d
		}
		o.MoveStart, o.MoveEnd = b.window, b.window+cfg.MotionFrames
		o.VX, o.VY = dx/float64(cfg.MotionFrames), dy/float64(cfg.MotionFrames)
	}
	r := o.Size/2 + moveEps
	margin := 1 / float64(c.Size)
	for try := 0; try < placeTries; try++ {
		o.X = r + max(0, -dx) + rng.Float64()*max(0, 1-2*r-math.Abs(dx))
		o.Y = r + max(0, -dy) + rng.Float64()*max(0, 1-2*r-math.Abs(dy))
		path := o.centres(c.Frames)
		if !b.collides(o, path, margin) {
			b.objs = append(b.objs, o)
			b.paths = append(b.paths, path)
			return dir
		}
	}
	return ""
}

// collides reports whether o, at the given centres, comes within margin of an added object
// in a frame where both are visible (appearances and departures are decided before any
// object is added, except in count questions, where they only shorten visibility).
func (b *qaScene) collides(o VideoObject, path [][2]float64, margin float64) bool {
	frames := b.g.cfg.Video.Frames
	for k, p := range b.objs {
		d := (o.Size+p.Size)/2 + margin
		s0, e0 := o.visible(frames)
		s1, e1 := p.visible(frames)
		for t := max(s0, s1); t < min(e0, e1); t++ {
			a, c := path[t], b.paths[k][t]
			if math.Abs(a[0]-c[0]) < d && math.Abs(a[1]-c[1]) < d {
				return true
			}
		}
	}
	return false
}
