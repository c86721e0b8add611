package lerobot

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// Real-robot datasets from public repositories (testdata/README.md). Expected values
// were read from the files with hyparquet and from their JSON, not with reel's reader.

func TestRealV21(t *testing.T) {
	t.Parallel()
	ds, err := Open(filepath.Join("testdata", "g1_v21"))
	require.NoError(t, err)
	require.Equal(t, "v2.1", ds.Version())
	require.Equal(t, 1, ds.NumEpisodes())
	require.Equal(t, 221, ds.NumFrames())
	f := ds.Features()
	require.Equal(t, []policy.Camera{{Name: "cam_high", Width: 640, Height: 480}}, f.Cameras)
	require.Equal(t, 26, f.StateDim)
	require.Equal(t, 26, f.ActionDim)
	require.Equal(t, "kLeftShoulderPitch", f.StateNames[0], "names nested in a list")
	require.Equal(t, "kRightHandThumbRotation", f.ActionNames[25])
	require.Equal(t, 30.0, f.FPS)
	info := ds.EpisodeMeta(0)
	require.Equal(t, 29, info.EpisodeIndex)
	require.Equal(t, 221, info.Length)
	require.Equal(t, []string{"Pick up the yellow bottle on the table."}, info.Tasks)

	v, err := ds.Vectors(0)
	require.NoError(t, err)
	require.Len(t, v.State, 221)
	require.Equal(t, float32(-0.7794180512428284), v.State[0][0])
	require.Equal(t, float32(0.2680000066757202), v.State[220][25])
	require.Equal(t, float32(0.3876463770866394), v.Action[220][25])
	require.Equal(t, float64(float32(7.333333492279053)), v.Timestamp[220])
	require.Equal(t, "Pick up the yellow bottle on the table.", v.Task[0])

	// The stored (episodes_stats.jsonl) statistics agree with the data.
	stats, err := ds.Stats()
	require.NoError(t, err)
	st := stats["observation.state"]
	require.InDelta(t, -0.7830195426940918, st.Mean[0], 1e-12)
	require.EqualValues(t, 221, st.Count)
	computed := vectorFeatureStats(v.State)
	require.Equal(t, computed.Min, st.Min)
	require.Equal(t, computed.Max, st.Max)
	require.InDeltaSlice(t, computed.Mean, st.Mean, 1e-5) // LeRobot sums in float32
	require.InDeltaSlice(t, computed.Std, st.Std, 2e-5)
	require.Equal(t, computed.Q99, st.Q99, "quantiles the dataset lacks are computed")

	// Frames: the AV1 video's 221 frames located by the parquet timestamps; their statistics
	// (LeRobot's sampling, from the decoded video) match the ones LeRobot computed from the
	// frames before encoding them, up to the codec's loss.
	steps := make([]int, 221)
	for i := range steps {
		steps[i] = i
	}
	ims, err := ds.Frames(0, "cam_high", steps, 64, 48, policy.ResizeStretch)
	require.NoError(t, err)
	require.Len(t, ims, 221)
	require.Greater(t, meanAbsDiff(ims[0].Pix, ims[220].Pix), 0.01, "the scene changes over the episode")
	cam, err := ds.CameraStats("cam_high")
	require.NoError(t, err)
	stored := stats["observation.images.cam_high"]
	require.Equal(t, []int{3, 1, 1}, stored.Shape)
	require.EqualValues(t, 100, stored.Count)
	require.EqualValues(t, 100, cam.Count, "LeRobot samples 100 of 221 frames")
	require.InDeltaSlice(t, []float64{0.4529289440359477, 0.47054752655228754, 0.4647303656045752}, cam.Mean, 0.01)
	require.InDeltaSlice(t, []float64{0.16286095208256884, 0.15950763342837776, 0.1843480132801536}, cam.Std, 0.01)
}

func TestRealV30(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "reachy2_v30")
	ds, err := Open(dir)
	require.NoError(t, err)
	require.Equal(t, "v3.0", ds.Version())
	require.Equal(t, 3, ds.NumEpisodes())
	require.Equal(t, 899, ds.NumFrames())
	f := ds.Features()
	require.Equal(t, []policy.Camera{{Name: "image", Width: 960, Height: 720}}, f.Cameras, "channel-first shape, key observation.image")
	require.Equal(t, 19, f.StateDim)
	require.Nil(t, f.StateNames)
	for i, n := range []int{299, 300, 300} {
		info := ds.EpisodeMeta(i)
		require.Equal(t, n, info.Length)
		require.Equal(t, []string{"place the apple in the plate"}, info.Tasks)
	}
	v, err := ds.Vectors(1)
	require.NoError(t, err)
	require.Len(t, v.Action, 300)
	require.Equal(t, float32(0.17675282061100006), v.State[0][0])
	require.Equal(t, float32(-0.298286110162735), v.Action[0][18])
	require.Equal(t, "place the apple in the plate", v.Task[0])

	// Per-episode statistics in the episodes file, and stats.json, agree with the data.
	for i, mean0 := range []float64{0.11630286276340485, 0.16941405832767487, 0.270012229681015} {
		v, err := ds.Vectors(i)
		require.NoError(t, err)
		stored := ds.episodes[i].stats["action"]
		require.InDelta(t, mean0, stored.Mean[0], 1e-12)
		c := vectorFeatureStats(v.Action)
		require.Equal(t, c.Min, stored.Min)
		require.InDeltaSlice(t, c.Mean, stored.Mean, 1e-5) // LeRobot sums in float32
		require.InDeltaSlice(t, c.Std, stored.Std, 2e-5)
		require.Equal(t, []int{3, 1, 1}, ds.episodes[i].stats["observation.image"].Shape)
	}
	stats, err := ds.Stats()
	require.NoError(t, err)
	computed, err := ds.computedVectorStats()
	require.NoError(t, err)
	require.Equal(t, computed["observation.state"].Min, stats["observation.state"].Min)
	require.InDeltaSlice(t, computed["observation.state"].Mean, stats["observation.state"].Mean, 1e-5)
	require.InDeltaSlice(t, computed["observation.state"].Std, stats["observation.state"].Std, 2e-5)
	require.InDeltaSlice(t, []float64{0.5010134081045786, 0.4363989432652791, 0.3023544450600942}, stats["observation.image"].Mean, 1e-12)

	// The video is not in the copy: reading frames names it.
	_, err = ds.Frames(0, "image", []int{0}, 32, 32, "")
	require.Error(t, err)
	require.Contains(t, err.Error(), filepath.Join(dir, "videos/observation.image/chunk-000/file-000.mp4"))
	require.Contains(t, err.Error(), "no such file or directory")
}
