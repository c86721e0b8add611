package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/safeio"
)

// reel's former writer of LeRobot v2 datasets (https://github.com/huggingface/lerobot,
// codebase_version "v2.0"), kept for its callers; CreateLeRobotWriter (lerobot_write.go) writes
// v3.0 and v2.1, OpenLeRobot (lerobot_read.go) reads all three. The v2.0 layout:
//
//	meta/info.json        schema: fps, totals, path templates, features (dtype, shape, names)
//	meta/episodes.jsonl   {"episode_index", "tasks", "length"} per episode (+ reel's "family",
//	                      "success", "seed")
//	meta/tasks.jsonl      {"task_index", "task"} per distinct instruction
//	meta/stats.json       per-feature mean/std/min/max over all frames
//	data/chunk-CCC/episode_EEEEEE.parquet                    one row per frame
//	videos/chunk-CCC/observation.images.CAM/episode_EEEEEE.mp4  one video per camera
//
// with chunk CCC = episode / chunks_size. Parquet rows hold observation.state and action
// (list<float32>), timestamp (float32, seconds), frame_index, episode_index, index (global frame
// index) and task_index (int64).

// Names and templates of the LeRobot v2 layout.
const (
	// LeRobotCodebaseVersion is the codebase_version CreateLeRobot writes.
	LeRobotCodebaseVersion = "v2.0"
	// LeRobotChunksSize is the number of episodes per chunk directory CreateLeRobot writes.
	LeRobotChunksSize = 1000
	// LeRobotDataPath is the data_path template CreateLeRobot writes.
	LeRobotDataPath = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
	// LeRobotVideoPath is the video_path template CreateLeRobot writes.
	LeRobotVideoPath = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
	// LeRobotImagePrefix prefixes a camera name to form its feature (video) key.
	LeRobotImagePrefix = "observation.images."
	// LeRobotStateKey and LeRobotActionKey are the state and action feature keys.
	LeRobotStateKey  = "observation.state"
	LeRobotActionKey = "action"

	lerobotRobotType = "reel-sim"
	lerobotMetaDir   = "meta"
	lerobotInfo      = "meta/info.json"
	lerobotEpisodes  = "meta/episodes.jsonl"
	lerobotTasks     = "meta/tasks.jsonl"
	lerobotStats     = "meta/stats.json"
	lerobotStdFloor  = 1e-6
)

// LeRobotFeature describes one column of a LeRobot dataset in meta/info.json.
type LeRobotFeature struct {
	Key   string         `json:"-"`     // e.g. "observation.state", "observation.images.scene"
	DType string         `json:"dtype"` // "float32", "int64", "video", ...
	Shape []int          `json:"shape"`
	Names any            `json:"names"`          // nil, a list of names or a {"axis": names} object
	Info  map[string]any `json:"info,omitempty"` // video properties ("video.fps", "video.codec", ...)
}

// LeRobotFeatures is the ordered features object of meta/info.json (JSON key order is kept).
type LeRobotFeatures []LeRobotFeature

// Get returns the feature with key.
func (fs LeRobotFeatures) Get(key string) (LeRobotFeature, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f, true
		}
	}
	return LeRobotFeature{}, false
}

// MarshalJSON writes the features as one JSON object, in order.
func (fs LeRobotFeatures) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		v, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %v", f.Key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of features, keeping the key order.
func (fs *LeRobotFeatures) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("features must be a JSON object")
	}
	*fs = nil
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // object keys are always strings
		var f LeRobotFeature
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("feature %q: %v", key, err)
		}
		f.Key = key
		*fs = append(*fs, f)
	}
	return nil
}

// LeRobotInfo is the content of meta/info.json. TotalVideos and TotalChunks exist up to v2.1,
// DataFilesSizeInMB and VideoFilesSizeInMB from v3.0 on.
type LeRobotInfo struct {
	CodebaseVersion    string            `json:"codebase_version"`
	RobotType          string            `json:"robot_type"`
	TotalEpisodes      int               `json:"total_episodes"`
	TotalFrames        int               `json:"total_frames"`
	TotalTasks         int               `json:"total_tasks"`
	TotalVideos        int               `json:"total_videos,omitempty"`
	TotalChunks        int               `json:"total_chunks,omitempty"`
	ChunksSize         int               `json:"chunks_size"`
	DataFilesSizeInMB  int               `json:"data_files_size_in_mb,omitempty"`
	VideoFilesSizeInMB int               `json:"video_files_size_in_mb,omitempty"`
	FPS                float64           `json:"fps"`
	Splits             map[string]string `json:"splits"`
	DataPath           string            `json:"data_path"`
	VideoPath          string            `json:"video_path"`
	Features           LeRobotFeatures   `json:"features"`
}

// LeRobotEpisodeMeta is one line of meta/episodes.jsonl. Family, Success and Seed are reel
// extras, zero when a dataset lacks them.
type LeRobotEpisodeMeta struct {
	EpisodeIndex int      `json:"episode_index"`
	Tasks        []string `json:"tasks"`
	Length       int      `json:"length"`
	Family       string   `json:"family,omitempty"`
	Success      bool     `json:"success"`
	Seed         uint64   `json:"seed"`
}

// lerobotTask is one line of meta/tasks.jsonl.
type lerobotTask struct {
	TaskIndex int    `json:"task_index"`
	Task      string `json:"task"`
}

// Stats are per-dimension statistics of a vector feature over all frames of a dataset.
type Stats struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"` // population standard deviation, floored at 1e-6
	Min  []float32 `json:"min"`
	Max  []float32 `json:"max"`
}

// DatasetStats are the statistics of meta/stats.json used for normalization.
type DatasetStats struct {
	State  Stats `json:"observation.state"`
	Action Stats `json:"action"`
}

// lerobotRow is one parquet row: one frame.
type lerobotRow struct {
	State        []float32 `parquet:"observation.state,list"`
	Action       []float32 `parquet:"action,list"`
	Timestamp    float32   `parquet:"timestamp"`
	FrameIndex   int64     `parquet:"frame_index"`
	EpisodeIndex int64     `parquet:"episode_index"`
	Index        int64     `parquet:"index"`
	TaskIndex    int64     `parquet:"task_index"`
}

// formatLeRobotPath expands a v2 data_path or video_path template: {episode_chunk},
// {episode_index} and {video_key}, with optional Python format specs "d" or "0Nd" for the
// integers.
func formatLeRobotPath(tmpl string, chunk, index int, videoKey string) (string, error) {
	return formatTemplate(tmpl, map[string]int{"episode_chunk": chunk, "episode_index": index}, videoKey)
}

// vectorStats accumulates the statistics of one vector feature: count, mean and sum of squared
// deviations (M2) in float64, min and max. Partial results combine exactly in a fixed order.
type vectorStats struct {
	n        int
	mean, m2 []float64
	min, max []float32
}

// newVectorStats computes the statistics of rows (all the same length) in two passes.
func newVectorStats(rows [][]float32) vectorStats {
	d := len(rows[0])
	s := vectorStats{n: len(rows), mean: make([]float64, d), m2: make([]float64, d),
		min: slices.Clone(rows[0]), max: slices.Clone(rows[0])}
	for _, r := range rows {
		for j, x := range r {
			s.mean[j] += float64(x)
			s.min[j] = min(s.min[j], x)
			s.max[j] = max(s.max[j], x)
		}
	}
	for j := range s.mean {
		s.mean[j] /= float64(s.n)
	}
	for _, r := range rows {
		for j, x := range r {
			dx := float64(x) - s.mean[j]
			s.m2[j] += dx * dx
		}
	}
	return s
}

// merge folds o into s (Chan et al.'s parallel variance formula).
func (s *vectorStats) merge(o vectorStats) {
	if s.n == 0 {
		*s = vectorStats{n: o.n, mean: slices.Clone(o.mean), m2: slices.Clone(o.m2),
			min: slices.Clone(o.min), max: slices.Clone(o.max)}
		return
	}
	n := s.n + o.n
	for j := range s.mean {
		delta := o.mean[j] - s.mean[j]
		s.mean[j] += delta * float64(o.n) / float64(n)
		s.m2[j] += o.m2[j] + delta*delta*float64(s.n)*float64(o.n)/float64(n)
		s.min[j] = min(s.min[j], o.min[j])
		s.max[j] = max(s.max[j], o.max[j])
	}
	s.n = n
}

// stats returns the float32 statistics, the standard deviation floored at 1e-6.
func (s *vectorStats) stats() Stats {
	out := Stats{Mean: make([]float32, len(s.mean)), Std: make([]float32, len(s.mean)),
		Min: slices.Clone(s.min), Max: slices.Clone(s.max)}
	for j := range s.mean {
		out.Mean[j] = float32(s.mean[j])
		out.Std[j] = float32(max(math.Sqrt(s.m2[j]/float64(s.n)), lerobotStdFloor))
	}
	return out
}

// lerobotMarshalJSONL encodes one JSON value per line.
func lerobotMarshalJSONL[T any](items []T) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// lerobotReadJSONL decodes every non-blank line of path as a T; a line that is not a JSON object
// of the right types or lacks one of the required fields is an error `PATH:LINE: ...`.
func lerobotReadJSONL[T any](path string, required ...string) ([]T, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, lerobotOpenError(path, err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var keys map[string]json.RawMessage
		var v T
		if err := json.Unmarshal(text, &keys); err != nil {
			return nil, fmt.Errorf("%s:%d: invalid JSON: %v", path, line, err)
		}
		if err := json.Unmarshal(text, &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		for _, k := range required {
			if _, ok := keys[k]; !ok {
				return nil, fmt.Errorf("%s:%d: missing field %q", path, line, k)
			}
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return out, nil
}

// unwrapPathError drops the operation and path of a *fs.PathError, which messages here name
// themselves.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lerobotOpenError words a failure to open path as one line naming it.
func lerobotOpenError(path string, err error) error {
	err = unwrapPathError(err)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing file", path)
	}
	return fmt.Errorf("%s: %v", path, err)
}

// ---------------------------------------------------------------------------------------------
// Writer

// LeRobotWriter writes episodes into a LeRobot v2 dataset directory; see CreateLeRobot.
//
// Write is safe for concurrent use and episodes may arrive in any order, but their indices
// must end up numbering 0..N-1. The global frame "index" column of an episode's parquet file
// needs the lengths of all earlier episodes, so an episode's state and action wait in a small
// reorder buffer until every earlier episode has arrived; its videos are encoded at once.
// Task indices are assigned in episode order (first appearance), so the dataset does not
// depend on arrival order.
type LeRobotWriter struct {
	dir string
	fps float64

	mu       sync.Mutex
	schema   *lerobotSchema             // set by the first accepted episode
	episodes map[int]*lerobotWritten    // every accepted episode
	pending  map[int]*lerobotParquetJob // accepted, waiting for earlier episodes' lengths
	next     int                        // episodes [0, next) have their frame offsets
	frames   int64                      // total frames of episodes [0, next)
	tasks    []string                   // by task index
	taskIdx  map[string]int
	err      error // first I/O failure: Close reports it and writes no meta files
	closed   bool
}

// lerobotSchema is what every episode of a dataset must share.
type lerobotSchema struct {
	stateDim, actionDim, size int
	cameras                   []string
}

// lerobotWritten is what Close needs of an accepted episode.
type lerobotWritten struct {
	meta          LeRobotEpisodeMeta
	state, action vectorStats
}

// lerobotParquetJob is an episode's parquet file, ready to write once offset is known.
type lerobotParquetJob struct {
	index         int
	task          string
	state, action [][]float32
	offset        int64 // global index of its first frame
	taskIndex     int
}

// CreateLeRobot starts a LeRobot v2 dataset in dir, recorded at fps frames per second. dir
// must be missing or empty, unless overwrite is set: then an existing dataset there (meta/,
// data/, videos/, README.md, .gitattributes) is deleted first, meta/info.json before anything
// else; a directory holding anything else is refused. meta/info.json is written last, by
// Close, so a dataset whose writing crashed never looks complete to OpenLeRobot.
func CreateLeRobot(dir string, fps float64, overwrite bool) (*LeRobotWriter, error) {
	if err := checkFPS("CreateLeRobot", fps); err != nil {
		return nil, err
	}
	if err := prepareLeRobotDir(dir, overwrite); err != nil {
		return nil, err
	}
	return &LeRobotWriter{dir: dir, fps: fps, episodes: map[int]*lerobotWritten{},
		pending: map[int]*lerobotParquetJob{}, taskIdx: map[string]int{}}, nil
}

// prepareLeRobotDir makes dir ready for a new dataset: it must be missing or empty, unless
// overwrite is set: then an existing dataset there (meta/, data/, videos/, README.md,
// .gitattributes and a writer's temporary .reel-tmp/) is deleted, meta/info.json first; a
// directory holding anything else is refused.
func prepareLeRobotDir(dir string, overwrite bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lerobot dataset %s: %s", dir, fmt.Sprintf(format, args...))
	}
	entries, err := checkLeRobotDirReplaceable(dir, overwrite)
	switch {
	case err != nil:
		return err
	case len(entries) > 0:
		if err := os.Remove(filepath.Join(dir, lerobotInfo)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail("%v", err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fail("%v", err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, lerobotMetaDir), 0o755); err != nil {
		return fail("%v", err)
	}
	return nil
}

// checkLeRobotDirReplaceable is prepareLeRobotDir's check, which deletes nothing: dir is
// missing or empty, or overwrite is set and dir holds only a dataset's entries (returned).
func checkLeRobotDirReplaceable(dir string, overwrite bool) ([]os.DirEntry, error) {
	fail := func(format string, args ...any) ([]os.DirEntry, error) {
		return nil, fmt.Errorf("lerobot dataset %s: %s", dir, fmt.Sprintf(format, args...))
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fail("%v", unwrapPathError(err))
	case len(entries) > 0 && !overwrite:
		return fail("directory is not empty (set overwrite to replace the dataset in it)")
	}
	for _, e := range entries {
		switch e.Name() {
		case "meta", "data", "videos", "README.md", ".gitattributes", lerobotTmpDir:
		default:
			return fail("refusing to overwrite: %s is not part of a LeRobot dataset", e.Name())
		}
	}
	return entries, nil
}

// checkEpisode validates ep on its own and returns its schema.
func checkEpisode(ep *Episode) (*lerobotSchema, error) {
	fail := func(format string, args ...any) (*lerobotSchema, error) {
		return nil, fmt.Errorf("episode %d: %s", ep.Index, fmt.Sprintf(format, args...))
	}
	t := ep.Len()
	switch {
	case ep.Index < 0:
		return fail("negative index")
	case t == 0:
		return fail("no steps")
	case len(ep.Action) != t:
		return fail("%d actions for %d states", len(ep.Action), t)
	case strings.TrimSpace(ep.Task) == "":
		return fail("empty task")
	case len(ep.Cameras) == 0:
		return fail("no cameras")
	case len(ep.Frames) != len(ep.Cameras):
		return fail("%d frame streams for %d cameras", len(ep.Frames), len(ep.Cameras))
	case ep.Size < 1 || ep.Size > 4096:
		return fail("image size %d out of range [1, 4096]", ep.Size)
	}
	s := &lerobotSchema{stateDim: len(ep.State[0]), actionDim: len(ep.Action[0]), size: ep.Size, cameras: ep.Cameras}
	for _, v := range []struct {
		name string
		rows [][]float32
		dim  int
	}{{"state", ep.State, s.stateDim}, {"action", ep.Action, s.actionDim}} {
		if v.dim == 0 {
			return fail("empty %s vectors", v.name)
		}
		for i, r := range v.rows {
			if len(r) != v.dim {
				return fail("%s[%d] has %d values, %s[0] has %d", v.name, i, len(r), v.name, v.dim)
			}
			for j, x := range r {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return fail("%s[%d][%d] is %v", v.name, i, j, x)
				}
			}
		}
	}
	for c, name := range ep.Cameras {
		if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || slices.Index(ep.Cameras, name) != c {
			return fail("invalid or repeated camera name %q", name)
		}
		if want := t * ep.Size * ep.Size * 3; len(ep.Frames[c]) != want {
			return fail("camera %q has %d frame values, want T×Size×Size×3 = %d", name, len(ep.Frames[c]), want)
		}
	}
	return s, nil
}

// compatible returns an error unless s and o describe the same kind of episode.
func (s *lerobotSchema) compatible(o *lerobotSchema) error {
	switch {
	case s.stateDim != o.stateDim:
		return fmt.Errorf("state dimension %d, the dataset's is %d", o.stateDim, s.stateDim)
	case s.actionDim != o.actionDim:
		return fmt.Errorf("action dimension %d, the dataset's is %d", o.actionDim, s.actionDim)
	case s.size != o.size:
		return fmt.Errorf("image size %d, the dataset's is %d", o.size, s.size)
	case !slices.Equal(s.cameras, o.cameras):
		return fmt.Errorf("cameras %q, the dataset's are %q", o.cameras, s.cameras)
	}
	return nil
}

// Write adds ep to the dataset under its index ep.Index: its camera streams are encoded to
// mp4 at once, its parquet file is written as soon as all episodes before it have arrived.
// Every episode must have the same state and action dimensions, image size and cameras, a
// non-empty task and finite values. An invalid episode is refused with an error and leaves
// the writer usable; an I/O failure makes this and every later Write, and Close, fail. Write
// does not keep ep's slices after it returns.
func (w *LeRobotWriter) Write(ep Episode) error {
	schema, err := checkEpisode(&ep)
	if err != nil {
		return fmt.Errorf("lerobot dataset %s: %v", w.dir, err)
	}
	written := &lerobotWritten{
		meta: LeRobotEpisodeMeta{EpisodeIndex: ep.Index, Tasks: []string{ep.Task}, Length: ep.Len(),
			Family: ep.Family, Success: ep.Success, Seed: ep.Seed},
		state: newVectorStats(ep.State), action: newVectorStats(ep.Action),
	}
	job := &lerobotParquetJob{index: ep.Index, task: ep.Task, state: cloneRows(ep.State), action: cloneRows(ep.Action)}

	w.mu.Lock()
	switch {
	case w.closed:
		err = errors.New("writer is closed")
	case w.err != nil:
		err = w.err
	case w.episodes[ep.Index] != nil:
		err = fmt.Errorf("episode %d written twice", ep.Index)
	case w.schema != nil:
		if e := w.schema.compatible(schema); e != nil {
			err = fmt.Errorf("episode %d: %v", ep.Index, e)
		}
	}
	if err != nil {
		w.mu.Unlock()
		return fmt.Errorf("lerobot dataset %s: %v", w.dir, err)
	}
	if w.schema == nil {
		schema.cameras = slices.Clone(schema.cameras)
		w.schema = schema
	}
	w.episodes[ep.Index] = written
	w.pending[ep.Index] = job
	ready := w.drainLocked()
	w.mu.Unlock()

	for _, j := range ready {
		if err := w.writeParquet(j); err != nil {
			return w.fail(err)
		}
	}
	for c, cam := range ep.Cameras {
		path, err := w.videoPath(ep.Index, cam)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(path), 0o755)
		}
		if err == nil {
			err = EncodeVideo(path, Video{T: ep.Len(), Size: ep.Size, Frames: ep.Frames[c]}, w.fps)
		}
		if err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func cloneRows(rows [][]float32) [][]float32 {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}

// drainLocked takes the pending episodes that directly follow the last one with a known frame
// offset, assigns their offsets and task indices, and returns them (w.mu held).
func (w *LeRobotWriter) drainLocked() []*lerobotParquetJob {
	var ready []*lerobotParquetJob
	for j := w.pending[w.next]; j != nil; j = w.pending[w.next] {
		delete(w.pending, w.next)
		j.offset = w.frames
		ti, ok := w.taskIdx[j.task]
		if !ok {
			ti = len(w.tasks)
			w.taskIdx[j.task] = ti
			w.tasks = append(w.tasks, j.task)
		}
		j.taskIndex = ti
		w.frames += int64(len(j.state))
		w.next++
		ready = append(ready, j)
	}
	return ready
}

// fail records err as the writer's first failure and returns it, naming the dataset.
func (w *LeRobotWriter) fail(err error) error {
	err = fmt.Errorf("lerobot dataset %s: %v", w.dir, err)
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	return err
}

func (w *LeRobotWriter) videoPath(index int, camera string) (string, error) {
	rel, err := formatLeRobotPath(LeRobotVideoPath, index/LeRobotChunksSize, index, LeRobotImagePrefix+camera)
	return filepath.Join(w.dir, filepath.FromSlash(rel)), err
}

// writeParquet writes one episode's frames as its parquet file (temporary file and rename).
func (w *LeRobotWriter) writeParquet(j *lerobotParquetJob) error {
	rel, err := formatLeRobotPath(LeRobotDataPath, j.index/LeRobotChunksSize, j.index, "")
	if err != nil {
		return err
	}
	path := filepath.Join(w.dir, filepath.FromSlash(rel))
	rows := make([]lerobotRow, len(j.state))
	for t := range rows {
		rows[t] = lerobotRow{State: j.state[t], Action: j.action[t], Timestamp: float32(float64(t) / w.fps),
			FrameIndex: int64(t), EpisodeIndex: int64(j.index), Index: j.offset + int64(t), TaskIndex: int64(j.taskIndex)}
	}
	var b bytes.Buffer
	pw := parquet.NewGenericWriter[lerobotRow](&b, parquet.Compression(&parquet.Snappy))
	if _, err := pw.Write(rows); err != nil {
		return fmt.Errorf("episode parquet %s: %s", path, errline.First(err))
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("episode parquet %s: %s", path, errline.First(err))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("episode parquet %s: %v", path, err)
	}
	return nil
}

// Close finishes the dataset: it checks that the episodes written number 0..N-1 and writes
// meta/tasks.jsonl, meta/episodes.jsonl, meta/stats.json and, last, meta/info.json. It must be
// called once, after every Write has returned. After a failed Write, Close returns that
// failure and writes no meta files, leaving a dataset that OpenLeRobot refuses.
func (w *LeRobotWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if w.next != n {
		return fail("episode %d was never written (episodes must be numbered 0..N-1; got %d episodes, the largest index is %d)",
			w.next, n, slices.Max(slices.Collect(maps.Keys(w.episodes))))
	}

	metas := make([]LeRobotEpisodeMeta, n)
	var state, action vectorStats
	for i := range n {
		e := w.episodes[i]
		metas[i] = e.meta
		state.merge(e.state)
		action.merge(e.action)
	}
	tasks := make([]lerobotTask, len(w.tasks))
	for i, t := range w.tasks {
		tasks[i] = lerobotTask{TaskIndex: i, Task: t}
	}
	stats := DatasetStats{State: state.stats(), Action: action.stats()}
	info := w.info(n)

	tasksJSONL, err := lerobotMarshalJSONL(tasks)
	if err != nil {
		return fail("%v", err)
	}
	episodesJSONL, err := lerobotMarshalJSONL(metas)
	if err != nil {
		return fail("%v", err)
	}
	for _, f := range []struct {
		name string
		data any
	}{{lerobotTasks, tasksJSONL}, {lerobotEpisodes, episodesJSONL}, {lerobotStats, stats}, {lerobotInfo, info}} {
		data, ok := f.data.([]byte)
		if !ok {
			if data, err = json.MarshalIndent(f.data, "", "    "); err != nil {
				return fail("%s: %v", f.name, err)
			}
			data = append(data, '\n')
		}
		if err := atomicfile.WriteFile(filepath.Join(w.dir, filepath.FromSlash(f.name)), data); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

// info returns meta/info.json of a dataset of n episodes (w.mu held).
func (w *LeRobotWriter) info(n int) LeRobotInfo {
	s := w.schema
	names := func(prefix string, d int) []string {
		out := make([]string, d)
		for i := range out {
			out[i] = prefix + strconv.Itoa(i)
		}
		return out
	}
	codec, pix := "mpeg4", "yuv420p"
	if hasLibx264() {
		codec = "h264"
		if s.size%2 == 1 {
			pix = "yuv444p"
		}
	}
	features := LeRobotFeatures{
		{Key: LeRobotStateKey, DType: "float32", Shape: []int{s.stateDim}, Names: names("state_", s.stateDim)},
		{Key: LeRobotActionKey, DType: "float32", Shape: []int{s.actionDim}, Names: names("action_", s.actionDim)},
	}
	for _, cam := range s.cameras {
		features = append(features, LeRobotFeature{
			Key: LeRobotImagePrefix + cam, DType: "video", Shape: []int{s.size, s.size, 3},
			Names: []string{"height", "width", "channel"},
			Info: map[string]any{
				"video.fps": w.fps, "video.height": s.size, "video.width": s.size, "video.channels": 3,
				"video.codec": codec, "video.pix_fmt": pix, "video.is_depth_map": false, "has_audio": false,
			},
		})
	}
	features = append(features,
		LeRobotFeature{Key: "timestamp", DType: "float32", Shape: []int{1}},
		LeRobotFeature{Key: "frame_index", DType: "int64", Shape: []int{1}},
		LeRobotFeature{Key: "episode_index", DType: "int64", Shape: []int{1}},
		LeRobotFeature{Key: "index", DType: "int64", Shape: []int{1}},
		LeRobotFeature{Key: "task_index", DType: "int64", Shape: []int{1}},
	)
	return LeRobotInfo{
		CodebaseVersion: LeRobotCodebaseVersion,
		RobotType:       lerobotRobotType,
		TotalEpisodes:   n,
		TotalFrames:     int(w.frames),
		TotalTasks:      len(w.tasks),
		TotalVideos:     n * len(s.cameras),
		TotalChunks:     (n + LeRobotChunksSize - 1) / LeRobotChunksSize,
		ChunksSize:      LeRobotChunksSize,
		FPS:             w.fps,
		Splits:          map[string]string{"train": fmt.Sprintf("0:%d", n)},
		DataPath:        LeRobotDataPath,
		VideoPath:       LeRobotVideoPath,
		Features:        features,
	}
}
