package evaluate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

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
