package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/mediaio"
)

func TestDataGenVideo(t *testing.T) {
	if _, err := mediaio.FFmpeg(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	r := reel(t, dir, "data", "gen-video", "--n", "3", "--out", "ds", "--frames", "4", "--size", "16", "--seed", "5")
	requireOK(t, r)
	require.Empty(t, r.stderr)
	require.Contains(t, r.stdout, "wrote 3 videos")

	b, err := os.ReadFile(filepath.Join(dir, "ds", "captions.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 3)
	cfg := data.DefaultVideoConfig()
	cfg.Frames, cfg.Size = 4, 16
	g, err := data.NewVideoGenerator(cfg)
	require.NoError(t, err)
	for i, l := range lines {
		var rec data.VideoText
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		require.FileExists(t, filepath.Join(dir, "ds", filepath.FromSlash(rec.Video)))
		require.Equal(t, g.Sample(data.NewRand(data.VideoSeed(5, i))).Caption, rec.Caption)
	}
	videos, skipped, err := data.LoadVideoDataset(filepath.Join(dir, "ds", "captions.jsonl"), 8, 16, 4, false)
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, videos, 3)

	// Same flags, same captions.
	requireOK(t, reel(t, dir, "data", "gen-video", "--n", "3", "--out", "ds2", "--frames", "4", "--size", "16", "--seed", "5"))
	b2, err := os.ReadFile(filepath.Join(dir, "ds2", "captions.jsonl"))
	require.NoError(t, err)
	require.Equal(t, string(b), string(b2))

	// --out naming a file is a runtime error.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	msg := requireUserError(t, reel(t, dir, "data", "gen-video", "--n", "1", "--out", "file"), 1)
	require.Contains(t, msg, "file")
}

func TestDataGenVideoUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "ds"}, "--n"},
		{[]string{"--n", "0", "--out", "ds"}, "--n"},
		{[]string{"--n", "2"}, "--out"},
		{[]string{"--n", "2", "--out", "ds", "extra"}, `"extra"`},
		{[]string{"--n", "2", "--out", "ds", "--fps", "0"}, "--fps"},
		{[]string{"--n", "2", "--out", "ds", "--size", "2"}, "Size"},
		{[]string{"--n", "2", "--out", "ds", "--frames", "0"}, "Frames"},
		{[]string{"--n", "two", "--out", "ds"}, "--n"},
		{[]string{"--n", "2", "--out", "ds", "--bogus"}, "bogus"},
	} {
		msg := requireUserError(t, reel(t, dir, append([]string{"data", "gen-video"}, c.args...)...), 2)
		require.Contains(t, msg, c.want, c.args)
	}
	require.NoDirExists(t, filepath.Join(dir, "ds"))
	requireOK(t, reel(t, dir, "data", "gen-video", "--help"))
	requireOK(t, reel(t, dir, "data", "--help"))
}
