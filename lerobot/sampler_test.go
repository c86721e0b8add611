package lerobot

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSampler(t *testing.T) {
	t.Parallel()
	lengths := []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}
	s, err := NewSampler(lengths, SamplerConfig{Seed: 3, BatchSize: 16, Window: 4})
	require.NoError(t, err)
	cfg := s.Config()
	require.Equal(t, 4, cfg.Window)
	require.Equal(t, 2, cfg.Stride)
	require.Equal(t, 8, cfg.BatchesPerWindow, "Stride × mean length 65 / batch 16 ≈ 8")

	// A pure function of (config, i).
	s2, err := NewSampler(lengths, SamplerConfig{Seed: 3, BatchSize: 16, Window: 4})
	require.NoError(t, err)
	other, err := NewSampler(lengths, SamplerConfig{Seed: 4, BatchSize: 16, Window: 4})
	require.NoError(t, err)
	differs := false
	for i := int64(0); i < 40; i++ {
		require.Equal(t, s.Batch(i), s2.Batch(i))
		require.Equal(t, s.Batch(i), s.Batch(i))
		differs = differs || !slices.Equal(s.Batch(i), other.Batch(i))
	}
	require.True(t, differs, "another seed, other batches")

	// Examples come from the window, which holds for BatchesPerWindow micro-batches and then
	// slides by Stride episodes.
	seen := map[int]bool{}
	for i := int64(0); i < 200; i++ {
		win := s.Window(i)
		require.Len(t, win, 4)
		for _, ex := range s.Batch(i) {
			require.Contains(t, win, ex.Episode)
			require.GreaterOrEqual(t, ex.Step, 0)
			require.Less(t, ex.Step, lengths[ex.Episode])
		}
		if i%8 != 0 {
			require.Equal(t, s.Window(i-1), win)
		} else if i > 0 {
			shared := 0
			for _, e := range s.Window(i - 1) {
				if slices.Contains(win, e) {
					shared++
				}
			}
			require.GreaterOrEqual(t, shared, 1, "the window slides by about 2 of its 4 episodes")
		}
		for _, e := range win {
			seen[e] = true
		}
	}
	require.Len(t, seen, len(lengths), "every episode comes around")

	// Within a window, frames are drawn uniformly: episodes in proportion to their length.
	counts := map[int]int{}
	win := s.Window(0)
	total := 0
	for _, e := range win {
		total += lengths[e]
	}
	draws := 0
	big, err := NewSampler(lengths, SamplerConfig{Seed: 3, BatchSize: 4000, Window: 4, BatchesPerWindow: 1})
	require.NoError(t, err)
	for _, ex := range big.Batch(0) {
		counts[ex.Episode]++
		draws++
	}
	for _, e := range big.Window(0) {
		p := float64(lengths[e]) / float64(totalOf(lengths, big.Window(0)))
		sd := math.Sqrt(float64(draws) * p * (1 - p))
		require.InDelta(t, float64(draws)*p, float64(counts[e]), 5*sd, "episode %d", e)
	}
	_ = total

	// Restricting the episodes.
	sub, err := NewSampler(lengths, SamplerConfig{Seed: 1, BatchSize: 8, Episodes: []int{1, 5, 9}})
	require.NoError(t, err)
	require.Equal(t, 3, sub.Config().Window)
	for i := int64(0); i < 20; i++ {
		for _, ex := range sub.Batch(i) {
			require.Contains(t, []int{1, 5, 9}, ex.Episode)
		}
	}
	_, err = NewSampler(lengths, SamplerConfig{BatchSize: 0})
	require.ErrorContains(t, err, "batch size 0")
	_, err = NewSampler(lengths, SamplerConfig{BatchSize: 2, Episodes: []int{12}})
	require.ErrorContains(t, err, "episode 12 is not in the dataset")
}

func totalOf(lengths, eps []int) int {
	n := 0
	for _, e := range eps {
		n += lengths[e]
	}
	return n
}

func TestLoader(t *testing.T) {
	t.Parallel()
	ds, err := Open(goodV3(t))
	require.NoError(t, err)
	s, err := ds.NewSampler(SamplerConfig{Seed: 1, BatchSize: 6, Window: 2, Stride: 1, BatchesPerWindow: 2})
	require.NoError(t, err)
	l, err := ds.NewLoader(s, LoaderConfig{Width: 24, Height: 20, Mode: "crop", Ahead: 4})
	require.NoError(t, err)
	defer l.Close()
	for i := int64(0); i < 6; i++ {
		exs, err := l.Batch(i)
		require.NoError(t, err)
		require.Len(t, exs, 6)
		for b, ex := range exs {
			require.Equal(t, s.Batch(i)[b], ex.Sample)
			require.Len(t, ex.Frames, 2)
			for c, cam := range []string{"top", "wrist"} {
				want, err := ds.Frames(ex.Episode, cam, []int{ex.Step}, 24, 20, "crop")
				require.NoError(t, err)
				require.Equal(t, want[0], ex.Frames[c].Image())
			}
			v, err := ds.Vectors(ex.Episode)
			require.NoError(t, err)
			require.Same(t, v, ex.Vectors)
		}
	}
	// The windows of the next batches are decoded in the background.
	deadline := time.Now().Add(20 * time.Second)
	for _, e := range s.Window(6 + 3) {
		for !ds.cache.has(frameKey{ep: e, cam: 0, w: 24, h: 20, mode: "crop"}) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		require.True(t, ds.cache.has(frameKey{ep: e, cam: 0, w: 24, h: 20, mode: "crop"}), "episode %d prefetched", e)
	}
	require.Positive(t, l.Waited())
	_, err = ds.NewLoader(s, LoaderConfig{Width: 24, Height: 20, Cameras: []string{"side"}})
	require.ErrorContains(t, err, `no camera "side"`)
}

func TestFrameCacheBound(t *testing.T) {
	t.Parallel()
	ds, err := OpenWith(goodV3(t), Options{CacheBytes: 2 * 9 * 16 * 16 * 3})
	require.NoError(t, err)
	for i := range 4 {
		_, err := ds.Frames(i, "top", []int{0}, 16, 16, "")
		require.NoError(t, err)
		used, _, _ := ds.FrameCacheStats()
		require.LessOrEqual(t, used, int64(2*9*16*16*3), "the cache keeps within its bound")
	}
	_, decodes, _ := ds.FrameCacheStats()
	require.EqualValues(t, 4, decodes)
	_, err = ds.Frames(3, "top", []int{1}, 16, 16, "")
	require.NoError(t, err)
	_, decodes, hits := ds.FrameCacheStats()
	require.EqualValues(t, 4, decodes, "the most recent episode is still cached")
	require.EqualValues(t, 1, hits)
	_, err = ds.Frames(0, "top", []int{1}, 16, 16, "")
	require.NoError(t, err)
	_, decodes, _ = ds.FrameCacheStats()
	require.EqualValues(t, 5, decodes, "the oldest was evicted")
}
