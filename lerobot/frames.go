package lerobot

import (
	"bufio"
	"container/list"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // image features stored as JPEG
	_ "image/png"  // image features stored as PNG
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/mediaio"
	"github.com/reelml/reel/policy"
)

// Frames returns the frames of camera at the given steps of episode i, each fitted to w×h
// pixels with a resize mode (policy.ResizePad, ResizeCrop, ResizeStretch; "" is pad) as
// policy.Resize fits them.
//
// The first request for an (episode, camera, size, mode) decodes the episode's whole stream
// once — a video by one ffmpeg run over its time range in the (possibly shared) mp4 file, frames
// located by the parquet timestamps within ToleranceS, each fitted to w×h inside ffmpeg
// (ffmpegFit) so that only fitted frames leave it — and keeps the result as 8-bit pixels in the
// dataset's byte-bounded LRU cache; later requests read the cache. Concurrent requests for the
// same episode wait for one decode.
func (d *Dataset) Frames(i int, camera string, steps []int, w, h int, mode string) ([]policy.Image, error) {
	e, err := d.decoded(i, camera, w, h, mode)
	if err != nil {
		return nil, err
	}
	out := make([]policy.Image, len(steps))
	for k, t := range steps {
		if t < 0 || t >= e.t {
			return nil, fmt.Errorf("lerobot dataset %s: episode %d has %d frames, step %d is out of range", d.dir, i, e.t, t)
		}
		out[k] = e.image(t)
	}
	return out, nil
}

// Prefetch decodes episode i's frames of camera at w×h into the cache (see Frames), unless they
// are there already.
func (d *Dataset) Prefetch(i int, camera string, w, h int, mode string) error {
	_, err := d.decoded(i, camera, w, h, mode)
	return err
}

// SetFrameCacheBytes changes the bound of the decoded-frame cache.
func (d *Dataset) SetFrameCacheBytes(n int64) { d.cache.setMax(n) }

// FrameCacheStats reports the cache's use: bytes held, decodes done, requests served from it.
func (d *Dataset) FrameCacheStats() (bytes int64, decodes, hits int64) {
	return d.cache.stats()
}

// decoded returns the cache entry of (episode, camera, size, mode), decoding it if needed.
func (d *Dataset) decoded(i int, camera string, w, h int, mode string) (*frameEntry, error) {
	if err := d.checkEpisodeIndex(i); err != nil {
		return nil, err
	}
	c := d.camIndex(camera)
	if c < 0 {
		return nil, fmt.Errorf("lerobot dataset %s: no camera %q (cameras: %q)", d.dir, camera, d.Cameras())
	}
	if w < 1 || h < 1 || w > 8192 || h > 8192 {
		return nil, fmt.Errorf("lerobot dataset %s: frame size %d×%d out of range", d.dir, w, h)
	}
	mode, err := policy.ParseResizeMode(mode)
	if err != nil {
		return nil, err
	}
	key := frameKey{ep: i, cam: c, w: w, h: h, mode: mode}
	return d.cache.get(key, func() ([]uint8, int, error) { return d.decodeEpisode(i, c, w, h, mode) })
}

// decodeEpisode decodes all frames of episode i's camera c, resized to w×h.
//
// A video is fitted to w×h inside the ffmpeg process that decodes it (ffmpegFit: swscale's
// bilinear filter, the same triangle filter policy.Resize computes), so only w×h×3 bytes a
// frame leave ffmpeg and Go does no per-pixel work; with Options.ResizeInGo, or a crop that
// ffmpeg cannot cut exactly, frames leave ffmpeg at their native size and policy.Resize fits
// them (the slower path, kept as the reference the tests compare with).
func (d *Dataset) decodeEpisode(i, c, w, h int, mode string) ([]uint8, int, error) {
	p, err := d.prepareEpisode(i, c, w, h, mode)
	if err != nil {
		return nil, 0, err
	}
	cam := d.cams[c]
	if !cam.video {
		return p.out, p.n, d.readImageFrames(i, cam, p.n, p.seg.sink)
	}
	d.decodeRuns.Add(1)
	nf, nb, err := decodeVideoAt(p.seg.path, p.seg.stamps, d.info.FPS, p.fit, p.seg.sink)
	d.decodedFrames.Add(nf)
	d.decodedBytes.Add(nb)
	if err != nil {
		return nil, 0, fmt.Errorf("%w (episode %d, camera %q)", err, d.episodes[i].index, cam.name)
	}
	return p.out, p.n, nil
}

// episodeDecode is the decoding of one episode's camera into its w×h 8-bit frames out.
type episodeDecode struct {
	n   int
	out []uint8
	fit videoFit     // how ffmpeg fits the frames (none: Go does, in seg.sink)
	seg videoSegment // the frames' file, timestamps and the sink storing them in out
}

// prepareEpisode returns what decoding episode i's camera c at w×h needs.
func (d *Dataset) prepareEpisode(i, c, w, h int, mode string) (*episodeDecode, error) {
	v, err := d.Vectors(i)
	if err != nil {
		return nil, err
	}
	cam := d.cams[c]
	n := v.Len()
	p := &episodeDecode{n: n, out: make([]uint8, n*w*h*3)}
	adviseHugePages(p.out) // the kernel zeroes a 2 MiB page per fault instead of 512 4 KiB ones: a third of the loader's own CPU
	checkSize := func(fw, fh int) error {
		if fw != cam.w || fh != cam.h {
			return fmt.Errorf("frames are %d×%d, but features.%s.shape says %d×%d", fw, fh, cam.key, cam.w, cam.h)
		}
		return nil
	}
	rs := newFrameResizer(w, h, mode)
	p.seg.sink = func(t int, rgb []uint8, fw, fh int) error {
		if err := checkSize(fw, fh); err != nil {
			return err
		}
		rs.resize(p.out[t*w*h*3:(t+1)*w*h*3], rgb, fw, fh)
		return nil
	}
	if !cam.video {
		return p, nil
	}
	ref := d.episodes[i].videos[c]
	p.seg.stamps = make([]float64, n)
	for t, ts := range v.Timestamp {
		p.seg.stamps[t] = ref.from + ts
	}
	p.seg.path = d.path(ref.file)
	if !d.resizeInGo && (cam.w != w || cam.h != h) {
		if f := ffmpegFit(cam.w, cam.h, w, h, mode); f != "" {
			p.fit = videoFit{filter: f, w: w, h: h}
			p.seg.dst = func(t int) []uint8 { return p.out[t*w*h*3 : (t+1)*w*h*3] }
			p.seg.sink = func(t int, rgb []uint8, fw, fh int) error {
				if err := checkSize(fw, fh); err != nil {
					return err
				}
				if dst := p.seg.dst(t); &dst[0] != &rgb[0] { // read straight into dst otherwise
					copy(dst, rgb)
				}
				return nil
			}
		}
	}
	sink := p.seg.sink
	p.seg.sink = func(t int, rgb []uint8, fw, fh int) error {
		if err := sink(t, rgb, fw, fh); err != nil {
			return fmt.Errorf("video %s: %w", p.seg.path, err)
		}
		return nil
	}
	return p, nil
}

// decodeEpisodes decodes the frames of camera c at w×h of those episodes eps that are neither
// cached nor being decoded into the cache: the videos in one ffmpeg run (decodeVideoGroup), an
// episode that fails there alone again (decodeEpisode, whose error names the problem).
func (d *Dataset) decodeEpisodes(eps []int, c, w, h int, mode string) {
	keys := make([]frameKey, len(eps))
	for k, e := range eps {
		keys[k] = frameKey{ep: e, cam: c, w: w, h: h, mode: mode}
	}
	claimed := d.cache.claim(keys)
	defer func() { // a panic must not leave a claimed entry unfilled: its waiters would hang
		if r := recover(); r != nil {
			for _, e := range claimed {
				select {
				case <-e.ready:
				default:
					d.cache.fill(e, nil, 0, fmt.Errorf("decoding episode %d: panic: %v", e.key.ep, r))
				}
			}
		}
	}()
	var group []*frameEntry
	var preps []*episodeDecode
	var segs []videoSegment
	for _, e := range claimed {
		p, err := d.prepareEpisode(e.key.ep, c, w, h, mode)
		if err != nil || !d.cams[c].video || len(claimed) == 1 {
			pix, t, err := d.decodeEpisode(e.key.ep, c, w, h, mode)
			d.cache.fill(e, pix, t, err)
			continue
		}
		group, preps, segs = append(group, e), append(preps, p), append(segs, p.seg)
	}
	if len(group) == 0 {
		return
	}
	d.decodeRuns.Add(1)
	res := decodeVideoGroup(segs, d.info.FPS, preps[0].fit)
	for k, e := range group {
		d.decodedFrames.Add(res[k].frames)
		d.decodedBytes.Add(res[k].bytes)
		if res[k].err != nil {
			pix, t, err := d.decodeEpisode(e.key.ep, c, w, h, mode)
			d.cache.fill(e, pix, t, err)
			continue
		}
		d.cache.fill(e, preps[k].out, preps[k].n, nil)
	}
}

// DecodeStats counts the video decoding a dataset has done since it was opened.
type DecodeStats struct {
	Runs   int64 // ffmpeg runs (one per episode and camera decoded)
	Frames int64 // frames read out of ffmpeg
	Bytes  int64 // bytes read out of ffmpeg (frames × their width × height × 3)
}

// DecodeStats returns the video decoding done so far.
func (d *Dataset) DecodeStats() DecodeStats {
	return DecodeStats{Runs: d.decodeRuns.Load(), Frames: d.decodedFrames.Load(), Bytes: d.decodedBytes.Load()}
}

// FFmpegFit returns the ffmpeg filter chain (for -vf) with which the loader fits a sw×sh video
// to w×h in the decoding process (mode as policy.Resize takes it), or "" when it fits the frames
// in Go instead (a crop off whole, even pixels; frames already of size w×h need no filter).
func FFmpegFit(sw, sh, w, h int, mode string) string {
	mode, err := policy.ParseResizeMode(mode)
	if err != nil || (sw == w && sh == h) {
		return ""
	}
	return ffmpegFit(sw, sh, w, h, mode)
}

// VideoFiles returns the video files of camera (absolute or as given by the dataset directory),
// each once, in episode order; none for a camera stored as images.
func (d *Dataset) VideoFiles(camera string) []string {
	c := d.camIndex(camera)
	if c < 0 || !d.cams[c].video {
		return nil
	}
	var out []string
	for _, e := range d.episodes {
		if p := d.path(e.videos[c].file); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// CameraSize returns the width and height of camera's frames (0, 0 for no such camera).
func (d *Dataset) CameraSize(camera string) (w, h int) {
	if c := d.camIndex(camera); c >= 0 {
		return d.cams[c].w, d.cams[c].h
	}
	return 0, 0
}

// videoFit is the ffmpeg filter chain that fits frames to w×h ("": frames at their size).
type videoFit struct {
	filter string
	w, h   int
}

// ffmpegFit returns the ffmpeg filter chain that fits a sw×sh video to w×h as policy.Resize
// does with mode (ParseResizeMode's names), ending in rgb24. It is swscale's bilinear scaler,
// whose downscaling filter is the triangle filter widened by the scale factor that
// policy.Resize (PIL's BILINEAR) uses, on the same pixel centres. It scales the decoded YUV
// planes and converts the result to RGB with full-resolution chroma interpolation
// (full_chroma_int) and exact rounding (accurate_rnd), where the Go path converts to RGB at the
// native size and then scales: the pixels differ by rounding and by where chroma is
// interpolated, about one level of 255 on average and at most a few tens of levels at sharp
// colour edges (TestFitInFFmpegMatchesGo). Converting to rgb24 first and scaling packed RGB
// (format=rgb24,scale=…) matches the Go path to a fiftieth of a level on average but costs
// twice the CPU of decoding alone, which is the cost this chain avoids. Pad scales into the
// centred rectangle and pads with black; crop cuts the centred source rectangle first. It
// returns "" for a crop whose source rectangle is not whole pixels at even offsets
// (policy.Resize then fits the frames in Go).
func ffmpegFit(sw, sh, w, h int, mode string) string {
	const scale = "scale=%d:%d:flags=bilinear+accurate_rnd+full_chroma_int"
	const post = ",format=rgb24" // before pad, whose offsets would be rounded to the chroma grid
	switch mode {
	case policy.ResizeStretch:
		return fmt.Sprintf(scale, w, h) + post
	case policy.ResizePad, "":
		s := math.Min(float64(w)/float64(sw), float64(h)/float64(sh))
		rw := min(w, max(1, int(math.Round(float64(sw)*s))))
		rh := min(h, max(1, int(math.Round(float64(sh)*s))))
		f := fmt.Sprintf(scale, rw, rh) + post
		if rw != w || rh != h {
			f += fmt.Sprintf(",pad=%d:%d:%d:%d:color=black", w, h, (w-rw)/2, (h-rh)/2)
		}
		return f
	case policy.ResizeCrop:
		s := math.Max(float64(w)/float64(sw), float64(h)/float64(sh))
		cw, ch := float64(w)/s, float64(h)/s
		x0, y0 := (float64(sw)-cw)/2, (float64(sh)-ch)/2
		whole := func(v float64) bool { return math.Abs(v-math.Round(v)) < 1e-9 }
		even := func(v float64) bool { return whole(v) && int(math.Round(v))%2 == 0 }
		if !whole(cw) || !whole(ch) || !even(x0) || !even(y0) {
			return "" // a crop off the 4:2:0 chroma grid would shift chroma by half a pixel
		}
		return fmt.Sprintf("crop=%d:%d:%d:%d,", int(math.Round(cw)), int(math.Round(ch)), int(math.Round(x0)), int(math.Round(y0))) +
			fmt.Sprintf(scale, w, h) + post
	}
	return ""
}

// readImageFrames decodes the PNG/JPEG images of camera cam stored in episode i's parquet rows.
func (d *Dataset) readImageFrames(i int, cam lrCamera, n int, store func(t int, rgb []uint8, w, h int) error) error {
	e := d.episodes[i]
	path := d.path(e.dataFile)
	p, err := openParquet(path)
	if err != nil {
		return err
	}
	defer p.Close()
	col, err := p.column(cam.key)
	if err != nil {
		return err
	}
	if col.numeric() {
		return fmt.Errorf("%s: column %q is %v, want images {bytes, path}", path, cam.key, col.kind)
	}
	rows := make([]int, 0, n)
	if d.v3 || p.has("episode_index") {
		ec, err := p.column("episode_index")
		if err != nil {
			return err
		}
		for r := range p.NumRows() {
			if v := ec.rowFloats(r); len(v) == 1 && int(v[0]) == e.index {
				rows = append(rows, r)
			}
		}
	} else {
		for r := range p.NumRows() {
			rows = append(rows, r)
		}
	}
	if len(rows) != n {
		return fmt.Errorf("%s: %d rows of episode %d, want %d", path, len(rows), e.index, n)
	}
	for t, r := range rows {
		b := col.rowBytes(r)
		if len(b) != 1 || len(b[0]) == 0 {
			return fmt.Errorf("%s: row %d: column %q has no image bytes", path, r, cam.key)
		}
		im, err := safeio.DecodeImage(b[0], "")
		if err != nil {
			return fmt.Errorf("%s: row %d: column %q: %w", path, r, cam.key, err)
		}
		rgb, w, h := imageToRGB(im)
		if err := store(t, rgb, w, h); err != nil {
			return fmt.Errorf("%s: row %d: %w", path, r, err)
		}
	}
	return nil
}

// imageToRGB converts a decoded image to rgb24.
func imageToRGB(im image.Image) ([]uint8, int, int) {
	b := im.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]uint8, w*h*3)
	switch m := im.(type) {
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				copy(out[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				copy(out[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bl, _ := im.At(b.Min.X+x, b.Min.Y+y).RGBA()
				o := (y*w + x) * 3
				out[o], out[o+1], out[o+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
			}
		}
	}
	return out, w, h
}

// frameResizer fits rgb24 frames to w×h with policy.Resize, reusing its float buffer.
type frameResizer struct {
	w, h int
	mode string
	src  policy.Image
}

func newFrameResizer(w, h int, mode string) *frameResizer {
	return &frameResizer{w: w, h: h, mode: mode}
}

// resize writes the w×h, 8-bit version of the fw×fh rgb24 frame src into dst.
func (r *frameResizer) resize(dst, src []uint8, fw, fh int) {
	if fw == r.w && fh == r.h {
		copy(dst, src)
		return
	}
	if r.src.W != fw || r.src.H != fh {
		r.src = policy.NewImage(fw, fh)
	}
	pix := r.src.Pix[:len(src)]
	for j, b := range src {
		pix[j] = byteToUnit[b]
	}
	out, _ := policy.Resize(r.src, r.w, r.h, r.mode) // sizes and mode checked by the caller
	for j, x := range out.Pix {
		dst[j] = uint8(float64(min(max(x, 0), 1))*255 + 0.5)
	}
}

// byteToUnit[b] is b/255 as float32.
var byteToUnit = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(b) / 255
	}
	return t
}()

// ---------------------------------------------------------------------------------------------
// Video decoding

var (
	showinfoFrame = regexp.MustCompile(`\bn:\s*\d+\s+pts:\s*(-?\d+)\b.*?\bs:(\d+)x(\d+)\b`)
	showinfoBase  = regexp.MustCompile(`config in time_base:\s*(\d+)/(\d+)`)
)

// decodeVideoAt decodes the frames of the first video stream of path whose timestamps are
// within ToleranceS of stamps (seconds in the file's timeline, increasing), calling
// sink(k, rgb, w, h) for stamp k with the frame as rgb24 (valid during the call only). It runs
// ffmpeg once over [stamps[0], stamps[last]] (seeking to the keyframe before, decoding
// forward, every frame passed through with its own timestamp) and stops it when every stamp is
// served. A stamp without a frame within the tolerance, a missing, corrupt or short file is an
// error naming the file.
func decodeVideoAt(path string, stamps []float64, fps float64, fit videoFit, sink func(k int, rgb []uint8, w, h int) error) (frames, nbytes int64, err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("video %s: %s", path, fmt.Sprintf(format, args...))
	}
	if len(stamps) == 0 {
		return 0, 0, nil
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return 0, 0, fail("%v", unwrapPathError(err))
	case st.IsDir():
		return 0, 0, fail("is a directory")
	case st.Size() == 0:
		return 0, 0, fail("empty file")
	}
	bin, err := mediaio.FFmpeg()
	if err != nil {
		return 0, 0, err
	}
	vf := "showinfo=checksum=0" // reports each decoded frame's timestamp and native size
	if fit.filter != "" {
		vf += "," + fit.filter
	}
	half := 0.5 / fps
	start, end := stamps[0]-half, stamps[len(stamps)-1]+half
	input := "file:" + path
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info"}
	if start > 0 {
		args = append(args, "-ss", strconv.FormatFloat(start, 'f', 6, 64))
	}
	args = append(args, "-to", strconv.FormatFloat(end, 'f', 6, 64), "-copyts", "-i", input,
		"-map", "0:v:0", "-vf", vf, "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	timeout := mediaio.Timeout + time.Duration(len(stamps))*100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, fail("%v", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, fail("%v", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fail("ffmpeg: %v", err)
	}
	type info struct {
		pts  int64
		w, h int
	}
	infos := make(chan info, 4096)
	var errLine atomic.Value // first [error]/[fatal] line
	var num, den atomic.Int64
	go func() {
		defer close(infos)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Parsed_showinfo") {
				if m := showinfoBase.FindStringSubmatch(line); m != nil && num.Load() == 0 {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					dd, _ := strconv.ParseInt(m[2], 10, 64)
					num.Store(n)
					den.Store(dd)
					continue
				}
				if m := showinfoFrame.FindStringSubmatch(line); m != nil {
					pts, _ := strconv.ParseInt(m[1], 10, 64)
					w, _ := strconv.Atoi(m[2])
					h, _ := strconv.Atoi(m[3])
					infos <- info{pts, w, h}
				}
				continue
			}
			if (strings.Contains(line, "[error]") || strings.Contains(line, "[fatal]")) && errLine.Load() == nil {
				errLine.Store(cleanFFmpegLine(line, input))
			}
		}
	}()
	next, served := 0, 0 // next stamp not yet served or passed
	var lastTS = math.Inf(-1)
	var frame []uint8
	var sinkErr error
	for inf := range infos {
		if num.Load() == 0 || den.Load() == 0 || inf.w < 1 || inf.h < 1 {
			sinkErr = fail("ffmpeg reported no time base or frame size")
			break
		}
		if err := safeio.CheckImageSize(inf.w, inf.h); err != nil { // reel's one image cap
			sinkErr = fail("frame %v", err)
			break
		}
		ow, oh := inf.w, inf.h // showinfo sees the native size; the fit filters come after it
		if fit.filter != "" {
			ow, oh = fit.w, fit.h
		}
		need := ow * oh * 3
		if cap(frame) < need {
			frame = make([]uint8, need)
		}
		frame = frame[:need]
		if _, err := io.ReadFull(stdout, frame); err != nil {
			break // the process ended early; its error is reported below
		}
		frames++
		nbytes += int64(need)
		ts := float64(inf.pts) * float64(num.Load()) / float64(den.Load())
		if next < len(stamps) && stamps[next] < ts-ToleranceS {
			sinkErr = fail("no frame within %g s of %.6f s (frames decoded at %.6f and %.6f s)", ToleranceS, stamps[next], lastTS, ts)
			break
		}
		for next < len(stamps) && math.Abs(stamps[next]-ts) <= ToleranceS {
			if err := sink(next, frame, inf.w, inf.h); err != nil {
				sinkErr = err
				break
			}
			next++
			served++
		}
		lastTS = ts
		if sinkErr != nil || next == len(stamps) {
			break
		}
	}
	if next == len(stamps) || sinkErr != nil {
		cancel() // every stamp served, or a failure: stop decoding
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // unblock the process until it exits
	for range infos {              // drain until ffmpeg closes its stderr
	}
	werr := cmd.Wait()
	switch {
	case sinkErr != nil:
		return frames, nbytes, sinkErr
	case next == len(stamps):
		return frames, nbytes, nil
	case ctx.Err() == context.DeadlineExceeded:
		return frames, nbytes, fail("ffmpeg timed out after %v", timeout)
	}
	if msg, _ := errLine.Load().(string); msg != "" {
		return frames, nbytes, fail("ffmpeg: %s", msg)
	}
	if werr != nil {
		return frames, nbytes, fail("ffmpeg: %v", werr)
	}
	if served == 0 && math.IsInf(lastTS, -1) {
		return frames, nbytes, fail("no video frames decoded in [%.6f, %.6f] s", stamps[0], stamps[len(stamps)-1])
	}
	return frames, nbytes, fail("no frame within %g s of %.6f s: the video ends at %.6f s (too short for its episode)", ToleranceS, stamps[next], lastTS)
}

// cleanFFmpegLine drops "[demuxer @ 0x...] [error] " prefixes and the "file:NAME: " of an
// ffmpeg log line.
func cleanFFmpegLine(line, input string) string {
	for {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "[") {
			break
		}
		i := strings.Index(line, "] ")
		if i < 0 {
			break
		}
		line = line[i+2:]
	}
	line = strings.TrimPrefix(line, input+": ")
	return line
}

// ---------------------------------------------------------------------------------------------
// Frame cache

type frameKey struct {
	ep, cam, w, h int
	mode          string
}

// frameEntry is one decoded episode of one camera at one size: t frames of w×h rgb24.
type frameEntry struct {
	key   frameKey
	t     int
	pix   []uint8
	err   error
	ready chan struct{}
	elem  *list.Element // in the LRU list once ready
}

// image returns frame s as a policy.Image.
func (e *frameEntry) image(s int) policy.Image {
	px := e.key.w * e.key.h * 3
	im := policy.NewImage(e.key.w, e.key.h)
	for j, b := range e.pix[s*px : (s+1)*px] {
		im.Pix[j] = byteToUnit[b]
	}
	return im
}

// frameCache is a byte-bounded LRU cache of decoded episodes with one decode per key at a time.
type frameCache struct {
	mu      sync.Mutex
	max     int64
	used    int64
	lru     *list.List // front: most recently used; values *frameEntry
	entries map[frameKey]*frameEntry
	decodes int64
	hits    int64
}

func newFrameCache(max int64) *frameCache {
	return &frameCache{max: max, lru: list.New(), entries: map[frameKey]*frameEntry{}}
}

func (c *frameCache) setMax(n int64) {
	c.mu.Lock()
	c.max = n
	c.evictLocked()
	c.mu.Unlock()
}

// has reports whether key is cached or being decoded.
func (c *frameCache) has(key frameKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}

func (c *frameCache) stats() (int64, int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.decodes, c.hits
}

// get returns the entry of key, calling load (once, whoever asks first) when it is missing. A
// failed load is not cached.
func (c *frameCache) get(key frameKey, load func() ([]uint8, int, error)) (*frameEntry, error) {
	for {
		claimed := c.claim([]frameKey{key})
		if len(claimed) == 0 {
			if e, err, ok := c.wait(key); ok {
				return e, err
			}
			continue // evicted or failed meanwhile: decode it
		}
		e := claimed[0]
		pix, t, err := func() (pix []uint8, t int, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("decoding episode %d: panic: %v", key.ep, r)
				}
			}()
			return load()
		}()
		c.fill(e, pix, t, err)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// wait returns the entry of key once it is decoded, or its decoding error; ok is false when
// the key is neither cached nor being decoded.
func (c *frameCache) wait(key frameKey) (_ *frameEntry, _ error, ok bool) { //nolint:staticcheck // ok last reads best here
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return nil, nil, false
	}
	if e.elem != nil {
		c.lru.MoveToFront(e.elem)
	}
	c.hits++
	c.mu.Unlock()
	<-e.ready
	if e.err != nil {
		return nil, e.err, true
	}
	return e, nil, true
}

// claim registers the keys that are neither cached nor being decoded as being decoded by the
// caller, who must fill each entry it returns (in the order of keys).
func (c *frameCache) claim(keys []frameKey) []*frameEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*frameEntry
	for _, key := range keys {
		if _, ok := c.entries[key]; ok {
			continue
		}
		e := &frameEntry{key: key, ready: make(chan struct{})}
		c.entries[key] = e
		c.decodes++
		out = append(out, e)
	}
	return out
}

// fill completes a claimed entry: the decoded pixels and frame count, or the error (then the
// entry is dropped, so that a later request decodes again).
func (c *frameCache) fill(e *frameEntry, pix []uint8, t int, err error) {
	c.mu.Lock()
	e.pix, e.t, e.err = pix, t, err
	if err != nil {
		delete(c.entries, e.key)
	} else {
		e.elem = c.lru.PushFront(e)
		c.used += int64(len(pix))
		c.evictLocked()
	}
	c.mu.Unlock()
	close(e.ready)
}

// evictLocked drops least recently used entries until the cache fits (never the newest one).
func (c *frameCache) evictLocked() {
	for c.used > c.max && c.lru.Len() > 1 {
		back := c.lru.Back()
		e := back.Value.(*frameEntry)
		c.lru.Remove(back)
		delete(c.entries, e.key)
		c.used -= int64(len(e.pix))
	}
}
