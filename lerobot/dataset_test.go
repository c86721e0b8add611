package lerobot

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/reelml/reel/internal/rng"
	"github.com/stretchr/testify/require"
)

const (
	testLRFPS  = 10
	testLRSize = 16
)

// testEpisodes returns 3 episodes of 5, 6 and 8 steps with random state (dim 4) and action
// (dim 3), and two cameras of random blocky frames (smooth enough for the video codec).
func testEpisodes() []Episode {
	r := rng.New(42)
	tasks := []string{"pick the red square", "push the blue circle", "pick the red square"}
	families := []string{"pick", "push", "pick"}
	var eps []Episode
	for i, steps := range []int{5, 6, 8} {
		ep := Episode{Index: i, Seed: uint64(1000 + i), Task: tasks[i], Family: families[i], Size: testLRSize,
			Cameras: []string{"scene", "wrist"}, Success: i != 1}
		for range steps {
			s := make([]float32, 4)
			for j := range s {
				s[j] = float32(r.NormFloat64()*2 + float64(j))
			}
			a := make([]float32, 3)
			for j := range a {
				a[j] = float32(r.Float64()*2 - 1)
			}
			ep.State = append(ep.State, s)
			ep.Action = append(ep.Action, a)
		}
		for range ep.Cameras {
			frames := make([]float32, 0, steps*testLRSize*testLRSize*3)
			for range steps {
				// a background color with a differently colored 8×8 block
				var bg, fg [3]float32
				for c := range 3 {
					bg[c], fg[c] = r.Float32(), r.Float32()
				}
				bx, by := 2*r.IntN(5), 2*r.IntN(5)
				for y := range testLRSize {
					for x := range testLRSize {
						col := bg
						if x >= bx && x < bx+8 && y >= by && y < by+8 {
							col = fg
						}
						frames = append(frames, col[:]...)
					}
				}
			}
			ep.Frames = append(ep.Frames, frames)
		}
		eps = append(eps, ep)
	}
	return eps
}

// writeTestDataset writes eps into dir in the v2.0 layout: the last episode first, then the
// others concurrently. reel writes v2.1 only; a v2.0 dataset is a v2.1 one without
// meta/episodes_stats.jsonl (the file LeRobot's convert_dataset_v20_to_v21.py adds) and with
// codebase_version "v2.0", so the v2.1 output is turned into that (toV20).
func writeTestDataset(t *testing.T, dir string, eps []Episode) {
	t.Helper()
	w, err := Create(dir, WriterConfig{Format: V21, FPS: testLRFPS})
	require.NoError(t, err)
	require.NoError(t, w.Write(eps[len(eps)-1]))
	var wg sync.WaitGroup
	errs := make([]error, len(eps)-1)
	for i := range eps[:len(eps)-1] {
		wg.Go(func() { errs[i] = w.Write(eps[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	toV20(t, dir)
}

// toV20 rewrites the v2.1 dataset in dir into the v2.0 layout (see writeTestDataset): the
// per-episode statistics are replaced by meta/stats.json, their aggregate over the dataset.
func toV20(t *testing.T, dir string) {
	t.Helper()
	ds, err := Open(dir)
	require.NoError(t, err)
	stats, err := ds.Stats()
	require.NoError(t, err)
	var order []string
	for _, f := range ds.Info().Features {
		order = append(order, f.Key)
	}
	raw, err := marshalStatsJSON(stats, order)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meta", "stats.json"), raw, 0o644))
	require.NoError(t, os.Remove(filepath.Join(dir, "meta", "episodes_stats.jsonl")))
	path := filepath.Join(dir, "meta", "info.json")
	raw, err = os.ReadFile(path)
	require.NoError(t, err)
	re := regexp.MustCompile(`"codebase_version":\s*"v2\.1"`)
	require.True(t, re.Match(raw), "%s: no v2.1 codebase_version", path)
	require.NoError(t, os.WriteFile(path, re.ReplaceAll(raw, []byte(`"codebase_version": "v2.0"`)), 0o644))
}

func readJSONLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// directStats computes the statistics of rows over all episodes in two passes.
func directStats(rows [][]float32) (mean, std, lo, hi []float64) {
	d := len(rows[0])
	mean, std, lo, hi = make([]float64, d), make([]float64, d), make([]float64, d), make([]float64, d)
	for j := range d {
		lo[j], hi[j] = math.Inf(1), math.Inf(-1)
		for _, r := range rows {
			mean[j] += float64(r[j])
			lo[j], hi[j] = min(lo[j], float64(r[j])), max(hi[j], float64(r[j]))
		}
		mean[j] /= float64(len(rows))
		for _, r := range rows {
			std[j] += (float64(r[j]) - mean[j]) * (float64(r[j]) - mean[j])
		}
		std[j] = math.Sqrt(std[j] / float64(len(rows)))
	}
	return
}

func TestRoundTrip(t *testing.T) {
	requireFFmpeg(t)
	dir := filepath.Join(t.TempDir(), "ds")
	eps := testEpisodes()
	writeTestDataset(t, dir, eps)

	// Layout, with no temporary file left behind.
	for _, rel := range []string{
		"meta/info.json", "meta/episodes.jsonl", "meta/tasks.jsonl", "meta/stats.json",
		"data/chunk-000/episode_000000.parquet", "data/chunk-000/episode_000002.parquet",
		"videos/chunk-000/observation.images.scene/episode_000000.mp4",
		"videos/chunk-000/observation.images.wrist/episode_000002.mp4",
	} {
		require.FileExists(t, filepath.Join(dir, rel))
	}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		require.NotContains(t, filepath.Base(p), ".tmp", p)
		return err
	}))

	// meta/info.json
	raw, err := os.ReadFile(filepath.Join(dir, "meta/info.json"))
	require.NoError(t, err)
	var info map[string]any
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, "v2.0", info["codebase_version"])
	require.Equal(t, "reel-sim", info["robot_type"])
	require.EqualValues(t, testLRFPS, info["fps"])
	require.EqualValues(t, 3, info["total_episodes"])
	require.EqualValues(t, 19, info["total_frames"])
	require.EqualValues(t, 2, info["total_tasks"])
	require.EqualValues(t, 6, info["total_videos"])
	require.EqualValues(t, 1000, info["chunks_size"])
	require.Equal(t, "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet", info["data_path"])
	require.Equal(t, "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4", info["video_path"])
	features := info["features"].(map[string]any)
	state := features["observation.state"].(map[string]any)
	require.Equal(t, "float32", state["dtype"])
	require.Equal(t, []any{4.0}, state["shape"])
	require.Equal(t, []any{"state_0", "state_1", "state_2", "state_3"}, state["names"])
	require.Equal(t, []any{3.0}, features["action"].(map[string]any)["shape"])
	wrist := features["observation.images.wrist"].(map[string]any)
	require.Equal(t, "video", wrist["dtype"])
	require.Equal(t, []any{16.0, 16.0, 3.0}, wrist["shape"])
	require.Equal(t, []any{"height", "width", "channels"}, wrist["names"])
	require.EqualValues(t, testLRFPS, wrist["info"].(map[string]any)["video.fps"])
	for _, k := range []string{"timestamp", "frame_index", "episode_index", "index", "task_index"} {
		require.Contains(t, features, k)
	}
	// Features keep their order.
	order := []string{`"observation.state"`, `"action"`, `"observation.images.scene"`, `"observation.images.wrist"`,
		`"timestamp"`, `"frame_index"`, `"episode_index"`, `"index"`, `"task_index"`}
	last := -1
	for _, k := range order {
		i := strings.Index(string(raw), k+": {")
		require.Greater(t, i, last, k)
		last = i
	}

	// meta/episodes.jsonl and meta/tasks.jsonl: task indices follow episode order.
	require.Equal(t, []string{
		`{"episode_index":0,"tasks":["pick the red square"],"length":5,"family":"pick","success":true,"seed":1000}`,
		`{"episode_index":1,"tasks":["push the blue circle"],"length":6,"family":"push","success":false,"seed":1001}`,
		`{"episode_index":2,"tasks":["pick the red square"],"length":8,"family":"pick","success":true,"seed":1002}`,
	}, readJSONLines(t, filepath.Join(dir, "meta/episodes.jsonl")))
	require.Equal(t, []string{
		`{"task_index":0,"task":"pick the red square"}`,
		`{"task_index":1,"task":"push the blue circle"}`,
	}, readJSONLines(t, filepath.Join(dir, "meta/tasks.jsonl")))

	// Parquet columns of episode 1: the global index continues after episode 0's 5 frames.
	pqPath := filepath.Join(dir, "data/chunk-000/episode_000001.parquet")
	rows, err := parquet.ReadFile[lerobotRow](pqPath)
	require.NoError(t, err)
	require.Len(t, rows, 6)
	for i, r := range rows {
		require.Equal(t, eps[1].State[i], r.State)
		require.Equal(t, eps[1].Action[i], r.Action)
		require.Equal(t, float32(float64(i)/testLRFPS), r.Timestamp)
		require.EqualValues(t, i, r.FrameIndex)
		require.EqualValues(t, 1, r.EpisodeIndex)
		require.EqualValues(t, 5+i, r.Index)
		require.EqualValues(t, 1, r.TaskIndex)
	}
	f, err := os.Open(pqPath)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	var cols []string
	for _, fld := range pf.Schema().Fields() {
		cols = append(cols, fld.Name())
	}
	require.ElementsMatch(t, []string{"observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"}, cols)

	// Read back.
	ds, err := Open(dir)
	require.NoError(t, err)
	require.Equal(t, 3, ds.NumEpisodes())
	require.Equal(t, []string{"scene", "wrist"}, ds.Cameras())
	require.Equal(t, 19, ds.Info().TotalFrames)
	require.Equal(t, 8, ds.EpisodeMeta(2).Length)
	for i, want := range eps {
		got, err := ds.Episode(i)
		require.NoError(t, err)
		require.Equal(t, want.Index, got.Index)
		require.Equal(t, want.Seed, got.Seed)
		require.Equal(t, want.Task, got.Task)
		require.Equal(t, want.Family, got.Family)
		require.Equal(t, want.Success, got.Success)
		require.Equal(t, want.Size, got.Size)
		require.Equal(t, want.Cameras, got.Cameras)
		require.Equal(t, want.State, got.State)
		require.Equal(t, want.Action, got.Action)
		require.Len(t, got.Frames, 2)
		fb := testLRSize * testLRSize * 3
		for c := range want.Frames {
			require.Len(t, got.Frames[c], len(want.Frames[c]))
			mae := meanAbsDiff(want.Frames[c], got.Frames[c])
			require.Less(t, mae, 0.08, "episode %d camera %d", i, c)
			for s := range want.Len() { // each frame is its own, in order
				require.Less(t, meanAbsDiff(want.Frames[c][s*fb:(s+1)*fb], got.Frames[c][s*fb:(s+1)*fb]), 0.1)
			}
		}
	}
	_, err = ds.Episode(3)
	require.ErrorContains(t, err, "episode 3 out of range [0, 3)")

	// Stats equal a direct computation over all frames, and stats.json holds them.
	var allState, allAction [][]float32
	for _, ep := range eps {
		allState = append(allState, ep.State...)
		allAction = append(allAction, ep.Action...)
	}
	stats, err := ds.Stats()
	require.NoError(t, err)
	for _, c := range []struct {
		got  Stats
		rows [][]float32
	}{{stats[StateKey], allState}, {stats[ActionKey], allAction}} {
		mean, std, lo, hi := directStats(c.rows)
		require.Len(t, c.got.Mean, len(mean))
		for j := range mean {
			require.InDelta(t, mean[j], c.got.Mean[j], 1e-5)
			require.InDelta(t, std[j], c.got.Std[j], 1e-5)
			require.InDelta(t, lo[j], c.got.Min[j], 1e-7)
			require.InDelta(t, hi[j], c.got.Max[j], 1e-7)
		}
	}
	raw, err = os.ReadFile(filepath.Join(dir, "meta/stats.json"))
	require.NoError(t, err)
	var fileStats map[string]Stats
	require.NoError(t, json.Unmarshal(raw, &fileStats))
	require.InDeltaSlice(t, stats[StateKey].Std, fileStats[StateKey].Std, 1e-12)
	require.InDeltaSlice(t, stats[ActionKey].Mean, fileStats[ActionKey].Mean, 1e-12)
}

// editJSON rewrites the JSON file at path through edit.
func editJSON(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	edit(m)
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, raw, 0o644))
}

// copyDir copies the dataset at src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

func requireErrorNaming(t *testing.T, err error, path string, want string) {
	t.Helper()
	require.Error(t, err)
	t.Log(err)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), want)
}

func TestMalformed(t *testing.T) {
	requireFFmpeg(t)
	good := filepath.Join(t.TempDir(), "ds")
	writeTestDataset(t, good, testEpisodes())
	infoRel := filepath.FromSlash("meta/info.json")

	t.Run("missing info.json", func(t *testing.T) {
		dir := copyDir(t, good)
		require.NoError(t, os.Remove(filepath.Join(dir, infoRel)))
		_, err := Open(dir)
		requireErrorNaming(t, err, dir, "missing meta/info.json")
	})
	for name, c := range map[string]struct {
		edit func(m map[string]any)
		file string
		want string
	}{
		"codebase_version": {func(m map[string]any) { m["codebase_version"] = "v9.9" }, infoRel, `codebase_version "v9.9" not supported`},
		"missing fps":      {func(m map[string]any) { delete(m, "fps") }, infoRel, `missing field "fps"`},
		"state shape": {func(m map[string]any) {
			m["features"].(map[string]any)["observation.state"].(map[string]any)["shape"] = []int{4, 2}
		}, infoRel, "features.observation.state.shape [4 2]"},
		"image shape": {func(m map[string]any) {
			m["features"].(map[string]any)["observation.images.scene"].(map[string]any)["shape"] = []int{16, 12, 2}
		}, infoRel, "2 channels, want 3"},
		"episode count": {func(m map[string]any) { m["total_episodes"] = 4 }, filepath.FromSlash("meta/episodes.jsonl"),
			"3 episodes, but meta/info.json says total_episodes 4"},
		"stats dims": {func(m map[string]any) {
			m["features"].(map[string]any)["action"].(map[string]any)["shape"] = []int{5}
		}, filepath.FromSlash("meta/stats.json"), "action.mean has 3 values, want 5"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, good)
			editJSON(t, filepath.Join(dir, infoRel), c.edit)
			_, err := Open(dir)
			requireErrorNaming(t, err, filepath.Join(dir, c.file), c.want)
		})
	}

	t.Run("corrupt parquet", func(t *testing.T) {
		dir := copyDir(t, good)
		path := filepath.Join(dir, filepath.FromSlash("data/chunk-000/episode_000001.parquet"))
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, raw[:len(raw)/2], 0o644))
		ds, err := Open(dir)
		require.NoError(t, err)
		_, err = ds.Episode(1)
		requireErrorNaming(t, err, path, "parquet")
		_, err = ds.Episode(0)
		require.NoError(t, err, "other episodes stay readable")

		dir = copyDir(t, good)
		path = filepath.Join(dir, filepath.FromSlash("data/chunk-000/episode_000001.parquet"))
		require.NoError(t, os.WriteFile(path, []byte("not a parquet file at all"), 0o644))
		ds, err = Open(dir)
		require.NoError(t, err)
		_, err = ds.Episode(1)
		requireErrorNaming(t, err, path, "parquet")
	})

	t.Run("wrong dims in parquet", func(t *testing.T) {
		dir := copyDir(t, good)
		path := filepath.Join(dir, filepath.FromSlash("data/chunk-000/episode_000000.parquet"))
		rows, err := parquet.ReadFile[lerobotRow](path)
		require.NoError(t, err)
		rows[2].State = rows[2].State[:3]
		require.NoError(t, parquet.WriteFile(path, rows))
		ds, err := Open(dir)
		require.NoError(t, err)
		_, err = ds.Episode(0)
		requireErrorNaming(t, err, path, "row 2: observation.state has 3 values, want 4")
	})

	t.Run("length mismatch", func(t *testing.T) {
		dir := copyDir(t, good)
		path := filepath.Join(dir, filepath.FromSlash("data/chunk-000/episode_000000.parquet"))
		rows, err := parquet.ReadFile[lerobotRow](path)
		require.NoError(t, err)
		require.NoError(t, parquet.WriteFile(path, rows[:4]))
		ds, err := Open(dir)
		require.NoError(t, err)
		_, err = ds.Episode(0)
		requireErrorNaming(t, err, path, "4 rows, but meta/episodes.jsonl says episode 0 has length 5")
	})

	t.Run("frame size", func(t *testing.T) {
		dir := copyDir(t, good)
		editJSON(t, filepath.Join(dir, infoRel), func(m map[string]any) {
			m["features"].(map[string]any)["observation.images.scene"].(map[string]any)["shape"] = []int{16, 12, 3}
		})
		ds, err := Open(dir)
		require.NoError(t, err, "non-square cameras are fine")
		_, err = ds.Frames(0, "scene", []int{0}, 8, 8, "")
		requireErrorNaming(t, err, filepath.Join(dir, "videos"), "frames are 16×16, but features.observation.images.scene.shape says 12×16")
	})

	t.Run("missing video", func(t *testing.T) {
		dir := copyDir(t, good)
		path := filepath.Join(dir, filepath.FromSlash("videos/chunk-000/observation.images.wrist/episode_000002.mp4"))
		require.NoError(t, os.Remove(path))
		ds, err := Open(dir)
		require.NoError(t, err)
		_, err = ds.Episode(2)
		requireErrorNaming(t, err, path, "no such file")
	})
}

func TestWriterRefusals(t *testing.T) {
	requireFFmpeg(t)
	eps := testEpisodes()

	// A non-empty directory is refused without overwrite, and a foreign one even with it.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	_, err := Create(dir, WriterConfig{Format: V21, FPS: testLRFPS})
	requireErrorNaming(t, err, dir, "not empty")
	_, err = Create(dir, WriterConfig{Format: V21, FPS: testLRFPS, Overwrite: true})
	requireErrorNaming(t, err, dir, "notes.txt is not part of a LeRobot dataset")
	require.FileExists(t, filepath.Join(dir, "notes.txt"))

	// overwrite writes the new dataset aside: until a successful Close the old one stays whole.
	ds := filepath.Join(t.TempDir(), "ds")
	writeTestDataset(t, ds, eps)
	_, err = Create(ds, WriterConfig{Format: V21, FPS: testLRFPS})
	requireErrorNaming(t, err, ds, "not empty")
	w, err := Create(ds, WriterConfig{Format: V21, FPS: testLRFPS, Overwrite: true})
	require.NoError(t, err)
	require.NoError(t, w.Write(eps[0]))
	old, err := Open(ds)
	require.NoError(t, err)
	require.Equal(t, len(eps), old.NumEpisodes())

	// Bad episodes are refused and leave the writer usable.
	bad := eps[1]
	bad.Action = bad.Action[:3]
	require.ErrorContains(t, w.Write(bad), "episode 1: 6 states for 3 actions")
	bad = eps[1]
	bad.State = cloneRows(bad.State)
	bad.State[2][1] = float32(math.NaN())
	require.ErrorContains(t, w.Write(bad), "episode 1: state[2][1] is NaN")
	bad = eps[1]
	bad.Cameras = []string{"scene"}
	bad.Frames = bad.Frames[:1]
	require.ErrorContains(t, w.Write(bad), "episode 1: 1 cameras, the dataset has 2")
	require.ErrorContains(t, w.Write(eps[0]), "episode 0 written twice")
	// A gap in the indices is caught by Close, which then writes no info.json.
	require.NoError(t, w.Write(eps[2]))
	require.ErrorContains(t, w.Close(), "episode 1 was never written")
	old, err = Open(ds) // the failed replacement left the old dataset as it was
	require.NoError(t, err)
	require.Equal(t, len(eps), old.NumEpisodes())
	require.ErrorContains(t, w.Write(eps[1]), "writer is closed")
}

func TestFormatLeRobotPath(t *testing.T) {
	p, err := formatLeRobotPath(V21VideoPath, 2, 2345, "observation.images.scene")
	require.NoError(t, err)
	require.Equal(t, "videos/chunk-002/observation.images.scene/episode_002345.mp4", p)
	p, err = formatLeRobotPath("x/{episode_index}/{episode_chunk:d}", 1, 7, "")
	require.NoError(t, err)
	require.Equal(t, "x/7/1", p)
	for _, bad := range []string{"a/{episode_index:x}", "a/{nope}", "a/{episode_index"} {
		_, err := formatLeRobotPath(bad, 0, 0, "")
		require.Error(t, err, bad)
	}
}
