package sim

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reelml/reel/lerobot"
)

// TestWriteDataset: the episodes of one shard are written as a LeRobot dataset that lerobot.Open
// reads back with the simulator's state names; the progress callback sees each episode once; an
// existing dataset is refused without Overwrite and left as it was.
func TestWriteDataset(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("needs ffmpeg")
	}
	dir := filepath.Join(t.TempDir(), "ds")
	seen := 0
	opts := DatasetOptions{
		GenerateOptions: GenerateOptions{Episodes: 3, Seed: 1, Workers: 1, Shard: 1, Shards: 2,
			Progress: func(lerobot.Episode) { seen++ }},
		Writer: lerobot.WriterConfig{Format: lerobot.V21, FPS: 10},
	}
	res, err := WriteDataset(dir, DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := ShardRange(3, 1, 2)
	if res.First != lo || res.Episodes != hi-lo || seen != hi-lo {
		t.Fatalf("shard 1/2 of 3: result %+v, %d progress calls; want episodes %d..%d", res, seen, lo, hi-1)
	}
	ds, err := lerobot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds.NumEpisodes() != hi-lo || ds.Version() != lerobot.V21 {
		t.Fatalf("read back %d episodes of version %s, want %d of %s", ds.NumEpisodes(), ds.Version(), hi-lo, lerobot.V21)
	}
	if got := ds.Features().StateNames; !slices.Equal(got, StateNames()) {
		t.Fatalf("state names %v, want %v", got, StateNames())
	}
	info, _ := os.ReadFile(filepath.Join(dir, "meta", "info.json"))
	if _, err := WriteDataset(dir, DefaultConfig(), opts); err == nil {
		t.Fatal("a second dataset in the same directory without Overwrite: no error")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "meta", "info.json")); string(again) != string(info) {
		t.Fatal("the refused write changed the existing dataset")
	}
}

func TestDatasetOptionsCheckFlags(t *testing.T) {
	o := DatasetOptions{GenerateOptions: GenerateOptions{Episodes: 4, Shards: 2}, Writer: lerobot.WriterConfig{Format: lerobot.V21, FPS: 10}}
	if err := o.CheckFlags("out", "1/2"); err != nil {
		t.Fatal(err)
	}
	bad := func(mod func(*DatasetOptions), out, want string) {
		t.Helper()
		c := o
		mod(&c)
		if err := c.CheckFlags(out, "5/6"); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckFlags = %v, want %q", err, want)
		}
	}
	bad(func(*DatasetOptions) {}, "", "--out DIR is required")
	bad(func(c *DatasetOptions) { c.Episodes = 0 }, "out", "--episodes must be a positive number")
	bad(func(c *DatasetOptions) { c.Writer.FPS = 0 }, "out", "--fps")
	bad(func(c *DatasetOptions) { c.Workers = -1 }, "out", "--workers")
	bad(func(c *DatasetOptions) { c.Writer.Format = "v9" }, "out", `--format "v9"`)
	bad(func(c *DatasetOptions) { c.Shards = 6 }, "out", "--shard 5/6: more shards than the 4 episodes")
}
