package tasks

import (
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/reward"
	"github.com/reelml/reel/sim"
)

// train.sample_weights progress: the VLA task reads the dataset's progress file and feeds each
// sample's RA-BC weight as the batch's last input. Closed forms: a constant progress curve has
// increments 0, so every weight is the soft weight at r = 0 with µ = 0, σ = ε:
// (0 − (0 − 2ε)) / (4ε + ε) = 0.4; a falling curve weighs 0 everywhere but the last frame of each
// episode (whose increment is 0 too).
func TestVLAProgressWeights(t *testing.T) {
	r, err := recipes.Load("molmobot-tiny", nil)
	require.NoError(t, err)
	cfg, err := SimConfig(r)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := lerobot.Create(dir, lerobot.WriterConfig{FPS: 10})
	require.NoError(t, err)
	var lengths []int
	for i := range 2 {
		ep, err := sim.RecordEpisode(cfg, sim.TrainSeed(1, int64(i)), i)
		require.NoError(t, err)
		ep.Index = i
		lengths = append(lengths, ep.Len())
		require.NoError(t, w.Write(ep))
	}
	require.NoError(t, w.Close())

	writeProgress := func(value func(t, n int) float32) {
		var rows []reward.ProgressRow
		g := 0
		for e, n := range lengths {
			for s := range n {
				rows = append(rows, reward.ProgressRow{Index: int64(g), EpisodeIndex: int64(e), FrameIndex: int64(s), Progress: value(s, n)})
				g++
			}
		}
		require.NoError(t, parquet.WriteFile(filepath.Join(dir, reward.ProgressFile), rows))
	}
	load := func() (*VLA, error) {
		r, err := recipes.Load("molmobot-tiny", []string{"train.batch_size=4", "data.source=lerobot", "data.dir=" + dir, "train.sample_weights=progress"})
		require.NoError(t, err)
		return NewVLA(r)
	}
	_, err = load()
	require.ErrorContains(t, err, "train.sample_weights")
	require.ErrorContains(t, err, reward.ProgressFile)

	writeProgress(func(int, int) float32 { return 0.5 })
	task, err := load()
	require.NoError(t, err)
	defer task.Close()
	require.Equal(t, "weights", []string(task.layout(true, true))[len(task.layout(true, true))-1])
	require.NotContains(t, []string(task.layout(true, false)), "weights")
	in, err := task.MicroBatch(0)
	require.NoError(t, err)
	require.Len(t, in, len(task.layout(true, true)))
	require.InDeltaSlice(t, []float32{0.4, 0.4, 0.4, 0.4}, tensors.MustCopyFlatData[float32](in[len(in)-1]), 1e-6)

	writeProgress(func(s, n int) float32 { return 1 - float32(s)/float32(n-1) })
	task2, err := load()
	require.NoError(t, err)
	defer task2.Close()
	src := task2.src.(*datasetSource)
	for e, n := range lengths {
		require.Len(t, src.weights[e], n)
		for s, v := range src.weights[e][:n-1] {
			require.Zerof(t, v, "episode %d step %d", e, s)
		}
	}

	// A progress file that misses frames is refused.
	writeProgress(func(int, int) float32 { return 0 })
	lengths[1]--
	writeProgress(func(int, int) float32 { return 0 })
	_, err = load()
	require.ErrorContains(t, err, "progress values")

	// Synthetic data has no progress.
	r2, err := recipes.Load("molmobot-tiny", []string{"train.sample_weights=progress"})
	require.NoError(t, err)
	_, err = NewVLA(r2)
	require.ErrorContains(t, err, "data.source lerobot")
}
