package lerobot

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The LeRobot layouts this package reads (huggingface/lerobot src/lerobot/datasets/utils.py and,
// for v2.x, src/lerobot/scripts/convert_dataset_v21_to_v30.py):
//
//	v3.0  data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet      many episodes per file
//	      videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4  many per file
//	      meta/episodes/chunk-*/file-*.parquet  one row per episode: lengths, tasks, files,
//	                                            frame ranges, video time ranges, stats/<key>/<stat>
//	      meta/tasks.parquet  task_index, the task text as the pandas index
//	      meta/stats.json
//	v2.1  data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet  one file per episode
//	      videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
//	      meta/episodes.jsonl, meta/tasks.jsonl, meta/episodes_stats.jsonl (no stats.json)
//	v2.0  as v2.1 with meta/stats.json instead of episodes_stats.jsonl

// LeRobot codebase versions.
const (
	V20 = "v2.0"
	V21 = "v2.1"
	V30 = "v3.0"
)

// Paths and defaults of the v3.0 layout (huggingface/lerobot src/lerobot/datasets/utils.py).
const (
	V3DataPath                = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
	V3VideoPath               = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
	lerobotV3EpisodesPath     = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
	lerobotV3EpisodesDir      = "meta/episodes"
	lerobotV3Tasks            = "meta/tasks.parquet"
	lerobotV21EpisodesStats   = "meta/episodes_stats.jsonl"
	lerobotDefaultDataFileMB  = 100
	lerobotDefaultVideoFileMB = 200
	// ToleranceS is how far (seconds) a decoded video frame's timestamp may be from the
	// parquet timestamp it is looked up by (Dataset's tolerance_s).
	ToleranceS = 1e-4
)

// templateFields are the fields a path template may use, per layout.
var templateFields = map[string][]string{
	"v2-data":  {"episode_chunk", "episode_index"},
	"v2-video": {"episode_chunk", "episode_index", "video_key"},
	"v3-data":  {"chunk_index", "file_index"},
	"v3-video": {"chunk_index", "file_index", "video_key"},
}

// checkTemplate checks that tmpl (a Python format string) uses only the allowed fields and every
// required one.
func checkTemplate(tmpl string, allowed, required []string) error {
	if tmpl == "" {
		return errors.New("missing")
	}
	vals := map[string]int{}
	for _, f := range allowed {
		vals[f] = 0
	}
	if _, err := formatTemplate(tmpl, vals, "k"); err != nil {
		return err
	}
	for _, f := range required {
		if !strings.Contains(tmpl, "{"+f) {
			return fmt.Errorf("does not use {%s}", f)
		}
	}
	if strings.Contains(tmpl, "..") || strings.HasPrefix(tmpl, "/") {
		return errors.New("must be a relative path inside the dataset")
	}
	return nil
}

// formatTemplate expands a data_path or video_path template: integer fields from vals (with
// optional Python format specs "d" or "0Nd") and {video_key}.
func formatTemplate(tmpl string, vals map[string]int, videoKey string) (string, error) {
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			if strings.IndexByte(tmpl, '}') >= 0 {
				return "", errors.New("unmatched '}'")
			}
			b.WriteString(tmpl)
			return b.String(), nil
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed '{' in template")
		}
		if strings.IndexByte(tmpl[:open], '}') >= 0 {
			return "", errors.New("unmatched '}'")
		}
		b.WriteString(tmpl[:open])
		name, spec, _ := strings.Cut(tmpl[open+1:open+end], ":")
		if name == "video_key" {
			if spec != "" {
				return "", fmt.Errorf("format spec %q not supported for {video_key}", spec)
			}
			if videoKey == "" {
				return "", errors.New("unknown field {video_key}")
			}
			b.WriteString(videoKey)
		} else {
			n, ok := vals[name]
			if !ok {
				return "", fmt.Errorf("unknown field {%s}", name)
			}
			width := 0
			if spec != "" {
				digits, ok := strings.CutSuffix(strings.TrimPrefix(spec, "0"), "d")
				w, err := strconv.Atoi(cmp.Or(digits, "0"))
				if !ok || err != nil || w < 0 || w > 20 {
					return "", fmt.Errorf("format spec %q not supported (want d or 0Nd)", spec)
				}
				width = w
			}
			fmt.Fprintf(&b, "%0*d", width, n)
		}
		tmpl = tmpl[open+end+1:]
	}
}

// lerobotNames flattens a feature's "names": a list of strings, a list holding one list of
// strings (as some v2.1 datasets write it), or an object with one list ({"motors": [...]}).
// Anything else, or a count other than dim, gives nil.
func lerobotNames(names any, dim int) []string {
	var list []any
	switch t := names.(type) {
	case []any:
		list = t
		if len(t) == 1 {
			if inner, ok := t[0].([]any); ok {
				list = inner
			}
		}
	case map[string]any:
		if len(t) != 1 {
			return nil
		}
		for _, v := range t {
			list, _ = v.([]any)
		}
	}
	if len(list) != dim {
		return nil
	}
	out := make([]string, dim)
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		out[i] = s
	}
	return out
}

// CameraName is the camera name of a video or image feature key: the key without
// "observation.images." ("observation.image" is "image"; other "observation.X" keys are "X").
func CameraName(key string) string {
	if name, ok := strings.CutPrefix(key, ImagePrefix); ok {
		return name
	}
	if name, ok := strings.CutPrefix(key, "observation."); ok {
		return name
	}
	return key
}

// vectorShape returns the dimension of a numeric vector feature (shape [d]).
func vectorShape(f Feature) (int, error) {
	switch f.DType {
	case "float32", "float64":
	default:
		return 0, fmt.Errorf("dtype %q, want float32 or float64", f.DType)
	}
	if len(f.Shape) != 1 || f.Shape[0] < 1 {
		return 0, fmt.Errorf("shape %v, want [dim] with dim ≥ 1", f.Shape)
	}
	return f.Shape[0], nil
}

// numericDTypes are the dtypes of features LeRobot computes statistics of (besides cameras).
var numericDTypes = []string{"float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"}

func isNumericDType(dtype string) bool { return slices.Contains(numericDTypes, dtype) }

func isIntDType(dtype string) bool {
	return strings.HasPrefix(dtype, "int") || dtype == "uint8" || dtype == "bool"
}
