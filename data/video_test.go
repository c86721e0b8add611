package data

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/reelml/reel/text"
	"github.com/stretchr/testify/require"
)

func newVideoGen(t testing.TB, mod func(*VideoConfig)) *VideoGenerator {
	t.Helper()
	cfg := DefaultVideoConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := NewVideoGenerator(cfg)
	require.NoError(t, err)
	return g
}

func TestVideoDeterministic(t *testing.T) {
	g := newVideoGen(t, nil)
	for seed := uint64(0); seed < 20; seed++ {
		a, b := g.Sample(NewRand(seed)), g.Sample(NewRand(seed))
		require.Equal(t, a, b)
		require.Equal(t, 8, a.T)
		require.Equal(t, 32, a.Size)
		require.Len(t, a.Frames, 8*32*32*3)
		require.Len(t, a.Masks, 8*32*32)
		require.Empty(t, a.Source)
		// Render is a pure function of the scene.
		require.Equal(t, a, g.Render(*a.Scene))
		require.NotEqual(t, a.Frames, g.Sample(NewRand(seed+100)).Frames)
	}
}

// expectedMasks recomputes the instance masks of v independently of the renderer's bounding
// box search: pixel (x, y) of frame t belongs to the last object, visible in t, whose shape
// contains the pixel centre (none of these test objects is small enough to need the
// centre-pixel fallback).
func expectedMasks(v Video) []uint8 {
	n, s := v.Size, v.Scene
	out := make([]uint8, len(v.Masks))
	for k, o := range s.Objects {
		c := o.centres(v.T)
		r := o.Size / 2
		for t := max(0, o.Start); t < min(v.T, o.End); t++ {
			for y := range n {
				for x := range n {
					dx := ((float64(x)+0.5)/float64(n) - c[t][0]) / r
					dy := ((float64(y)+0.5)/float64(n) - c[t][1]) / r
					if InsideShape(o.Shape, dx, dy) {
						out[(t*n+y)*n+x] = uint8(k + 1)
					}
				}
			}
		}
	}
	return out
}

func TestVideoMasksMatchPixels(t *testing.T) {
	g := newVideoGen(t, nil)
	for seed := uint64(0); seed < 100; seed++ {
		v := g.Sample(NewRand(seed))
		n := v.Size
		require.Equal(t, expectedMasks(v), v.Masks, "seed %d", seed)
		bg := g.scenes.Render(v.Scene.Background)
		for t0 := range v.T {
			for i := range n * n {
				got := v.Frames[(t0*n*n+i)*3 : (t0*n*n+i)*3+3]
				var want []float32
				if k := v.Masks[t0*n*n+i]; k == 0 {
					want = bg[i*3 : i*3+3]
				} else {
					rgb := colorRGB[v.Scene.Objects[k-1].Color]
					want = rgb[:]
				}
				require.Equal(t, want, got, "seed %d frame %d pixel %d", seed, t0, i)
			}
		}
		// Every object of a sampled video is visible, and counted once.
		require.Equal(t, len(v.Scene.Objects), v.NumObjects())
	}
}

func TestVideoObjectsStayInside(t *testing.T) {
	g := newVideoGen(t, func(c *VideoConfig) { c.Frames, c.MaxSpeed, c.MaxSize = 24, 0.3, 0.4 })
	const eps = 1e-9
	bounced := false
	for seed := uint64(0); seed < 200; seed++ {
		v := g.Sample(NewRand(seed))
		for _, o := range v.Scene.Objects {
			r := o.Size / 2
			c := o.centres(v.T)
			for f := o.Start; f < o.End; f++ {
				require.GreaterOrEqual(t, c[f][0]-r, -eps)
				require.LessOrEqual(t, c[f][0]+r, 1+eps)
				require.GreaterOrEqual(t, c[f][1]-r, -eps)
				require.LessOrEqual(t, c[f][1]+r, 1+eps)
				if f > o.Start && o.Turn == 0 && math.Abs(c[f][0]-c[f-1][0]) < math.Abs(o.VX)*0.99 {
					bounced = true
				}
			}
		}
	}
	require.True(t, bounced, "fast objects must bounce off the borders")

	// A hand-made object heading right bounces back off the right border.
	g = newVideoGen(t, func(c *VideoConfig) { c.Frames = 6 })
	o := VideoObject{Shape: "square", Color: "red", Size: 0.2, X: 0.7, Y: 0.5, VX: 0.1, End: 6}
	var xs []float64
	for _, c := range o.centres(6) {
		xs = append(xs, math.Round(c[0]*1e9)/1e9)
	}
	require.Equal(t, []float64{0.7, 0.8, 0.9, 0.8, 0.7, 0.6}, xs)
	v := g.Render(VideoScene{Objects: []VideoObject{o}})
	require.Equal(t, "a red square moves left", v.Caption)
}

func TestVideoAppearLeave(t *testing.T) {
	g := newVideoGen(t, nil)
	appeared, left := 0, 0
	for seed := uint64(0); seed < 200; seed++ {
		v := g.Sample(NewRand(seed))
		n := v.Size * v.Size
		for k, o := range v.Scene.Objects {
			require.True(t, 0 <= o.Start && o.Start < o.End && o.End <= v.T, "%+v", o)
			if o.Start > 0 {
				appeared++
			}
			if o.End < v.T {
				left++
			}
			for t0 := range v.T {
				in := slices.Contains(v.Masks[t0*n:(t0+1)*n], uint8(k+1))
				if t0 < o.Start || t0 >= o.End {
					require.False(t, in, "seed %d: object %d drawn in frame %d outside [%d, %d)", seed, k, t0, o.Start, o.End)
				}
			}
		}
	}
	require.Greater(t, appeared, 20)
	require.Greater(t, left, 20)

	g = newVideoGen(t, func(c *VideoConfig) { c.AppearLeave = false })
	for seed := uint64(0); seed < 50; seed++ {
		v := g.Sample(NewRand(seed))
		for _, o := range v.Scene.Objects {
			require.Equal(t, 0, o.Start)
			require.Equal(t, v.T, o.End)
		}
		require.NotContains(t, v.Caption, "appears")
		require.NotContains(t, v.Caption, "leaves")
	}
}

func TestVideoCaptions(t *testing.T) {
	vocab := VideoVocab()
	require.Equal(t, vocab.Words(), VideoVocab().Words(), "fixed order")
	g := newVideoGen(t, nil)
	captions := map[string]bool{}
	for seed := uint64(0); seed < 300; seed++ {
		v := g.Sample(NewRand(seed))
		captions[v.Caption] = true
		for _, w := range text.Tokenize(v.Caption) {
			require.True(t, vocab.Has(w), "caption %q: word %q not in VideoVocab", v.Caption, w)
		}
		require.Equal(t, strings.ToLower(v.Caption), v.Caption)
		clauses := strings.FieldsFunc(strings.ReplaceAll(v.Caption, " while ", "|"), func(r rune) bool { return r == '|' })
		require.Len(t, clauses, 1+min(1, v.NumObjects()-1), v.Caption)
		for _, o := range v.Scene.Objects {
			require.Contains(t, v.Caption, " "+o.Color+" "+o.Shape+" ")
			require.Equal(t, o.Start > 0, strings.Contains(v.Caption, o.Color+" "+o.Shape+" appears"), v.Caption)
		}
	}
	require.Greater(t, len(captions), 250, "captions must tell videos apart")

	// Exact captions of hand-made scenes.
	g = newVideoGen(t, nil)
	s := VideoScene{Objects: []VideoObject{
		{Shape: "circle", Color: "red", Size: 0.2, X: 0.7, Y: 0.3, VX: -0.04, End: 8},
		{Shape: "square", Color: "blue", Size: 0.2, X: 0.3, Y: 0.3, VX: 0.01, VY: 0.05, End: 8},
		{Shape: "triangle", Color: "green", Size: 0.2, X: 0.5, Y: 0.8, End: 8},
	}}
	require.Equal(t, "a red circle moves left while a blue square falls and a green triangle stays still", g.Render(s).Caption)
	s = VideoScene{Objects: []VideoObject{
		{Shape: "diamond", Color: "orange", Size: 0.2, X: 0.5, Y: 0.8, VY: -0.05, Turn: 0.2, Start: 2, End: 8},
		{Shape: "cross", Color: "white", Size: 0.2, X: 0.2, Y: 0.5, VX: 0.05, End: 5},
		{Shape: "circle", Color: "cyan", Size: 0.2, X: 0.5, Y: 0.5, Start: 3, End: 6},
		{Shape: "square", Color: "yellow", Size: 0.2, X: 0.5, Y: 0.5, Start: 8, End: 9}, // never visible
	}}
	v := g.Render(s)
	require.Equal(t, "an orange diamond appears then turns and rises while a white cross moves right then leaves"+
		" and a cyan circle appears then stays still then leaves", v.Caption)
	require.Equal(t, 3, v.NumObjects())
	require.Equal(t, "nothing moves", Caption(VideoScene{}, 8))
}

func TestVideoHiddenObjects(t *testing.T) {
	g := newVideoGen(t, nil)
	// A small square entirely under a large one is not visible.
	s := VideoScene{Objects: []VideoObject{
		{Shape: "square", Color: "red", Size: 0.1, X: 0.5, Y: 0.5, End: 8},
		{Shape: "square", Color: "blue", Size: 0.5, X: 0.5, Y: 0.5, End: 8},
	}}
	v := g.Render(s)
	require.Equal(t, 1, v.NumObjects())
	require.Equal(t, 0, (&Video{}).NumObjects())

	// Crowded videos: Sample never returns hidden objects.
	g = newVideoGen(t, func(c *VideoConfig) { c.MinObjects, c.MaxObjects, c.MinSize, c.MaxSize = 8, 8, 0.1, 0.6 })
	for seed := uint64(0); seed < 50; seed++ {
		v := g.Sample(NewRand(seed))
		require.Equal(t, len(v.Scene.Objects), v.NumObjects())
		require.NotEmpty(t, v.Scene.Objects)
	}

	// Frame-sized squares all sit in the middle: only the topmost one can be seen, and Sample
	// drops the others after retrying.
	g = newVideoGen(t, func(c *VideoConfig) {
		c.Shapes, c.MinObjects, c.MaxObjects, c.MinSize, c.MaxSize, c.AppearLeave = []string{"square"}, 3, 3, 1, 1, false
	})
	v = g.Sample(NewRand(3))
	require.Len(t, v.Scene.Objects, 1)
	require.Equal(t, 1, v.NumObjects())
	require.Equal(t, expectedMasks(v), v.Masks)
}

func TestVideoConfigValidation(t *testing.T) {
	for field, mod := range map[string]func(*VideoConfig){
		"Size":       func(c *VideoConfig) { c.Size = 2 },
		"Frames":     func(c *VideoConfig) { c.Frames = 0 },
		"MinObjects": func(c *VideoConfig) { c.MinObjects = 0 },
		"MaxObjects": func(c *VideoConfig) { c.MaxObjects = MaxVideoObjects + 1 },
		"Shapes":     func(c *VideoConfig) { c.Shapes = []string{"circle", "hexagon"} },
		"Colors":     func(c *VideoConfig) { c.Colors = []string{"red", "red"} },
		"MinSize":    func(c *VideoConfig) { c.MinSize = 0 },
		"MaxSize":    func(c *VideoConfig) { c.MaxSize = 1.5 },
		"Background": func(c *VideoConfig) { c.Background = "stripes" },
		"MaxSpeed":   func(c *VideoConfig) { c.MaxSpeed = math.NaN() },
	} {
		cfg := DefaultVideoConfig()
		mod(&cfg)
		_, err := NewVideoGenerator(cfg)
		require.Error(t, err, field)
		require.Contains(t, err.Error(), field)
		require.NotContains(t, err.Error(), "\n")
	}

	// Defaults and restricted configs.
	g := newVideoGen(t, func(c *VideoConfig) {
		c.Shapes, c.Colors, c.Background, c.MaxSpeed, c.Frames = []string{"cross"}, []string{"green"}, "", 0, 1
	})
	require.Equal(t, "mixed", g.Config().Background)
	v := g.Sample(NewRand(1))
	require.Equal(t, 1, v.T)
	for _, o := range v.Scene.Objects {
		require.Equal(t, "green", o.Color)
		require.Equal(t, "cross", o.Shape)
	}
	require.NotContains(t, v.Caption, "moves")
}
