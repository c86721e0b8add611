package lerobot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reelml/reel/mediaio"
)

// Decoding several episodes in one ffmpeg run. Starting ffmpeg costs about as much CPU as
// decoding a 50-frame episode at a policy's image size (it loads every codec library), so a
// loader that ran one ffmpeg per episode would spend half its time starting decoders. A group
// of episodes is instead decoded by one process: each episode is an input of its own (seeked to
// its time range, as decodeVideoAt seeks), with its own filter chain and its own raw-video
// output on a pipe of its own, so the episodes need not be neighbours in the file, nor in the
// same file. This is LeRobot's decoder reuse (huggingface/lerobot pull request 3406 keeps
// decoders alive across the samples of a DataLoader worker) in the form an external ffmpeg
// allows.

// videoSegment is one episode of a group: the frames of path at stamps, delivered to sink as
// decodeVideoAt delivers them.
type videoSegment struct {
	path   string
	stamps []float64
	sink   func(k int, rgb []uint8, w, h int) error
}

// segmentResult is what decoding one segment of a group gave.
type segmentResult struct {
	frames, bytes int64 // read out of ffmpeg
	err           error // nil when every stamp was served
}

var showinfoID = regexp.MustCompile(`\[showinfo@e(\d+) @ `)

// decodeVideoGroup decodes the segments in one ffmpeg run, every segment fitted by fit, and
// returns each segment's result. A segment whose result has an error may have been partly
// served; its caller decodes it again alone (decodeVideoAt), which names the problem precisely.
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
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info", "-copyts"}
	var graph []string
	total := 0
	for k, s := range segs {
		if len(s.stamps) == 0 {
			return failAll(fmt.Errorf("segment %d has no frames", k))
		}
		if st, err := os.Stat(s.path); err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			return failAll(fmt.Errorf("video %s is not a readable file", s.path))
		}
		total += len(s.stamps)
		start, end := s.stamps[0]-half, s.stamps[len(s.stamps)-1]+half
		if start > 0 {
			args = append(args, "-ss", strconv.FormatFloat(start, 'f', 6, 64))
		}
		// One decoding thread per input: the loader runs several groups at once, and
		// ffmpeg's frame threads would only add their overhead (about a sixth more CPU).
		args = append(args, "-threads", "1", "-to", strconv.FormatFloat(end, 'f', 6, 64), "-i", "file:"+s.path)
		chain := fmt.Sprintf("[%d:v:0]showinfo@e%d=checksum=0", k, k)
		if fit.filter != "" {
			chain += "," + fit.filter
		}
		graph = append(graph, chain+fmt.Sprintf("[o%d]", k))
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))
	readers := make([]*os.File, len(segs))
	var writers []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for k := range segs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers)
			closeAll(writers)
			return failAll(err)
		}
		readers[k] = r
		writers = append(writers, w)
		args = append(args, "-map", fmt.Sprintf("[o%d]", k), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24",
			fmt.Sprintf("pipe:%d", 3+k))
	}
	timeout := mediaio.Timeout + time.Duration(total)*100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = writers
	stderr, err := cmd.StderrPipe()
	if err != nil {
		closeAll(readers)
		closeAll(writers)
		return failAll(err)
	}
	if err := cmd.Start(); err != nil {
		closeAll(readers)
		closeAll(writers)
		return failAll(fmt.Errorf("ffmpeg: %v", err))
	}
	closeAll(writers) // the child holds them now: a reader sees EOF when ffmpeg ends

	type info struct {
		pts  int64
		w, h int
	}
	type base struct{ num, den int64 }
	infos := make([]chan info, len(segs))
	bases := make([]chan base, len(segs))
	for k := range segs {
		infos[k] = make(chan info, 4096)
		bases[k] = make(chan base, 1)
	}
	go func() {
		defer func() {
			for k := range segs {
				close(infos[k])
			}
		}()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := make([]bool, len(segs))
		for sc.Scan() {
			line := sc.Text()
			m := showinfoID.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			k, err := strconv.Atoi(m[1])
			if err != nil || k < 0 || k >= len(segs) {
				continue
			}
			if b := showinfoBase.FindStringSubmatch(line); b != nil {
				if !seen[k] {
					n, _ := strconv.ParseInt(b[1], 10, 64)
					d, _ := strconv.ParseInt(b[2], 10, 64)
					bases[k] <- base{n, d}
					seen[k] = true
				}
				continue
			}
			if f := showinfoFrame.FindStringSubmatch(line); f != nil {
				pts, _ := strconv.ParseInt(f[1], 10, 64)
				w, _ := strconv.Atoi(f[2])
				h, _ := strconv.Atoi(f[3])
				infos[k] <- info{pts, w, h}
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	left := len(segs)
	for k, s := range segs {
		wg.Go(func() {
			r := &res[k]
			defer func() {
				mu.Lock()
				left--
				if left == 0 || r.err != nil {
					cancel() // every segment served, or one failed: stop decoding
				}
				mu.Unlock()
				go io.Copy(io.Discard, readers[k]) //nolint:errcheck // unblock ffmpeg until it exits
				for range infos[k] {               // and its log
				}
			}()
			var b base
			next := 0
			frame := []uint8(nil)
			for inf := range infos[k] {
				if b.den == 0 {
					select {
					case b = <-bases[k]:
					default:
					}
				}
				if b.num == 0 || b.den == 0 || inf.w < 1 || inf.h < 1 {
					r.err = fmt.Errorf("video %s: ffmpeg reported no time base or frame size", s.path)
					return
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
				if _, err := io.ReadFull(readers[k], frame); err != nil {
					r.err = fmt.Errorf("video %s: ffmpeg ended early", s.path)
					return
				}
				r.frames++
				r.bytes += int64(need)
				ts := float64(inf.pts) * float64(b.num) / float64(b.den)
				if s.stamps[next] < ts-ToleranceS {
					r.err = fmt.Errorf("video %s: no frame within %g s of %.6f s", s.path, ToleranceS, s.stamps[next])
					return
				}
				for next < len(s.stamps) && math.Abs(s.stamps[next]-ts) <= ToleranceS {
					if err := s.sink(next, frame, inf.w, inf.h); err != nil {
						r.err = err
						return
					}
					next++
				}
				if next == len(s.stamps) {
					return
				}
			}
			r.err = fmt.Errorf("video %s: %d of %d frames decoded", s.path, next, len(s.stamps))
		})
	}
	wg.Wait()
	_ = cmd.Wait() // killed once every segment was served; failures are per segment above
	closeAll(readers)
	return res
}
