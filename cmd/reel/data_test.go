package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
)

const auditSample = `{"caption": "Two dogs play in the park."}
{"caption": "A cat sits behind the door, then jumps."}

{"question": "How many apples are on the table?", "answer": "3"}
{"question": "Is the man wearing a hat?", "answer": "No, he isn't."}
`

func TestDataAudit(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "caps.jsonl"), []byte(auditSample), 0o644))

	r := reel(t, dir, "data", "audit", "caps.jsonl")
	requireOK(t, r)
	require.Empty(t, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 6, r.stdout)
	require.Equal(t, "caps.jsonl: 4 texts", lines[0])
	require.Regexp(t, `^CATEGORY +TEXTS +FRACTION +TOP WORDS$`, lines[1])
	require.Regexp(t, `^counts +2 +50\.0% +3 \(1\), many \(1\), two \(1\)$`, lines[2])
	require.Regexp(t, `^spatial +1 +25\.0% +behind \(1\)$`, lines[3])
	require.Regexp(t, `^temporal +1 +25\.0% +then \(1\)$`, lines[4])
	require.Regexp(t, `^negation +1 +25\.0% +isn't \(1\), no \(1\)$`, lines[5])
	// The table is aligned: every row's second column starts where the header's does.
	col := strings.Index(lines[1], "TEXTS")
	for _, l := range lines[2:] {
		require.Equal(t, ' ', rune(l[col-1]), l)
		require.NotEqual(t, ' ', rune(l[col]), l)
	}

	r = reel(t, dir, "data", "audit", "--json", "caps.jsonl")
	requireOK(t, r)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "one JSON object on one line")
	var got struct {
		File string `json:"file"`
		data.AuditReport
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	require.Equal(t, "caps.jsonl", got.File)
	require.Equal(t, 4, got.Texts)
	require.Len(t, got.Categories, 4)
	require.Equal(t, "counts", got.Categories[0].Name)
	require.Equal(t, 0.5, got.Categories[0].Fraction)
	require.Equal(t, 0.25, got.Categories[3].Fraction)

	requireOK(t, reel(t, dir, "data", "audit", "--help"))
}

func TestDataAuditErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.jsonl"),
		[]byte(`{"caption": "ok"}`+"\n"+`{"caption": "unterminated`+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.jsonl"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nofield.jsonl"), []byte(`{"image": "a.png"}`+"\n"), 0o644))

	msg := requireUserError(t, reel(t, dir, "data", "audit", "bad.jsonl"), 1)
	require.Contains(t, msg, "bad.jsonl:2: invalid JSON")
	msg = requireUserError(t, reel(t, dir, "data", "audit", "empty.jsonl"), 1)
	require.Contains(t, msg, "empty.jsonl")
	msg = requireUserError(t, reel(t, dir, "data", "audit", "nofield.jsonl"), 1)
	require.Contains(t, msg, "nofield.jsonl:1: no text field")
	msg = requireUserError(t, reel(t, dir, "data", "audit", "missing.jsonl"), 1)
	require.Contains(t, msg, "missing.jsonl")

	// Usage errors exit 2.
	requireUserError(t, reel(t, dir, "data"), 2)
	requireUserError(t, reel(t, dir, "data", "frobnicate"), 2)
	requireUserError(t, reel(t, dir, "data", "audit"), 2)
	requireUserError(t, reel(t, dir, "data", "audit", "a.jsonl", "b.jsonl"), 2)
	requireUserError(t, reel(t, dir, "data", "audit", "--bogus", "bad.jsonl"), 2)
}

// TestDataGenSimShardsMerge generates a dataset in one run and as two shards, merges the shards
// and checks the result is the single run's dataset; then prints its statistics.
func TestDataGenSimShardsMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("generates datasets")
	}
	dir := t.TempDir()
	sets := []string{"--set", "data.max_steps=12"}
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "3", "--out", "one", "--workers", "2"}, sets...)...))
	r := reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "3", "--out", "s0", "--shard", "0/2"}, sets...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "wrote 1 episodes (shard 0/2: episodes 0..0 of 3)")
	r = reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "3", "--out", "s1", "--shard", "1/2"}, sets...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "wrote 2 episodes (shard 1/2: episodes 1..2 of 3)")
	r = reel(t, dir, "data", "merge", "s0", "s1", "--out", "merged")
	requireOK(t, r)
	require.Contains(t, r.stdout, "merged 2 datasets into merged: 3 episodes")
	for _, rel := range []string{"meta/info.json", "meta/stats.json"} {
		a, err := os.ReadFile(filepath.Join(dir, "one", rel))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "merged", rel))
		require.NoError(t, err)
		require.Equal(t, string(a), string(b), rel)
	}
	one, err := lerobot.Open(filepath.Join(dir, "one"))
	require.NoError(t, err)
	merged, err := lerobot.Open(filepath.Join(dir, "merged"))
	require.NoError(t, err)
	for i := range 3 {
		a, err := one.Episode(i)
		require.NoError(t, err)
		b, err := merged.Episode(i)
		require.NoError(t, err)
		require.Equal(t, a, b, "episode %d", i)
	}

	r = reel(t, dir, "data", "stats", "merged")
	requireOK(t, r)
	require.Contains(t, r.stdout, "merged: LeRobot v3.0, 3 episodes")
	require.Contains(t, r.stdout, "observation.state (state, 4 values")
	require.Regexp(t, `(?m)^ +DIM +NAME +MEAN +STD +MIN +MAX +Q01 +Q10 +Q50 +Q90 +Q99$`, r.stdout)
	require.Regexp(t, `(?m)^ +2 +gripper_closed `, r.stdout)
	require.Contains(t, r.stdout, "observation.images.scene (camera, 3 values")
	r = reel(t, dir, "data", "stats", "merged", "--json")
	requireOK(t, r)
	var rep lerobot.StatsReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, "action", rep.Features[1].Key)
	require.Equal(t, rep.Features[1].Stats.Q99, rep.Features[1].Normalization["quantiles"]["q99"])

	// Refusals: one line each, the file named.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "merged", "meta", "info.json"), []byte(`{"codebase_version": "v3.0"}`), 0o644))
	msg := requireUserError(t, reel(t, dir, "data", "stats", "merged"), 1)
	require.Contains(t, msg, filepath.Join("merged", "meta", "info.json")+`: missing field "fps"`)
	requireUserError(t, reel(t, dir, "data", "merge", "s0", "--out", "s1"), 1)
	requireUserError(t, reel(t, dir, "data", "merge", "s0"), 2)
	requireUserError(t, reel(t, dir, "data", "gen-sim", "--episodes", "3", "--out", "x", "--shard", "2/2"), 2)
	requireUserError(t, reel(t, dir, "data", "gen-sim", "--episodes", "3", "--out", "x", "--format", "v2.0"), 2)
}
