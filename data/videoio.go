package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reelml/reel/internal/rng"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/mediaio"
)

// Real video goes through the ffmpeg program (package mediaio): decoding pipes raw rgb24 frames
// out of it, encoding pipes them in.

func checkFPS(fn string, fps float64) error {
	if !(fps > 0) || fps > MaxFPS {
		return fmt.Errorf("data.%s: fps %g is not a frame rate in (0, %g]", fn, fps, float64(MaxFPS))
	}
	return nil
}

// MaxFPS bounds every frame rate reel reads or writes (mediaio.MaxFPS).
const MaxFPS = mediaio.MaxFPS

// DecodeVideo decodes the first video stream of the file at path with ffmpeg, resampled to fps
// frames per second and stretched to size×size, into a Video of exactly frames frames: a file
// shorter than that is padded by repeating its last frame. Frames are rgb24 scaled to [0,1];
// Masks and Scene are nil, Source is path. Each ffmpeg run is limited to 60 s. A missing,
// empty, corrupt or truncated file gives a one-line error naming it, e.g.
// `video clips/a.mp4: ffmpeg: moov atom not found`.
func DecodeVideo(path string, fps float64, size, frames int) (Video, error) {
	if err := checkFPS("DecodeVideo", fps); err != nil {
		return Video{}, err
	}
	if size < 1 || size > 4096 {
		return Video{}, fmt.Errorf("data.DecodeVideo: size %d out of range [1, 4096]", size)
	}
	if frames < 1 || frames > 1<<16 {
		return Video{}, fmt.Errorf("data.DecodeVideo: frames %d out of range [1, 65536]", frames)
	}
	fail := func(err error) (Video, error) { return Video{}, fmt.Errorf("video %s: %w", path, err) }
	st, err := safeio.Stat(path) // a FIFO or a device would block ffmpeg or never end
	switch {
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fail(err)
	case st.IsDir():
		return fail(errors.New("is a directory"))
	case st.Size() == 0:
		return fail(errors.New("empty file"))
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		return Video{}, err
	}
	frameBytes := size * size * 3
	var out bytes.Buffer
	out.Grow(frames * frameBytes)
	input := "file:" + path // never a protocol or an option, whatever the name
	args := []string{
		"-nostdin", "-v", "error", "-i", input, "-map", "0:v:0",
		"-vf", fmt.Sprintf("fps=%s,scale=%d:%d", mediaio.FormatFPS(fps), size, size),
		"-frames:v", strconv.Itoa(frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
	}
	if err := mediaio.Run(args, nil, &out, input); err != nil {
		return fail(err)
	}
	raw := out.Bytes()
	got := min(frames, len(raw)/frameBytes)
	if got == 0 {
		return fail(errors.New("no video frames decoded"))
	}
	v := Video{T: frames, Size: size, Frames: make([]float32, frames*frameBytes), Source: path}
	for i, b := range raw[:got*frameBytes] {
		v.Frames[i] = float32(b) / 255
	}
	last := v.Frames[(got-1)*frameBytes : got*frameBytes]
	for t := got; t < frames; t++ {
		copy(v.Frames[t*frameBytes:], last)
	}
	return v, nil
}

// EncodeVideo writes v as an mp4 file at path, fps frames per second: H.264 (libx264, crf 15)
// in yuv420p, or yuv444p for odd sizes, which 4:2:0 cannot hold; MPEG-4 part 2 (mpeg4 -q:v 2)
// if ffmpeg has no libx264. Frame values are clamped to [0,1] and rounded to 8 bits. The file
// is written next to path under a temporary name and renamed, so path is never left half
// written. Like every ffmpeg run here, encoding is limited to 60 s.
func EncodeVideo(path string, v Video, fps float64) error {
	return encodeVideo(path, v, fps, mediaio.HasEncoder("libx264"))
}

// encodeVideo is EncodeVideo with libx264 (x264 true) or mpeg4.
func encodeVideo(path string, v Video, fps float64, x264 bool) error {
	if err := checkFPS("EncodeVideo", fps); err != nil {
		return err
	}
	if v.T < 1 || v.Size < 1 || len(v.Frames) != v.T*v.Size*v.Size*3 {
		return fmt.Errorf("data.EncodeVideo %s: video has %d values, want T×Size×Size×3 with positive T = %d, Size = %d",
			path, len(v.Frames), v.T, v.Size)
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		return err
	}
	raw := make([]byte, len(v.Frames))
	for i, f := range v.Frames {
		raw[i] = byte(math.Round(float64(clamp01(f)) * 255))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("video %s: %w", path, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // after a successful rename, a no-op
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return fmt.Errorf("video %s: %w", path, err)
	}
	codec := []string{"-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"}
	if x264 {
		pix := "yuv420p"
		if v.Size%2 == 1 {
			pix = "yuv444p"
		}
		codec = []string{"-c:v", "libx264", "-preset", "medium", "-crf", "15", "-pix_fmt", pix}
	}
	size := fmt.Sprintf("%dx%d", v.Size, v.Size)
	args := []string{
		"-y", "-v", "error",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-r", mediaio.FormatFPS(fps), "-i", "pipe:0",
	}
	args = append(args, codec...)
	args = append(args, "-an", "-f", "mp4", "file:"+tmpName)
	if err := mediaio.Run(args, bytes.NewReader(raw), nil, ""); err != nil {
		return fmt.Errorf("video %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("video %s: %w", path, err)
	}
	return nil
}

// VideoText is one line of a video-caption dataset, e.g.
//
//	{"video": "videos/000001.mp4", "caption": "a red circle moves left"}
//
// with the video path relative to the JSONL file's directory (or absolute).
type VideoText struct {
	Video   string `json:"video"`
	Caption string `json:"caption"`
}

// LoadVideoDataset reads a video-caption JSONL file (one VideoText per line, blank lines
// skipped) and decodes every video with DecodeVideo(fps, size, frames), in parallel (at most
// GOMAXPROCS ffmpeg processes), returning them in file order with their captions. A line that
// is not valid JSON or lacks a non-empty "video" or "caption" is an error `FILE:LINE: ...`. A
// video that cannot be decoded is an error `FILE:LINE: video PATH: ...` (the first one in file
// order), or, with skipBad, is silently left out and counted in skipped. It is an error if no
// video is left.
func LoadVideoDataset(captionsJSONL string, fps float64, size, frames int, skipBad bool) (videos []Video, skipped int, err error) {
	f, err := safeio.Open(captionsJSONL)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	type entry struct {
		line int
		rec  VideoText
		path string
	}
	var entries []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	dir := filepath.Dir(captionsJSONL)
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec struct {
			Video   *string `json:"video"`
			Caption *string `json:"caption"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: invalid JSON: %w", captionsJSONL, line, err)
		}
		for _, fld := range []struct {
			name string
			v    *string
		}{{"video", rec.Video}, {"caption", rec.Caption}} {
			if fld.v == nil {
				return nil, 0, fmt.Errorf("%s:%d: missing field %q", captionsJSONL, line, fld.name)
			}
			if strings.TrimSpace(*fld.v) == "" {
				return nil, 0, fmt.Errorf("%s:%d: empty field %q", captionsJSONL, line, fld.name)
			}
		}
		p := filepath.FromSlash(*rec.Video)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		entries = append(entries, entry{line, VideoText{*rec.Video, *rec.Caption}, p})
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s:%d: %w", captionsJSONL, line+1, err)
	}
	if len(entries) == 0 {
		return nil, 0, fmt.Errorf("%s: no videos", captionsJSONL)
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		return nil, 0, err
	}

	// Decode in parallel. Entries are handed out in file order and, without skipBad, none is
	// started after a failure, so every entry before a failing one has been decoded: the
	// reported error is the first bad video in file order.
	decoded := make([]Video, len(entries))
	errs := make([]error, len(entries))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(entries)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(entries) || (!skipBad && failed.Load()) {
					return
				}
				v, err := DecodeVideo(entries[i].path, fps, size, frames)
				if err != nil {
					errs[i] = err
					failed.Store(true)
					continue
				}
				v.Caption = entries[i].rec.Caption
				decoded[i] = v
			}
		})
	}
	wg.Wait()
	for i, e := range entries {
		switch {
		case errs[i] != nil && !skipBad:
			return nil, 0, fmt.Errorf("%s:%d: %w", captionsJSONL, e.line, errs[i])
		case errs[i] != nil:
			skipped++
		case decoded[i].Frames != nil:
			videos = append(videos, decoded[i])
		}
	}
	if len(videos) == 0 {
		return nil, skipped, fmt.Errorf("%s: no video could be decoded (%d skipped)", captionsJSONL, skipped)
	}
	return videos, skipped, nil
}

// VideoSeed is the seed of video i of a synthetic dataset written with seed: video i is
// g.Sample(NewRand(VideoSeed(seed, i))). Datasets with different seeds share no video seeds
// (short of a 64-bit hash collision).
func VideoSeed(seed uint64, i int) uint64 {
	return rng.Mix64(rng.Mix64(seed) ^ uint64(i))
}

// WriteSyntheticVideos is WriteSyntheticDataset of n videos of the default video config
// (DefaultVideoConfig) at frames frames of size×size; a size or frame count NewVideoGenerator
// refuses is a usage.Error.
func WriteSyntheticVideos(dir string, frames, size, n int, seed uint64, fps float64) error {
	cfg := DefaultVideoConfig()
	cfg.Frames, cfg.Size = frames, size
	g, err := NewVideoGenerator(cfg)
	if err != nil {
		return &usage.Error{Err: err}
	}
	return WriteSyntheticDataset(dir, g, n, seed, fps)
}

// WriteSyntheticDataset writes n videos sampled by g as DIR/videos/%06d.mp4 (i = 0..n-1,
// video i drawn from NewRand(VideoSeed(seed, i))) encoded with EncodeVideo at fps, and their
// captions as DIR/captions.jsonl (one VideoText per line, paths relative to DIR), which
// LoadVideoDataset reads back. Videos are encoded in parallel (at most GOMAXPROCS ffmpeg
// processes); captions.jsonl is written last, under a temporary name then renamed.
func WriteSyntheticDataset(dir string, g *VideoGenerator, n int, seed uint64, fps float64) error {
	if n < 1 {
		return fmt.Errorf("data.WriteSyntheticDataset: n = %d must be positive", n)
	}
	if err := checkFPS("WriteSyntheticDataset", fps); err != nil {
		return err
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "videos"), 0o755); err != nil {
		return err
	}
	lines := make([][]byte, n)
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() {
					return
				}
				v := g.Sample(NewRand(VideoSeed(seed, i)))
				rel := fmt.Sprintf("videos/%06d.mp4", i)
				if err := EncodeVideo(filepath.Join(dir, filepath.FromSlash(rel)), v, fps); err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				lines[i], errs[i] = json.Marshal(VideoText{Video: rel, Caption: v.Caption})
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // the first failure in index order
		if err != nil {
			return err
		}
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, "captions.jsonl")
	tmp, err := os.CreateTemp(dir, ".captions.jsonl.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
