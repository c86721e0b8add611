package lerobot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/reelml/reel/internal/safeio"
	"io/fs"
	"os"
	"path/filepath"
)

// The v2 layout (codebase_version v2.0 and v2.1: read; v2.1 written by Create):
//
//	meta/info.json        schema: fps, totals, path templates, features (dtype, shape, names)
//	meta/episodes.jsonl   {"episode_index", "tasks", "length"} per episode (+ reel's "family",
//	                      "success", "seed", "kind", "decision_step")
//	meta/tasks.jsonl      {"task_index", "task"} per distinct instruction
//	meta/stats.json       per-feature statistics over all frames
//	meta/episodes_stats.jsonl  per-episode statistics (v2.1 only: what v2.0 → v2.1 added)
//	data/chunk-CCC/episode_EEEEEE.parquet                    one row per frame
//	videos/chunk-CCC/observation.images.CAM/episode_EEEEEE.mp4  one video per camera
//
// with chunk CCC = episode / chunks_size. Parquet rows hold observation.state and action
// (list<float32>), timestamp (float32, seconds), frame_index, episode_index, index (global frame
// index) and task_index (int64). The v3.0 layout is described at Create.

// Names and templates of the LeRobot v2 layout.
const (
	// V21DataPath and V21VideoPath are the data_path and video_path templates of v2.x (the same
	// in v2.0 and v2.1).
	V21DataPath  = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
	V21VideoPath = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
	// defaultChunksSize is the number of files per chunk directory Create and Merge write by
	// default (LeRobot's DEFAULT_CHUNK_SIZE).
	defaultChunksSize = 1000
	// ImagePrefix prefixes a camera name to form its feature (video) key.
	ImagePrefix = "observation.images."
	// StateKey and ActionKey are the state and action feature keys.
	StateKey  = "observation.state"
	ActionKey = "action"

	lerobotRobotType = "reel-sim"
	lerobotMetaDir   = "meta"
	lerobotInfo      = "meta/info.json"
	lerobotEpisodes  = "meta/episodes.jsonl"
	lerobotTasks     = "meta/tasks.jsonl"
	lerobotStats     = "meta/stats.json"
)

// Feature describes one column of a LeRobot dataset in meta/info.json.
type Feature struct {
	Key   string         `json:"-"`     // e.g. "observation.state", "observation.images.scene"
	DType string         `json:"dtype"` // "float32", "int64", "video", ...
	Shape []int          `json:"shape"`
	Names any            `json:"names"`          // nil, a list of names or a {"axis": names} object
	Info  map[string]any `json:"info,omitempty"` // video properties ("video.fps", "video.codec", ...)
}

// Features is the ordered features object of meta/info.json (JSON key order is kept).
type Features []Feature

// Get returns the feature with key.
func (fs Features) Get(key string) (Feature, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f, true
		}
	}
	return Feature{}, false
}

// MarshalJSON writes the features as one JSON object, in order.
func (fs Features) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		v, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", f.Key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of features, keeping the key order.
func (fs *Features) UnmarshalJSON(data []byte) error {
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
		var f Feature
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("feature %q: %w", key, err)
		}
		f.Key = key
		*fs = append(*fs, f)
	}
	return nil
}

// Info is the content of meta/info.json. TotalVideos and TotalChunks exist up to v2.1,
// DataFilesSizeInMB and VideoFilesSizeInMB from v3.0 on.
type Info struct {
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
	Features           Features          `json:"features"`
}

// episodesLine is the common part of a meta/episodes.jsonl line (v2.x). Family, Success and Seed
// are reel extras, zero when a dataset lacks them.
type episodesLine struct {
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

// formatLeRobotPath expands a v2 data_path or video_path template: {episode_chunk},
// {episode_index} and {video_key}, with optional Python format specs "d" or "0Nd" for the
// integers.
func formatLeRobotPath(tmpl string, chunk, index int, videoKey string) (string, error) {
	return formatTemplate(tmpl, map[string]int{"episode_chunk": chunk, "episode_index": index}, videoKey)
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
			return nil, fmt.Errorf("%s:%d: invalid JSON: %w", path, line, err)
		}
		if err := json.Unmarshal(text, &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		for _, k := range required {
			if _, ok := keys[k]; !ok {
				return nil, fmt.Errorf("%s:%d: missing field %q", path, line, k)
			}
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
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
	return fmt.Errorf("%s: %w", path, err)
}

// ---------------------------------------------------------------------------------------------
// Writer

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
