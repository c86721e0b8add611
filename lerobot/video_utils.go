package lerobot

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/mediaio"
)

// Video encoding as LeRobot does it (huggingface/lerobot src/lerobot/configs/video.py
// VideoEncoderConfig: libsvtav1, yuv420p, g=2, crf=30, preset 12, fast-decode 0), one mp4
// segment per episode and camera, then joined into the dataset's files by ffmpeg's concat
// demuxer without re-encoding (as LeRobot's concatenate_video_files remuxes them).

// Video codec choices of WriterConfig.Codec.
const (
	CodecAuto = "auto" // AV1 when ffmpeg has libsvtav1 and the frames allow it, else H.264
	CodecAV1  = "av1"  // libsvtav1
	CodecH264 = "h264" // libx264
)

// svtMinSide is SVT-AV1's smallest frame side.
const svtMinSide = 64

// lrCodec is how one camera's frames are encoded.
type lrCodec struct {
	name   string // "av1", "h264" or "mpeg4" (the info.json video.codec)
	pixFmt string
	args   []string
	info   map[string]any // encoder settings recorded in the feature's info
}

// chooseCodec picks the encoder of a w×h camera for the requested codec.
func chooseCodec(want string, w, h int) (lrCodec, error) {
	even := w%2 == 0 && h%2 == 0
	av1OK := mediaio.HasEncoder("libsvtav1") && even && w >= svtMinSide && h >= svtMinSide
	switch want {
	case "", CodecAuto:
		if av1OK {
			want = CodecAV1
		} else {
			want = CodecH264
		}
	case CodecAV1:
		if !av1OK {
			if !mediaio.HasEncoder("libsvtav1") {
				return lrCodec{}, fmt.Errorf("codec av1: ffmpeg has no libsvtav1 encoder")
			}
			return lrCodec{}, fmt.Errorf("codec av1: SVT-AV1 needs even frame sides of at least %d pixels, the camera is %d×%d", svtMinSide, w, h)
		}
	case CodecH264:
	default:
		return lrCodec{}, fmt.Errorf("codec %q is not one of auto, av1, h264", want)
	}
	if want == CodecAV1 {
		return lrCodec{name: "av1", pixFmt: "yuv420p",
			args: []string{"-c:v", "libsvtav1", "-g", "2", "-crf", "30", "-preset", "12", "-svtav1-params", "fast-decode=0", "-pix_fmt", "yuv420p"},
			info: map[string]any{"video.g": 2, "video.crf": 30, "video.preset": 12, "video.fast_decode": 0}}, nil
	}
	pix := "yuv420p"
	if !even {
		pix = "yuv444p" // 4:2:0 cannot hold odd sides
	}
	if !mediaio.HasEncoder("libx264") {
		return lrCodec{name: "mpeg4", pixFmt: pix, args: []string{"-c:v", "mpeg4", "-q:v", "2", "-g", "2", "-pix_fmt", "yuv420p"},
			info: map[string]any{"video.g": 2}}, nil
	}
	// No B-frames: segments are joined by stream copy, which needs no reordering delay.
	return lrCodec{name: "h264", pixFmt: pix,
		args: []string{"-c:v", "libx264", "-g", "2", "-crf", "30", "-bf", "0", "-pix_fmt", pix},
		info: map[string]any{"video.g": 2, "video.crf": 30}}, nil
}

// encodeSegment writes t frames of w×h rgb24 pix as an mp4 at path, fps frames per second.
func encodeSegment(path string, pix []uint8, w, h, fps int, c lrCodec) error {
	if _, err := mediaio.FFmpeg(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	args := []string{"-y", "-nostdin", "-hide_banner", "-v", "error",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", w, h), "-r", strconv.Itoa(fps), "-i", "pipe:0"}
	args = append(args, c.args...)
	args = append(args, "-an", "-f", "mp4", "file:"+path)
	if err := mediaio.Run(args, bytes.NewReader(pix), nil, ""); err != nil {
		return fmt.Errorf("video %s: %w", path, err)
	}
	return nil
}

// concatVideos joins the mp4 files srcs (same codec, size and frame rate) into dst by stream
// copy. A single source is copied.
func concatVideos(dst string, srcs []string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if len(srcs) == 1 {
		in, err := safeio.Open(srcs[0])
		if err != nil {
			return err
		}
		defer in.Close()
		return atomicfile.Write(dst, func(w *bufio.Writer) error { _, err := io.Copy(w, in); return err })
	}
	list := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".concat.txt")
	var b strings.Builder
	for _, s := range srcs {
		abs, err := filepath.Abs(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "file '%s'\n", strings.ReplaceAll(abs, "'", `'\''`))
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return err
	}
	defer os.Remove(list)
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp.mp4")
	defer os.Remove(tmp)
	args := []string{"-y", "-nostdin", "-hide_banner", "-v", "error", "-f", "concat", "-safe", "0", "-i", "file:" + list,
		"-map", "0:v:0", "-c", "copy", "-f", "mp4", "file:" + tmp}
	if err := mediaio.Run(args, nil, nil, ""); err != nil {
		return fmt.Errorf("video %s: joining %d files: %w", dst, len(srcs), err)
	}
	return os.Rename(tmp, dst)
}

// videoFrames returns the number of frames of the first video stream of path, counted from
// its packets (no decoding).
func videoFrames(path string) (int, error) {
	probe, err := mediaio.FFprobe()
	if err != nil {
		return 0, err
	}
	out, err := mediaio.RunTool(probe, "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", "file:"+path)
	if err != nil {
		return 0, fmt.Errorf("video %s: ffprobe: %w", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[0]))
	if err != nil {
		return 0, fmt.Errorf("video %s: ffprobe: no packet count in %q", path, out)
	}
	return n, nil
}

// frameAligned returns ts·fps when it is a whole number of frames (within 1e-6).
func frameAligned(ts, fps float64) (int64, bool) {
	f := ts * fps
	r := math.Round(f)
	return int64(r), math.Abs(f-r) < 1e-6
}
