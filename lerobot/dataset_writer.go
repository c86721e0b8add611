package lerobot

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/reelml/reel/internal/atomicfile"
)

// lerobotTmpDir holds a writer's per-episode video segments until Close joins them.
const lerobotTmpDir = ".reel-tmp"

// WriterConfig configures Create.
type WriterConfig struct {
	// Format is V30 (the default: many episodes per parquet and mp4 file) or V21
	// (one parquet and one mp4 per episode and camera, meta/*.jsonl).
	Format string
	// FPS is the frame rate (an integer, as LeRobot v3.0 requires).
	FPS int
	// RobotType is info.json's robot_type (default "reel-sim").
	RobotType string
	// Overwrite replaces an existing dataset in the directory.
	Overwrite bool
	// Codec is CodecAuto (default), CodecAV1 or CodecH264. Auto encodes AV1 with libsvtav1 as
	// LeRobot does, and H.264 (libx264) when ffmpeg lacks libsvtav1 or a camera's frames are
	// smaller than SVT-AV1's 64-pixel minimum or have odd sides.
	Codec string
	// ChunksSize is the number of files per chunk directory (default 1000).
	ChunksSize int
	// DataFilesSizeInMB and VideoFilesSizeInMB bound v3.0 files (defaults 100 and 200, as
	// LeRobot's): a file that would grow past the bound is closed and the next one started.
	DataFilesSizeInMB, VideoFilesSizeInMB int
	// StateNames and ActionNames name the state and action values (default state_0, …).
	StateNames, ActionNames []string
}

// CameraFrames are one camera's frames of an episode: T frames of Width×Height rgb24.
type CameraFrames struct {
	Name          string
	Width, Height int
	Pix           []uint8 // T×Height×Width×3, row-major
}

// StoredEpisode is one episode in the form the dataset stores it, as Writer.WriteStored takes
// it. It differs from Episode (the simulator's trajectory, which Writer.Write takes and converts)
// in what only storage needs: every camera has its own Width×Height of rgb24 bytes (Episode
// holds square float frames in [0,1] of one Size), an absent state or success is nil rather than
// zero, and the simulator-only fields (Intended, Focus) are not there.
type StoredEpisode struct {
	Index         int // 0..N-1 in the dataset
	Task          string
	State, Action [][]float32 // T × dim (State may be nil: no state feature)
	Cameras       []CameraFrames
	Success       *bool  // recorded when set
	Family        string // reel extras, recorded when set
	Seed          uint64
	Kind          string // reward-data extras (Episode.Kind, DecisionStep), recorded when set
	DecisionStep  *int
}

// Len is the number of frames.
func (e *StoredEpisode) Len() int { return len(e.Action) }

// Writer writes a LeRobot v3.0 or v2.1 dataset; see Create.
//
// Write and WriteStored are safe for concurrent use and episodes may arrive in any order:
// each episode's statistics are computed and its camera streams encoded (one mp4 segment per
// camera) at once; Close then lays the episodes out in index order — frame indices, task
// indices by first appearance, parquet files, the segments joined into the video files — and
// writes the metadata, meta/info.json last. The dataset therefore depends only on the episodes,
// never on their arrival order or the number of writers.
type Writer struct {
	dir, tmp string
	aside    string // with Overwrite over an existing dataset: where it is written, swapped in by Close
	cfg      WriterConfig

	mu       sync.Mutex
	schema   *lrWriteSchema
	episodes map[int]*lrPending
	err      error
	closed   bool
}

type lrWriteSchema struct {
	stateDim, actionDim int
	cams                []CameraFrames // name and size; Pix unused
	codecs              []lrCodec
}

// lrPending is an accepted episode waiting for Close.
type lrPending struct {
	ep       StoredEpisode // without frames
	stats    map[string]Stats
	segments []string // per camera
}

// Create starts a dataset in dir, which must be missing or empty unless
// cfg.Overwrite is set (see prepareLeRobotDir for what is replaced).
func Create(dir string, cfg WriterConfig) (*Writer, error) {
	cfg.Format = cmp.Or(cfg.Format, V30)
	switch cfg.Format {
	case V30, V21:
	default:
		return nil, fmt.Errorf("lerobot dataset %s: format %q not supported (want %s or %s)", dir, cfg.Format, V30, V21)
	}
	if cfg.FPS < 1 {
		return nil, fmt.Errorf("lerobot dataset %s: fps %d must be a positive integer", dir, cfg.FPS)
	}
	switch cfg.Codec {
	case "", CodecAuto, CodecAV1, CodecH264:
	default:
		return nil, fmt.Errorf("lerobot dataset %s: codec %q is not one of auto, av1, h264", dir, cfg.Codec)
	}
	cfg.RobotType = cmp.Or(cfg.RobotType, lerobotRobotType)
	cfg.ChunksSize = cmp.Or(cfg.ChunksSize, defaultChunksSize)
	cfg.DataFilesSizeInMB = cmp.Or(cfg.DataFilesSizeInMB, lerobotDefaultDataFileMB)
	cfg.VideoFilesSizeInMB = cmp.Or(cfg.VideoFilesSizeInMB, lerobotDefaultVideoFileMB)
	// Over an existing dataset the new one is written beside it and swapped in by Close only
	// when complete: a failed write leaves the old dataset as it was.
	build, aside := dir, ""
	if entries, err := checkLeRobotDirReplaceable(dir, cfg.Overwrite); err != nil {
		return nil, err
	} else if len(entries) > 0 {
		if aside, err = os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".new-"); err != nil {
			return nil, fmt.Errorf("lerobot dataset %s: %w", dir, err)
		}
		build = aside
	}
	if err := prepareLeRobotDir(build, false); err != nil {
		return nil, err
	}
	tmp := filepath.Join(build, lerobotTmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("lerobot dataset %s: %w", dir, err)
	}
	return &Writer{dir: dir, tmp: tmp, aside: aside, cfg: cfg, episodes: map[int]*lrPending{}}, nil
}

// Write adds a simulator episode (square float frames, see Episode) under its index.
func (w *Writer) Write(ep Episode) error {
	le := StoredEpisode{Index: ep.Index, Task: ep.Task, State: ep.State, Action: ep.Action, Family: ep.Family, Seed: ep.Seed}
	ok := ep.Success
	le.Success = &ok
	if ep.Kind != "" {
		d := ep.DecisionStep
		le.Kind, le.DecisionStep = ep.Kind, &d
	}
	if len(ep.Frames) != len(ep.Cameras) {
		return fmt.Errorf("lerobot dataset %s: episode %d: %d frame streams for %d cameras", w.dir, ep.Index, len(ep.Frames), len(ep.Cameras))
	}
	for c, name := range ep.Cameras {
		pix := make([]uint8, len(ep.Frames[c]))
		for j, x := range ep.Frames[c] {
			pix[j] = uint8(math.Round(float64(min(1, max(0, x))) * 255))
		}
		le.Cameras = append(le.Cameras, CameraFrames{Name: name, Width: ep.Size, Height: ep.Size, Pix: pix})
	}
	return w.WriteStored(le)
}

// checkStoredEpisode validates ep on its own.
func checkStoredEpisode(ep *StoredEpisode) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("episode %d: %s", ep.Index, fmt.Sprintf(format, args...))
	}
	t := ep.Len()
	switch {
	case ep.Index < 0:
		return fail("negative index")
	case t == 0:
		return fail("no steps")
	case ep.State != nil && len(ep.State) != t:
		return fail("%d states for %d actions", len(ep.State), t)
	case strings.TrimSpace(ep.Task) == "":
		return fail("empty task")
	case len(ep.Cameras) == 0:
		return fail("no cameras")
	}
	for _, v := range []struct {
		name string
		rows [][]float32
	}{{"state", ep.State}, {"action", ep.Action}} {
		if v.rows == nil {
			continue
		}
		dim := len(v.rows[0])
		if dim == 0 {
			return fail("empty %s vectors", v.name)
		}
		for i, r := range v.rows {
			if len(r) != dim {
				return fail("%s[%d] has %d values, %s[0] has %d", v.name, i, len(r), v.name, dim)
			}
			for j, x := range r {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return fail("%s[%d][%d] is %v", v.name, i, j, x)
				}
			}
		}
	}
	for c, cam := range ep.Cameras {
		switch {
		case cam.Name == "" || strings.ContainsAny(cam.Name, `/\ `) || cam.Name == "." || cam.Name == "..":
			return fail("invalid camera name %q", cam.Name)
		case slices.IndexFunc(ep.Cameras, func(o CameraFrames) bool { return o.Name == cam.Name }) != c:
			return fail("camera %q appears twice", cam.Name)
		case cam.Width < 1 || cam.Height < 1 || cam.Width > 8192 || cam.Height > 8192:
			return fail("camera %q size %d×%d out of range", cam.Name, cam.Width, cam.Height)
		case len(cam.Pix) != t*cam.Width*cam.Height*3:
			return fail("camera %q has %d pixel values, want T×H×W×3 = %d", cam.Name, len(cam.Pix), t*cam.Width*cam.Height*3)
		}
	}
	return nil
}

func (s *lrWriteSchema) compatible(ep *StoredEpisode) error {
	stateDim := 0
	if ep.State != nil {
		stateDim = len(ep.State[0])
	}
	switch {
	case stateDim != s.stateDim:
		return fmt.Errorf("state dimension %d, the dataset's is %d", stateDim, s.stateDim)
	case len(ep.Action[0]) != s.actionDim:
		return fmt.Errorf("action dimension %d, the dataset's is %d", len(ep.Action[0]), s.actionDim)
	case len(ep.Cameras) != len(s.cams):
		return fmt.Errorf("%d cameras, the dataset has %d", len(ep.Cameras), len(s.cams))
	}
	for c, cam := range ep.Cameras {
		o := s.cams[c]
		if cam.Name != o.Name || cam.Width != o.Width || cam.Height != o.Height {
			return fmt.Errorf("camera %d is %q %d×%d, the dataset's is %q %d×%d", c, cam.Name, cam.Width, cam.Height, o.Name, o.Width, o.Height)
		}
	}
	return nil
}

// WriteStored adds ep under its index ep.Index. Every episode must have the same state and
// action dimensions and cameras (names and sizes), a non-empty task and finite values. An
// invalid episode is refused with an error and leaves the writer usable; an I/O failure makes
// this and every later call, and Close, fail. WriteStored does not keep ep's slices.
func (w *Writer) WriteStored(ep StoredEpisode) error {
	if err := checkStoredEpisode(&ep); err != nil {
		return fmt.Errorf("lerobot dataset %s: %w", w.dir, err)
	}
	w.mu.Lock()
	var err error
	switch {
	case w.closed:
		err = errors.New("writer is closed")
	case w.err != nil:
		err = w.err
	case w.episodes[ep.Index] != nil:
		err = fmt.Errorf("episode %d written twice", ep.Index)
	case w.schema != nil:
		if e := w.schema.compatible(&ep); e != nil {
			err = fmt.Errorf("episode %d: %w", ep.Index, e)
		}
	}
	if err == nil && w.schema == nil {
		s := &lrWriteSchema{actionDim: len(ep.Action[0])}
		if ep.State != nil {
			s.stateDim = len(ep.State[0])
		}
		for _, cam := range ep.Cameras {
			c, cerr := chooseCodec(w.cfg.Codec, cam.Width, cam.Height)
			if cerr != nil {
				err = fmt.Errorf("camera %q: %w", cam.Name, cerr)
				break
			}
			s.cams = append(s.cams, CameraFrames{Name: cam.Name, Width: cam.Width, Height: cam.Height})
			s.codecs = append(s.codecs, c)
		}
		if err == nil {
			if n := len(w.cfg.StateNames); n > 0 && n != s.stateDim {
				err = fmt.Errorf("%d state names for %d state values", n, s.stateDim)
			} else if n := len(w.cfg.ActionNames); n > 0 && n != s.actionDim {
				err = fmt.Errorf("%d action names for %d action values", n, s.actionDim)
			}
		}
		if err == nil {
			w.schema = s
		}
	}
	if err == nil {
		w.episodes[ep.Index] = nil // reserved
	}
	schema := w.schema
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("lerobot dataset %s: %w", w.dir, err)
	}

	p := &lrPending{ep: ep, stats: map[string]Stats{}}
	p.ep.State, p.ep.Action = cloneRows(ep.State), cloneRows(ep.Action)
	if ep.State == nil {
		p.ep.State = nil
	}
	p.ep.Cameras = nil
	if ep.State != nil {
		p.stats[StateKey] = vectorFeatureStats(ep.State)
	}
	p.stats[ActionKey] = vectorFeatureStats(ep.Action)
	ts, fi := make([][]float32, ep.Len()), make([][]int64, ep.Len())
	for t := range ts {
		ts[t], fi[t] = []float32{float32(float64(t) / float64(w.cfg.FPS))}, []int64{int64(t)}
	}
	p.stats["timestamp"], p.stats["frame_index"] = vectorFeatureStats(ts), vectorFeatureStats(fi)
	for c, cam := range ep.Cameras {
		acc := &imageStatsAccumulator{}
		px := cam.Width * cam.Height * 3
		for _, t := range imageSampleIndices(ep.Len()) {
			acc.addFrame(cam.Pix[t*px:(t+1)*px], cam.Width, cam.Height)
		}
		p.stats[ImagePrefix+cam.Name] = acc.stats()
		seg := filepath.Join(w.tmp, ImagePrefix+cam.Name, fmt.Sprintf("episode_%06d.mp4", ep.Index))
		if err := encodeSegment(seg, cam.Pix, cam.Width, cam.Height, w.cfg.FPS, schema.codecs[c]); err != nil {
			return w.fail(err)
		}
		p.segments = append(p.segments, seg)
	}
	w.mu.Lock()
	w.episodes[ep.Index] = p
	w.mu.Unlock()
	return nil
}

// fail records err as the writer's first failure and returns it, naming the dataset.
func (w *Writer) fail(err error) error {
	err = fmt.Errorf("lerobot dataset %s: %w", w.dir, err)
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	return err
}

// Abort gives up a writer whose episodes will not all be written, instead of Close: a dataset
// being written aside of an existing one (Overwrite) is removed, and the existing one stays.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aside != "" && !w.closed {
		os.RemoveAll(w.aside)
	}
	w.closed = true
}

// Close lays out and finishes the dataset (see Writer). It must be called once,
// after every Write has returned; the episodes written must be numbered 0..N-1. After a failed
// write, Close returns that failure and writes no metadata, leaving a dataset that
// Open refuses.
func (w *Writer) Close() (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aside != "" && !w.closed { // the new dataset was written aside: swap it in, or drop it
		defer func() {
			if err != nil {
				os.RemoveAll(w.aside)
			} else if serr := atomicfile.SwapDir(w.aside, w.dir); serr != nil {
				err = fmt.Errorf("lerobot dataset %s: %w", w.dir, serr)
			}
		}()
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lerobot dataset %s: %s", w.dir, fmt.Sprintf(format, args...))
	}
	if w.closed {
		return fail("writer closed twice")
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	n := len(w.episodes)
	if n == 0 {
		return fail("no episodes written")
	}
	for i := range n {
		if p, ok := w.episodes[i]; !ok || p == nil {
			return fail("episode %d was never written (episodes must be numbered 0..N-1; got %d episodes, the largest index is %d)",
				i, n, slices.Max(slices.Collect(maps.Keys(w.episodes))))
		}
	}
	b := &lrBuild{dir: cmp.Or(w.aside, w.dir), fps: w.cfg.FPS, cfg: w.cfg, stateDim: w.schema.stateDim, actionDim: w.schema.actionDim}
	for c, cam := range w.schema.cams {
		b.cams = append(b.cams, lrBuildCamera{key: ImagePrefix + cam.Name, w: cam.Width, h: cam.Height, codec: w.schema.codecs[c]})
	}
	for i := range n {
		p := w.episodes[i]
		ti := b.taskIndex(p.ep.Task)
		out := lrBuildEpisode{ep: lrEpisode{index: i, length: p.ep.Len(), tasks: []string{p.ep.Task}, success: p.ep.Success,
			family: p.ep.Family, seed: p.ep.Seed, kind: p.ep.Kind, decision: p.ep.DecisionStep, stats: p.stats}, state: p.ep.State, action: p.ep.Action, task: ti, segments: p.segments}
		b.add(out)
	}
	if w.cfg.Format == V21 {
		err = b.writeV21()
	} else {
		err = b.writeV3()
	}
	if err != nil {
		return fail("%v", err)
	}
	if err := os.RemoveAll(w.tmp); err != nil {
		return fail("%v", err)
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Laying out a dataset (shared by the writer and Merge)

// lrBuild assembles a dataset from episodes in their final order.
type lrBuild struct {
	dir                 string
	fps                 int
	cfg                 WriterConfig
	stateDim, actionDim int
	cams                []lrBuildCamera
	stateNames          []string
	actionNames         []string
	features            Features // set by merges: the sources' features, kept as they are
	tasks               []string
	taskIdx             map[string]int
	episodes            []lrBuildEpisode
	frames              int64
}

type lrBuildCamera struct {
	key   string
	w, h  int
	codec lrCodec
}

// lrBuildEpisode is an episode to lay out: its metadata, and either its vectors and video
// segments (the writer) or where its rows and frames are (a merge).
type lrBuildEpisode struct {
	ep            lrEpisode
	state, action [][]float32
	task          int      // task index of every frame (the writer)
	segments      []string // per camera (the writer)
	rows          *lrSourceRows
	videoSrc      []lrVideoRef // per camera, in a source dataset (a merge)
}

func (b *lrBuild) taskIndex(task string) int {
	if b.taskIdx == nil {
		b.taskIdx = map[string]int{}
	}
	ti, ok := b.taskIdx[task]
	if !ok {
		ti = len(b.tasks)
		b.taskIdx[task] = ti
		b.tasks = append(b.tasks, task)
	}
	return ti
}

// add appends an episode: its global frame range and the statistics of its index columns.
func (b *lrBuild) add(e lrBuildEpisode) {
	e.ep.index = len(b.episodes)
	e.ep.from = b.frames
	b.frames += int64(e.ep.length)
	if e.ep.stats == nil {
		e.ep.stats = map[string]Stats{}
	}
	T := e.ep.length
	epi, idx := make([][]int64, T), make([][]int64, T)
	for t := range T {
		epi[t], idx[t] = []int64{int64(e.ep.index)}, []int64{e.ep.from + int64(t)}
	}
	e.ep.stats["episode_index"], e.ep.stats["index"] = vectorFeatureStats(epi), vectorFeatureStats(idx)
	if e.rows == nil {
		ti := make([][]int64, T)
		for t := range ti {
			ti[t] = []int64{int64(e.task)}
		}
		e.ep.stats["task_index"] = vectorFeatureStats(ti)
	}
	b.episodes = append(b.episodes, e)
}

// nextChunkFile is LeRobot's update_chunk_file_indices.
func nextChunkFile(cf [2]int, chunksSize int) [2]int {
	if cf[1] == chunksSize-1 {
		return [2]int{cf[0] + 1, 0}
	}
	return [2]int{cf[0], cf[1] + 1}
}

// dataBytesPerFrame estimates a frame's uncompressed parquet size: the vectors and the five
// index columns.
func (b *lrBuild) dataBytesPerFrame() int64 {
	return int64(4*(b.stateDim+b.actionDim) + 4 + 4*8)
}

// planDataFiles assigns the episodes to data files: a file takes episodes while its estimated
// size stays under data_files_size_in_mb.
func (b *lrBuild) planDataFiles() [][]int {
	limit := int64(b.cfg.DataFilesSizeInMB) << 20
	var files [][]int
	var size int64
	cf := [2]int{0, 0}
	for i := range b.episodes {
		s := int64(b.episodes[i].ep.length) * b.dataBytesPerFrame()
		if len(files) > 0 && size+s >= limit {
			cf = nextChunkFile(cf, b.cfg.ChunksSize)
			files = append(files, nil)
			size = 0
		}
		if len(files) == 0 {
			files = append(files, nil)
		}
		files[len(files)-1] = append(files[len(files)-1], i)
		size += s
		b.episodes[i].ep.chunk = cf
	}
	return files
}

// reelDataTable is the parquet table of a dataset written here.
func (b *lrBuild) reelDataTable() (*pqTable, string) {
	var fields []pqField
	hf := newOrderedJSON()
	vec := func(d int) map[string]any {
		return map[string]any{"feature": map[string]any{"dtype": "float32", "_type": "Value"}, "length": d, "_type": "List"}
	}
	if b.stateDim > 0 {
		fields = append(fields, pqField{StateKey, reflect.TypeOf([]float32{})})
		hf.set(StateKey, vec(b.stateDim))
	}
	fields = append(fields, pqField{ActionKey, reflect.TypeOf([]float32{})}, pqField{"timestamp", reflect.TypeOf(float32(0))})
	hf.set(ActionKey, vec(b.actionDim))
	hf.set("timestamp", map[string]any{"dtype": "float32", "_type": "Value"})
	for _, k := range []string{"frame_index", "episode_index", "index", "task_index"} {
		fields = append(fields, pqField{k, reflect.TypeOf(int64(0))})
		hf.set(k, map[string]any{"dtype": "int64", "_type": "Value"})
	}
	meta, _ := json.Marshal(map[string]any{"info": map[string]any{"features": hf}})
	return newPQTable(fields), string(meta)
}

// dataRows returns episode e's parquet rows (the writer's episodes).
func (b *lrBuild) dataRows(e *lrBuildEpisode) [][]any {
	rows := make([][]any, e.ep.length)
	for t := range rows {
		var r []any
		if b.stateDim > 0 {
			r = append(r, e.state[t])
		}
		r = append(r, e.action[t], float32(float64(t)/float64(b.fps)), int64(t), int64(e.ep.index), e.ep.from+int64(t), int64(e.task))
		rows[t] = r
	}
	return rows
}

// writeV3 writes the v3.0 layout.
func (b *lrBuild) writeV3() error {
	for _, file := range b.planDataFiles() {
		first := &b.episodes[file[0]]
		rel, err := formatTemplate(V3DataPath, map[string]int{"chunk_index": first.ep.chunk[0], "file_index": first.ep.chunk[1]}, "")
		if err != nil {
			return err
		}
		path := filepath.Join(b.dir, filepath.FromSlash(rel))
		if first.rows != nil {
			if err := b.copyDataRows(path, file); err != nil {
				return err
			}
			continue
		}
		table, hf := b.reelDataTable()
		groups := make(pqRowGroups, len(file))
		for k, i := range file {
			groups[k] = b.dataRows(&b.episodes[i])
		}
		if err := table.write(path, groups, "huggingface", hf); err != nil {
			return err
		}
	}
	for c := range b.cams {
		if err := b.writeV3Videos(c); err != nil {
			return err
		}
	}
	if err := b.writeV3Episodes(); err != nil {
		return err
	}
	if err := writeTasksParquet(filepath.Join(b.dir, filepath.FromSlash(lerobotV3Tasks)), b.tasks); err != nil {
		return err
	}
	return b.writeStatsAndInfo(V30)
}

// writeV3Videos joins camera c's episodes into video files: a file takes source files (the
// writer's per-episode segments, or a merged dataset's files) while its size stays under
// video_files_size_in_mb. An episode's time range is its frame range in the output file over
// fps when its source range is frame-aligned (always, for datasets written here), so that the
// same frames get the same timestamps however the episodes were split into sources.
func (b *lrBuild) writeV3Videos(c int) error {
	cam := b.cams[c]
	limit := int64(b.cfg.VideoFilesSizeInMB) << 20
	type file struct {
		cf     [2]int
		srcs   []string
		size   int64
		frames int64
	}
	type placed struct {
		file   int
		offset int64 // frames before the source in its output file
	}
	var files []*file
	where := map[string]placed{}
	cf := [2]int{0, 0}
	fps := float64(b.fps)
	for i := range b.episodes {
		e := &b.episodes[i]
		var src string
		var srcFrom, srcTo float64
		if e.segments != nil {
			src, srcFrom, srcTo = e.segments[c], 0, float64(e.ep.length)/fps
		} else {
			src, srcFrom, srcTo = e.videoSrc[c].file, e.videoSrc[c].from, e.videoSrc[c].to
		}
		pl, ok := where[src]
		if !ok {
			st, err := os.Stat(src)
			if err != nil {
				return fmt.Errorf("video %s: %w", src, unwrapPathError(err))
			}
			n := int64(e.ep.length)
			if e.segments == nil {
				nf, err := videoFrames(src)
				if err != nil {
					return err
				}
				n = int64(nf)
			}
			if len(files) > 0 && files[len(files)-1].size+st.Size() >= limit {
				cf = nextChunkFile(cf, b.cfg.ChunksSize)
				files = append(files, &file{cf: cf})
			}
			if len(files) == 0 {
				files = append(files, &file{cf: cf})
			}
			cur := files[len(files)-1]
			pl = placed{file: len(files) - 1, offset: cur.frames}
			where[src] = pl
			cur.srcs = append(cur.srcs, src)
			cur.size += st.Size()
			cur.frames += n
		}
		ref := lrVideoRef{chunk: files[pl.file].cf}
		if k, ok := frameAligned(srcFrom, fps); ok {
			ref.from = float64(pl.offset+k) / fps
			ref.to = float64(pl.offset+k+int64(e.ep.length)) / fps
		} else {
			ref.from, ref.to = float64(pl.offset)/fps+srcFrom, float64(pl.offset)/fps+srcTo
		}
		e.ep.videos = append(e.ep.videos, ref)
	}
	for _, f := range files {
		rel, err := formatTemplate(V3VideoPath, map[string]int{"chunk_index": f.cf[0], "file_index": f.cf[1]}, cam.key)
		if err != nil {
			return err
		}
		if err := concatVideos(filepath.Join(b.dir, filepath.FromSlash(rel)), f.srcs); err != nil {
			return err
		}
	}
	return nil
}

// featureOrder lists the feature keys in info.json's order.
func (b *lrBuild) featureOrder() []string {
	var out []string
	for _, f := range b.info(V30).Features {
		out = append(out, f.Key)
	}
	return out
}

// writeV3Episodes writes meta/episodes/chunk-000/file-000.parquet: the columns LeRobot writes
// (episode_index, tasks, length, data and video locations, frame ranges, stats/<key>/<stat>,
// meta/episodes locations) and reel's success, family and seed, and, for reward data, kind and
// decision_step (-1 for an episode without one).
func (b *lrBuild) writeV3Episodes() error {
	type col struct {
		field pqField
		get   func(e *lrBuildEpisode) any
	}
	i64 := reflect.TypeOf(int64(0))
	cols := []col{
		{pqField{"episode_index", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.index) }},
		{pqField{"tasks", reflect.TypeOf([]string{})}, func(e *lrBuildEpisode) any { return e.ep.tasks }},
		{pqField{"length", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.length) }},
		{pqField{"data/chunk_index", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.chunk[0]) }},
		{pqField{"data/file_index", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.chunk[1]) }},
		{pqField{"dataset_from_index", i64}, func(e *lrBuildEpisode) any { return e.ep.from }},
		{pqField{"dataset_to_index", i64}, func(e *lrBuildEpisode) any { return e.ep.from + int64(e.ep.length) }},
	}
	for c, cam := range b.cams {
		pre := "videos/" + cam.key + "/"
		cols = append(cols,
			col{pqField{pre + "chunk_index", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.videos[c].chunk[0]) }},
			col{pqField{pre + "file_index", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.videos[c].chunk[1]) }},
			col{pqField{pre + "from_timestamp", reflect.TypeOf(0.0)}, func(e *lrBuildEpisode) any { return e.ep.videos[c].from }},
			col{pqField{pre + "to_timestamp", reflect.TypeOf(0.0)}, func(e *lrBuildEpisode) any { return e.ep.videos[c].to }})
	}
	info := b.info(V30)
	for _, f := range info.Features {
		key := f.Key
		if slices.ContainsFunc(b.episodes, func(e lrBuildEpisode) bool { _, ok := e.ep.stats[key]; return !ok }) {
			continue // only statistics every episode has
		}
		image := f.DType == "video" || f.DType == "image"
		integer := isIntDType(f.DType)
		vals := func(e *lrBuildEpisode, pick func(Stats) []float64, asInt bool) any {
			v := pick(e.ep.stats[key])
			switch {
			case image:
				out := make([][][]float64, len(v))
				for j, x := range v {
					out[j] = [][]float64{{x}}
				}
				return out
			case asInt:
				out := make([]int64, len(v))
				for j, x := range v {
					out[j] = int64(math.Round(x))
				}
				return out
			}
			return slices.Clone(v)
		}
		ft := reflect.TypeOf([]float64{})
		if image {
			ft = reflect.TypeOf([][][]float64{})
		}
		mmType := ft
		if integer && !image {
			mmType = reflect.TypeOf([]int64{})
		}
		pre := "stats/" + key + "/"
		for _, st := range []struct {
			name string
			typ  reflect.Type
			pick func(Stats) []float64
			int  bool
		}{
			{"min", mmType, func(s Stats) []float64 { return s.Min }, integer},
			{"max", mmType, func(s Stats) []float64 { return s.Max }, integer},
			{"mean", ft, func(s Stats) []float64 { return s.Mean }, false},
			{"std", ft, func(s Stats) []float64 { return s.Std }, false},
		} {
			cols = append(cols, col{pqField{pre + st.name, st.typ}, func(e *lrBuildEpisode) any { return vals(e, st.pick, st.int) }})
		}
		cols = append(cols, col{pqField{pre + "count", reflect.TypeOf([]int64{})}, func(e *lrBuildEpisode) any { return []int64{e.ep.stats[key].Count} }})
		for _, q := range StatQuantiles {
			cols = append(cols, col{pqField{pre + q, ft}, func(e *lrBuildEpisode) any {
				return vals(e, func(s Stats) []float64 { return s.Quantile(q) }, false)
			}})
		}
	}
	cols = append(cols,
		col{pqField{"meta/episodes/chunk_index", i64}, func(e *lrBuildEpisode) any { return int64(0) }},
		col{pqField{"meta/episodes/file_index", i64}, func(e *lrBuildEpisode) any { return int64(0) }})
	hasSuccess := slices.ContainsFunc(b.episodes, func(e lrBuildEpisode) bool { return e.ep.success != nil })
	hasExtras := slices.ContainsFunc(b.episodes, func(e lrBuildEpisode) bool { return e.ep.family != "" || e.ep.seed != 0 })
	if hasSuccess {
		cols = append(cols, col{pqField{"success", reflect.TypeOf(false)}, func(e *lrBuildEpisode) any { return e.ep.success != nil && *e.ep.success }})
	}
	if hasExtras {
		cols = append(cols, col{pqField{"family", reflect.TypeOf("")}, func(e *lrBuildEpisode) any { return e.ep.family }},
			col{pqField{"seed", i64}, func(e *lrBuildEpisode) any { return int64(e.ep.seed) }})
	}
	if slices.ContainsFunc(b.episodes, func(e lrBuildEpisode) bool { return e.ep.kind != "" || e.ep.decision != nil }) {
		cols = append(cols, col{pqField{"kind", reflect.TypeOf("")}, func(e *lrBuildEpisode) any { return e.ep.kind }},
			col{pqField{"decision_step", i64}, func(e *lrBuildEpisode) any {
				if e.ep.decision == nil {
					return int64(-1)
				}
				return int64(*e.ep.decision)
			}})
	}
	fields := make([]pqField, len(cols))
	for i, c := range cols {
		fields[i] = c.field
	}
	rows := make([][]any, len(b.episodes))
	for i := range b.episodes {
		e := &b.episodes[i]
		if e.ep.tasks == nil {
			e.ep.tasks = []string{}
		}
		row := make([]any, len(cols))
		for k, c := range cols {
			row[k] = c.get(e)
		}
		rows[i] = row
	}
	rel, _ := formatTemplate(lerobotV3EpisodesPath, map[string]int{"chunk_index": 0, "file_index": 0}, "")
	return newPQTable(fields).write(filepath.Join(b.dir, filepath.FromSlash(rel)), pqRowGroups{rows})
}

// writeTasksParquet writes meta/tasks.parquet as pandas writes LeRobot's tasks DataFrame: a
// task_index column and the task texts as the index, stored in column "__index_level_0__" and
// named in the "pandas" metadata so that pandas.read_parquet restores it.
func writeTasksParquet(path string, tasks []string) error {
	t := newPQTable([]pqField{{"task_index", reflect.TypeOf(int64(0))}, {"__index_level_0__", reflect.TypeOf("")}})
	rows := make([][]any, len(tasks))
	for i, task := range tasks {
		rows[i] = []any{int64(i), task}
	}
	pandas := `{"index_columns": ["__index_level_0__"], "column_indexes": [{"name": null, "field_name": null, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}], ` +
		`"columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": null}, ` +
		`{"name": null, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object", "metadata": null}], ` +
		`"attributes": {}, "creator": {"library": "reel", "version": "1"}, "pandas_version": "2.3.3"}`
	return t.write(path, pqRowGroups{rows}, "pandas", pandas)
}

// info returns meta/info.json of the dataset being built.
func (b *lrBuild) info(format string) Info {
	n := len(b.episodes)
	info := Info{CodebaseVersion: format, RobotType: b.cfg.RobotType, TotalEpisodes: n, TotalFrames: int(b.frames),
		TotalTasks: len(b.tasks), ChunksSize: b.cfg.ChunksSize, FPS: float64(b.fps),
		Splits: map[string]string{"train": fmt.Sprintf("0:%d", n)}}
	if format == V30 {
		info.DataFilesSizeInMB, info.VideoFilesSizeInMB = b.cfg.DataFilesSizeInMB, b.cfg.VideoFilesSizeInMB
		info.DataPath, info.VideoPath = V3DataPath, V3VideoPath
	} else {
		info.TotalVideos = n * len(b.cams)
		info.TotalChunks = (n + b.cfg.ChunksSize - 1) / b.cfg.ChunksSize
		info.DataPath, info.VideoPath = V21DataPath, V21VideoPath
	}
	if b.features != nil {
		info.Features = slices.Clone(b.features)
		return info
	}
	names := func(given []string, prefix string, d int) []string {
		if len(given) == d {
			return given
		}
		out := make([]string, d)
		for i := range out {
			out[i] = prefix + strconv.Itoa(i)
		}
		return out
	}
	if b.stateDim > 0 {
		info.Features = append(info.Features, Feature{Key: StateKey, DType: "float32", Shape: []int{b.stateDim},
			Names: names(b.cfg.StateNames, "state_", b.stateDim)})
	}
	info.Features = append(info.Features, Feature{Key: ActionKey, DType: "float32", Shape: []int{b.actionDim},
		Names: names(b.cfg.ActionNames, "action_", b.actionDim)})
	for _, cam := range b.cams {
		vi := map[string]any{"video.height": cam.h, "video.width": cam.w, "video.codec": cam.codec.name, "video.pix_fmt": cam.codec.pixFmt,
			"video.is_depth_map": false, "video.fps": b.fps, "video.channels": 3, "has_audio": false}
		maps.Copy(vi, cam.codec.info)
		info.Features = append(info.Features, Feature{Key: cam.key, DType: "video", Shape: []int{cam.h, cam.w, 3},
			Names: []string{"height", "width", "channels"}, Info: vi})
	}
	info.Features = append(info.Features, Feature{Key: "timestamp", DType: "float32", Shape: []int{1}})
	for _, k := range []string{"frame_index", "episode_index", "index", "task_index"} {
		info.Features = append(info.Features, Feature{Key: k, DType: "int64", Shape: []int{1}})
	}
	return info
}

// writeStatsAndInfo writes meta/stats.json (v3.0; the episodes' statistics aggregated) and,
// last, meta/info.json.
func (b *lrBuild) writeStatsAndInfo(format string) error {
	info := b.info(format)
	if format == V30 {
		all := make([]map[string]Stats, len(b.episodes))
		for i, e := range b.episodes {
			all[i] = e.ep.stats
		}
		stats, err := aggregateStatsMaps(all)
		if err != nil {
			return err
		}
		raw, err := marshalStatsJSON(stats, b.featureOrder())
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(b.dir, filepath.FromSlash(lerobotStats)), raw); err != nil {
			return err
		}
	}
	raw, err := json.MarshalIndent(info, "", "    ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(b.dir, filepath.FromSlash(lerobotInfo)), append(raw, '\n'))
}

// writeV21 writes the v2.1 layout: one parquet and one mp4 per episode and camera,
// meta/episodes.jsonl, meta/tasks.jsonl, meta/episodes_stats.jsonl and meta/info.json.
func (b *lrBuild) writeV21() error {
	table, hf := b.reelDataTable()
	type epLine struct {
		EpisodeIndex int      `json:"episode_index"`
		Tasks        []string `json:"tasks"`
		Length       int      `json:"length"`
		Family       string   `json:"family,omitempty"`
		Success      *bool    `json:"success,omitempty"`
		Seed         uint64   `json:"seed,omitempty"`
		Kind         string   `json:"kind,omitempty"`
		DecisionStep *int     `json:"decision_step,omitempty"`
	}
	type statsLine struct {
		EpisodeIndex int          `json:"episode_index"`
		Stats        *orderedJSON `json:"stats"`
	}
	var eps []epLine
	var stats []byte
	order := b.featureOrder()
	for i := range b.episodes {
		e := &b.episodes[i]
		vals := map[string]int{"episode_chunk": e.ep.index / b.cfg.ChunksSize, "episode_index": e.ep.index}
		rel, err := formatTemplate(V21DataPath, vals, "")
		if err != nil {
			return err
		}
		if err := table.write(filepath.Join(b.dir, filepath.FromSlash(rel)), pqRowGroups{b.dataRows(e)}, "huggingface", hf); err != nil {
			return err
		}
		for c, cam := range b.cams {
			vrel, err := formatTemplate(V21VideoPath, vals, cam.key)
			if err != nil {
				return err
			}
			dst := filepath.Join(b.dir, filepath.FromSlash(vrel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Rename(e.segments[c], dst); err != nil {
				return err
			}
		}
		eps = append(eps, epLine{EpisodeIndex: e.ep.index, Tasks: e.ep.tasks, Length: e.ep.length, Family: e.ep.family, Success: e.ep.success, Seed: e.ep.seed,
			Kind: e.ep.kind, DecisionStep: e.ep.decision})
		om := newOrderedJSON()
		for _, k := range order {
			if s, ok := e.ep.stats[k]; ok {
				om.set(k, s)
			}
		}
		line, err := json.Marshal(statsLine{EpisodeIndex: e.ep.index, Stats: om})
		if err != nil {
			return err
		}
		stats = append(append(stats, line...), '\n')
	}
	tasks := make([]lerobotTask, len(b.tasks))
	for i, t := range b.tasks {
		tasks[i] = lerobotTask{TaskIndex: i, Task: t}
	}
	tasksJSONL, err := lerobotMarshalJSONL(tasks)
	if err != nil {
		return err
	}
	episodesJSONL, err := lerobotMarshalJSONL(eps)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{lerobotTasks, tasksJSONL}, {lerobotEpisodes, episodesJSONL}, {lerobotV21EpisodesStats, stats}} {
		if err := atomicfile.WriteFile(filepath.Join(b.dir, filepath.FromSlash(f.name)), f.data); err != nil {
			return err
		}
	}
	return b.writeStatsAndInfo(V21)
}

// orderedJSON is a JSON object that keeps its keys' insertion order.
type orderedJSON struct {
	keys []string
	vals map[string]any
}

func newOrderedJSON() *orderedJSON { return &orderedJSON{vals: map[string]any{}} }

func (o *orderedJSON) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *orderedJSON) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteString(": ")
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
