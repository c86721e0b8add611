package sim

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/text"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	cases := []struct {
		field string
		edit  func(c *Config)
	}{
		{"ImageSize", func(c *Config) { c.ImageSize = 4 }},
		{"MinObjects", func(c *Config) { c.MinObjects = 0 }},
		{"MaxObjects", func(c *Config) { c.MaxObjects = 1 }},
		{"MaxObjects", func(c *Config) { c.MaxObjects = 7 }},
		{"Bowls", func(c *Config) { c.Bowls = 3 }},
		{"Variation", func(c *Config) { c.Variation = math.NaN() }},
		{"MaxSteps", func(c *Config) { c.MaxSteps = 0 }},
		{"ExpertNoise", func(c *Config) { c.ExpertNoise = -0.1 }},
		{"Families", func(c *Config) { c.Families = []string{"pick", "fly"} }},
		{"Families", func(c *Config) { c.Families = []string{"pick", "pick"} }},
		{"Shapes", func(c *Config) { c.Shapes = []string{"hexagon"} }},
		{"Colors", func(c *Config) { c.Colors = []string{"red", "red"} }},
		{"Colors", func(c *Config) { c.Colors, c.Bowls = []string{"red"}, 2 }},
		{"Colors × Shapes", func(c *Config) { c.Colors, c.Shapes = []string{"red"}, []string{"circle"} }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		require.Error(t, err, tc.field)
		assert.Contains(t, err.Error(), tc.field)
		assert.NotContains(t, err.Error(), "\n")
		_, err = NewWorld(c, 1)
		assert.Error(t, err, "NewWorld must validate too")
	}
}

var templates = map[string]*regexp.Regexp{
	"pick":     regexp.MustCompile(`^pick up the (\w+) (\w+)$`),
	"pick_any": regexp.MustCompile(`^pick up a (\w+) (\w+)$`),
	"place":    regexp.MustCompile(`^put the (\w+) (\w+) in the (\w+) bowl$`),
	"push":     regexp.MustCompile(`^push the (\w+) (\w+) to the (left|right|top|bottom) edge$`),
}

func TestNewWorldScenes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxObjects, cfg.Bowls = 5, 2
	words := Words()
	seen := map[string]int{}
	for i := range 200 {
		w, err := NewWorld(cfg, TrainSeed(3, int64(i)))
		require.NoError(t, err)
		seen[w.Family()]++
		m := templates[w.Family()].FindStringSubmatch(w.Instruction())
		require.NotNil(t, m, "%s: %q", w.Family(), w.Instruction())
		for _, tok := range text.Tokenize(w.Instruction()) {
			require.Contains(t, words, tok)
		}
		matches := 0
		for _, o := range w.objs {
			if o.Color == m[1] && o.Shape == m[2] {
				matches++
			}
		}
		want := 1
		if w.Family() == "pick_any" {
			want = 2
			a, b := w.objs[w.target], w.objs[w.twin]
			// opposite sides of the gripper start: the two vectors point apart
			assert.Less(t, (a.X-w.gx)*(b.X-w.gx)+(a.Y-w.gy)*(b.Y-w.gy), -0.04)
		}
		require.Equal(t, want, matches, "target kind must be unique: %q %+v", w.Instruction(), w.objs)
		if w.Family() == "place" {
			assert.Equal(t, w.bowls[w.bowl].Color, m[3])
		}
		require.GreaterOrEqual(t, len(w.objs), cfg.MinObjects)
		require.LessOrEqual(t, len(w.objs), cfg.MaxObjects)
		require.Len(t, w.bowls, 2)
		for j, o := range w.objs {
			for _, p := range w.objs[:j] {
				require.Greater(t, math.Hypot(o.X-p.X, o.Y-p.Y), o.R+p.R, "objects overlap")
			}
		}
		require.False(t, w.Done())
		require.Equal(t, []float32{float32(w.gx), float32(w.gy), 0, 0}, w.State())
	}
	for _, f := range AllFamilies() {
		assert.Greater(t, seen[f], 30, "family %s under-sampled: %v", f, seen)
	}
}

// handWorld returns a world of family with the given objects (the first is the target) and
// one bowl at (0.25, 0.25), gripper at (gx, gy), open.
func handWorld(t *testing.T, family string, gx, gy float64, objs ...object) *World {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Families = []string{family}
	w, err := NewWorld(cfg, 1)
	require.NoError(t, err)
	w.objs, w.bowls = objs, []bowl{{"blue", 0.25, 0.25, 0.12}}
	w.gx, w.gy, w.target, w.twin, w.bowl, w.held, w.closed = gx, gy, 0, -1, 0, -1, false
	w.edge = "right"
	return w
}

func near(t *testing.T, want, got float64) {
	t.Helper()
	assert.InDelta(t, want, got, 1e-9)
}

func TestGraspWithinReachOnly(t *testing.T) {
	r := 0.06
	w := handWorld(t, "pick", 0.5+r+Reach+0.01, 0.5, object{"circle", "red", 0.5, 0.5, r})
	w.Step([]float32{0, 0, 1})
	assert.Equal(t, []float32{float32(w.gx), 0.5, 1, 0}, w.State(), "closed out of reach: empty")
	assert.False(t, w.Success())
	w.Step([]float32{0, 0, -1})
	w.gx = 0.5 + r + Reach - 0.01
	w.Step([]float32{0, 0, 1})
	assert.Equal(t, float32(1), w.State()[3], "closed within reach: holding")
	assert.True(t, w.Success())
	near(t, w.gx, w.objs[0].X) // snapped under the gripper
}

func TestGraspNearestAndCarry(t *testing.T) {
	w := handWorld(t, "pick", 0.5, 0.5, object{"circle", "red", 0.58, 0.5, 0.06}, object{"square", "blue", 0.45, 0.5, 0.06})
	w.Step([]float32{0, 0, 1})
	require.Equal(t, 1, w.held, "the nearest object")
	w.Step([]float32{0.5, -1, 1})
	near(t, 0.53, w.objs[1].X)
	near(t, 0.44, w.objs[1].Y)
	near(t, 0.58, w.objs[0].X) // the other stays
}

func TestReleaseIntoBowl(t *testing.T) {
	w := handWorld(t, "place", 0.5, 0.25, object{"circle", "red", 0.5, 0.25, 0.06})
	w.Step([]float32{0, 0, 1})
	require.Equal(t, 0, w.held)
	for range 3 {
		w.Step([]float32{-1, 0, 1}) // carry left, over the bowl
	}
	near(t, 0.32, w.objs[0].X)
	assert.False(t, w.Success(), "still held")
	w.Step([]float32{-1, 0, -1}) // move and release at x = 0.26, inside the bowl
	assert.Equal(t, -1, w.held)
	near(t, 0.26, w.objs[0].X)
	assert.True(t, w.Success())
	assert.True(t, w.Done())
	steps := w.Steps()
	w.Step([]float32{1, 1, 1})
	assert.Equal(t, steps, w.Steps(), "Step after Done does nothing")

	w = handWorld(t, "place", 0.5, 0.25, object{"circle", "red", 0.5, 0.25, 0.06})
	w.Step([]float32{0, 0, 1})
	w.Step([]float32{0, 1, -1}) // released outside the bowl
	assert.False(t, w.Success())
	// moving away from a released object leaves it where it is
	x, y := w.objs[0].X, w.objs[0].Y
	w.Step([]float32{1, 0, -1})
	near(t, x, w.objs[0].X)
	near(t, y, w.objs[0].Y)
}

func TestClampingAtEdges(t *testing.T) {
	w := handWorld(t, "push", 0.5, 0.5, object{"circle", "red", 0.5, 0.5, 0.07}) // to the right edge
	w.Step([]float32{0, 0, 1})
	for range 20 {
		w.Step([]float32{-5, float32(math.NaN()), 1}) // clamped to -1; NaN counts as 0
	}
	near(t, 0, w.gx)
	near(t, 0.5, w.gy)
	near(t, 0.07, w.objs[0].X) // a held object stays on the table
	w.Step([]float32{3, 0, 1})
	near(t, MaxStep, w.gx)
}

func TestPush(t *testing.T) {
	r := 0.06
	w := handWorld(t, "push", 0.3, 0.5, object{"circle", "red", 0.4, 0.5, r})
	w.Step([]float32{1, 0, -1})
	near(t, 0.36+r, w.objs[0].X) // pushed along the motion, still in contact
	near(t, 0.5, w.objs[0].Y)
	for !w.Done() {
		w.Step([]float32{1, 0, -1})
	}
	assert.True(t, w.Success(), "pushed into the right edge zone")
	assert.Greater(t, w.objs[0].X, 1-EdgeZone)
	assert.LessOrEqual(t, w.objs[0].X, 1-r)

	// an off-centre push moves the object along the motion too
	w = handWorld(t, "push", 0.3, 0.52, object{"circle", "red", 0.4, 0.5, r})
	w.Step([]float32{1, 0, -1})
	assert.Greater(t, w.objs[0].X, 0.4)
	near(t, 0.5, w.objs[0].Y)
	// a closed, empty gripper passes over objects
	w = handWorld(t, "push", 0.3, 0.5, object{"circle", "red", 0.4, 0.5, r}, object{"square", "red", 0.5, 0.8, r})
	w.closed = true
	w.Step([]float32{1, 0, 1}) // ends within reach: grasps instead of pushing
	assert.Equal(t, 0, w.held)
}

func TestStepBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSteps = 5
	w, err := NewWorld(cfg, 9)
	require.NoError(t, err)
	for range 10 {
		w.Step([]float32{0, 0, 0})
	}
	assert.Equal(t, 5, w.Steps())
	assert.True(t, w.Done())
	assert.False(t, w.Success())
}

func TestWords(t *testing.T) {
	words := Words()
	for _, w := range append(data.AllColors(), "left", "bowl", "push", "a", "cross") {
		assert.Contains(t, words, w)
	}
	for _, w := range words {
		assert.Equal(t, strings.ToLower(w), w)
		assert.NotContains(t, w, " ")
	}
	assert.Equal(t, len(words), len(slices.Compact(slices.Sorted(slices.Values(words)))), "no duplicates")
}
