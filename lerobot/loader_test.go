package lerobot

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	loaderDSOnce sync.Once
	loaderDSDir  string
	loaderDSErr  error
)

// loaderDataset is a v2.1 dataset (one mp4 per episode and camera, so an ffmpeg group spans
// files) of 12 episodes of 5 to 21 frames, cameras "top" 80×64 and "wrist" 24×16.
func loaderDataset(t *testing.T) string {
	t.Helper()
	requireFFmpeg(t)
	loaderDSOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reel-lerobot-loader-")
		if err != nil {
			loaderDSErr = err
			return
		}
		loaderDSDir = filepath.Join(dir, "ds")
		w, err := Create(loaderDSDir, WriterConfig{FPS: testV3FPS, Format: V21})
		if err != nil {
			loaderDSErr = err
			return
		}
		for _, ep := range v3Episodes(12) {
			if loaderDSErr = w.WriteStored(ep); loaderDSErr != nil {
				return
			}
		}
		loaderDSErr = w.Close()
	})
	require.NoError(t, loaderDSErr)
	return loaderDSDir
}

// TestFitInFFmpegMatchesGo compares the frames ffmpeg fits to the training size in the decoding
// process with the previous path's (frames decoded at their native size, fitted by
// policy.Resize in Go): the same pixels up to rounding and chroma interpolation, and the bytes
// read out of ffmpeg are those of the fitted size.
func TestFitInFFmpegMatchesGo(t *testing.T) {
	t.Parallel()
	dir := loaderDataset(t)
	for _, c := range []struct {
		w, h     int
		mode     string
		inFFmpeg bool
	}{
		{40, 40, "pad", true},     // 80×64 → 40×32 and 4 rows of black above and below
		{40, 40, "crop", true},    // the centred 64×64 at x=8
		{32, 24, "stretch", true}, //
		{36, 30, "crop", false},   // a crop of 76.8×64 source pixels: fitted in Go
	} {
		goDS, err := OpenWith(dir, Options{ResizeInGo: true})
		require.NoError(t, err)
		ds, err := Open(dir)
		require.NoError(t, err)
		var sum, n, worst float64
		frames := 0
		for _, ep := range []int{0, 5, 11} {
			want, err := goDS.decoded(ep, "top", c.w, c.h, c.mode)
			require.NoError(t, err)
			got, err := ds.decoded(ep, "top", c.w, c.h, c.mode)
			require.NoError(t, err)
			require.Equal(t, want.t, got.t)
			frames += got.t
			for j := range got.pix {
				d := math.Abs(float64(got.pix[j]) - float64(want.pix[j]))
				sum, n, worst = sum+d, n+1, max(worst, d)
			}
		}
		mean := sum / n
		t.Logf("%d×%d %s: mean |Δ| %.3f, max %.0f levels of 255", c.w, c.h, c.mode, mean, worst)
		st, goSt := ds.DecodeStats(), goDS.DecodeStats()
		require.EqualValues(t, frames, st.Frames, "each frame read out of ffmpeg once")
		require.EqualValues(t, frames, goSt.Frames)
		require.EqualValues(t, frames*80*64*3, goSt.Bytes, "the Go path reads native frames")
		if !c.inFFmpeg {
			require.Zero(t, worst, "a crop ffmpeg cannot cut is fitted in Go, exactly")
			require.EqualValues(t, frames*80*64*3, st.Bytes)
			continue
		}
		require.EqualValues(t, frames*c.w*c.h*3, st.Bytes, "only fitted frames leave ffmpeg")
		require.Less(t, mean, 2.0, "mean difference under 2 levels")
		require.LessOrEqual(t, worst, 64.0, "no pixel off by more than a quarter of the range")
	}
}

func TestFFmpegFit(t *testing.T) {
	require.Equal(t, "scale=224:168:flags=bilinear+accurate_rnd+full_chroma_int,format=rgb24,pad=224:224:0:28:color=black",
		FFmpegFit(640, 480, 224, 224, ""))
	require.Equal(t, "crop=480:480:80:0,scale=224:224:flags=bilinear+accurate_rnd+full_chroma_int,format=rgb24",
		FFmpegFit(640, 480, 224, 224, "crop"))
	require.Equal(t, "scale=224:224:flags=bilinear+accurate_rnd+full_chroma_int,format=rgb24", FFmpegFit(640, 480, 224, 224, "stretch"))
	require.Empty(t, FFmpegFit(640, 480, 640, 480, "pad"), "no filter at the native size")
	require.Empty(t, FFmpegFit(81, 64, 40, 40, "crop"), "a crop at an odd offset is fitted in Go")
}

// TestLoaderDecodesEachFrameOnce runs a loader over more than a pass of windows and counts what
// left ffmpeg: every episode and camera decoded once, each of its frames once, frames × w × h ×
// 3 bytes, several episodes per ffmpeg run.
func TestLoaderDecodesEachFrameOnce(t *testing.T) {
	t.Parallel()
	dir := loaderDataset(t)
	ds, err := Open(dir)
	require.NoError(t, err)
	s, err := ds.NewSampler(SamplerConfig{Seed: 3, BatchSize: 8, Window: 4, Stride: 2, BatchesPerWindow: 2})
	require.NoError(t, err)
	const w, h = 20, 20
	l, err := ds.NewLoader(s, LoaderConfig{Width: w, Height: h, Group: 4})
	require.NoError(t, err)
	batches := int64(14) // 7 windows sliding by 2 over 12 episodes: past the end of the first pass
	used := map[frameKey]bool{}
	for i := range batches {
		exs, err := l.Batch(i)
		require.NoError(t, err)
		for _, ex := range exs {
			for c, f := range ex.Frames {
				require.Len(t, f.Pix, w*h*3)
				used[frameKey{ep: ex.Episode, cam: c, w: w, h: h, mode: "pad"}] = true
			}
		}
	}
	l.Close()
	ds.cache.mu.Lock()
	keys := slices.Collect(func(yield func(frameKey) bool) {
		for k := range ds.cache.entries {
			if !yield(k) {
				return
			}
		}
	})
	_, decodes, _ := ds.cache.used, ds.cache.decodes, ds.cache.hits
	ds.cache.mu.Unlock()
	for k := range used {
		require.Contains(t, keys, k)
	}
	require.EqualValues(t, len(keys), decodes, "no episode decoded twice (nothing evicted, nothing redone)")
	frames := 0
	for _, k := range keys {
		v, err := ds.Vectors(k.ep)
		require.NoError(t, err)
		frames += v.Len()
	}
	st := ds.DecodeStats()
	require.EqualValues(t, frames, st.Frames, "each frame of each decoded episode read once")
	require.EqualValues(t, frames*w*h*3, st.Bytes, "and only at the training size")
	require.Less(t, st.Runs, int64(len(keys)), "episodes share ffmpeg runs")
	t.Logf("%d episode-cameras (%d used), %d frames, %d ffmpeg runs", len(keys), len(used), frames, st.Runs)
}

// TestLoaderDeterministic: the same seed gives the same batches, byte for byte, whatever the
// prefetching, the number of decoders and the grouping; and they are Dataset.Frames' frames.
func TestLoaderDeterministic(t *testing.T) {
	t.Parallel()
	dir := loaderDataset(t)
	load := func(cfg LoaderConfig) [][]LoadedExample {
		ds, err := Open(dir)
		require.NoError(t, err)
		s, err := ds.NewSampler(SamplerConfig{Seed: 9, BatchSize: 5, Window: 3})
		require.NoError(t, err)
		cfg.Width, cfg.Height, cfg.Mode = 24, 24, "crop"
		l, err := ds.NewLoader(s, cfg)
		require.NoError(t, err)
		defer l.Close()
		var out [][]LoadedExample
		for i := range int64(8) {
			exs, err := l.Batch(i)
			require.NoError(t, err)
			out = append(out, exs)
		}
		return out
	}
	a := load(LoaderConfig{NoPrefetch: true, Workers: 1, Group: 1})
	b := load(LoaderConfig{Workers: 3, Group: 5})
	ds, err := Open(dir)
	require.NoError(t, err)
	for i := range a {
		for j := range a[i] {
			require.Equal(t, a[i][j].Sample, b[i][j].Sample)
			require.Equal(t, a[i][j].Frames, b[i][j].Frames, "batch %d example %d", i, j)
			for c, cam := range []string{"top", "wrist"} {
				want, err := ds.Frames(a[i][j].Episode, cam, []int{a[i][j].Step}, 24, 24, "crop")
				require.NoError(t, err)
				require.Equal(t, want[0], a[i][j].Frames[c].Image())
			}
		}
	}
}

// TestLoaderGroupFailure: an episode whose video is missing fails its batch with an error
// naming the file, while the episodes decoded in the same ffmpeg group are served.
func TestLoaderGroupFailure(t *testing.T) {
	t.Parallel()
	dir := copyDir(t, loaderDataset(t))
	ds, err := Open(dir)
	require.NoError(t, err)
	v, err := ds.Vectors(4)
	require.NoError(t, err)
	require.Positive(t, v.Len())
	missing := ds.path(ds.episodes[4].videos[ds.camIndex("top")].file)
	require.NoError(t, os.Remove(missing))
	ds.decodeEpisodes([]int{2, 4, 7}, ds.camIndex("top"), 16, 16, "pad")
	for _, e := range []int{2, 7} {
		_, err := ds.Frames(e, "top", []int{0}, 16, 16, "pad")
		require.NoError(t, err)
	}
	_, err = ds.Frames(4, "top", []int{0}, 16, 16, "pad")
	require.ErrorContains(t, err, missing)
	_, decodes, _ := ds.FrameCacheStats()
	require.EqualValues(t, 4, decodes, "3 in the group, the failed one once more when asked again")
}

// TestGroupDecodeMatchesSingle: episodes decoded together in one ffmpeg run (the fitted frames
// read straight into the cache's episode buffers) hold exactly the bytes of the same episodes
// decoded one ffmpeg run each (read into a scratch frame and copied), for every fit ffmpeg does
// and for the Go fit; one run serves the whole group.
func TestGroupDecodeMatchesSingle(t *testing.T) {
	t.Parallel()
	dir := loaderDataset(t)
	eps := []int{0, 5, 11}
	for _, c := range []struct {
		w, h int
		mode string
	}{{40, 40, "pad"}, {40, 40, "crop"}, {32, 24, "stretch"}, {36, 30, "crop"}} {
		single, err := Open(dir)
		require.NoError(t, err)
		group, err := Open(dir)
		require.NoError(t, err)
		cam := group.camIndex("top")
		group.decodeEpisodes(eps, cam, c.w, c.h, c.mode)
		require.EqualValues(t, 1, group.DecodeStats().Runs, "%d×%d %s: one ffmpeg run for the group", c.w, c.h, c.mode)
		for _, ep := range eps {
			want, err := single.decoded(ep, "top", c.w, c.h, c.mode)
			require.NoError(t, err)
			got, err := group.decoded(ep, "top", c.w, c.h, c.mode)
			require.NoError(t, err)
			require.Equal(t, want.t, got.t)
			require.True(t, bytes.Equal(want.pix, got.pix), "%d×%d %s: episode %d differs", c.w, c.h, c.mode, ep)
		}
		require.EqualValues(t, 1, group.DecodeStats().Runs, "the group's episodes come from the cache")
	}
}
