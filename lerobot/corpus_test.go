package lerobot

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/reelml/reel/mediaio"
	"github.com/stretchr/testify/require"
)

var (
	goodV3Once sync.Once
	goodV3Dir  string
	goodV3Err  error
)

// goodV3 returns a v3.0 dataset of v3Episodes(4), written once per test binary; tests that
// change it work on a copy (copyDir).
func goodV3(t *testing.T) string {
	t.Helper()
	requireFFmpeg(t)
	goodV3Once.Do(func() {
		dir, err := os.MkdirTemp("", "reel-lerobot-good-")
		if err != nil {
			goodV3Err = err
			return
		}
		goodV3Dir = filepath.Join(dir, "ds")
		w, err := Create(goodV3Dir, WriterConfig{FPS: testV3FPS})
		if err != nil {
			goodV3Err = err
			return
		}
		for _, ep := range v3Episodes(4) {
			if goodV3Err = w.WriteStored(ep); goodV3Err != nil {
				return
			}
		}
		goodV3Err = w.Close()
	})
	require.NoError(t, goodV3Err)
	return goodV3Dir
}

var (
	goodV21Once sync.Once
	goodV21Dir  string
	goodV21Err  error
)

// goodV21 returns the v2.1 dataset of v3Episodes(4), written once per test binary.
func goodV21(t *testing.T) string {
	t.Helper()
	requireFFmpeg(t)
	goodV21Once.Do(func() {
		dir, err := os.MkdirTemp("", "reel-lerobot-good21-")
		if err != nil {
			goodV21Err = err
			return
		}
		goodV21Dir = filepath.Join(dir, "ds")
		w, err := Create(goodV21Dir, WriterConfig{FPS: testV3FPS, Format: V21})
		if err != nil {
			goodV21Err = err
			return
		}
		for _, ep := range v3Episodes(4) {
			if goodV21Err = w.WriteStored(ep); goodV21Err != nil {
				return
			}
		}
		goodV21Err = w.Close()
	})
	require.NoError(t, goodV21Err)
	return goodV21Dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{goodV3Dir, goodV21Dir} {
		if d != "" {
			os.RemoveAll(filepath.Dir(d))
		}
	}
	os.Exit(code)
}

// TestMalformedV3 is a corpus of broken datasets, each made from a good one by one
// change: every one is refused with one line naming the file and the field, at open or when
// the episode is read, and never panics.
func TestMalformedV3(t *testing.T) {
	t.Parallel()
	good := goodV3(t)
	info := filepath.FromSlash("meta/info.json")
	episodes := filepath.FromSlash("meta/episodes/chunk-000/file-000.parquet")
	dataFile := filepath.FromSlash("data/chunk-000/file-000.parquet")
	tasks := filepath.FromSlash("meta/tasks.parquet")
	topVideo := filepath.FromSlash("videos/observation.images.top/chunk-000/file-000.mp4")
	setInfo := func(key string, v any) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, info), func(m map[string]any) {
				if v == nil {
					delete(m, key)
				} else {
					m[key] = v
				}
			})
		}
	}
	editCol := func(file, col string, edit func(c *testCol)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			editParquet(t, filepath.Join(dir, file), func(cols []testCol) []testCol {
				i := colIndex(cols, col)
				require.GreaterOrEqual(t, i, 0, col)
				edit(&cols[i])
				if cols[i].typ == nil {
					return append(cols[:i], cols[i+1:]...)
				}
				return cols
			})
		}
	}
	writeFile := func(file string, content []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), content, 0o644))
		}
	}
	truncate := func(file string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, file)
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, raw[:len(raw)/2], 0o644))
		}
	}
	for _, c := range []struct {
		name   string
		break_ func(t *testing.T, dir string)
		file   string // named in the error
		want   string
		atRead bool // the error comes when episode 1 is read, not at open
	}{
		{"missing info.json", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, info))) },
			"", "missing meta/info.json", false},
		{"info.json not JSON", writeFile(info, []byte("{\"fps\": 10,")), info, "invalid JSON", false},
		{"fps wrong type", setInfo("fps", "ten"), info, `field "fps": want float64, got JSON string`, false},
		{"fps zero", setInfo("fps", 0), info, "field fps: 0 is not a frame rate in (0, 1000]", false},
		{"missing features", setInfo("features", nil), info, `missing field "features"`, false},
		{"missing total_frames", setInfo("total_frames", nil), info, `missing field "total_frames"`, false},
		{"v2 data_path", setInfo("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"), info,
			"unknown field {episode_chunk}", false},
		{"data_path escapes", setInfo("data_path", "../data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"), info,
			"must be a relative path inside the dataset", false},
		{"video_path without file_index", setInfo("video_path", "videos/{video_key}/chunk-{chunk_index:03d}.mp4"), info,
			"does not use {file_index}", false},
		{"video_path bad spec", setInfo("video_path", "videos/{video_key}/chunk-{chunk_index:03x}/file-{file_index:03d}.mp4"), info,
			`format spec "03x" not supported`, false},
		{"total_frames mismatch", setInfo("total_frames", 29), "meta/episodes", "lengths add up to 28 frames, but meta/info.json says total_frames 29", false},
		{"total_tasks mismatch", setInfo("total_tasks", 4), tasks, "3 tasks, but meta/info.json says total_tasks 4", false},
		{"action shape", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, info), func(m map[string]any) {
				m["features"].(map[string]any)["action"].(map[string]any)["shape"] = []int{3, 1}
			})
		}, info, "features.action.shape [3 1], want [dim] with dim ≥ 1", false},
		{"camera channels", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, info), func(m map[string]any) {
				m["features"].(map[string]any)["observation.images.top"].(map[string]any)["shape"] = []int{64, 80}
			})
		}, info, "features.observation.images.top.shape [64 80]: want [height, width, 3]", false},
		{"truncated episodes parquet", truncate(episodes), episodes, "not a readable parquet file", false},
		{"episodes without length", editCol(episodes, "length", func(c *testCol) { c.typ = nil }), episodes, `missing column "length"`, false},
		{"episodes length as strings", editCol(episodes, "length", func(c *testCol) {
			c.typ = reflect.TypeOf("")
			for i := range c.vals {
				c.vals[i] = "five"
			}
		}), episodes, `column "length" is BYTE_ARRAY, want integers`, false},
		{"episode length mismatch", editCol(episodes, "length", func(c *testCol) { c.vals[1] = int64(7) }), episodes,
			"row 1 (episode 1): dataset_to_index − dataset_from_index = 6, but length is 7", false},
		{"episode index repeated", editCol(episodes, "episode_index", func(c *testCol) { c.vals[2] = int64(1) }), "meta/episodes",
			"episode_index 2 missing or repeated", false},
		{"video range empty", editCol(episodes, "videos/observation.images.top/to_timestamp", func(c *testCol) { c.vals[0] = 0.0 }), episodes,
			"videos/observation.images.top time range [0, 0) is empty", false},
		{"tasks without text", func(t *testing.T, dir string) {
			editParquet(t, filepath.Join(dir, tasks), func(cols []testCol) []testCol { return cols[:1] })
		}, tasks, "no task text column", false},
		{"stats NaN", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "meta/stats.json")
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			s := strings.Replace(string(raw), `"mean":[`, `"mean":[NaN,`, 1)
			require.NoError(t, os.WriteFile(path, []byte(s), 0o644))
		}, "meta/stats.json", "invalid character 'N'", false},
		{"stats dims", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "meta/stats.json"), func(m map[string]any) {
				m["action"].(map[string]any)["std"] = []float64{1, 2}
			})
		}, "meta/stats.json", "action.std has 2 values, want 3", false},
		{"truncated data parquet", truncate(dataFile), dataFile, "not a readable parquet file", true},
		{"data parquet garbage", writeFile(dataFile, []byte("PAR1 but not really")), dataFile, "parquet", true},
		{"missing data parquet", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, dataFile))) },
			dataFile, "missing file", true},
		{"action as int64", editCol(dataFile, "action", func(c *testCol) {
			c.typ = reflect.TypeOf([]int64{})
			for i := range c.vals {
				c.vals[i] = []int64{1, 2, 3}
			}
		}), dataFile, `column "action" is INT64, want a list of float32 or float64`, true},
		{"state short", editCol(dataFile, "observation.state", func(c *testCol) { c.vals[7] = c.vals[7].([]float32)[:3] }), dataFile,
			"row 7: observation.state has 3 values, want 4", true},
		{"state NaN", editCol(dataFile, "observation.state", func(c *testCol) {
			c.vals[8] = []float32{1, float32(math.NaN()), 3, 4}
		}), dataFile, "row 8: observation.state[1] is NaN", true},
		{"missing rows", func(t *testing.T, dir string) {
			editParquet(t, filepath.Join(dir, dataFile), func(cols []testCol) []testCol {
				for i := range cols {
					cols[i].vals = append(cols[i].vals[:6], cols[i].vals[7:]...) // drop episode 1's first frame
				}
				return cols
			})
		}, dataFile, "5 rows, but meta/episodes says episode 1 has length 6", true},
		{"frame_index gap", editCol(dataFile, "frame_index", func(c *testCol) { c.vals[9] = int64(9) }), dataFile,
			"row 9: frame_index 9, want 4", true},
		{"timestamps backwards", editCol(dataFile, "timestamp", func(c *testCol) { c.vals[8] = float32(0) }), dataFile,
			"row 8: timestamp 0 is not finite or not after the previous frame's", true},
		{"missing video", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, topVideo))) },
			topVideo, "no such file or directory", true},
		{"empty video", writeFile(topVideo, nil), topVideo, "empty file", true},
		{"garbage video", writeFile(topVideo, []byte("this is not an mp4 file at all")), topVideo, "ffmpeg:", true},
		{"short video", func(t *testing.T, dir string) {
			path := filepath.Join(dir, topVideo)
			tmp := path + ".short.mp4"
			require.NoError(t, mediaio.Run([]string{"-v", "error", "-i", "file:" + path, "-frames:v", "8", "-c", "copy", "file:" + tmp}, nil, nil, ""))
			require.NoError(t, os.Rename(tmp, path))
		}, topVideo, "the video ends at 0.7", true},
		{"video offset", editCol(episodes, "videos/observation.images.top/from_timestamp", func(c *testCol) { c.vals[1] = 0.52 }), topVideo,
			"no frame within 0.0001 s of 0.520000 s", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, good)
			c.break_(t, dir)
			ds, err := Open(dir)
			if c.atRead {
				require.NoError(t, err)
				_, err = ds.Vectors(1)
				if err == nil {
					_, err = ds.Frames(1, "top", []int{0, 5}, 16, 16, "")
				}
			}
			require.Error(t, err)
			t.Log(err)
			require.NotContains(t, err.Error(), "\n")
			require.Contains(t, err.Error(), filepath.Join(dir, c.file))
			require.Contains(t, err.Error(), c.want)
		})
	}
}
