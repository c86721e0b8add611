package lerobot

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// rewardEpisodes are three tiny square-camera episodes labelled as reward data (kind and
// decision step), and one without the labels.
func rewardEpisodes() []Episode {
	var eps []Episode
	for i, k := range []struct {
		kind    string
		ok      bool
		decided int
	}{{"expert", true, 3}, {"failed", false, 1}, {"adversarial", false, 0}, {"", true, 0}} {
		T := 4 + i
		ep := Episode{Index: i, Task: "pick up the red square", Family: "pick", Seed: uint64(7 + i), Size: 8,
			Cameras: []string{"scene"}, Frames: [][]float32{make([]float32, T*8*8*3)},
			Success: k.ok, Kind: k.kind, DecisionStep: k.decided}
		for t := range T {
			ep.State = append(ep.State, []float32{float32(t), 0, 0, 0})
			ep.Action = append(ep.Action, []float32{0.1, -0.1, 1})
			for j := range 8 * 8 * 3 {
				ep.Frames[0][t*8*8*3+j] = float32((t*13+j)%255) / 255
			}
		}
		eps = append(eps, ep)
	}
	return eps
}

// TestRewardMetadataRoundTrip writes reward episodes (kind, decision_step, success) in
// both layouts and reads the labels back; the episode without them reads as unlabelled.
func TestRewardMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	eps := rewardEpisodes()
	for _, format := range []string{V30, V21} {
		dir := filepath.Join(t.TempDir(), "ds")
		w, err := Create(dir, WriterConfig{Format: format, FPS: 10, Codec: CodecH264})
		require.NoError(t, err)
		for _, ep := range eps {
			require.NoError(t, w.Write(ep))
		}
		require.NoError(t, w.Close())
		ds, err := Open(dir)
		require.NoError(t, err, format)
		for i, want := range eps {
			info := ds.EpisodeMeta(i)
			require.Equal(t, want.Success, *info.Success, format)
			require.Equal(t, want.Kind, info.Kind, format)
			if want.Kind == "" {
				require.Nil(t, info.DecisionStep, format)
				continue
			}
			require.NotNil(t, info.DecisionStep, format)
			require.Equal(t, want.DecisionStep, *info.DecisionStep, format)
			got, err := ds.Episode(i)
			require.NoError(t, err)
			require.Equal(t, want.Kind, got.Kind)
			require.Equal(t, want.DecisionStep, got.DecisionStep)
		}
	}
}

// TestRewardMetadataHyparquet: an independent parquet reader (hyparquet) sees reel's
// kind, success and decision_step columns in a v3.0 dataset's episodes file.
func TestRewardMetadataHyparquet(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	hyparquetDir(t)
	eps := rewardEpisodes()
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := Create(dir, WriterConfig{FPS: 10, Codec: CodecH264})
	require.NoError(t, err)
	for _, ep := range eps {
		require.NoError(t, w.Write(ep))
	}
	require.NoError(t, w.Close())
	rows := hyparquetRead(t, filepath.Join(dir, "meta/episodes/chunk-000/file-000.parquet"))
	require.Len(t, rows, 1)
	for _, f := range rows {
		require.Len(t, f.Rows, len(eps))
		for i, want := range eps {
			require.Equal(t, want.Kind, f.Rows[i]["kind"])
			require.Equal(t, want.Success, f.Rows[i]["success"])
			d := float64(want.DecisionStep)
			if want.Kind == "" {
				d = -1
			}
			require.Equal(t, d, f.Rows[i]["decision_step"])
		}
	}
}

// TestRewardMetadataOptional: a dataset without reward labels has no kind or
// decision_step columns and reads with empty labels.
func TestRewardMetadataOptional(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	eps := rewardEpisodes()[3:]
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := Create(dir, WriterConfig{FPS: 10, Codec: CodecH264})
	require.NoError(t, err)
	eps[0].Index = 0
	require.NoError(t, w.Write(eps[0]))
	require.NoError(t, w.Close())
	cols, _ := readTestColumns(t, filepath.Join(dir, "meta/episodes/chunk-000/file-000.parquet"))
	require.Equal(t, -1, colIndex(cols, "kind"))
	require.Equal(t, -1, colIndex(cols, "decision_step"))
	ds, err := Open(dir)
	require.NoError(t, err)
	require.Equal(t, "", ds.EpisodeMeta(0).Kind)
	require.Nil(t, ds.EpisodeMeta(0).DecisionStep)
}
