package lerobot

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/internal/rng"
	"github.com/reelml/reel/mediaio"
	"github.com/reelml/reel/policy"
)

const testV3FPS = 10

// v3Episodes returns n episodes (5, 6, 8, ... frames) with state dim 4, action dim 3 and two
// non-square cameras: "top" 80×64 (AV1) and "wrist" 24×16 (H.264, under SVT-AV1's minimum).
// Frames are smooth gradients with a moving block: every frame differs, the codecs keep them
// close.
func v3Episodes(n int) []StoredEpisode {
	r := rng.New(11)
	tasks := []string{"pick the red square", "push the blue circle", "pick the red square", "place the cube"}
	var eps []StoredEpisode
	for i := range n {
		T := 5 + i + i/2
		ok := i%3 != 1
		ep := StoredEpisode{Index: i, Task: tasks[i%len(tasks)], Success: &ok, Family: "fam", Seed: uint64(100 + i)}
		for range T {
			s := make([]float32, 4)
			for j := range s {
				s[j] = float32(r.NormFloat64()*2 + float64(j))
			}
			a := make([]float32, 3)
			for j := range a {
				a[j] = float32(r.Float64()*2 - 1)
			}
			ep.State, ep.Action = append(ep.State, s), append(ep.Action, a)
		}
		for c, size := range [][2]int{{80, 64}, {24, 16}} {
			w, h := size[0], size[1]
			pix := make([]uint8, T*w*h*3)
			for t := range T {
				bx, by := (t*7+i*5)%(w-8), (t*3+i)%(h-8)
				for y := range h {
					for x := range w {
						o := ((t*h+y)*w + x) * 3
						p := [3]uint8{uint8(x * 200 / w), uint8(y * 200 / h), uint8(60 + 40*c + 10*i)}
						if x >= bx && x < bx+8 && y >= by && y < by+8 {
							p = [3]uint8{250, 240, uint8(30 * t)}
						}
						pix[o], pix[o+1], pix[o+2] = p[0], p[1], p[2]
					}
				}
			}
			ep.Cameras = append(ep.Cameras, CameraFrames{Name: []string{"top", "wrist"}[c], Width: w, Height: h, Pix: pix})
		}
		eps = append(eps, ep)
	}
	return eps
}

// writeV3 writes eps with cfg from concurrent goroutines in reverse order.
func writeV3(t *testing.T, dir string, eps []StoredEpisode, cfg WriterConfig) {
	t.Helper()
	cfg.FPS = testV3FPS
	w, err := Create(dir, cfg)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, len(eps))
	for i := len(eps) - 1; i >= 0; i-- {
		wg.Go(func() { errs[i] = w.WriteStored(eps[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
}

// framesOf returns camera c's frame t of ep as an Image.
func framesOf(ep StoredEpisode, c, t int) policy.Image {
	cam := ep.Cameras[c]
	px := cam.Width * cam.Height * 3
	im := policy.NewImage(cam.Width, cam.Height)
	for j, b := range cam.Pix[t*px : (t+1)*px] {
		im.Pix[j] = float32(b) / 255
	}
	return im
}

func readJSONMap(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestV3RoundTrip(t *testing.T) {
	t.Parallel()
	dir := goodV3(t)
	eps := v3Episodes(4)

	for _, rel := range []string{"meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
		"data/chunk-000/file-000.parquet", "videos/observation.images.top/chunk-000/file-000.mp4",
		"videos/observation.images.wrist/chunk-000/file-000.mp4"} {
		require.FileExists(t, filepath.Join(dir, rel))
	}
	require.NoDirExists(t, filepath.Join(dir, lerobotTmpDir))
	n, err := videoFrames(filepath.Join(dir, "videos/observation.images.top/chunk-000/file-000.mp4"))
	require.NoError(t, err)
	require.Equal(t, 5+6+8+9, n, "one video file holds every episode")

	info := readJSONMap(t, filepath.Join(dir, "meta/info.json"))
	require.Equal(t, "v3.0", info["codebase_version"])
	require.Equal(t, 10.0, info["fps"])
	require.EqualValues(t, 4, info["total_episodes"])
	require.EqualValues(t, 28, info["total_frames"])
	require.EqualValues(t, 3, info["total_tasks"])
	require.EqualValues(t, 100, info["data_files_size_in_mb"])
	require.EqualValues(t, 200, info["video_files_size_in_mb"])
	require.Equal(t, V3DataPath, info["data_path"])
	require.Equal(t, V3VideoPath, info["video_path"])
	require.NotContains(t, info, "total_videos")
	feats := info["features"].(map[string]any)
	top := feats["observation.images.top"].(map[string]any)
	require.Equal(t, []any{64.0, 80.0, 3.0}, top["shape"])
	require.Equal(t, "av1", top["info"].(map[string]any)["video.codec"])
	wrist := feats["observation.images.wrist"].(map[string]any)
	require.Equal(t, []any{16.0, 24.0, 3.0}, wrist["shape"])
	require.Equal(t, "h264", wrist["info"].(map[string]any)["video.codec"])

	ds, err := Open(dir)
	require.NoError(t, err)
	require.Equal(t, "v3.0", ds.Version())
	require.Equal(t, 4, ds.NumEpisodes())
	require.Equal(t, 28, ds.NumFrames())
	f := ds.Features()
	require.Equal(t, []policy.Camera{{Name: "top", Width: 80, Height: 64}, {Name: "wrist", Width: 24, Height: 16}}, f.Cameras)
	require.Equal(t, 4, f.StateDim)
	require.Equal(t, 3, f.ActionDim)
	require.Equal(t, []string{"state_0", "state_1", "state_2", "state_3"}, f.StateNames)
	require.Equal(t, 10.0, f.FPS)
	for i, want := range eps {
		info := ds.EpisodeMeta(i)
		require.Equal(t, len(want.Action), info.Length)
		require.Equal(t, []string{want.Task}, info.Tasks)
		require.Equal(t, *want.Success, *info.Success)
		require.Equal(t, want.Seed, info.Seed)
		v, err := ds.Vectors(i)
		require.NoError(t, err)
		require.Equal(t, want.State, v.State)
		require.Equal(t, want.Action, v.Action)
		for k, ts := range v.Timestamp {
			require.Equal(t, float64(float32(float64(k)/testV3FPS)), ts)
			require.Equal(t, want.Task, v.Task[k])
		}
		for c, cam := range want.Cameras {
			steps := make([]int, want.Len())
			for k := range steps {
				steps[k] = k
			}
			ims, err := ds.Frames(i, cam.Name, steps, cam.Width, cam.Height, "")
			require.NoError(t, err)
			for k, im := range ims {
				require.Less(t, meanAbsDiff(framesOf(want, c, k).Pix, im.Pix), 0.08, "episode %d camera %s frame %d", i, cam.Name, k)
				if k > 0 { // each frame is its own: closer to its original than to the previous one
					require.Less(t, meanAbsDiff(framesOf(want, c, k).Pix, im.Pix), meanAbsDiff(framesOf(want, c, k-1).Pix, im.Pix)+1e-9)
				}
			}
		}
	}
	_, err = ds.Vectors(4)
	require.ErrorContains(t, err, "episode 4 out of range [0, 4)")

	// The episode metadata and the Episode view on the new layout.
	meta := ds.EpisodeMeta(1)
	require.Equal(t, EpisodeMeta{Index: 1, EpisodeIndex: 1, Tasks: []string{eps[1].Task}, Length: 6, Family: "fam", Seed: 101,
		Success: meta.Success}, meta)
	_, err = ds.Episode(0)
	require.ErrorContains(t, err, "Episode needs all cameras square")

	// Statistics: per episode in the episodes file, aggregated in stats.json, for every feature.
	stats, err := ds.Stats()
	require.NoError(t, err)
	for _, k := range []string{"observation.state", "action", "observation.images.top", "observation.images.wrist", "timestamp",
		"frame_index", "episode_index", "index", "task_index"} {
		require.Contains(t, stats, k)
		require.True(t, stats[k].HasQuantiles(), k)
	}
	require.Equal(t, []int{3, 1, 1}, stats["observation.images.top"].Shape)
	require.EqualValues(t, 28, stats["action"].Count)
	var allState [][]float32
	for _, ep := range eps {
		allState = append(allState, ep.State...)
	}
	mean, std, lo, hi := directStats(allState)
	for j := range mean {
		require.InDelta(t, mean[j], stats["observation.state"].Mean[j], 1e-6)
		require.InDelta(t, std[j], stats["observation.state"].Std[j], 1e-6)
		require.Equal(t, lo[j], stats["observation.state"].Min[j])
		require.Equal(t, hi[j], stats["observation.state"].Max[j])
	}
	require.Equal(t, []float64{0}, stats["episode_index"].Min)
	require.Equal(t, []float64{3}, stats["episode_index"].Max)
	require.Equal(t, []float64{27}, stats["index"].Max)
	require.InDelta(t, 13.5, stats["index"].Mean[0], 1e-12)
}

func TestV21RoundTrip(t *testing.T) {
	t.Parallel()
	dir := goodV21(t)
	eps := v3Episodes(4)
	for _, rel := range []string{"meta/info.json", "meta/episodes.jsonl", "meta/tasks.jsonl", "meta/episodes_stats.jsonl",
		"data/chunk-000/episode_000000.parquet", "data/chunk-000/episode_000002.parquet",
		"videos/chunk-000/observation.images.top/episode_000000.mp4", "videos/chunk-000/observation.images.wrist/episode_000002.mp4"} {
		require.FileExists(t, filepath.Join(dir, rel))
	}
	require.NoFileExists(t, filepath.Join(dir, "meta/stats.json"), "v2.1 keeps per-episode statistics only")
	info := readJSONMap(t, filepath.Join(dir, "meta/info.json"))
	require.Equal(t, "v2.1", info["codebase_version"])
	require.EqualValues(t, 8, info["total_videos"])
	require.EqualValues(t, 1, info["total_chunks"])
	lines := readJSONLines(t, filepath.Join(dir, "meta/episodes.jsonl"))
	require.Equal(t, `{"episode_index":1,"tasks":["push the blue circle"],"length":6,"family":"fam","success":false,"seed":101}`, lines[1])

	a, err := Open(dir)
	require.NoError(t, err)
	b, err := Open(goodV3(t))
	require.NoError(t, err)
	require.Equal(t, a.Features(), b.Features())
	for i := range eps {
		va, err := a.Vectors(i)
		require.NoError(t, err)
		vb, err := b.Vectors(i)
		require.NoError(t, err)
		require.Equal(t, vb, va)
		if i == 1 || i == 2 {
			continue // frames of the first and last episodes suffice (each is an ffmpeg run)
		}
		for _, cam := range []string{"top", "wrist"} {
			fa, err := a.Frames(i, cam, []int{0, 4}, 32, 32, policy.ResizeCrop)
			require.NoError(t, err)
			fb, err := b.Frames(i, cam, []int{0, 4}, 32, 32, policy.ResizeCrop)
			require.NoError(t, err)
			require.Equal(t, fb, fa, "the same segments, whatever the layout")
		}
	}
	// episodes_stats.jsonl aggregated = stats.json of the v3.0 layout.
	sa, err := a.Stats()
	require.NoError(t, err)
	sb, err := b.Stats()
	require.NoError(t, err)
	for _, k := range []string{"observation.state", "action", "observation.images.top"} {
		require.InDeltaSlice(t, sb[k].Mean, sa[k].Mean, 1e-12, k)
		require.InDeltaSlice(t, sb[k].Std, sa[k].Std, 1e-12, k)
		require.InDeltaSlice(t, sb[k].Q99, sa[k].Q99, 1e-12, k)
	}
}

// TestLazyEqualsEager checks Frames (an ffmpeg run per episode over its time range in
// the shared file, seeking to a keyframe, frames located by timestamp, resized as they stream)
// against decoding the whole file at once and resizing every frame afterwards.
func TestLazyEqualsEager(t *testing.T) {
	t.Parallel()
	dir := goodV3(t)
	eps := v3Episodes(4)
	// The frames fitted in Go (policy.Resize of the native frame, the eager path's resize);
	// ffmpeg's fitting is compared with them in TestFitInFFmpegMatchesGo.
	ds, err := OpenWith(dir, Options{ResizeInGo: true})
	require.NoError(t, err)
	for c, cam := range []struct {
		name string
		w, h int
	}{{"top", 80, 64}, {"wrist", 24, 16}} {
		path := filepath.Join(dir, "videos/observation.images."+cam.name+"/chunk-000/file-000.mp4")
		var raw bytes.Buffer
		require.NoError(t, mediaio.Run([]string{"-v", "error", "-i", "file:" + path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"}, nil, &raw, ""))
		all := raw.Bytes()
		px := cam.w * cam.h * 3
		require.Len(t, all, (5+6+8+9)*px, "every frame of the file")
		first := 0
		for i := range eps {
			steps := []int{0, eps[i].Len() - 1, eps[i].Len() / 2}
			lazy, err := ds.Frames(i, cam.name, steps, 20, 20, policy.ResizePad)
			require.NoError(t, err)
			for k, s := range steps {
				native := policy.NewImage(cam.w, cam.h)
				for j, b := range all[(first+s)*px : (first+s+1)*px] {
					native.Pix[j] = float32(b) / 255
				}
				eager, err := policy.Resize(native, 20, 20, policy.ResizePad)
				require.NoError(t, err)
				for j := range eager.Pix {
					eager.Pix[j] = float32(math.Round(float64(eager.Pix[j])*255)) / 255
				}
				require.InDeltaSlice(t, toF64(eager.Pix), toF64(lazy[k].Pix), 1e-6, "camera %d episode %d step %d", c, i, s)
			}
			first += eps[i].Len()
		}
	}
	bytesHeld, decodes, hits := ds.FrameCacheStats()
	require.EqualValues(t, 8, decodes, "one decode per episode and camera")
	require.Zero(t, hits)
	require.EqualValues(t, (5+6+8+9)*20*20*3*2, bytesHeld)
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestResizeModes(t *testing.T) {
	t.Parallel()
	for _, inGo := range []bool{true, false} {
		testResizeModes(t, inGo)
	}
}

func testResizeModes(t *testing.T, resizeInGo bool) {
	ds, err := OpenWith(goodV3(t), Options{ResizeInGo: resizeInGo})
	require.NoError(t, err)
	native, err := ds.Frames(0, "top", []int{3}, 80, 64, "")
	require.NoError(t, err)
	for _, mode := range []string{policy.ResizePad, policy.ResizeCrop, policy.ResizeStretch} {
		got, err := ds.Frames(0, "top", []int{3}, 32, 32, mode)
		require.NoError(t, err)
		want, err := policy.Resize(native[0], 32, 32, mode)
		require.NoError(t, err)
		if resizeInGo {
			require.InDeltaSlice(t, toF64(want.Pix), toF64(got[0].Pix), 0.5/255+1e-6, mode)
		} else { // fitted by ffmpeg: rounding and chroma interpolation (see ffmpegFit)
			require.InDeltaSlice(t, toF64(want.Pix), toF64(got[0].Pix), 64.0/255, mode)
			require.Less(t, meanAbsDiff(want.Pix, got[0].Pix), 2.0/255, mode)
		}
		// Pad fits 80×64 into 32×26 rows centred: 3 black rows above and below; the others do
		// not pad.
		row := func(y int) float64 {
			s := 0.0
			for _, v := range got[0].Pix[y*32*3 : (y+1)*32*3] {
				s += float64(v)
			}
			return s
		}
		if mode == policy.ResizePad {
			require.Zero(t, row(0))
			require.Zero(t, row(2))
			require.NotZero(t, row(3))
			require.Zero(t, row(31))
		} else {
			require.NotZero(t, row(0), mode)
			require.NotZero(t, row(31), mode)
		}
	}
	_, err = ds.Frames(0, "top", []int{3}, 32, 32, "zoom")
	require.ErrorContains(t, err, `resize mode "zoom"`)
	_, err = ds.Frames(0, "side", []int{0}, 32, 32, "")
	require.ErrorContains(t, err, `no camera "side"`)
	_, err = ds.Frames(0, "top", []int{5}, 32, 32, "")
	require.ErrorContains(t, err, "step 5 is out of range")
}

func TestImageFeatures(t *testing.T) {
	t.Parallel()
	// A dataset whose camera is stored as PNG bytes in parquet (dtype "image"), written here as
	// LeRobot does: a struct {bytes, path} column.
	dir := copyDir(t, goodV3(t))
	eps := v3Episodes(4)
	toImageFeature(t, dir, eps)
	ds, err := Open(dir)
	require.NoError(t, err)
	require.Equal(t, []string{"top", "wrist"}, ds.Cameras())
	for i, ep := range eps {
		got, err := ds.Frames(i, "top", []int{0, 2}, 80, 64, "")
		require.NoError(t, err)
		for k, s := range []int{0, 2} {
			require.Equal(t, framesOf(ep, 0, s).Pix, got[k].Pix, "PNG is lossless")
		}
	}
	s, err := ds.CameraStats("top")
	require.NoError(t, err)
	var acc imageStatsAccumulator
	for _, ep := range eps {
		for t := range ep.Len() {
			px := 80 * 64 * 3
			acc.addFrame(ep.Cameras[0].Pix[t*px:(t+1)*px], 80, 64)
		}
	}
	want := acc.stats()
	require.InDeltaSlice(t, want.Mean, s.Mean, 1e-9)
	require.InDeltaSlice(t, want.Std, s.Std, 0.002) // aggregated per episode vs pooled: the same up to rounding
}

func TestStatsReport(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	dir := filepath.Join(t.TempDir(), "ds")
	writeV3(t, dir, v3Episodes(2), WriterConfig{StateNames: []string{"x", "y", "z", "w"}})
	ds, err := Open(dir)
	require.NoError(t, err)
	rep, err := ds.StatsReport(false)
	require.NoError(t, err)
	require.Len(t, rep.Features, 4)
	st := rep.Features[0]
	require.Equal(t, "observation.state", st.Key)
	require.Equal(t, []string{"x", "y", "z", "w"}, st.Names)
	require.Equal(t, filepath.FromSlash("meta/stats.json"), st.Source)
	require.Equal(t, st.Stats.Mean, st.Normalization[policy.NormMeanStd]["mean"])
	require.Equal(t, st.Stats.Max, st.Normalization[policy.NormMinMax]["max"])
	require.Equal(t, st.Stats.Q01, st.Normalization[policy.NormQuantiles]["q01"])
	require.Equal(t, "camera", rep.Features[3].Kind)
	// Without stats.json the state and action statistics are computed, cameras left out unless
	// asked for.
	require.NoError(t, os.Remove(filepath.Join(dir, "meta/stats.json")))
	writeEpisodesWithoutStats(t, dir)
	ds2, err := Open(dir)
	require.NoError(t, err)
	rep2, err := ds2.StatsReport(false)
	require.NoError(t, err)
	require.Len(t, rep2.Features, 2)
	require.Equal(t, "computed from the data", rep2.Features[0].Source)
	require.InDeltaSlice(t, st.Stats.Mean, rep2.Features[0].Stats.Mean, 1e-12)
	require.InDeltaSlice(t, st.Stats.Q99, rep2.Features[0].Stats.Q99, 1e-12)
	rep3, err := ds2.StatsReport(true)
	require.NoError(t, err)
	require.Len(t, rep3.Features, 4)
	require.InDeltaSlice(t, rep.Features[2].Stats.Mean, rep3.Features[2].Stats.Mean, 0.02, "decoded frames ≈ the originals")
}
