package lerobot

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/reelml/reel/internal/rng"
	"github.com/reelml/reel/policy"
)

// Sampling for training on a dataset whose frames are decoded on demand. Decoding a video
// episode is expensive (an ffmpeg start, a keyframe seek, every frame decoded and resized) and
// random frames from random episodes would decode a whole episode per example. The Sampler
// therefore draws a micro-batch's examples from a window of a few episodes, which slides
// through a shuffled order of all episodes: consecutive micro-batches share most of their
// episodes, so the decoded-frame cache serves them, and the episodes that the next windows add
// are known in advance, so a Loader decodes them in the background.

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	Seed      uint64
	BatchSize int
	// Episodes lists the episodes drawn from (positions in the dataset; nil: all).
	Episodes []int
	// Window is the number of episodes a micro-batch draws from (default 8, at most the number
	// of episodes); Stride the number of them replaced when the window slides (default
	// Window/2, at least 1); BatchesPerWindow the micro-batches drawn before it slides
	// (default: Stride × mean episode length / BatchSize, at least 1, so that a pass over the
	// shuffled episodes draws about one example per frame).
	Window, Stride, BatchesPerWindow int
}

// Sample is one example: a frame of an episode.
type Sample struct {
	Episode int // position in the dataset
	Step    int // frame
}

// Sampler draws micro-batches of frames; Batch(i) is a pure function of (config, i).
type Sampler struct {
	cfg     SamplerConfig
	eps     []int // episode positions drawn from
	lengths []int // by position in the dataset
}

// NewSampler returns a sampler over episodes of the given lengths (indexed by dataset position).
func NewSampler(lengths []int, cfg SamplerConfig) (*Sampler, error) {
	if cfg.BatchSize < 1 {
		return nil, fmt.Errorf("sampler: batch size %d must be positive", cfg.BatchSize)
	}
	eps := cfg.Episodes
	if eps == nil {
		eps = make([]int, len(lengths))
		for i := range eps {
			eps[i] = i
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("sampler: no episodes")
	}
	total := 0
	for _, e := range eps {
		if e < 0 || e >= len(lengths) || lengths[e] < 1 {
			return nil, fmt.Errorf("sampler: episode %d is not in the dataset or empty", e)
		}
		total += lengths[e]
	}
	if cfg.Window < 0 || cfg.Stride < 0 || cfg.BatchesPerWindow < 0 {
		return nil, errors.New("sampler: window, stride and batches per window must not be negative")
	}
	cfg.Window = min(cmp.Or(cfg.Window, 8), len(eps))
	cfg.Stride = min(max(cmp.Or(cfg.Stride, cfg.Window/2), 1), cfg.Window)
	if cfg.BatchesPerWindow == 0 {
		mean := float64(total) / float64(len(eps))
		cfg.BatchesPerWindow = max(1, int(float64(cfg.Stride)*mean/float64(cfg.BatchSize)+0.5))
	}
	return &Sampler{cfg: cfg, eps: slices.Clone(eps), lengths: slices.Clone(lengths)}, nil
}

// NewSampler returns a sampler over this dataset's episodes.
func (d *Dataset) NewSampler(cfg SamplerConfig) (*Sampler, error) {
	lengths := make([]int, len(d.episodes))
	for i, e := range d.episodes {
		lengths[i] = e.length
	}
	return NewSampler(lengths, cfg)
}

// Config returns the configuration with its defaults filled in.
func (s *Sampler) Config() SamplerConfig { c := s.cfg; c.Episodes = slices.Clone(s.eps); return c }

// order returns the episode at position p of the endless sequence of shuffled passes.
func (s *Sampler) order(p int64) int {
	n := int64(len(s.eps))
	pass, k := p/n, p%n
	rng := rng.New(rng.Mix64(s.cfg.Seed ^ 0x5eed5a3b1e ^ uint64(pass)*0x9e3779b97f4a7c15))
	perm := rng.Perm(int(n))
	return s.eps[perm[k]]
}

// Window returns the episodes micro-batch i draws from: Window distinct episodes from position
// (i / BatchesPerWindow) × Stride on of the endless sequence of shuffled passes.
func (s *Sampler) Window(i int64) []int {
	if i < 0 {
		i = 0
	}
	start := (i / int64(s.cfg.BatchesPerWindow)) * int64(s.cfg.Stride)
	out := make([]int, 0, s.cfg.Window)
	for p := start; len(out) < s.cfg.Window; p++ { // an episode met twice across passes counts once
		if e := s.order(p); !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// Batch returns micro-batch i: BatchSize frames drawn uniformly from the frames of Window(i).
func (s *Sampler) Batch(i int64) []Sample {
	win := s.Window(i)
	total := 0
	for _, e := range win {
		total += s.lengths[e]
	}
	rng := rng.New(rng.Mix64(s.cfg.Seed ^ 0xba7c4 ^ uint64(i)*0xbf58476d1ce4e5b9))
	out := make([]Sample, s.cfg.BatchSize)
	for b := range out {
		r := rng.IntN(total)
		for _, e := range win {
			if r < s.lengths[e] {
				out[b] = Sample{Episode: e, Step: r}
				break
			}
			r -= s.lengths[e]
		}
	}
	return out
}

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	Cameras       []string // cameras to load (nil: all)
	Width, Height int      // frame size every camera is fitted to
	Mode          string   // policy resize mode ("" is pad)
	// Ahead is how many micro-batches ahead the loader decodes episodes for (default: 6
	// windows' worth, 6 × BatchesPerWindow, or fewer, at least one, so that the episodes of a
	// window and of those ahead fill at most half the frame cache); prefetching is off with
	// NoPrefetch.
	Ahead      int
	NoPrefetch bool
	// Workers is the number of background decoders (default 2).
	Workers int
	// Group is the most episodes of one camera one ffmpeg run decodes (default 12). Starting
	// ffmpeg costs about what decoding a short episode at a policy's image size does, so the
	// episodes that upcoming windows add are queued in groups of this many, a smaller group
	// only when its first episode is needed within two windows.
	Group int
}

// LoadedExample is one loaded example.
type LoadedExample struct {
	Sample
	Frames  []Frame         // one per camera of LoaderConfig.Cameras, fitted to its size
	Vectors *EpisodeVectors // the episode's states, actions, timestamps, tasks (shared: read only)
}

// Images returns the example's frames as policy images (values in [0, 1]), the conversion a
// batch builder makes.
func (ex LoadedExample) Images() []policy.Image {
	out := make([]policy.Image, len(ex.Frames))
	for c, f := range ex.Frames {
		out[c] = f.Image()
	}
	return out
}

// Frame is a decoded frame as 8-bit RGB, H×W×3 bytes row-major. Loaders hand frames over in
// this form (a quarter of float32's bytes, as LeRobot's uint8 transport does) and a batch
// builder converts them when it builds the batch. Pix may be shared with the dataset's frame
// cache: read only.
type Frame struct {
	W, H int
	Pix  []uint8
}

// Image returns the frame as a policy.Image (each byte b as b/255).
func (f Frame) Image() policy.Image {
	im := policy.NewImage(f.W, f.H)
	for j, b := range f.Pix {
		im.Pix[j] = byteToUnit[b]
	}
	return im
}

// Loader turns a Sampler's micro-batches into examples, decoding in the background the
// episodes that the next micro-batches' windows add.
type Loader struct {
	ds   *Dataset
	s    *Sampler
	cfg  LoaderConfig
	cams []string

	mu        sync.Mutex
	scheduled map[frameKey]bool
	pending   map[int][]pendingEpisode // by camera index: scheduled, not yet queued
	upTo      int64                    // micro-batches whose windows are scheduled: (-1, upTo]
	waited    time.Duration
	jobs      chan decodeJob
	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// pendingEpisode is an episode a micro-batch will need, waiting to be queued in a group.
type pendingEpisode struct {
	ep   int
	need int64 // the first micro-batch whose window holds it
}

// decodeJob is a group of episodes of one camera for one ffmpeg run.
type decodeJob struct {
	cam int
	eps []int
}

// NewLoader returns a loader of s's micro-batches from d.
func (d *Dataset) NewLoader(s *Sampler, cfg LoaderConfig) (*Loader, error) {
	cams := cfg.Cameras
	if cams == nil {
		cams = d.Cameras()
	}
	for _, c := range cams {
		if d.camIndex(c) < 0 {
			return nil, fmt.Errorf("loader: no camera %q in %s (cameras: %q)", c, d.dir, d.Cameras())
		}
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		return nil, fmt.Errorf("loader: frame size %d×%d must be positive", cfg.Width, cfg.Height)
	}
	mode, err := policy.ParseResizeMode(cfg.Mode)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	cfg.Mode = mode
	if cfg.Ahead <= 0 {
		// Up to 6 windows ahead, as far as the window and the prefetched episodes fit in half
		// the frame cache: episodes evicted before their batch would be decoded twice.
		total := 0
		for _, e := range s.eps {
			total += s.lengths[e]
		}
		perEpisode := int64(total) * int64(cfg.Width*cfg.Height*3*len(cams)) / int64(len(s.eps))
		d.cache.mu.Lock()
		room := d.cache.max / 2
		d.cache.mu.Unlock()
		windows := int64(1)
		for windows < 6 && int64(s.cfg.Window+int(windows+1)*s.cfg.Stride)*perEpisode <= room {
			windows++
		}
		cfg.Ahead = int(windows) * s.cfg.BatchesPerWindow
	}
	cfg.Workers = cmp.Or(cfg.Workers, 2)
	cfg.Group = max(cmp.Or(cfg.Group, 12), 1)
	l := &Loader{ds: d, s: s, cfg: cfg, cams: slices.Clone(cams), scheduled: map[frameKey]bool{}, pending: map[int][]pendingEpisode{},
		upTo: -1, jobs: make(chan decodeJob, 1<<12), quit: make(chan struct{})}
	if !cfg.NoPrefetch {
		for range cfg.Workers {
			l.wg.Add(1)
			go l.work()
		}
	}
	return l, nil
}

func (l *Loader) work() {
	defer l.wg.Done()
	for {
		select {
		case <-l.quit:
			return
		case j := <-l.jobs:
			l.ds.decodeEpisodes(j.eps, j.cam, l.cfg.Width, l.cfg.Height, l.cfg.Mode) // errors resurface in Batch
			l.mu.Lock()
			for _, e := range j.eps {
				delete(l.scheduled, l.key(e, j.cam))
			}
			l.mu.Unlock()
		}
	}
}

func (l *Loader) key(ep, cam int) frameKey {
	return frameKey{ep: ep, cam: cam, w: l.cfg.Width, h: l.cfg.Height, mode: l.cfg.Mode}
}

// schedule notes the episodes of the windows of micro-batches (upTo, i+Ahead] that are not
// decoded yet and queues them in groups of Group episodes of a camera, a smaller group when
// its first episode is needed by micro-batch i + 2 × BatchesPerWindow or earlier.
func (l *Loader) schedule(i int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := i + int64(l.cfg.Ahead)
	for b := l.upTo + 1; b <= last; b++ {
		for _, e := range l.s.Window(b) {
			for _, cam := range l.cams {
				c := l.ds.camIndex(cam)
				k := l.key(e, c)
				if l.scheduled[k] || l.ds.cache.has(k) {
					continue
				}
				l.scheduled[k] = true
				l.pending[c] = append(l.pending[c], pendingEpisode{e, b})
			}
		}
	}
	l.upTo = max(l.upTo, last)
	soon := i + 2*int64(l.s.cfg.BatchesPerWindow)
	for c, ps := range l.pending {
		for len(ps) >= l.cfg.Group || (len(ps) > 0 && ps[0].need <= soon) {
			n := min(len(ps), l.cfg.Group)
			j := decodeJob{cam: c}
			for _, p := range ps[:n] {
				j.eps = append(j.eps, p.ep)
			}
			ps = ps[n:]
			select {
			case l.jobs <- j:
			default: // queue full: decoded on demand
				for _, e := range j.eps {
					delete(l.scheduled, l.key(e, c))
				}
			}
		}
		l.pending[c] = ps
	}
}

// Batch returns micro-batch i's examples (Sampler.Batch(i)), after queueing the episodes the
// next Ahead micro-batches need. It waits for whatever of batch i is still being decoded,
// decoding itself what nobody is decoding (each camera in parallel, its episodes split among
// Workers ffmpeg runs); the time spent is added to Waited.
func (l *Loader) Batch(i int64) ([]LoadedExample, error) {
	start := time.Now()
	defer func() {
		l.mu.Lock()
		l.waited += time.Since(start)
		l.mu.Unlock()
	}()
	samples := l.s.Batch(i)
	if !l.cfg.NoPrefetch {
		l.schedule(i)
	}
	// The episodes of this batch, by camera.
	eps := map[int][]int{}
	for _, s := range samples {
		for _, cam := range l.cams {
			c := l.ds.camIndex(cam)
			if !slices.Contains(eps[c], s.Episode) {
				eps[c] = append(eps[c], s.Episode)
			}
		}
	}
	var wg sync.WaitGroup
	for c, list := range eps {
		var missing []int
		for _, e := range list {
			if !l.ds.cache.has(l.key(e, c)) {
				missing = append(missing, e)
			}
		}
		size := max(1, min(l.cfg.Group, (len(missing)+l.cfg.Workers-1)/max(l.cfg.Workers, 1)))
		for len(missing) > 0 {
			n := min(size, len(missing))
			group := missing[:n]
			missing = missing[n:]
			wg.Go(func() { l.ds.decodeEpisodes(group, c, l.cfg.Width, l.cfg.Height, l.cfg.Mode) })
		}
	}
	wg.Wait()
	out := make([]LoadedExample, len(samples))
	for b, s := range samples {
		v, err := l.ds.Vectors(s.Episode)
		if err != nil {
			return nil, err
		}
		ex := LoadedExample{Sample: s, Vectors: v}
		for _, cam := range l.cams {
			e, err := l.ds.decoded(s.Episode, cam, l.cfg.Width, l.cfg.Height, l.cfg.Mode) // waits for a decode in progress
			if err != nil {
				return nil, err
			}
			if s.Step < 0 || s.Step >= e.t {
				return nil, fmt.Errorf("lerobot dataset %s: episode %d has %d frames, step %d is out of range", l.ds.dir, s.Episode, e.t, s.Step)
			}
			px := e.key.w * e.key.h * 3
			ex.Frames = append(ex.Frames, Frame{W: e.key.w, H: e.key.h, Pix: e.pix[s.Step*px : (s.Step+1)*px : (s.Step+1)*px]})
		}
		out[b] = ex
	}
	return out, nil
}

// Waited returns the total time spent in Batch.
func (l *Loader) Waited() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waited
}

// Close stops the background decoders (a decode in progress finishes first).
func (l *Loader) Close() {
	l.closeOnce.Do(func() {
		close(l.quit)
		l.wg.Wait()
	})
}
