package lerobot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/reelml/reel/mediaio"
	"github.com/stretchr/testify/require"
)

// requireSameDataset checks that two v3.0 datasets have the same content: byte-identical
// info.json and stats.json, the same columns and values in every metadata and data parquet
// file, and the same decoded frames of every episode and camera.
func requireSameDataset(t *testing.T, a, b string) {
	t.Helper()
	for _, rel := range []string{"meta/info.json", "meta/stats.json"} {
		ra, err := os.ReadFile(filepath.Join(a, rel))
		require.NoError(t, err)
		rb, err := os.ReadFile(filepath.Join(b, rel))
		require.NoError(t, err)
		require.Equal(t, string(ra), string(rb), rel)
	}
	for _, rel := range []string{"meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"} {
		ca, _ := readTestColumns(t, filepath.Join(a, rel))
		cb, _ := readTestColumns(t, filepath.Join(b, rel))
		require.Equal(t, len(ca), len(cb), rel)
		for i := range ca {
			require.Equal(t, ca[i].name, cb[i].name, rel)
			require.Equal(t, ca[i].vals, cb[i].vals, "%s column %s", rel, ca[i].name)
		}
	}
	// Frames: every video file decoded in full (the episodes' time ranges in them are compared
	// above, in the episodes file).
	files, err := filepath.Glob(filepath.Join(a, "videos", "*", "chunk-*", "file-*.mp4"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, fa := range files {
		rel, _ := filepath.Rel(a, fa)
		var ra, rb bytes.Buffer
		require.NoError(t, mediaio.Run([]string{"-v", "error", "-i", "file:" + fa, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"}, nil, &ra, ""))
		require.NoError(t, mediaio.Run([]string{"-v", "error", "-i", "file:" + filepath.Join(b, rel), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"}, nil, &rb, ""))
		require.True(t, bytes.Equal(ra.Bytes(), rb.Bytes()), "decoded frames of %s", rel)
	}
	db, err := Open(b)
	require.NoError(t, err)
	last := db.NumEpisodes() - 1
	_, err = db.Frames(last, "top", []int{0, db.EpisodeMeta(last).Length - 1}, 16, 16, "")
	require.NoError(t, err, "the last episode's range is in its file")
}

// TestShardsMergeToSingle writes 4 episodes in one writer, and as 3 shards (each a dataset
// of its own, episodes numbered from 0), merges the shards, and checks that the result
// is the single writer's dataset.
func TestShardsMergeToSingle(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	eps := v3Episodes(4)
	single := goodV3(t)
	var shards []string
	for s, part := range [][]StoredEpisode{eps[:2], eps[2:3], eps[3:]} {
		part = append([]StoredEpisode(nil), part...)
		for k := range part {
			part[k].Index = k
		}
		dir := filepath.Join(root, "shard"+string(rune('0'+s)))
		writeV3(t, dir, part, WriterConfig{})
		shards = append(shards, dir)
	}
	merged := filepath.Join(root, "merged")
	require.NoError(t, Merge(merged, shards, MergeConfig{}))
	requireSameDataset(t, single, merged)

	// A merge of merges is the same dataset too, and v2.1 shards merge into it as well.
	twice := filepath.Join(root, "twice")
	require.NoError(t, Merge(filepath.Join(root, "left"), shards[:2], MergeConfig{}))
	require.NoError(t, Merge(twice, []string{filepath.Join(root, "left"), shards[2]}, MergeConfig{}))
	requireSameDataset(t, single, twice)

	// Refusals: the destination among the sources, datasets that differ.
	err := Merge(shards[0], shards, MergeConfig{Overwrite: true})
	require.ErrorContains(t, err, "is also a source")
	other := filepath.Join(root, "other")
	writeV3(t, other, v3Episodes(1), WriterConfig{RobotType: "koch"})
	err = Merge(filepath.Join(root, "bad"), []string{shards[0], other}, MergeConfig{})
	require.ErrorContains(t, err, `robot_type "koch", but`)
	require.NoFileExists(t, filepath.Join(root, "bad", "meta", "info.json"))
}

// TestMergeV21 converts v2.1 datasets to one v3.0 dataset by merging them.
func TestMergeV21(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	eps := v3Episodes(4)
	v21, single := goodV21(t), goodV3(t)
	merged := filepath.Join(root, "merged")
	require.NoError(t, Merge(merged, []string{v21}, MergeConfig{}))
	a, err := Open(single)
	require.NoError(t, err)
	b, err := Open(merged)
	require.NoError(t, err)
	require.Equal(t, "v3.0", b.Version())
	for i := range eps {
		va, err := a.Vectors(i)
		require.NoError(t, err)
		vb, err := b.Vectors(i)
		require.NoError(t, err)
		require.Equal(t, va, vb)
		if i == 1 || i == 2 {
			continue // frames of the first and last episodes suffice (each is an ffmpeg run)
		}
		fa, err := a.Frames(i, "top", []int{0, 3}, 80, 64, "")
		require.NoError(t, err)
		fb, err := b.Frames(i, "top", []int{0, 3}, 80, 64, "")
		require.NoError(t, err)
		require.Equal(t, fa, fb)
	}
	sa, err := a.Stats()
	require.NoError(t, err)
	sb, err := b.Stats()
	require.NoError(t, err)
	require.Equal(t, sa["action"], sb["action"])
	require.Equal(t, sa["observation.images.top"], sb["observation.images.top"])
}

// TestMergeV20 converts a dataset of reel's former v2.0 layout (no per-episode
// statistics) to v3.0, the sources' stats.json aggregated.
func TestMergeV20(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	root := t.TempDir()
	src := filepath.Join(root, "v20")
	writeTestDataset(t, src, testEpisodes())
	dst := filepath.Join(root, "v30")
	require.NoError(t, Merge(dst, []string{src, src}, MergeConfig{}))
	a, err := Open(src)
	require.NoError(t, err)
	b, err := Open(dst)
	require.NoError(t, err)
	require.Equal(t, 6, b.NumEpisodes())
	for _, k := range []int{0, 5} {
		want, err := a.Episode(k % 3)
		require.NoError(t, err)
		got, err := b.Episode(k)
		require.NoError(t, err)
		want.Index = k
		require.Equal(t, want, got)
	}
	sa, err := a.Stats()
	require.NoError(t, err)
	sb, err := b.Stats()
	require.NoError(t, err)
	require.InDeltaSlice(t, sa[ActionKey].Mean, sb[ActionKey].Mean, 1e-7)
	require.InDeltaSlice(t, sa[StateKey].Std, sb[StateKey].Std, 1e-6)
}
