package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cacheSnapshot copies the files of src into a Hugging Face cache repository laid out as
// huggingface_hub's snapshot_download leaves it: contents in blobs/, snapshots/SHA/ holding
// relative symlinks to them, refs/REV naming SHA.
func cacheSnapshot(t *testing.T, repo, rev, sha, src string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "refs", rev), []byte(sha), 0o644))
	n := 0
	require.NoError(t, filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		blob := filepath.Join(repo, "blobs", strings.Repeat("b", 8)+"-"+strings.ReplaceAll(rel, string(filepath.Separator), "_"))
		require.NoError(t, os.MkdirAll(filepath.Dir(blob), 0o755))
		require.NoError(t, os.WriteFile(blob, b, 0o644))
		link := filepath.Join(repo, "snapshots", sha, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
		target, _ := filepath.Rel(filepath.Dir(link), blob)
		return os.Symlink(target, link)
	}))
	require.NotZero(t, n)
}

// TestHubRepoIDs names models and a LeRobot dataset by repository id, as a user who fetched them
// with `hf download` would: the commands read them from a fake cache exactly as from the
// directories themselves, and a repository that is not there is one line saying where reel
// looked and how to fetch it.
func TestHubRepoIDs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HF_HOME", filepath.Join(home, "hf"))
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_LEROBOT_HOME", "")
	hubCache := filepath.Join(home, "hf", "hub")
	abs := func(p string) string { a, err := filepath.Abs(p); require.NoError(t, err); return a }
	gemma, llama := abs("../../hf/testdata/gemma"), abs("../../text/testdata/llama3.json")
	reachy := abs("../../lerobot/testdata/reachy2_v30")
	const sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	cacheSnapshot(t, filepath.Join(hubCache, "models--acme--gemma-tiny"), "main", sha, gemma)
	tok := t.TempDir()
	b, err := os.ReadFile(llama)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tok, "tokenizer.json"), b, 0o644))
	cacheSnapshot(t, filepath.Join(hubCache, "models--acme--llama3-tok"), "v1", sha, tok)
	// LeRobot's own snapshot cache, at the codebase version it asks the Hub for.
	cacheSnapshot(t, filepath.Join(home, "hf", "lerobot", "hub", "datasets--pollen--reachy2"), "v3.0", sha, reachy)

	dir := t.TempDir()
	modelSnap := filepath.Join(hubCache, "models--acme--gemma-tiny", "snapshots", sha)
	dataSnap := filepath.Join(home, "hf", "lerobot", "hub", "datasets--pollen--reachy2", "snapshots", sha)
	// same runs both commands; their outputs agree once each names its directory DIR.
	same := func(args1, args2 []string, dir1, dir2 string) {
		t.Helper()
		r1, r2 := reel(t, dir, args1...), reel(t, dir, args2...)
		requireOK(t, r1)
		requireOK(t, r2)
		require.NotEmpty(t, r1.stdout)
		require.Contains(t, r2.stdout, dir2)
		require.Equal(t, strings.ReplaceAll(r1.stdout, dir1, "DIR"), strings.ReplaceAll(r2.stdout, dir2, "DIR"))
	}
	same([]string{"hf", "inspect", gemma, "--json"}, []string{"hf", "inspect", "acme/gemma-tiny", "--json"}, gemma, modelSnap)
	same([]string{"hf", "inspect", gemma, "--json"}, []string{"hf", "inspect", "acme/gemma-tiny@" + sha, "--json"}, gemma, modelSnap)
	same([]string{"data", "stats", reachy, "--json"}, []string{"data", "stats", "pollen/reachy2", "--json"}, reachy, dataSnap)
	r1, r2 := reel(t, dir, "hf", "tokenize", llama, "--text", "Hello, world!"), reel(t, dir, "hf", "tokenize", "acme/llama3-tok@v1", "--text", "Hello, world!")
	requireOK(t, r1)
	requireOK(t, r2)
	require.Contains(t, r1.stdout, `"ids"`)
	require.Equal(t, r1.stdout, r2.stdout)

	line := requireUserError(t, reel(t, dir, "hf", "inspect", "acme/gemma-tiny@v9"), 1)
	require.Contains(t, line, filepath.Join(hubCache, "models--acme--gemma-tiny", "refs", "v9"))
	require.Contains(t, line, "cached revisions: a1b2c3d4e5f6, main")
	require.Contains(t, line, "'hf download acme/gemma-tiny --revision v9'")
	line = requireUserError(t, reel(t, dir, "data", "stats", "pollen/missing"), 1)
	require.Contains(t, line, filepath.Join(home, "hf", "lerobot", "pollen", "missing"))
	require.Contains(t, line, filepath.Join(hubCache, "datasets--pollen--missing"))
	require.Contains(t, line, "'hf download pollen/missing --repo-type dataset'")
}
