package lerobot

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// EpisodeVectors are the per-frame values of one episode that are not images. They are shared
// with the dataset's cache: read them, do not modify them.
type EpisodeVectors struct {
	State     [][]float32 // T × StateDim (nil when the dataset has no state)
	Action    [][]float32 // T × ActionDim
	Timestamp []float64   // seconds since the episode's start (the parquet "timestamp")
	TaskIndex []int       // per frame (the episode's first task when the column is missing)
	Task      []string    // per frame, the text of TaskIndex
}

// Len is the number of frames.
func (v *EpisodeVectors) Len() int { return len(v.Action) }

// lrFileVectors are the decoded episodes of one data file, read once.
type lrFileVectors struct {
	once sync.Once
	eps  map[int]*lrVecResult // by episode position
	err  error                // the file itself is unreadable
}

type lrVecResult struct {
	v   *EpisodeVectors
	err error
}

// Vectors returns episode i's states, actions, timestamps and tasks, reading its data file on
// first use (a v3.0 file holds many episodes: all of them are read and kept). Rows are checked:
// as many as the episode's length, frame_index 0..T-1, vectors of the features' dimensions,
// finite values, timestamps increasing. Errors name the file, the row and the column.
func (d *Dataset) Vectors(i int) (*EpisodeVectors, error) {
	if err := d.checkEpisodeIndex(i); err != nil {
		return nil, err
	}
	rel := d.episodes[i].dataFile
	d.mu.Lock()
	fv := d.files[rel]
	if fv == nil {
		fv = &lrFileVectors{}
		d.files[rel] = fv
	}
	d.mu.Unlock()
	fv.once.Do(func() { fv.eps, fv.err = d.readDataFile(rel) })
	if fv.err != nil {
		return nil, fv.err
	}
	r := fv.eps[i]
	if r == nil {
		return nil, fmt.Errorf("%s: no rows of episode %d", d.path(rel), d.episodes[i].index)
	}
	return r.v, r.err
}

// readDataFile reads the data parquet file rel and splits it into the episodes that live in it.
func (d *Dataset) readDataFile(rel string) (map[int]*lrVecResult, error) {
	path := d.path(rel)
	p, err := openParquet(path)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var mine []int // positions of the episodes in this file
	for i, e := range d.episodes {
		if e.dataFile == rel {
			mine = append(mine, i)
		}
	}
	vector := func(key string, dim int) (*pqColumn, error) {
		c, err := p.column(key)
		if err != nil {
			return nil, err
		}
		if !c.numeric() || c.integer() {
			return nil, fmt.Errorf("%s: column %q is %v, want a list of float32 or float64", path, key, c.kind)
		}
		return c, nil
	}
	optional := func(key string) (*pqColumn, error) {
		if !p.has(key) {
			return nil, nil
		}
		c, err := p.column(key)
		if err != nil {
			return nil, err
		}
		if !c.numeric() {
			return nil, fmt.Errorf("%s: column %q is %v, want numbers", path, key, c.kind)
		}
		return c, nil
	}
	action, err := vector(d.actionKey, d.actionDim)
	if err != nil {
		return nil, err
	}
	var state *pqColumn
	if d.stateDim > 0 {
		if state, err = vector(d.stateKey, d.stateDim); err != nil {
			return nil, err
		}
	}
	cols := map[string]*pqColumn{}
	for _, k := range []string{"timestamp", "frame_index", "episode_index", "task_index"} {
		if cols[k], err = optional(k); err != nil {
			return nil, err
		}
	}
	epCol := cols["episode_index"]
	if epCol == nil && len(mine) > 1 {
		return nil, fmt.Errorf("%s: missing column \"episode_index\" (the file holds %d episodes)", path, len(mine))
	}
	// Rows of each episode, in file order.
	rows := map[int][]int{}
	byIndex := map[int64]int{}
	for _, i := range mine {
		byIndex[int64(d.episodes[i].index)] = i
	}
	for r := range p.NumRows() {
		if epCol == nil {
			rows[mine[0]] = append(rows[mine[0]], r)
			continue
		}
		v := epCol.rowFloats(r)
		if len(v) != 1 {
			return nil, fmt.Errorf("%s: row %d: episode_index has %d values", path, r, len(v))
		}
		i, ok := byIndex[int64(v[0])]
		if !ok {
			if len(mine) == 1 && !d.v3 {
				return nil, fmt.Errorf("%s: row %d: episode_index %d, want %d", path, r, int64(v[0]), d.episodes[mine[0]].index)
			}
			continue // rows of an episode the metadata does not list: LeRobot ignores them too
		}
		rows[i] = append(rows[i], r)
	}
	out := map[int]*lrVecResult{}
	for _, i := range mine {
		v, err := d.episodeVectors(path, i, rows[i], state, action, cols)
		out[i] = &lrVecResult{v, err}
	}
	return out, nil
}

// episodeVectors assembles and checks episode i from its rows of the file at path.
func (d *Dataset) episodeVectors(path string, i int, rows []int, state, action *pqColumn, cols map[string]*pqColumn) (*EpisodeVectors, error) {
	e := d.episodes[i]
	fail := func(format string, args ...any) (*EpisodeVectors, error) {
		return nil, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	if len(rows) != e.length {
		where := lerobotEpisodes
		if d.v3 {
			where = lerobotV3EpisodesDir
		}
		return fail("%d rows, but %s says episode %d has length %d", len(rows), where, e.index, e.length)
	}
	v := &EpisodeVectors{Action: make([][]float32, len(rows)), Timestamp: make([]float64, len(rows)),
		TaskIndex: make([]int, len(rows)), Task: make([]string, len(rows))}
	if state != nil {
		v.State = make([][]float32, len(rows))
	}
	defTask := -1
	if len(e.tasks) > 0 {
		for ti, t := range d.tasks {
			if t == e.tasks[0] && (defTask < 0 || ti < defTask) {
				defTask = ti
			}
		}
	}
	scalar := func(key string, r int) (float64, bool, error) {
		c := cols[key]
		if c == nil {
			return 0, false, nil
		}
		x := c.rowFloats(r)
		if len(x) != 1 {
			return 0, false, fmt.Errorf("%s: row %d: %s has %d values, want one", path, r, key, len(x))
		}
		return x[0], true, nil
	}
	for t, r := range rows {
		for _, f := range []struct {
			key string
			c   *pqColumn
			dim int
			dst [][]float32
		}{{d.stateKey, state, d.stateDim, v.State}, {d.actionKey, action, d.actionDim, v.Action}} {
			if f.c == nil {
				continue
			}
			x := f.c.rowFloats(r)
			if len(x) != f.dim {
				return fail("row %d: %s has %d values, want %d (features.%s.shape in %s)", r, f.key, len(x), f.dim, f.key, lerobotInfo)
			}
			if j, ok := finite(x); !ok {
				return fail("row %d: %s[%d] is %v", r, f.key, j, x[j])
			}
			f.dst[t] = toFloat32(x)
		}
		if fi, ok, err := scalar("frame_index", r); err != nil {
			return nil, err
		} else if ok && fi != float64(t) {
			return fail("row %d: frame_index %d, want %d (episode %d's frame %d)", r, int64(fi), t, e.index, t)
		}
		ts, ok, err := scalar("timestamp", r)
		if err != nil {
			return nil, err
		}
		if !ok {
			ts = float64(t) / d.info.FPS
		}
		if math.IsNaN(ts) || math.IsInf(ts, 0) || (t > 0 && ts <= v.Timestamp[t-1]) {
			return fail("row %d: timestamp %v is not finite or not after the previous frame's (episode %d)", r, ts, e.index)
		}
		v.Timestamp[t] = ts
		ti, ok, err := scalar("task_index", r)
		if err != nil {
			return nil, err
		}
		task := defTask
		if ok {
			task = int(ti)
		}
		text, known := d.tasks[task]
		switch {
		case known:
		case len(e.tasks) > 0:
			text = e.tasks[0]
		default:
			return fail("row %d: task_index %d is not in the tasks file", r, task)
		}
		v.TaskIndex[t], v.Task[t] = task, text
	}
	return v, nil
}

// Episode reads episode i as an Episode: states, actions, the first task, reel's extras
// (success, family, seed) and every camera's frames at their native size, which must be one
// square size for all cameras (Frames serves any size). Kept for callers of the v2.0 API.
func (d *Dataset) Episode(i int) (Episode, error) {
	if err := d.checkEpisodeIndex(i); err != nil {
		return Episode{}, err
	}
	e := d.episodes[i]
	v, err := d.Vectors(i)
	if err != nil {
		return Episode{}, err
	}
	ep := Episode{Index: i, Seed: e.seed, Family: e.family, Cameras: d.Cameras(), Frames: make([][]float32, len(d.cams)),
		State: cloneRows(v.State), Action: cloneRows(v.Action)}
	if e.success != nil {
		ep.Success = *e.success
	}
	if e.kind != "" || e.decision != nil {
		ep.Kind, ep.DecisionStep = e.kind, -1
		if e.decision != nil {
			ep.DecisionStep = *e.decision
		}
	}
	if len(e.tasks) > 0 {
		ep.Task = e.tasks[0]
	} else {
		ep.Task = v.Task[0]
	}
	for c, cam := range d.cams {
		if cam.w != cam.h || (ep.Size != 0 && cam.w != ep.Size) {
			return Episode{}, fmt.Errorf("lerobot dataset %s: camera %q is %d×%d; Episode needs all cameras square and of one size (use Frames)", d.dir, cam.name, cam.w, cam.h)
		}
		ep.Size = cam.w
		steps := make([]int, e.length)
		for t := range steps {
			steps[t] = t
		}
		ims, err := d.Frames(i, cam.name, steps, cam.w, cam.h, "")
		if err != nil {
			return Episode{}, err
		}
		px := cam.w * cam.h * 3
		ep.Frames[c] = slices.Grow([]float32(nil), e.length*px)
		for _, im := range ims {
			ep.Frames[c] = append(ep.Frames[c], im.Pix...)
		}
	}
	return ep, nil
}

func cloneRows(rows [][]float32) [][]float32 {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}
