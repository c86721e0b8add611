package evaluate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/serve"
)

// The baseline of a fine-tune: --baseline wins, "none" skips, else train.init_from, else a
// model.pretrained run's own initialisation.
func TestBaselinePath(t *testing.T) {
	r := recipes.Defaults()
	require.Equal(t, "", BaselinePath("", &r), "a run from scratch has no baseline")
	r.Train.InitFrom = "runs/pre"
	require.Equal(t, "runs/pre", BaselinePath("", &r))
	require.Equal(t, "other", BaselinePath("other", &r))
	require.Equal(t, "", BaselinePath("none", &r))
	r.Train.InitFrom, r.Model.Pretrained = "", "random"
	require.Equal(t, InitBaseline, BaselinePath("", &r))
}

// Splits pairs each eval set's accuracy before and after under the counting paper's names and
// leaves out sets one side lacks.
func TestSplits(t *testing.T) {
	before := map[string]float64{"counting/accuracy": 0.25, "counting_ood/accuracy": 0.5, "mine/accuracy": 0.75, "general/mae": 1}
	after := map[string]float64{"counting/accuracy": 0.5, "counting_ood/accuracy": 0.25, "mine/accuracy": 1, "general/accuracy": 1}
	got := Splits([]string{"counting", "counting_ood", "general", "mine"}, before, after)
	require.Equal(t, []SplitDelta{
		{Split: "id", Set: "counting", Before: 0.25, After: 0.5, Delta: 0.25},
		{Split: "ood", Set: "counting_ood", Before: 0.5, After: 0.25, Delta: -0.25},
		{Split: "mine", Set: "mine", Before: 0.75, After: 1, Delta: 0.25},
	}, got)
}

// Merge joins two shards into one aggregate and counts the failed episodes; its JSON keys are
// in the order `reel eval merge` has always printed them.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for id := range 2 {
		meta := serve.ResultMeta{Benchmark: "reel-sim", Shard: &serve.ShardInfo{ID: id, Total: 2}, Config: map[string]any{"episodes": 4}}
		var recs []serve.EpisodeRecord
		for ep := id; ep < 4; ep += 2 {
			r := serve.EpisodeRecord{Task: "push", EpisodeID: ep, Metrics: map[string]any{"success": ep == 0}, Steps: 3}
			if ep == 3 {
				r.FailureReason, r.FailureDetail = "timeout", "no reply"
			}
			recs = append(recs, r)
		}
		jsonl, _, err := serve.WriteResults(filepath.Join(dir, "shard", string(rune('a'+id))), meta, recs)
		require.NoError(t, err)
		files = append(files, jsonl)
	}
	out := filepath.Join(dir, "all.json")
	m, err := Merge(files, out)
	require.NoError(t, err)
	require.Equal(t, 4, m.Episodes)
	require.Equal(t, 1, m.Failed)
	require.Equal(t, "reel-sim", m.Benchmark)
	require.InDelta(t, 0.25, m.MeanSuccess, 1e-12)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.Regexp(t, `^\{"benchmark":"reel-sim","episodes":4,"failed":1,"mean_success":0\.25,"out":".*all\.json"\}$`, string(b))
	_, err = os.Stat(out)
	require.NoError(t, err)
}

func TestRemoteCheck(t *testing.T) {
	given := func(flags ...string) func(string) bool {
		return func(f string) bool { return slices.Contains(flags, f) }
	}
	ok := Remote{URL: "ws://x", MaxConns: 1, ActTimeout: time.Second}
	r := ok
	require.NoError(t, r.Check(1, 3, given("shard-id", "num-shards")))
	require.Equal(t, &serve.ShardInfo{ID: 1, Total: 3}, r.Shard)
	r = ok
	require.NoError(t, r.Check(0, 0, given()))
	require.Nil(t, r.Shard)
	for _, c := range []struct {
		r       Remote
		id, num int
		given   []string
		want    string
	}{
		{Remote{MaxConns: 1, ActTimeout: time.Second}, 0, 0, []string{"results"}, "--results is for --remote"},
		{Remote{URL: "ws://x", ActTimeout: time.Second}, 0, 0, nil, "--max-connections must be ≥ 1"},
		{Remote{URL: "ws://x", MaxConns: 1}, 0, 0, nil, "--act-timeout must be positive"},
		{ok, 1, 0, []string{"shard-id"}, "--shard-id needs --num-shards"},
		{ok, 3, 3, []string{"shard-id", "num-shards"}, "--shard-id must be in [0, --num-shards)"},
	} {
		err := c.r.Check(c.id, c.num, given(c.given...))
		require.ErrorContains(t, err, c.want)
		require.True(t, usage.Is(err), "a usage error: %v", err)
	}
}
