package lerobot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reelml/reel/mediaio"
)

// Decoding several episodes in one ffmpeg run. Starting ffmpeg costs about as much CPU as
// decoding a 50-frame episode at a policy's image size (it loads every codec library), and
// opening a decoder and a scaler for each episode a tenth of that again, so a loader that ran
// one ffmpeg per episode would spend half its time starting decoders. A group of episodes is
// instead decoded by one process through ffmpeg's concat demuxer: each episode a segment of
// the list with its time range as in and out points (the episodes need not be neighbours in the
// file, nor in the same file), one decoder and one filter chain for all of them, the frames
// outside a segment's range that the seek to its keyframe yields dropped by
// select=concatdec_select. This is LeRobot's decoder reuse (huggingface/lerobot pull request
// 3406 keeps decoders alive across the samples of a DataLoader worker) in the form an external
// ffmpeg allows.

// videoSegment is one episode of a group: the frames of path at stamps, delivered to sink as
// decodeVideoAt delivers them.
type videoSegment struct {
	path   string
	stamps []float64
	sink   func(k int, rgb []uint8, w, h int) error
	// dst, when set, returns where stamp k's frame is stored at the fitted size: the frame is
	// read out of ffmpeg straight into it (sink then sees rgb aliasing dst(k)), saving a copy of
	// every frame.
	dst func(k int) []uint8
}

// segmentResult is what decoding one segment of a group gave.
type segmentResult struct {
	frames, bytes int64 // read out of ffmpeg
	err           error // nil when every stamp was served
}

// decodeVideoGroup decodes the segments in one ffmpeg run, every segment fitted by fit, and
// returns each segment's result. A segment whose result has an error may have been partly
// served; its caller decodes it again alone (decodeVideoAt), which names the problem precisely.
//
// The concat demuxer lays the segments end to end: with -copyts a frame of segment k at time t
// of its file comes out at offset_k + t − in_k, offset_k being the sum of the earlier segments'
// durations (out − in), which is how each frame is traced back to its segment and timestamp.
func decodeVideoGroup(segs []videoSegment, fps float64, fit videoFit) []segmentResult {
	res := make([]segmentResult, len(segs))
	failAll := func(err error) []segmentResult {
		for k := range res {
			res[k].err = err
		}
		return res
	}
	if len(segs) == 0 {
		return res
	}
	bin, err := mediaio.FFmpeg()
	if err != nil {
		return failAll(err)
	}
	half := 0.5 / fps
	in, offset := make([]float64, len(segs)), make([]float64, len(segs)+1)
	var list strings.Builder
	total := 0
	for k, s := range segs {
		if len(s.stamps) == 0 {
			return failAll(fmt.Errorf("segment %d has no frames", k))
		}
		abs, err := filepath.Abs(s.path)
		if err != nil {
			return failAll(err)
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			return failAll(fmt.Errorf("video %s is not a readable file", s.path))
		}
		total += len(s.stamps)
		in[k] = max(0, s.stamps[0]-half)
		out := s.stamps[len(s.stamps)-1] + half
		offset[k+1] = offset[k] + (out - in[k])
		fmt.Fprintf(&list, "file '%s'\ninpoint %s\noutpoint %s\n", strings.ReplaceAll("file:"+abs, "'", `'\''`),
			strconv.FormatFloat(in[k], 'f', 6, 64), strconv.FormatFloat(out, 'f', 6, 64))
	}
	vf := "select=concatdec_select,showinfo=checksum=0"
	if fit.filter != "" {
		vf += "," + fit.filter
	}
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info", "-copyts",
		"-threads", "1", "-f", "concat", "-safe", "0", "-segment_time_metadata", "1", "-protocol_whitelist", "file,pipe",
		"-i", "pipe:3", "-map", "0:v:0", "-vf", vf, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"}
	listR, listW, err := os.Pipe()
	if err != nil {
		return failAll(err)
	}
	go func() {
		_, _ = io.WriteString(listW, list.String())
		listW.Close()
	}()
	defer listR.Close()
	timeout := mediaio.Timeout + time.Duration(total)*100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = []*os.File{listR}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return failAll(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return failAll(err)
	}
	if err := cmd.Start(); err != nil {
		return failAll(fmt.Errorf("ffmpeg: %w", err))
	}
	type info struct {
		pts  int64
		w, h int
	}
	infos := make(chan info, 4096)
	var num, den atomic.Int64
	go func() {
		defer close(infos)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "Parsed_showinfo") {
				continue
			}
			if m := showinfoBase.FindStringSubmatch(line); m != nil && num.Load() == 0 {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				d, _ := strconv.ParseInt(m[2], 10, 64)
				num.Store(n)
				den.Store(d)
				continue
			}
			if m := showinfoFrame.FindStringSubmatch(line); m != nil {
				pts, _ := strconv.ParseInt(m[1], 10, 64)
				w, _ := strconv.Atoi(m[2])
				h, _ := strconv.Atoi(m[3])
				infos <- info{pts, w, h}
			}
		}
	}()
	k, next := 0, 0 // the segment being served and its next stamp
	var frame []uint8
	var failure error
	for inf := range infos {
		if num.Load() == 0 || den.Load() == 0 || inf.w < 1 || inf.h < 1 {
			failure = errors.New("ffmpeg reported no time base or frame size")
			break
		}
		ow, oh := inf.w, inf.h
		if fit.filter != "" {
			ow, oh = fit.w, fit.h
		}
		need := ow * oh * 3
		if cap(frame) < need {
			frame = make([]uint8, need)
		}
		frame = frame[:need]
		ts := float64(inf.pts) * float64(num.Load()) / float64(den.Load())
		for k < len(segs) && ts >= offset[k+1]-ToleranceS/2 { // past segment k's end
			if next < len(segs[k].stamps) && res[k].err == nil {
				res[k].err = fmt.Errorf("video %s: %d of %d frames decoded", segs[k].path, next, len(segs[k].stamps))
			}
			k, next = k+1, 0
		}
		if k == len(segs) {
			break
		}
		r, s := &res[k], segs[k]
		t := ts - offset[k] + in[k] // the frame's time in its file
		serve := r.err == nil && next < len(s.stamps)
		if serve && s.stamps[next] < t-ToleranceS {
			r.err = fmt.Errorf("video %s: no frame within %g s of %.6f s", s.path, ToleranceS, s.stamps[next])
			serve = false
		}
		buf := frame
		if serve && s.dst != nil && math.Abs(s.stamps[next]-t) <= ToleranceS {
			if d := s.dst(next); len(d) == need {
				buf = d
			}
		}
		if _, err := io.ReadFull(stdout, buf); err != nil {
			break // the process ended early: the segments not served fail below
		}
		r.frames++
		r.bytes += int64(need)
		if !serve {
			continue
		}
		for next < len(s.stamps) && math.Abs(s.stamps[next]-t) <= ToleranceS {
			if err := s.sink(next, buf, inf.w, inf.h); err != nil {
				r.err = err
				break
			}
			next++
		}
		if k == len(segs)-1 && next == len(s.stamps) {
			break // every segment served
		}
	}
	if k < len(segs) && next < len(segs[k].stamps) && res[k].err == nil {
		res[k].err = fmt.Errorf("video %s: %d of %d frames decoded", segs[k].path, next, len(segs[k].stamps))
	}
	for j := k + 1; j < len(segs); j++ {
		if res[j].err == nil {
			res[j].err = fmt.Errorf("video %s: not decoded", segs[j].path)
		}
	}
	if failure != nil {
		for j := range res {
			if res[j].err == nil && j >= k {
				res[j].err = failure
			}
		}
	}
	cancel()
	go io.Copy(io.Discard, stdout) //nolint:errcheck // unblock the process until it exits
	for range infos {              // drain until ffmpeg closes its stderr
	}
	_ = cmd.Wait()
	return res
}
