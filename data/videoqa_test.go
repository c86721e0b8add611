package data

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reelml/reel/text"
	"github.com/stretchr/testify/require"
)

func newVideoQAGen(t testing.TB, mod func(*VideoQAConfig)) *VideoQAGenerator {
	t.Helper()
	cfg := DefaultVideoQAConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := NewVideoQAGenerator(cfg)
	require.NoError(t, err)
	return g
}

// frameMask returns the mask of frame t of v.
func frameMask(v Video, t int) []uint8 {
	n := v.Size * v.Size
	return v.Masks[t*n : (t+1)*n]
}

// labelPixels returns the pixel indices of label k in frame t of v.
func labelPixels(v Video, t int, k uint8) []int {
	var out []int
	for i, id := range frameMask(v, t) {
		if id == k {
			out = append(out, i)
		}
	}
	return out
}

// labels returns the set of labels visible in frame t of v.
func labels(v Video, t int) map[uint8]bool {
	out := map[uint8]bool{}
	for _, id := range frameMask(v, t) {
		if id != 0 {
			out[id] = true
		}
	}
	return out
}

// pixelColor returns the colour name of the pixels of label k in frame t, read from the
// frame; it fails unless they all have exactly one known colour.
func pixelColor(t *testing.T, v Video, f int, k uint8) string {
	t.Helper()
	px := labelPixels(v, f, k)
	require.NotEmpty(t, px)
	n := v.Size * v.Size
	var rgb [3]float32
	copy(rgb[:], v.Frames[(f*n+px[0])*3:])
	for _, i := range px {
		require.Equal(t, rgb[:], v.Frames[(f*n+i)*3:(f*n+i)*3+3])
	}
	for name, c := range colorRGB {
		if c == rgb {
			return name
		}
	}
	require.Fail(t, "unknown pixel colour", "%v", rgb)
	return ""
}

// centroid returns the mean pixel coordinates (x, y) of label k in frame t.
func centroid(v Video, t int, k uint8) (float64, float64) {
	px := labelPixels(v, t, k)
	var sx, sy float64
	for _, i := range px {
		sx += float64(i % v.Size)
		sy += float64(i / v.Size)
	}
	return sx / float64(len(px)), sy / float64(len(px))
}

// questionWord returns the i-th word of q (negative i counts from the end).
func questionWord(q string, i int) string {
	w := text.Tokenize(q)
	if i < 0 {
		i += len(w)
	}
	return w[i]
}

// checkAnswer recomputes the answer of ex from its rendered video (masks and pixels), using
// the scene only for shapes, and checks the question is unambiguous and the motion confined to
// motionFrames consecutive frames.
func checkAnswer(t *testing.T, ex VideoQAExample, motionFrames int) {
	t.Helper()
	v, s := ex.Video, ex.Video.Scene
	last := v.T - 1
	msg := ex.Question + " -> " + ex.Answer + " | " + v.Caption
	// Objects never overlap: every object is fully drawn in each frame it is visible in.
	require.Equal(t, expectedMasks(v), v.Masks, msg)
	shapeCount := map[string]int{}
	for _, o := range s.Objects {
		shapeCount[o.Shape]++
	}
	// changed returns the labels whose mask differs between some two consecutive frames.
	changed := func() []uint8 {
		var out []uint8
		for k := 1; k <= len(s.Objects); k++ {
			for f := 1; f < v.T; f++ {
				a, b := labelPixels(v, f-1, uint8(k)), labelPixels(v, f, uint8(k))
				if len(a) > 0 && len(b) > 0 && !slices.Equal(a, b) {
					out = append(out, uint8(k))
					break
				}
			}
		}
		return out
	}
	// Frames that differ from their predecessor.
	var diff []int
	n3 := v.Size * v.Size * 3
	for f := 1; f < v.T; f++ {
		if !slices.Equal(v.Frames[(f-1)*n3:f*n3], v.Frames[f*n3:(f+1)*n3]) {
			diff = append(diff, f)
		}
	}
	switch ex.Kind {
	case "moved", "direction":
		require.NotEmpty(t, diff, msg)
		require.LessOrEqual(t, diff[len(diff)-1]-diff[0], motionFrames-1, "motion window: %v", diff)
	case "color_change", "appeared":
		if ex.Kind == "color_change" || len(changed()) == 0 {
			require.Len(t, diff, 1, msg)
		}
	}
	switch ex.Kind {
	case "count":
		color := ""
		if w := questionWord(ex.Question, 2); w != "objects" {
			color = w
			require.Contains(t, allColors, color)
		}
		n := 0
		for k := range labels(v, last) {
			if color == "" || pixelColor(t, v, last, k) == color {
				n++
			}
		}
		require.Equal(t, strconv.Itoa(n), ex.Answer, msg)
	case "moved":
		moved := changed()
		require.Len(t, moved, 1, msg)
		o := s.Objects[moved[0]-1]
		require.Equal(t, o.Shape, ex.Answer, msg)
		require.Equal(t, 1, shapeCount[o.Shape], msg)
		// Every object is there all clip long, in one colour.
		for k := 1; k <= len(s.Objects); k++ {
			require.Equal(t, pixelColor(t, v, 0, uint8(k)), pixelColor(t, v, last, uint8(k)))
		}
	case "direction":
		color, shape := questionWord(ex.Question, 4), questionWord(ex.Question, 5)
		var ks []uint8
		for k, o := range s.Objects {
			if o.Shape == shape && pixelColor(t, v, 0, uint8(k+1)) == color {
				ks = append(ks, uint8(k+1))
			}
		}
		require.Len(t, ks, 1, msg)
		x0, y0 := centroid(v, 0, ks[0])
		x1, y1 := centroid(v, last, ks[0])
		dx, dy := x1-x0, y1-y0
		require.Less(t, min(math.Abs(dx), math.Abs(dy)), 1.0, msg)
		require.GreaterOrEqual(t, max(math.Abs(dx), math.Abs(dy)), 2.0, msg)
		want := map[bool]string{true: "left", false: "right"}[dx < 0]
		if math.Abs(dy) > math.Abs(dx) {
			want = map[bool]string{true: "up", false: "down"}[dy < 0]
		}
		require.Equal(t, want, ex.Answer, msg)
		require.Contains(t, changed(), ks[0], msg)
	case "color_change":
		shape := questionWord(ex.Question, 4)
		require.Equal(t, 1, shapeCount[shape], msg)
		require.Empty(t, changed(), "nothing moves: %s", msg)
		turned := 0
		for k, o := range s.Objects {
			before, after := pixelColor(t, v, 0, uint8(k+1)), pixelColor(t, v, last, uint8(k+1))
			if before != after {
				turned++
				require.Equal(t, shape, o.Shape, msg)
				require.Equal(t, after, ex.Answer, msg)
			}
		}
		require.Equal(t, 1, turned, msg)
	case "appeared":
		first, end := labels(v, 0), labels(v, last)
		var appeared []uint8
		for k := range end {
			if !first[k] {
				appeared = append(appeared, k)
			}
		}
		for k := range first {
			require.True(t, end[k], "nothing leaves: %s", msg)
		}
		require.Len(t, appeared, 1, msg)
		o := s.Objects[appeared[0]-1]
		require.Equal(t, o.Shape, ex.Answer, msg)
		require.Equal(t, 1, shapeCount[o.Shape], msg)
		// It stays until the end once there.
		for f := o.Start; f < v.T; f++ {
			require.True(t, labels(v, f)[appeared[0]], msg)
		}
	default:
		require.Fail(t, "unknown kind", ex.Kind)
	}
}

func TestVideoQADeterministic(t *testing.T) {
	g := newVideoQAGen(t, nil)
	for _, kind := range append([]string{""}, VideoQAKinds...) {
		for seed := uint64(0); seed < 5; seed++ {
			a, b := g.Example(NewRand(seed), kind), g.Example(NewRand(seed), kind)
			require.Equal(t, a, b)
			require.Equal(t, a.Video, g.video.Render(*a.Video.Scene), "Render is a pure function of the scene")
			require.NotEqual(t, a.Video.Frames, g.Example(NewRand(seed+100), kind).Video.Frames)
			require.Equal(t, 16, a.Video.T)
			require.Equal(t, 32, a.Video.Size)
			if kind != "" {
				require.Equal(t, kind, a.Kind)
			}
		}
	}
}

func TestVideoQAAnswersExact(t *testing.T) {
	vocab := VideoQAVocab()
	require.Equal(t, vocab.Words(), VideoQAVocab().Words(), "fixed order")
	for _, cfg := range []struct {
		name string
		mod  func(*VideoQAConfig)
	}{
		{"default", nil},
		{"crowded", func(c *VideoQAConfig) {
			c.Video.MinObjects, c.Video.MaxObjects, c.Video.MinSize, c.Video.MaxSize = 6, 8, 0.1, 0.2
		}},
		{"few kinds", func(c *VideoQAConfig) {
			c.Video.Shapes, c.Video.Colors, c.Video.Frames, c.MotionFrames = []string{"circle", "square"}, []string{"red", "blue"}, 8, 5
		}},
		{"one colour", func(c *VideoQAConfig) { // more objects than kinds: repeated kinds
			c.Video.Shapes, c.Video.Colors, c.Video.MinObjects = []string{"circle", "square"}, []string{"red"}, 3
			c.Kinds = []string{"count", "moved", "direction", "appeared"}
		}},
		{"short", func(c *VideoQAConfig) { c.Video.Frames, c.MotionFrames, c.Video.Background = 4, 3, "noise" }},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			g := newVideoQAGen(t, cfg.mod)
			answers := map[string]map[string]int{}
			for _, kind := range g.Config().Kinds {
				answers[kind] = map[string]int{}
				for seed := uint64(0); seed < 60; seed++ {
					ex := g.Example(NewRand(seed), kind)
					require.Equal(t, kind, ex.Kind)
					require.Len(t, text.Tokenize(ex.Answer), 1, "single-word answer")
					for _, w := range text.Tokenize(ex.Question + " " + ex.Answer) {
						require.True(t, vocab.Has(w), "%q -> %q: word %q not in VideoQAVocab", ex.Question, ex.Answer, w)
					}
					_, _, _, err := EncodeQA(vocab, ex.Question, ex.Answer, 16)
					require.NoError(t, err)
					require.NotEmpty(t, ex.Video.Scene.Objects)
					require.LessOrEqual(t, len(ex.Video.Scene.Objects), g.Config().Video.MaxObjects)
					checkAnswer(t, ex, g.Config().MotionFrames)
					answers[kind][ex.Answer]++
				}
			}
			if cfg.name == "default" {
				// Answers are varied.
				require.Len(t, answers["direction"], 4, "%v", answers["direction"])
				require.GreaterOrEqual(t, len(answers["count"]), 4, "%v", answers["count"])
				require.GreaterOrEqual(t, len(answers["moved"]), 4, "%v", answers["moved"])
				require.GreaterOrEqual(t, len(answers["color_change"]), 5, "%v", answers["color_change"])
				require.GreaterOrEqual(t, len(answers["appeared"]), 4, "%v", answers["appeared"])
			}
		})
	}
}

func TestVideoQAKinds(t *testing.T) {
	g := newVideoQAGen(t, nil)
	seen := map[string]int{}
	for seed := uint64(0); seed < 100; seed++ {
		seen[g.Example(NewRand(seed), "").Kind]++
	}
	require.Len(t, seen, len(VideoQAKinds), "%v", seen)

	g = newVideoQAGen(t, func(c *VideoQAConfig) { c.Kinds = []string{"moved", "appeared"} })
	for seed := uint64(0); seed < 20; seed++ {
		require.Contains(t, []string{"moved", "appeared"}, g.Example(NewRand(seed), "").Kind)
	}
	require.Panics(t, func() { g.Example(NewRand(1), "count") })
	require.Panics(t, func() { g.Example(NewRand(1), "why") })
	require.Equal(t, []string{"moved", "appeared"}, g.Config().Kinds)
	require.Equal(t, VideoQAKinds, newVideoQAGen(t, func(c *VideoQAConfig) { c.Kinds = nil }).Config().Kinds)

	// A single object, a single shape and colour: count, moved, direction and appeared still work.
	g = newVideoQAGen(t, func(c *VideoQAConfig) {
		c.Video.MinObjects, c.Video.MaxObjects, c.Video.Shapes, c.Video.Colors = 1, 1, []string{"cross"}, []string{"green"}
		c.Kinds = []string{"count", "moved", "direction", "appeared"}
	})
	for seed := uint64(0); seed < 20; seed++ {
		checkAnswer(t, g.Example(NewRand(seed), ""), 3)
	}
}

func TestVideoQAConfigValidation(t *testing.T) {
	for field, mod := range map[string]func(*VideoQAConfig){
		"Video.Size":       func(c *VideoQAConfig) { c.Video.Size = 2 },
		"Video.Shapes":     func(c *VideoQAConfig) { c.Video.Shapes = []string{"hexagon"} },
		"Video.Frames":     func(c *VideoQAConfig) { c.Video.Frames = 1 },
		"MotionFrames":     func(c *VideoQAConfig) { c.MotionFrames = 0 },
		"MotionFrames ":    func(c *VideoQAConfig) { c.MotionFrames = 16 },
		"Kinds":            func(c *VideoQAConfig) { c.Kinds = []string{"count", "why"} },
		"Kinds ":           func(c *VideoQAConfig) { c.Kinds = []string{"count", "count"} },
		"Video.MaxSpeed":   func(c *VideoQAConfig) { c.Video.MaxSpeed = 0.01 },
		"Video.MaxSpeed ":  func(c *VideoQAConfig) { c.Video.MaxSpeed = 0 },
		"Video.Shapes ":    func(c *VideoQAConfig) { c.Video.Shapes = []string{"circle"}; c.Kinds = []string{"moved"} },
		"Video.Colors":     func(c *VideoQAConfig) { c.Video.Colors = []string{"red"}; c.Kinds = []string{"color_change"} },
		"Video.MaxSize":    func(c *VideoQAConfig) { c.Video.MinSize, c.Video.MaxSize = 0.5, 0.95 },
		"Video.MinObjects": func(c *VideoQAConfig) { c.Video.MinObjects = 0 },
		"Video.Shapes Colors": func(c *VideoQAConfig) {
			c.Video.Shapes, c.Video.Colors, c.Kinds = []string{"circle"}, []string{"red"}, []string{"direction"}
		},
	} {
		cfg := DefaultVideoQAConfig()
		mod(&cfg)
		_, err := NewVideoQAGenerator(cfg)
		require.Error(t, err, field)
		for _, f := range strings.Fields(field) {
			require.Contains(t, err.Error(), f, field)
		}
		require.NotContains(t, err.Error(), "\n")
	}
	// Without motion kinds, still videos are fine.
	g := newVideoQAGen(t, func(c *VideoQAConfig) {
		c.Video.MaxSpeed, c.Kinds = 0, []string{"count", "color_change", "appeared"}
	})
	for seed := uint64(0); seed < 20; seed++ {
		ex := g.Example(NewRand(seed), "")
		checkAnswer(t, ex, 3)
		for _, o := range ex.Video.Scene.Objects {
			require.Zero(t, o.VX)
			require.Zero(t, o.VY)
		}
	}
}

// identicalPairs counts the consecutive frame pairs of v that are pixel-identical.
func identicalPairs(v Video) int {
	n := v.Size * v.Size * 3
	same := 0
	for f := 1; f < v.T; f++ {
		if slices.Equal(v.Frames[(f-1)*n:f*n], v.Frames[f*n:(f+1)*n]) {
			same++
		}
	}
	return same
}

func TestVideoQARedundancy(t *testing.T) {
	for _, bg := range []string{"solid", "gradient", "checker", "noise"} {
		g := newVideoQAGen(t, func(c *VideoQAConfig) { c.Video.Background = bg })
		require.Equal(t, 16, g.Config().Video.Frames)
		require.Equal(t, 3, g.Config().MotionFrames)
		for seed := uint64(0); seed < 40; seed++ {
			ex := g.Example(NewRand(seed), "")
			v := ex.Video
			require.GreaterOrEqual(t, 2*identicalPairs(v), v.T-1, "%s %s: %d of %d pairs identical", bg, ex.Kind, identicalPairs(v), v.T-1)
			// The background is the same in every frame: a pixel that is background in two
			// frames has the same value in both.
			n := v.Size * v.Size
			for f := 1; f < v.T; f++ {
				for i := range n {
					if v.Masks[f*n+i] == 0 && v.Masks[i] == 0 {
						require.Equal(t, v.Frames[i*3:i*3+3], v.Frames[(f*n+i)*3:(f*n+i)*3+3])
					}
				}
			}
		}
	}
	// Motion happens in one window of MotionFrames frames: the still kinds change at most once.
	g := newVideoQAGen(t, func(c *VideoQAConfig) { c.Video.Background = "noise" })
	for seed := uint64(0); seed < 20; seed++ {
		for _, kind := range []string{"color_change", "moved", "direction"} {
			v := g.Example(NewRand(seed), kind).Video
			want := map[string]int{"color_change": 1, "moved": 3, "direction": 3}[kind]
			require.GreaterOrEqual(t, identicalPairs(v), v.T-1-want, kind)
		}
	}
}

func TestVideoObjectMoveWindowAndColorChange(t *testing.T) {
	g := newVideoGen(t, func(c *VideoConfig) { c.Frames = 8 })
	o := VideoObject{Shape: "square", Color: "red", Size: 0.2, X: 0.3, Y: 0.5, VX: 0.1, End: 8, MoveStart: 3, MoveEnd: 5}
	var xs []float64
	for _, c := range o.centres(8) {
		xs = append(xs, math.Round(c[0]*1e9)/1e9)
	}
	require.Equal(t, []float64{0.3, 0.3, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5}, xs)
	v := g.Render(VideoScene{Objects: []VideoObject{o}})
	require.Equal(t, "a red square moves right", v.Caption)
	require.Equal(t, expectedMasks(v), v.Masks)
	require.Equal(t, 5, identicalPairs(v))

	// MoveEnd <= MoveStart: moves all the time, as with zero values.
	p := o
	p.MoveStart, p.MoveEnd = 5, 5
	o.MoveStart, o.MoveEnd = 0, 0
	require.Equal(t, o.centres(8), p.centres(8))

	c := VideoObject{Shape: "circle", Color: "red", Size: 0.3, X: 0.5, Y: 0.5, End: 8, ChangeAt: 3, NewColor: "orange"}
	v = g.Render(VideoScene{Objects: []VideoObject{c}})
	require.Equal(t, "a red circle stays still then turns orange", v.Caption)
	for f := range 8 {
		want := map[bool]string{true: "red", false: "orange"}[f < 3]
		require.Equal(t, want, pixelColor(t, v, f, 1))
		require.Equal(t, want, c.ColorAt(f))
	}
	// Changing before the object appears: it is orange all along; changing after it left: red.
	c.Start, c.ChangeAt = 4, 2
	require.Equal(t, "an orange circle appears then stays still", g.Render(VideoScene{Objects: []VideoObject{c}}).Caption)
	c.Start, c.End, c.ChangeAt = 0, 5, 6
	require.Equal(t, "a red circle stays still then leaves", g.Render(VideoScene{Objects: []VideoObject{c}}).Caption)
	c.ChangeAt = 4
	require.Equal(t, "a red circle stays still then turns orange then leaves", g.Render(VideoScene{Objects: []VideoObject{c}}).Caption)
	for _, w := range text.Tokenize(g.Render(VideoScene{Objects: []VideoObject{c}}).Caption) {
		require.True(t, VideoVocab().Has(w), w)
	}
}

func TestVideoQAExamples(t *testing.T) {
	g := newVideoQAGen(t, nil)
	for _, kind := range VideoQAKinds {
		ex := g.Example(NewRand(7), kind)
		t.Logf("%-12s %q -> %q   (caption: %s)", kind, ex.Question, ex.Answer, ex.Video.Caption)
	}
}
