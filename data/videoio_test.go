package data

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelml/reel/mediaio"
	"github.com/stretchr/testify/require"
)

// requireFFmpeg skips the test when the ffmpeg program is missing (CI installs it).
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := mediaio.FFmpeg(); err != nil {
		t.Skip(err)
	}
}

func meanAbsDiff(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

func TestVideoRoundTrip(t *testing.T) {
	requireFFmpeg(t)
	dir := t.TempDir()
	for _, size := range []int{32, 33} { // odd sizes cannot use 4:2:0 chroma
		g := newVideoGen(t, func(c *VideoConfig) { c.Size = size })
		v := g.Sample(NewRand(7))
		path := filepath.Join(dir, "v.mp4")
		require.NoError(t, EncodeVideo(path, v, 8))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "no temporary file left behind")

		got, err := DecodeVideo(path, 8, size, v.T)
		require.NoError(t, err)
		require.Equal(t, v.T, got.T)
		require.Equal(t, size, got.Size)
		require.Len(t, got.Frames, len(v.Frames))
		require.Nil(t, got.Masks)
		require.Nil(t, got.Scene)
		require.Equal(t, path, got.Source)
		mae := meanAbsDiff(v.Frames, got.Frames)
		t.Logf("size %d: round-trip mean absolute error %.4f", size, mae)
		require.Less(t, mae, 0.08)
		// Frames stay in order: each decoded frame is closest to its own original.
		fb := size * size * 3
		for f := range v.T {
			own := meanAbsDiff(v.Frames[f*fb:(f+1)*fb], got.Frames[f*fb:(f+1)*fb])
			require.Less(t, own, 0.1, "frame %d", f)
		}

		// A longer clip than the file repeats its last frame; a smaller size rescales.
		long, err := DecodeVideo(path, 8, 16, v.T+3)
		require.NoError(t, err)
		require.Equal(t, v.T+3, long.T)
		fb = 16 * 16 * 3
		for f := v.T; f < v.T+3; f++ {
			require.Equal(t, long.Frames[(v.T-1)*fb:v.T*fb], long.Frames[f*fb:(f+1)*fb])
		}
	}
}

// requireOneLineError checks a one-line error naming path that came back quickly.
func requireOneLineError(t *testing.T, err error, path string, start time.Time) {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), path)
	require.Less(t, time.Since(start), 10*time.Second, "error took too long: %v", err)
}

func TestDecodeVideoErrors(t *testing.T) {
	requireFFmpeg(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mp4")
	require.NoError(t, EncodeVideo(good, newVideoGen(t, nil).Sample(NewRand(1)), 8))
	full, err := os.ReadFile(good)
	require.NoError(t, err)

	rng := NewRand(5)
	junk := make([]byte, 20000)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{
		"junk.mp4":      junk,
		"truncated.mp4": full[:len(full)/2],
		"empty.mp4":     nil,
		"text.mp4":      []byte("this is not a video\n"),
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		start := time.Now()
		_, err := DecodeVideo(path, 8, 32, 8)
		requireOneLineError(t, err, path, start)
		t.Logf("%s: %v", name, err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.mp4"), dir} {
		start := time.Now()
		_, err := DecodeVideo(path, 8, 32, 8)
		requireOneLineError(t, err, path, start)
		t.Logf("%v", err)
	}
	_, err = DecodeVideo(good, 0, 32, 8)
	require.ErrorContains(t, err, "fps")
	_, err = DecodeVideo(good, 8, 0, 8)
	require.ErrorContains(t, err, "size")
	_, err = DecodeVideo(good, 8, 32, 0)
	require.ErrorContains(t, err, "frames")
	require.Error(t, EncodeVideo(filepath.Join(dir, "bad.mp4"), Video{T: 2, Size: 4, Frames: make([]float32, 5)}, 8))
	require.Error(t, EncodeVideo(filepath.Join(dir, "no-such-dir", "x.mp4"), newVideoGen(t, nil).Sample(NewRand(1)), 8))
}

func TestEncodeVideoMPEG4(t *testing.T) {
	requireFFmpeg(t)
	path := filepath.Join(t.TempDir(), "v.mp4")
	v := newVideoGen(t, nil).Sample(NewRand(7))
	require.NoError(t, encodeVideo(path, v, 8, false)) // the fallback without libx264
	got, err := DecodeVideo(path, 8, 32, v.T)
	require.NoError(t, err)
	mae := meanAbsDiff(v.Frames, got.Frames)
	t.Logf("mpeg4: round-trip mean absolute error %.4f", mae)
	require.Less(t, mae, 0.08)
}

func TestFFmpegTimeout(t *testing.T) {
	requireFFmpeg(t)
	path := filepath.Join(t.TempDir(), "v.mp4")
	require.NoError(t, EncodeVideo(path, newVideoGen(t, nil).Sample(NewRand(7)), 8))
	defer func(d time.Duration) { mediaio.Timeout = d }(mediaio.Timeout)
	mediaio.Timeout = time.Millisecond
	_, err := DecodeVideo(path, 8, 32, 8)
	require.ErrorContains(t, err, "timed out")
	require.ErrorContains(t, err, path)
}

func TestVideoDataset(t *testing.T) {
	requireFFmpeg(t)
	dir := t.TempDir()
	g := newVideoGen(t, func(c *VideoConfig) { c.Frames = 4 })
	require.NoError(t, WriteSyntheticDataset(dir, g, 5, 42, 8))
	caps := filepath.Join(dir, "captions.jsonl")
	b, err := os.ReadFile(caps)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 5)
	for i, l := range lines {
		var rec VideoText
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		require.Equal(t, filepath.ToSlash(filepath.Join("videos", []string{"000000", "000001", "000002", "000003", "000004"}[i]+".mp4")), rec.Video)
		require.Equal(t, g.Sample(NewRand(VideoSeed(42, i))).Caption, rec.Caption)
	}

	videos, skipped, err := LoadVideoDataset(caps, 8, 32, 4, false)
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, videos, 5)
	for i, v := range videos {
		want := g.Sample(NewRand(VideoSeed(42, i)))
		require.Equal(t, want.Caption, v.Caption)
		require.Equal(t, filepath.Join(dir, "videos", filepath.Base(v.Source)), v.Source)
		require.Less(t, meanAbsDiff(want.Frames, v.Frames), 0.08)
	}

	// A bad video: an error naming the line and the file, or skipped with skipBad.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "videos", "bad.mp4"), []byte("garbage"), 0o644))
	withBad := filepath.Join(dir, "with-bad.jsonl")
	require.NoError(t, os.WriteFile(withBad, []byte(lines[0]+"\n\n"+lines[1]+"\n"+
		`{"video": "videos/bad.mp4", "caption": "broken"}`+"\n"+
		`{"video": "videos/missing.mp4", "caption": "gone"}`+"\n"+lines[2]+"\n"), 0o644))
	_, _, err = LoadVideoDataset(withBad, 8, 32, 4, false)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "with-bad.jsonl:4: video "+filepath.Join(dir, "videos", "bad.mp4"))
	videos, skipped, err = LoadVideoDataset(withBad, 8, 32, 4, true)
	require.NoError(t, err)
	require.Equal(t, 2, skipped)
	require.Len(t, videos, 3)
	require.Equal(t, []string{"000000.mp4", "000001.mp4", "000002.mp4"},
		[]string{filepath.Base(videos[0].Source), filepath.Base(videos[1].Source), filepath.Base(videos[2].Source)})

	// Bad lines are errors FILE:LINE even with skipBad.
	for content, want := range map[string]string{
		lines[0] + "\n" + `{"video": "videos/000001.mp4", "caption": ` + "\n": "bad.jsonl:2: invalid JSON",
		`{"caption": "no video"}` + "\n":                                      `bad.jsonl:1: missing field "video"`,
		`{"video": "videos/000001.mp4", "caption": ""}` + "\n":                `bad.jsonl:1: empty field "caption"`,
		"\n\n": "bad.jsonl: no videos",
	} {
		bad := filepath.Join(dir, "bad.jsonl")
		require.NoError(t, os.WriteFile(bad, []byte(content), 0o644))
		_, _, err := LoadVideoDataset(bad, 8, 32, 4, true)
		require.ErrorContains(t, err, want)
	}
	_, _, err = LoadVideoDataset(filepath.Join(dir, "missing.jsonl"), 8, 32, 4, true)
	require.ErrorContains(t, err, "missing.jsonl")
	onlyBad := filepath.Join(dir, "only-bad.jsonl")
	require.NoError(t, os.WriteFile(onlyBad, []byte(`{"video": "videos/bad.mp4", "caption": "broken"}`+"\n"), 0o644))
	_, skipped, err = LoadVideoDataset(onlyBad, 8, 32, 4, true)
	require.ErrorContains(t, err, "no video could be decoded")
	require.Equal(t, 1, skipped)
}
