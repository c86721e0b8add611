package lerobot

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hyparquetDir is where `make deps` installs the npm package hyparquet (git-ignored).
func hyparquetDir(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil || node == "" {
		t.Skip("node not found: the check of reel's parquet files by an independent reader (hyparquet) needs Node.js (apt-get install nodejs npm; make deps)")
	}
	dir, err := filepath.Abs(filepath.Join("..", ".deps", "node"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet", "package.json")); err != nil {
		t.Skipf("hyparquet not installed in %s: run `make deps` (npm install hyparquet) for the check of reel's parquet files by an independent reader", dir)
	}
	return dir
}

// hyparquetRead reads parquet files with hyparquet (JavaScript, not reel's reader) and returns,
// per file, its rows and key-value metadata.
func hyparquetRead(t *testing.T, files ...string) map[string]struct {
	Rows []map[string]any  `json:"rows"`
	KV   map[string]string `json:"kv"`
} {
	t.Helper()
	dir := hyparquetDir(t)
	const script = `
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet'
const out = {}
for (const path of process.argv.slice(1)) {
  const file = await asyncBufferFromFile(path)
  const md = await parquetMetadataAsync(file)
  const kv = {}
  for (const e of md.key_value_metadata || []) kv[e.key] = e.value
  out[path] = { rows: await parquetReadObjects({ file }), kv }
}
console.log(JSON.stringify(out, (k, v) => typeof v === 'bigint' ? Number(v) : v))
`
	cmd := exec.Command("node", append([]string{"--input-type=module", "-e", script}, files...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var out map[string]struct {
		Rows []map[string]any  `json:"rows"`
		KV   map[string]string `json:"kv"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func floats(v any) []float64 {
	var out []float64
	for _, x := range v.([]any) {
		out = append(out, x.(float64))
	}
	return out
}

// TestV3Hyparquet reads a v3.0 dataset written here with hyparquet and compares every
// value with what was written.
func TestV3Hyparquet(t *testing.T) {
	t.Parallel()
	dir := goodV3(t)
	eps := v3Episodes(4)
	data := filepath.Join(dir, "data/chunk-000/file-000.parquet")
	epsFile := filepath.Join(dir, "meta/episodes/chunk-000/file-000.parquet")
	tasks := filepath.Join(dir, "meta/tasks.parquet")
	got := hyparquetRead(t, data, epsFile, tasks)

	// Data rows.
	rows := got[data].Rows
	require.Len(t, rows, 28)
	k := 0
	taskIdx := map[string]float64{"pick the red square": 0, "push the blue circle": 1, "place the cube": 2}
	for i, ep := range eps {
		for s := range ep.Len() {
			r := rows[k]
			require.Equal(t, toF64(ep.State[s]), floats(r["observation.state"]))
			require.Equal(t, toF64(ep.Action[s]), floats(r["action"]))
			require.Equal(t, float64(float32(float64(s)/testV3FPS)), r["timestamp"])
			require.EqualValues(t, s, r["frame_index"])
			require.EqualValues(t, i, r["episode_index"])
			require.EqualValues(t, k, r["index"])
			require.Equal(t, taskIdx[ep.Task], r["task_index"])
			k++
		}
	}
	// Hugging Face datasets' features schema, with the vectors' fixed length.
	var hf struct {
		Info struct {
			Features map[string]map[string]any `json:"features"`
		} `json:"info"`
	}
	require.NoError(t, json.Unmarshal([]byte(got[data].KV["huggingface"]), &hf))
	require.Equal(t, map[string]any{"feature": map[string]any{"dtype": "float32", "_type": "Value"}, "length": 4.0, "_type": "List"},
		hf.Info.Features["observation.state"])
	require.Equal(t, map[string]any{"dtype": "int64", "_type": "Value"}, hf.Info.Features["index"])

	// Episodes.
	erows := got[epsFile].Rows
	require.Len(t, erows, 4)
	from := 0.0
	for i, r := range erows {
		n := float64(eps[i].Len())
		require.EqualValues(t, i, r["episode_index"])
		require.Equal(t, []any{eps[i].Task}, r["tasks"])
		require.Equal(t, n, r["length"])
		require.Equal(t, from, r["dataset_from_index"])
		require.Equal(t, from+n, r["dataset_to_index"])
		require.Equal(t, 0.0, r["data/chunk_index"])
		require.Equal(t, 0.0, r["data/file_index"])
		for _, cam := range []string{"top", "wrist"} {
			pre := "videos/observation.images." + cam + "/"
			require.Equal(t, 0.0, r[pre+"file_index"])
			require.InDelta(t, from/testV3FPS, r[pre+"from_timestamp"], 1e-12)
			require.InDelta(t, (from+n)/testV3FPS, r[pre+"to_timestamp"], 1e-12)
		}
		require.Equal(t, []any{n}, r["stats/action/count"])
		mean := r["stats/observation.images.top/mean"].([]any) // shape [3, 1, 1]
		require.Len(t, mean, 3)
		require.Len(t, mean[0].([]any), 1)
		require.Len(t, mean[0].([]any)[0].([]any), 1)
		require.Equal(t, []any{float64(i)}, r["stats/episode_index/min"])
		require.Equal(t, *eps[i].Success, r["success"])
		from += n
	}
	// Tasks: task_index and the text as the pandas index.
	require.Equal(t, []map[string]any{
		{"task_index": 0.0, "__index_level_0__": "pick the red square"},
		{"task_index": 1.0, "__index_level_0__": "push the blue circle"},
		{"task_index": 2.0, "__index_level_0__": "place the cube"},
	}, got[tasks].Rows)
	var pandas struct {
		IndexColumns []string `json:"index_columns"`
	}
	require.NoError(t, json.Unmarshal([]byte(got[tasks].KV["pandas"]), &pandas))
	require.Equal(t, []string{"__index_level_0__"}, pandas.IndexColumns)
}

// pyFormat expands a Python format string of LeRobot's templates ({name} and {name:0Nd}) the
// way str.format does, independently of reel's formatTemplate.
func pyFormat(t *testing.T, tmpl string, vals map[string]any) string {
	t.Helper()
	re := regexp.MustCompile(`\{([a-z_]+)(?::0(\d+)d)?\}`)
	out := re.ReplaceAllStringFunc(tmpl, func(m string) string {
		g := re.FindStringSubmatch(m)
		v, ok := vals[g[1]]
		require.True(t, ok, "template field %s", g[1])
		if g[2] == "" {
			return strings.TrimSuffix(strings.TrimPrefix(strconv.Quote(v.(string)), `"`), `"`)
		}
		w, _ := strconv.Atoi(g[2])
		s := strconv.Itoa(v.(int))
		for len(s) < w {
			s = "0" + s
		}
		return s
	})
	require.NotContains(t, out, "{")
	return out
}

// TestV3Rules checks a dataset written here against what LeRobot v3.0's loader requires
// of a dataset (huggingface/lerobot src/lerobot/datasets/utils.py DatasetInfo,
// dataset_metadata.py, compute_stats.py), reading the files directly.
func TestV3Rules(t *testing.T) {
	t.Parallel()
	dir := goodV3(t)
	// info.json: DatasetInfo's fields, and nothing it would warn about; fps an integer.
	info := readJSONMap(t, filepath.Join(dir, "meta/info.json"))
	fields := []string{"codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "chunks_size",
		"data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "robot_type", "splits"}
	for k := range info {
		require.Contains(t, fields, k, "info.json field %q is not one of DatasetInfo's", k)
	}
	for _, k := range fields {
		require.Contains(t, info, k)
	}
	fps := info["fps"].(float64)
	require.Equal(t, math.Trunc(fps), fps, "fps must be an int")
	require.Equal(t, map[string]any{"train": "0:4"}, info["splits"])
	features := info["features"].(map[string]any)
	for _, k := range []string{"timestamp", "frame_index", "episode_index", "index", "task_index"} { // DEFAULT_FEATURES
		require.Contains(t, features, k)
	}
	// Episodes: 0..N-1, consecutive frame ranges, files that exist, video ranges inside them.
	cols, _ := readTestColumns(t, filepath.Join(dir, "meta/episodes/chunk-000/file-000.parquet"))
	col := func(name string) []any { return cols[colIndex(cols, name)].vals }
	next := int64(0)
	for i := range col("episode_index") {
		require.Equal(t, int64(i), col("episode_index")[i])
		require.Equal(t, next, col("dataset_from_index")[i])
		next = col("dataset_to_index")[i].(int64)
		data := pyFormat(t, info["data_path"].(string), map[string]any{"chunk_index": int(col("data/chunk_index")[i].(int64)),
			"file_index": int(col("data/file_index")[i].(int64))})
		require.FileExists(t, filepath.Join(dir, data))
		for _, key := range []string{"observation.images.top", "observation.images.wrist"} {
			pre := "videos/" + key + "/"
			video := pyFormat(t, info["video_path"].(string), map[string]any{"video_key": key,
				"chunk_index": int(col(pre + "chunk_index")[i].(int64)), "file_index": int(col(pre + "file_index")[i].(int64))})
			n, err := videoFrames(filepath.Join(dir, video))
			require.NoError(t, err)
			require.LessOrEqual(t, col(pre + "to_timestamp")[i].(float64), float64(n)/fps+1e-9)
		}
	}
	require.EqualValues(t, info["total_frames"], next)
	// stats.json: every feature, every statistic, images [3, 1, 1], count [n].
	stats := readJSONMap(t, filepath.Join(dir, "meta/stats.json"))
	require.ElementsMatch(t, slices.Collect(mapKeys(features)), slices.Collect(mapKeys(stats)))
	for key, s := range stats {
		m := s.(map[string]any)
		for _, st := range []string{"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"} {
			require.Contains(t, m, st, "%s.%s", key, st)
		}
		require.Len(t, m["count"], 1)
		if strings.Contains(key, "image") { // _validate_stat_value
			for _, st := range []string{"min", "max", "mean", "std", "q01", "q99"} {
				v := m[st].([]any)
				require.Len(t, v, 3)
				require.Len(t, v[0].([]any), 1)
				require.Len(t, v[0].([]any)[0].([]any), 1)
				x := v[0].([]any)[0].([]any)[0].(float64)
				require.True(t, x >= -1e-9 && x <= 1+1e-9, "%s.%s in [0, 1]", key, st)
			}
		}
	}
	// tasks.parquet: task_index and the text.
	tcols, _ := readTestColumns(t, filepath.Join(dir, "meta/tasks.parquet"))
	require.Equal(t, "task_index", tcols[0].name)
	require.Equal(t, "__index_level_0__", tcols[1].name)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
