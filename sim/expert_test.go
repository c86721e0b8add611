package sim

import (
	"testing"
	"time"

	"github.com/reelml/reel/data"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpertSolvesEveryFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
	}{
		{"default", func(c *Config) {}},
		{"full", func(c *Config) { c.MaxObjects, c.Bowls, c.Variation = 6, 2, 1 }},
	} {
		for _, f := range AllFamilies() {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			cfg.Families = []string{f}
			ok, steps := 0, 0
			for i := range 100 {
				w, err := NewWorld(cfg, TrainSeed(11, int64(i)))
				require.NoError(t, err)
				rng := data.NewRand(uint64(i))
				for !w.Done() {
					w.Step(w.Expert(rng))
				}
				if w.Success() {
					ok++
				}
				steps += w.Steps()
			}
			t.Logf("%s %s: expert solved %d/100, mean %.1f steps", tc.name, f, ok, float64(steps)/100)
			assert.GreaterOrEqual(t, ok, 95, "%s %s", tc.name, f)
		}
	}
}

func TestExpertPickAnyCommits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Families = []string{"pick_any"}
	picked := map[bool]int{}
	for i := range 100 {
		w, err := NewWorld(cfg, TrainSeed(5, int64(i)))
		require.NoError(t, err)
		rng := data.NewRand(uint64(i))
		w.Expert(rng)
		choice := w.choice
		require.Contains(t, []int{w.target, w.twin}, choice)
		for !w.Done() {
			w.Step(w.Expert(rng))
			require.Equal(t, choice, w.choice)
		}
		if w.Success() {
			require.Equal(t, choice, w.held, "it picks the one it committed to")
		}
		picked[choice == w.target]++
	}
	assert.Greater(t, picked[true], 30)
	assert.Greater(t, picked[false], 30)
}

func TestRecordEpisode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Wrist = true
	ep, err := RecordEpisode(cfg, 42, 7)
	require.NoError(t, err)
	w, err := NewWorld(cfg, 42)
	require.NoError(t, err)
	n, T := cfg.ImageSize, ep.Len()
	assert.Equal(t, 7, ep.Index)
	assert.Equal(t, uint64(42), ep.Seed)
	assert.Equal(t, w.Instruction(), ep.Task)
	assert.Equal(t, w.Family(), ep.Family)
	assert.Equal(t, []string{CameraScene, CameraWrist}, ep.Cameras)
	assert.True(t, ep.Success)
	require.Greater(t, T, 1)
	require.LessOrEqual(t, T, cfg.MaxSteps)
	require.Len(t, ep.Action, T)
	for _, f := range ep.Frames {
		require.Len(t, f, T*n*n*3)
	}
	assert.Equal(t, w.Observe().Images[CameraScene].Pix, ep.Frames[0][:n*n*3], "frame 0 is the initial observation")
	assert.Equal(t, w.Observe().Images[CameraWrist].Pix, ep.Frames[1][:n*n*3])
	// replaying the recorded actions reproduces the recorded states and the outcome
	for i := range T {
		require.Equal(t, w.State(), ep.State[i], "step %d", i)
		require.Len(t, ep.Action[i], ActionDim)
		for _, v := range ep.Action[i][:2] {
			require.True(t, v >= -1 && v <= 1)
		}
		require.Contains(t, []float32{-1, 1}, ep.Action[i][2])
		w.Step(ep.Action[i])
	}
	assert.True(t, w.Success())

	again, err := RecordEpisode(cfg, 42, 7)
	require.NoError(t, err)
	require.Equal(t, ep, again, "deterministic in the seed")
	other, err := RecordEpisode(cfg, 43, 7)
	require.NoError(t, err)
	require.NotEqual(t, ep.State, other.State)
}

func TestSeedsDisjoint(t *testing.T) {
	seen := map[uint64]string{}
	for _, base := range []uint64{0, 1, 2} {
		for i := range int64(5000) {
			for kind, s := range map[string]uint64{"train": TrainSeed(base, i), "eval": EvalSeed(base, i)} {
				_, dup := seen[s]
				require.False(t, dup, "%s seed %d of base %d collides", kind, i, base)
				seen[s] = kind
				require.Equal(t, kind == "eval", s>>63 == 1)
			}
		}
	}
}

func TestRecordEpisodeSpeed(t *testing.T) {
	cfg := DefaultConfig()
	const n = 50
	start, steps := time.Now(), 0
	for i := range n {
		ep, err := RecordEpisode(cfg, TrainSeed(1, int64(i)), i)
		require.NoError(t, err)
		steps += ep.Len()
	}
	t.Logf("RecordEpisode, 32 px scene: %v per episode (%.1f steps)", time.Since(start)/n, float64(steps)/n)
}
