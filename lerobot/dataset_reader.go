package lerobot

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reelml/reel/hub"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/mediaio"
	"github.com/reelml/reel/policy"
)

// Options tune OpenWith.
type Options struct {
	// StateKey and ActionKey name the state and action features (defaults StateKey and
	// ActionKey). The action feature is required; a dataset without the state feature
	// has StateDim 0.
	StateKey, ActionKey string
	// CacheBytes bounds the decoded frames kept in memory (0: DefaultFrameCacheBytes).
	CacheBytes int64
	// ResizeInGo fits video frames to the requested size with policy.Resize in Go after
	// ffmpeg has decoded them at their native size, rather than with ffmpeg's scale filter in
	// the decoding process (see Frames): the previous, slower path, whose pixels differ from
	// the default's by rounding and chroma interpolation (about one level of 255 on average).
	ResizeInGo bool
}

// DefaultFrameCacheBytes is the default bound of a dataset's decoded-frame cache.
const DefaultFrameCacheBytes = 1 << 30

// Dataset is a LeRobot dataset (codebase_version v3.0, v2.1 or v2.0) opened for reading;
// see Open. Its methods are safe for concurrent use.
//
// Metadata is read and checked when the dataset is opened. An episode's states and actions
// are read from parquet on first use and kept (Vectors); its camera frames are decoded only
// when asked for (Frames), resized as they stream out of the decoder, and kept in a
// byte-bounded least-recently-used cache as 8-bit pixels.
type Dataset struct {
	dir       string
	info      Info
	v3        bool
	episodes  []lrEpisode // by position 0..N-1 (sorted by episode_index)
	tasks     map[int]string
	stats     map[string]Stats // as stored (stats.json or aggregated episodes_stats.jsonl)
	statsFile string           // where stats came from ("" if none)
	stateKey  string
	actionKey string
	stateDim  int
	actionDim int
	cams      []lrCamera

	mu       sync.Mutex
	files    map[string]*lrFileVectors // by data file (relative path)
	computed map[string]Stats          // statistics computed from the data
	cache    *frameCache

	resizeInGo                              bool
	decodeRuns, decodedFrames, decodedBytes atomic.Int64 // DecodeStats
}

// lrCamera is a video or image feature.
type lrCamera struct {
	name, key string
	video     bool // false: images stored in parquet
	w, h      int
}

// lrEpisode is one episode's metadata.
type lrEpisode struct {
	index    int // episode_index
	length   int
	tasks    []string
	from     int64  // global index of its first frame
	dataFile string // relative to the dataset
	videos   []lrVideoRef
	stats    map[string]Stats // per-episode statistics, if the dataset has them
	success  *bool
	family   string
	seed     uint64
	kind     string // reward data: episode kind and decision step, when recorded
	decision *int
	chunk    [2]int // v3: data chunk and file index
	metaFile [2]int // v3: meta/episodes chunk and file index
}

// lrVideoRef locates an episode's frames of one camera: file and time range [from, to).
type lrVideoRef struct {
	file     string
	from, to float64
	chunk    [2]int
}

// Open opens the LeRobot dataset in dir with default options; see OpenWith.
func Open(dir string) (*Dataset, error) { return OpenWith(dir, Options{}) }

// OpenWith opens the LeRobot dataset in dir: codebase_version v3.0 (LeRobot ≥ 0.4), v2.1
// or v2.0, any number of cameras (videos, or images in parquet) of any size, state and action
// vectors of any dimension. It reads and checks meta/info.json, the episodes (indices, lengths,
// files, frame and time ranges adding up), the tasks and the statistics; every problem is one
// line naming the file and the field, e.g.
// `DIR/meta/info.json: features.action.shape [2 3], want [dim] with dim ≥ 1`.
// Episode data is read later, when asked for. dir may also name a dataset ORG/NAME[@REVISION]
// where LeRobot or the Hub cache keeps it (hub.Dataset).
func OpenWith(dir string, opts Options) (*Dataset, error) {
	dir, err := hub.Dataset(dir)
	if err != nil {
		return nil, err
	}
	d := &Dataset{dir: dir, stateKey: cmp.Or(opts.StateKey, StateKey),
		actionKey: cmp.Or(opts.ActionKey, ActionKey), files: map[string]*lrFileVectors{},
		cache: newFrameCache(cmp.Or(opts.CacheBytes, DefaultFrameCacheBytes)), resizeInGo: opts.ResizeInGo}
	if err := d.readInfo(); err != nil {
		return nil, err
	}
	if d.v3 {
		err = d.readV3Episodes()
	} else {
		err = d.readV2Episodes()
	}
	if err != nil {
		return nil, err
	}
	if err := d.readTasks(); err != nil {
		return nil, err
	}
	if err := d.readStats(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dataset) path(rel string) string {
	return filepath.Join(d.dir, filepath.FromSlash(rel))
}

// readInfo reads and checks meta/info.json.
func (d *Dataset) readInfo() error {
	path := d.path(lerobotInfo)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	raw, err := safeio.ReadFile(path, safeio.JSONLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lerobot dataset %s: missing %s (not a LeRobot dataset, or one whose writing did not finish)", d.dir, lerobotInfo)
	}
	if err != nil {
		return fail("%v", unwrapPathError(err))
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fail("invalid JSON: %v", err)
	}
	for _, k := range []string{"codebase_version", "fps", "total_episodes", "total_frames", "data_path", "features"} {
		if _, ok := keys[k]; !ok {
			return fail("missing field %q", k)
		}
	}
	info := &d.info
	if err := json.Unmarshal(raw, info); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fail("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return fail("%v", err)
	}
	switch info.CodebaseVersion {
	case V30:
		d.v3 = true
		if info.ChunksSize == 0 {
			info.ChunksSize = 1000 // LeRobot's DEFAULT_CHUNK_SIZE
		}
	case V20, V21:
		if _, ok := keys["chunks_size"]; !ok {
			return fail("missing field %q", "chunks_size")
		}
	default:
		return fail("codebase_version %q not supported (want v3.0, v2.1 or v2.0)", info.CodebaseVersion)
	}
	switch {
	case !(info.FPS > 0) || info.FPS > mediaio.MaxFPS:
		return fail("field fps: %g is not a frame rate in (0, %g]", info.FPS, float64(mediaio.MaxFPS))
	case info.TotalEpisodes < 1:
		return fail("total_episodes %d must be positive", info.TotalEpisodes)
	case info.TotalFrames < 1:
		return fail("total_frames %d must be positive", info.TotalFrames)
	case info.ChunksSize < 1:
		return fail("chunks_size %d must be positive", info.ChunksSize)
	}
	layout := "v2"
	if d.v3 {
		layout = "v3"
	}
	required := templateFields[layout+"-data"]
	if !d.v3 {
		required = []string{"episode_index"}
	}
	if err := checkTemplate(info.DataPath, templateFields[layout+"-data"], required); err != nil {
		return fail("data_path %q: %v", info.DataPath, err)
	}
	for _, f := range info.Features {
		if f.DType == "" {
			return fail("features.%s: missing dtype", f.Key)
		}
	}
	f, ok := info.Features.Get(d.actionKey)
	if !ok {
		return fail("features: missing %q", d.actionKey)
	}
	if d.actionDim, err = vectorShape(f); err != nil {
		return fail("features.%s.%v", d.actionKey, err)
	}
	if f, ok := info.Features.Get(d.stateKey); ok {
		if d.stateDim, err = vectorShape(f); err != nil {
			return fail("features.%s.%v", d.stateKey, err)
		}
	}
	videos := 0
	for _, f := range info.Features {
		if f.DType != "video" && f.DType != "image" {
			continue
		}
		h, w, c, err := imageShape(f)
		switch {
		case err != nil:
			return fail("features.%s.shape %v: %v", f.Key, f.Shape, err)
		case c != 3:
			return fail("features.%s.shape %v: %d channels, want 3 (RGB)", f.Key, f.Shape, c)
		case h < 1 || h > 8192 || w < 1 || w > 8192:
			return fail("features.%s.shape %v: size out of range [1, 8192]", f.Key, f.Shape)
		}
		cam := lrCamera{name: CameraName(f.Key), key: f.Key, video: f.DType == "video", w: w, h: h}
		for _, o := range d.cams {
			if o.name == cam.name {
				return fail("features.%s: camera name %q is also %s's", f.Key, cam.name, o.key)
			}
		}
		if cam.video {
			videos++
		}
		d.cams = append(d.cams, cam)
	}
	if videos > 0 {
		vl := "v2-video"
		required := []string{"episode_index", "video_key"}
		if d.v3 {
			vl, required = "v3-video", templateFields["v3-video"]
		}
		if err := checkTemplate(info.VideoPath, templateFields[vl], required); err != nil {
			return fail("video_path %q: %v", info.VideoPath, err)
		}
	}
	return nil
}

// imageShape returns the height, width and channels of a video or image feature, whose shape
// is [H, W, C] or, when its names start with "channel(s)", [C, H, W].
func imageShape(f Feature) (h, w, c int, err error) {
	if len(f.Shape) != 3 {
		return 0, 0, 0, errors.New("want [height, width, 3]")
	}
	if names, ok := f.Names.([]any); ok && len(names) == 3 && (names[0] == "channel" || names[0] == "channels") {
		return f.Shape[1], f.Shape[2], f.Shape[0], nil
	}
	return f.Shape[0], f.Shape[1], f.Shape[2], nil
}

// readV2Episodes reads meta/episodes.jsonl (v2.0, v2.1): episode indices unique, as many as
// total_episodes, lengths adding up to total_frames.
func (d *Dataset) readV2Episodes() error {
	path := d.path(lerobotEpisodes)
	type line struct {
		episodesLine
		Success      *bool  `json:"success"`
		Kind         string `json:"kind"`
		DecisionStep *int   `json:"decision_step"`
	}
	eps, err := lerobotReadJSONL[line](path, "episode_index", "length")
	if err != nil {
		return err
	}
	if len(eps) != d.info.TotalEpisodes {
		return fmt.Errorf("%s: %d episodes, but %s says total_episodes %d", path, len(eps), lerobotInfo, d.info.TotalEpisodes)
	}
	slices.SortStableFunc(eps, func(a, b line) int { return cmp.Compare(a.EpisodeIndex, b.EpisodeIndex) })
	var total int64
	for i, e := range eps {
		switch {
		case e.EpisodeIndex < 0:
			return fmt.Errorf("%s: episode_index %d is negative", path, e.EpisodeIndex)
		case i > 0 && e.EpisodeIndex == eps[i-1].EpisodeIndex:
			return fmt.Errorf("%s: episode_index %d repeated", path, e.EpisodeIndex)
		case e.Length < 1:
			return fmt.Errorf("%s: episode %d: length %d must be positive", path, e.EpisodeIndex, e.Length)
		}
		ep := lrEpisode{index: e.EpisodeIndex, length: e.Length, tasks: e.Tasks, from: total,
			success: e.Success, family: e.Family, seed: e.Seed, kind: e.Kind, decision: e.DecisionStep}
		chunk := e.EpisodeIndex / d.info.ChunksSize
		vals := map[string]int{"episode_chunk": chunk, "episode_index": e.EpisodeIndex}
		if ep.dataFile, err = formatTemplate(d.info.DataPath, vals, ""); err != nil {
			return fmt.Errorf("%s: data_path: %w", d.path(lerobotInfo), err)
		}
		for _, c := range d.cams {
			if !c.video {
				ep.videos = append(ep.videos, lrVideoRef{})
				continue
			}
			file, err := formatTemplate(d.info.VideoPath, vals, c.key)
			if err != nil {
				return fmt.Errorf("%s: video_path: %w", d.path(lerobotInfo), err)
			}
			ep.videos = append(ep.videos, lrVideoRef{file: file, from: 0, to: float64(e.Length) / d.info.FPS})
		}
		total += int64(e.Length)
		d.episodes = append(d.episodes, ep)
	}
	if total != int64(d.info.TotalFrames) {
		return fmt.Errorf("%s: lengths add up to %d frames, but %s says total_frames %d", path, total, lerobotInfo, d.info.TotalFrames)
	}
	return nil
}

// readV3Episodes reads meta/episodes/chunk-*/file-*.parquet (v3.0): episode indices 0..N-1
// with N = total_episodes, lengths adding up to total_frames, frame ranges
// [dataset_from_index, dataset_to_index) consecutive and as long as the episodes, a data file
// and, per camera, a video file and time range for every episode.
func (d *Dataset) readV3Episodes() error {
	root := d.path(lerobotV3EpisodesDir)
	files, _ := filepath.Glob(filepath.Join(root, "chunk-*", "file-*.parquet"))
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("%s: no chunk-*/file-*.parquet files (a v3.0 dataset keeps its episodes there)", root)
	}
	for _, path := range files {
		if err := d.readV3EpisodeFile(path); err != nil {
			return err
		}
	}
	eps := d.episodes
	slices.SortStableFunc(eps, func(a, b lrEpisode) int { return cmp.Compare(a.index, b.index) })
	if len(eps) != d.info.TotalEpisodes {
		return fmt.Errorf("%s: %d episodes, but %s says total_episodes %d", root, len(eps), lerobotInfo, d.info.TotalEpisodes)
	}
	var next int64
	for i, e := range eps {
		switch {
		case e.index != i:
			return fmt.Errorf("%s: episode_index %d missing or repeated (want 0..%d, each once)", root, i, len(eps)-1)
		case e.from != next:
			return fmt.Errorf("%s: episode %d: dataset_from_index %d, want %d (the previous episode's dataset_to_index)", root, i, e.from, next)
		}
		next += int64(e.length)
	}
	if next != int64(d.info.TotalFrames) {
		return fmt.Errorf("%s: lengths add up to %d frames, but %s says total_frames %d", root, next, lerobotInfo, d.info.TotalFrames)
	}
	return nil
}

func (d *Dataset) readV3EpisodeFile(path string) error {
	p, err := openParquet(path)
	if err != nil {
		return err
	}
	defer p.Close()
	n := p.NumRows()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	ints := map[string]*pqColumn{}
	scalar := func(name string, integer, optional bool) (*pqColumn, error) {
		if !p.has(name) {
			if optional {
				return nil, nil
			}
			return nil, fail("missing column %q", name)
		}
		c, err := p.column(name)
		if err != nil {
			return nil, err
		}
		switch {
		case integer && !c.integer():
			return nil, fail("column %q is %v, want integers", name, c.kind)
		case !integer && !c.numeric():
			return nil, fail("column %q is %v, want numbers", name, c.kind)
		case len(c.nulls) > 0:
			return nil, fail("column %q row %d: null", name, c.nulls[0])
		}
		for r := range c.rows() {
			if len(c.rowFloats(r)) != 1 {
				return nil, fail("column %q row %d: %d values, want one", name, r, len(c.rowFloats(r)))
			}
		}
		ints[name] = c
		return c, nil
	}
	for _, name := range []string{"episode_index", "length", "dataset_from_index", "dataset_to_index", "data/chunk_index", "data/file_index"} {
		if _, err := scalar(name, true, false); err != nil {
			return err
		}
	}
	for _, name := range []string{"meta/episodes/chunk_index", "meta/episodes/file_index", "seed", "decision_step"} {
		if _, err := scalar(name, true, true); err != nil {
			return err
		}
	}
	success, err := scalar("success", true, true)
	if err != nil {
		return err
	}
	type vcols struct{ chunk, file, from, to *pqColumn }
	vids := make([]vcols, len(d.cams))
	for i, c := range d.cams {
		if !c.video {
			continue
		}
		pre := "videos/" + c.key + "/"
		var v vcols
		for _, x := range []struct {
			name    string
			integer bool
			dst     **pqColumn
		}{{"chunk_index", true, &v.chunk}, {"file_index", true, &v.file}, {"from_timestamp", false, &v.from}, {"to_timestamp", false, &v.to}} {
			if *x.dst, err = scalar(pre+x.name, x.integer, false); err != nil {
				return err
			}
		}
		vids[i] = v
	}
	tasks, err := p.column("tasks")
	if err != nil {
		return err
	}
	if tasks.numeric() {
		return fail("column \"tasks\" is %v, want a list of strings", tasks.kind)
	}
	var family, kind *pqColumn
	for _, c := range []struct {
		name string
		dst  **pqColumn
	}{{"family", &family}, {"kind", &kind}} {
		if !p.has(c.name) {
			continue
		}
		if *c.dst, err = p.column(c.name); err != nil {
			return err
		}
		if (*c.dst).numeric() {
			return fail("column %q is %v, want strings", c.name, (*c.dst).kind)
		}
	}
	stats, err := readEpisodeStatsColumns(p)
	if err != nil {
		return err
	}
	get := func(name string, r int) int64 {
		if c := ints[name]; c != nil {
			return c.rowInts(r)[0]
		}
		return 0
	}
	for r := range n {
		ep := lrEpisode{index: int(get("episode_index", r)), length: int(get("length", r)), from: get("dataset_from_index", r),
			chunk: [2]int{int(get("data/chunk_index", r)), int(get("data/file_index", r))}, seed: uint64(get("seed", r)),
			metaFile: [2]int{int(get("meta/episodes/chunk_index", r)), int(get("meta/episodes/file_index", r))}}
		to := get("dataset_to_index", r)
		for _, b := range tasks.rowBytes(r) {
			ep.tasks = append(ep.tasks, string(b))
		}
		if success != nil {
			ok := success.rowInts(r)[0] != 0
			ep.success = &ok
		}
		if family != nil && len(family.rowBytes(r)) == 1 {
			ep.family = string(family.rowBytes(r)[0])
		}
		if kind != nil && len(kind.rowBytes(r)) == 1 {
			ep.kind = string(kind.rowBytes(r)[0])
		}
		if c := ints["decision_step"]; c != nil {
			if d := int(c.rowInts(r)[0]); d >= 0 {
				ep.decision = &d
			}
		}
		switch {
		case ep.length < 1:
			return fail("row %d (episode %d): length %d must be positive", r, ep.index, ep.length)
		case to-ep.from != int64(ep.length):
			return fail("row %d (episode %d): dataset_to_index − dataset_from_index = %d, but length is %d", r, ep.index, to-ep.from, ep.length)
		case ep.chunk[0] < 0 || ep.chunk[1] < 0:
			return fail("row %d (episode %d): negative data/chunk_index or data/file_index", r, ep.index)
		}
		vals := map[string]int{"chunk_index": ep.chunk[0], "file_index": ep.chunk[1]}
		if ep.dataFile, err = formatTemplate(d.info.DataPath, vals, ""); err != nil {
			return fmt.Errorf("%s: data_path: %w", d.path(lerobotInfo), err)
		}
		for i, c := range d.cams {
			if !c.video {
				ep.videos = append(ep.videos, lrVideoRef{})
				continue
			}
			v := vids[i]
			ref := lrVideoRef{chunk: [2]int{int(v.chunk.rowInts(r)[0]), int(v.file.rowInts(r)[0])},
				from: v.from.rowFloats(r)[0], to: v.to.rowFloats(r)[0]}
			if !(ref.from >= 0 && ref.to > ref.from) || math.IsInf(ref.to, 0) {
				return fail("row %d (episode %d): videos/%s time range [%g, %g) is empty or negative", r, ep.index, c.key, ref.from, ref.to)
			}
			if ref.file, err = formatTemplate(d.info.VideoPath, map[string]int{"chunk_index": ref.chunk[0], "file_index": ref.chunk[1]}, c.key); err != nil {
				return fmt.Errorf("%s: video_path: %w", d.path(lerobotInfo), err)
			}
			ep.videos = append(ep.videos, ref)
		}
		if stats != nil {
			ep.stats = stats(r)
			for k, st := range ep.stats {
				if f, ok := d.info.Features.Get(k); ok && (f.DType == "video" || f.DType == "image") {
					st.Shape = []int{len(st.Mean), 1, 1}
				} else {
					st.Shape = []int{len(st.Mean)}
				}
				ep.stats[k] = st
			}
		}
		d.episodes = append(d.episodes, ep)
	}
	return nil
}

// readEpisodeStatsColumns reads the stats/<feature>/<stat> columns of a v3.0 episodes file and
// returns a function giving row r's statistics (nil when there are none).
func readEpisodeStatsColumns(p *pqFile) (func(r int) map[string]Stats, error) {
	type col struct {
		feature, stat string
		c             *pqColumn
	}
	var cols []col
	for _, name := range p.names() {
		rest, ok := strings.CutPrefix(name, "stats/")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		c, err := p.column(name)
		if err != nil {
			return nil, err
		}
		if !c.numeric() {
			return nil, fmt.Errorf("%s: column %q is %v, want numbers", p.path, name, c.kind)
		}
		cols = append(cols, col{rest[:i], rest[i+1:], c})
	}
	if len(cols) == 0 {
		return nil, nil
	}
	return func(r int) map[string]Stats {
		out := map[string]Stats{}
		for _, c := range cols {
			s := out[c.feature]
			v := slices.Clone(c.c.rowFloats(r))
			switch c.stat {
			case "min":
				s.Min = v
			case "max":
				s.Max = v
			case "mean":
				s.Mean = v
			case "std":
				s.Std = v
			case "count":
				if len(v) == 1 {
					s.Count = int64(v[0])
				}
			default:
				if i := slices.Index(StatQuantiles, c.stat); i >= 0 {
					*s.quantiles()[i] = v
				}
			}
			out[c.feature] = s
		}
		for k, s := range out {
			if s.Mean == nil || s.Std == nil || s.Min == nil || s.Max == nil {
				delete(out, k)
			}
		}
		return out
	}, nil
}

// readTasks reads meta/tasks.parquet (v3.0: task_index and the task text, a column "task" or
// the pandas index "__index_level_0__") or meta/tasks.jsonl (v2.x).
func (d *Dataset) readTasks() error {
	d.tasks = map[int]string{}
	var path string
	var idx []int
	var text []string
	if d.v3 {
		path = d.path(lerobotV3Tasks)
		p, err := openParquet(path)
		if err != nil {
			return err
		}
		defer p.Close()
		ti, err := p.column("task_index")
		if err != nil {
			return err
		}
		if !ti.integer() || len(ti.nulls) > 0 {
			return fmt.Errorf("%s: column \"task_index\" must hold integers", path)
		}
		name := ""
		for _, c := range []string{"task", "__index_level_0__"} {
			if p.has(c) {
				name = c
				break
			}
		}
		if name == "" {
			return fmt.Errorf("%s: no task text column (want \"task\" or the pandas index \"__index_level_0__\"; columns %q)", path, p.names())
		}
		tc, err := p.column(name)
		if err != nil {
			return err
		}
		if tc.numeric() {
			return fmt.Errorf("%s: column %q is %v, want strings", path, name, tc.kind)
		}
		for r := range p.NumRows() {
			v, b := ti.rowInts(r), tc.rowBytes(r)
			if len(v) != 1 || len(b) != 1 {
				return fmt.Errorf("%s: row %d: want one task_index and one task", path, r)
			}
			idx, text = append(idx, int(v[0])), append(text, string(b[0]))
		}
	} else {
		path = d.path(lerobotTasks)
		tasks, err := lerobotReadJSONL[lerobotTask](path, "task_index", "task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			idx, text = append(idx, t.TaskIndex), append(text, t.Task)
		}
	}
	for i, ti := range idx {
		if _, dup := d.tasks[ti]; dup {
			return fmt.Errorf("%s: task_index %d repeated", path, ti)
		}
		d.tasks[ti] = text[i]
	}
	if len(idx) != d.info.TotalTasks {
		return fmt.Errorf("%s: %d tasks, but %s says total_tasks %d", path, len(idx), lerobotInfo, d.info.TotalTasks)
	}
	return nil
}

// readStats reads the dataset's statistics: meta/stats.json (v3.0, v2.0) or the per-episode
// statistics of meta/episodes_stats.jsonl aggregated (v2.1; stats.json if that is missing).
// Either may be absent: statistics that are missing are computed from the data when asked for.
// Statistics of a feature must have its dimension (3 per camera) and finite values.
func (d *Dataset) readStats() error {
	d.stats = map[string]Stats{}
	if d.info.CodebaseVersion == V21 {
		path := d.path(lerobotV21EpisodesStats)
		type line struct {
			EpisodeIndex int              `json:"episode_index"`
			Stats        map[string]Stats `json:"stats"`
		}
		if _, err := os.Stat(path); err == nil {
			lines, err := lerobotReadJSONL[line](path, "episode_index", "stats")
			if err != nil {
				return err
			}
			byIndex := map[int]int{}
			for i, e := range d.episodes {
				byIndex[e.index] = i
			}
			var all []map[string]Stats
			for _, l := range lines {
				i, ok := byIndex[l.EpisodeIndex]
				if !ok {
					return fmt.Errorf("%s: episode_index %d is not in %s", path, l.EpisodeIndex, lerobotEpisodes)
				}
				d.episodes[i].stats = l.Stats
				all = append(all, l.Stats)
			}
			for k, m := range all {
				if err := d.checkStats(path, m, fmt.Sprintf("line %d: ", k+1)); err != nil {
					return err
				}
			}
			if d.stats, err = aggregateStatsMaps(all); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			d.statsFile = path
			return nil
		}
	}
	path := d.path(lerobotStats)
	raw, err := safeio.ReadFile(path, safeio.JSONLimit)
	if errors.Is(err, fs.ErrNotExist) {
		for _, e := range d.episodes { // v3.0 without stats.json: the episodes' own, if any
			if e.stats == nil {
				return nil
			}
		}
		var all []map[string]Stats
		for _, e := range d.episodes {
			all = append(all, e.stats)
		}
		if d.stats, err = aggregateStatsMaps(all); err != nil {
			return fmt.Errorf("%s: %w", d.path(lerobotV3EpisodesDir), err)
		}
		d.statsFile = d.path(lerobotV3EpisodesDir)
		return d.checkStats(d.statsFile, d.stats, "")
	}
	if err != nil {
		return lerobotOpenError(path, err)
	}
	if err := json.Unmarshal(raw, &d.stats); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, s := range d.stats {
		if s.Count == 0 { // reel's v2.0 stats.json has no count: they cover every frame
			s.Count = int64(d.info.TotalFrames)
			d.stats[k] = s
		}
	}
	d.statsFile = path
	return d.checkStats(path, d.stats, "")
}

// checkStats checks the statistics of the dataset's features (others are ignored).
func (d *Dataset) checkStats(path string, stats map[string]Stats, where string) error {
	for _, key := range slices.Sorted(maps.Keys(stats)) {
		f, ok := d.info.Features.Get(key)
		if !ok {
			continue
		}
		dim := 0
		switch {
		case f.DType == "video" || f.DType == "image":
			dim = 3
		case isNumericDType(f.DType) && len(f.Shape) == 1:
			dim = f.Shape[0]
		default:
			continue
		}
		if err := stats[key].check(dim); err != nil {
			return fmt.Errorf("%s: %s%s.%w (features.%s.shape in %s)", path, where, key, err, key, lerobotInfo)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Metadata accessors

// Dir returns the dataset's directory.
func (d *Dataset) Dir() string { return d.dir }

// Version returns the codebase_version: "v3.0", "v2.1" or "v2.0".
func (d *Dataset) Version() string { return d.info.CodebaseVersion }

// NumEpisodes returns the number of episodes.
func (d *Dataset) NumEpisodes() int { return len(d.episodes) }

// NumFrames returns the number of frames of all episodes.
func (d *Dataset) NumFrames() int { return d.info.TotalFrames }

// FPS returns the frame rate.
func (d *Dataset) FPS() float64 { return d.info.FPS }

// Info returns the content of meta/info.json.
func (d *Dataset) Info() Info {
	info := d.info
	info.Features = slices.Clone(info.Features)
	info.Splits = maps.Clone(info.Splits)
	return info
}

// Cameras returns the camera names (feature keys without "observation.images.").
func (d *Dataset) Cameras() []string {
	out := make([]string, len(d.cams))
	for i, c := range d.cams {
		out[i] = c.name
	}
	return out
}

// CameraKey returns the feature key of a camera.
func (d *Dataset) CameraKey(camera string) (string, bool) {
	i := d.camIndex(camera)
	if i < 0 {
		return "", false
	}
	return d.cams[i].key, true
}

func (d *Dataset) camIndex(camera string) int {
	return slices.IndexFunc(d.cams, func(c lrCamera) bool { return c.name == camera })
}

// StateKey and ActionKey return the feature keys of the state and the action.
func (d *Dataset) StateKey() string  { return d.stateKey }
func (d *Dataset) ActionKey() string { return d.actionKey }

// Features describes the dataset's observations and actions: cameras at their native sizes,
// state and action dimensions and names, fps.
func (d *Dataset) Features() policy.Features {
	f := policy.Features{StateDim: d.stateDim, ActionDim: d.actionDim, FPS: d.info.FPS}
	for _, c := range d.cams {
		f.Cameras = append(f.Cameras, policy.Camera{Name: c.name, Width: c.w, Height: c.h})
	}
	if s, ok := d.info.Features.Get(d.stateKey); ok {
		f.StateNames = lerobotNames(s.Names, d.stateDim)
	}
	if a, ok := d.info.Features.Get(d.actionKey); ok {
		f.ActionNames = lerobotNames(a.Names, d.actionDim)
	}
	return f
}

// EpisodeMeta is what the metadata says about one episode.
type EpisodeMeta struct {
	Index        int      // position in the dataset, 0..NumEpisodes()-1
	EpisodeIndex int      // episode_index as stored (equal to Index except in a subset)
	Length       int      // frames
	Tasks        []string // instructions
	Success      *bool    // whether the task was solved, when the dataset records it
	Family       string   // reel's task family, when recorded
	Seed         uint64   // reel's scene seed, when recorded
	// Kind and DecisionStep are reward-data labels (see Episode.Kind), when recorded.
	Kind         string
	DecisionStep *int
}

// EpisodeMeta returns episode i's metadata; i must be in [0, NumEpisodes()).
func (d *Dataset) EpisodeMeta(i int) EpisodeMeta {
	e := d.episodes[i]
	return EpisodeMeta{Index: i, EpisodeIndex: e.index, Length: e.length, Tasks: slices.Clone(e.tasks),
		Success: e.success, Family: e.family, Seed: e.seed, Kind: e.kind, DecisionStep: e.decision}
}

// Task returns the text of a task index.
func (d *Dataset) Task(index int) (string, bool) {
	t, ok := d.tasks[index]
	return t, ok
}

func (d *Dataset) checkEpisodeIndex(i int) error {
	if i < 0 || i >= len(d.episodes) {
		return fmt.Errorf("lerobot dataset %s: episode %d out of range [0, %d)", d.dir, i, len(d.episodes))
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Statistics

// Stats returns the statistics of every feature that has them, by feature key: those
// the dataset stores, and for the state and the action, when the dataset lacks them (or lacks
// their quantiles), statistics computed from the data (every episode read; kept). Cameras
// without stored statistics are left out; CameraStats computes them.
func (d *Dataset) Stats() (map[string]Stats, error) {
	out := map[string]Stats{}
	for k, s := range d.stats {
		out[k] = s.clone()
	}
	var missing []string
	for _, key := range []string{d.stateKey, d.actionKey} {
		if key == d.stateKey && d.stateDim == 0 {
			continue
		}
		if s, ok := d.stats[key]; !ok || !s.HasQuantiles() {
			missing = append(missing, key)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	computed, err := d.computedVectorStats()
	if err != nil {
		return nil, err
	}
	for _, key := range missing {
		s, ok := d.stats[key]
		if !ok {
			out[key] = computed[key].clone()
			continue
		}
		c := computed[key] // keep the stored statistics; add the quantiles
		s = s.clone()
		s.Q01, s.Q10, s.Q50, s.Q90, s.Q99 = slices.Clone(c.Q01), slices.Clone(c.Q10), slices.Clone(c.Q50), slices.Clone(c.Q90), slices.Clone(c.Q99)
		out[key] = s
	}
	return out, nil
}

// StatsSource says where Stats' stored statistics come from (a file, or "" if the
// dataset has none).
func (d *Dataset) StatsSource() string { return d.statsFile }

// computedVectorStats computes the state and action statistics of the whole dataset from its
// episodes, each episode's statistics aggregated as LeRobot aggregates them.
func (d *Dataset) computedVectorStats() (map[string]Stats, error) {
	d.mu.Lock()
	if d.computed != nil {
		defer d.mu.Unlock()
		return d.computed, nil
	}
	d.mu.Unlock()
	var states, actions []Stats
	for i := range d.episodes {
		v, err := d.Vectors(i)
		if err != nil {
			return nil, err
		}
		if d.stateDim > 0 {
			states = append(states, vectorFeatureStats(v.State))
		}
		actions = append(actions, vectorFeatureStats(v.Action))
	}
	out := map[string]Stats{}
	var err error
	if out[d.actionKey], err = AggregateStats(actions); err != nil {
		return nil, err
	}
	if d.stateDim > 0 {
		if out[d.stateKey], err = AggregateStats(states); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	d.computed = out
	d.mu.Unlock()
	return out, nil
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
