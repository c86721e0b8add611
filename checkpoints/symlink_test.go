package checkpoints

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSumWeightFilesFollowsSymlinks: a Hugging Face cache snapshot holds symlinks into blobs/;
// its weight files are summed like regular ones.
func TestSumWeightFilesFollowsSymlinks(t *testing.T) {
	root := t.TempDir()
	blobs, snap := filepath.Join(root, "blobs"), filepath.Join(root, "snapshots", "abc")
	for _, d := range []string{blobs, snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"config.json", "model.safetensors"} {
		if err := os.WriteFile(filepath.Join(blobs, n+".blob"), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", n+".blob"), filepath.Join(snap, n)); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := SumWeightFiles(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums["config.json"].Size != int64(len("config.json")) {
		t.Errorf("sums %v, want config.json and model.safetensors", sums)
	}
}

// A missing run named like a repository id says both what was looked for and how to fetch it.
func TestResolveMissingRepoID(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Chdir(t.TempDir())
	_, err := Resolve("runs/typo", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "runs/typo: no such run or checkpoint directory") ||
		!strings.Contains(err.Error(), "'hf download runs/typo'") {
		t.Errorf("got %v", err)
	}
}
