package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShardEpisodes(t *testing.T) {
	seen := map[int]int{}
	for id := range 3 {
		eps, err := ShardEpisodes(10, id, 3)
		require.NoError(t, err)
		for _, e := range eps {
			assert.Equal(t, id, e%3, "round-robin: item i to shard i mod 3")
			seen[e]++
		}
	}
	assert.Len(t, seen, 10)
	for e, n := range seen {
		assert.Equal(t, 1, n, "episode %d in exactly one shard", e)
	}
	_, err := ShardEpisodes(10, 3, 3)
	assert.ErrorContains(t, err, "shard id must be in [0, 3)")
	_, err = ShardEpisodes(10, 0, 0)
	assert.Error(t, err)
}

func rec(task string, id int, success bool, steps int, reason string) EpisodeRecord {
	return EpisodeRecord{Task: task, EpisodeID: id, Metrics: map[string]any{"success": success}, Steps: steps, FailureReason: reason}
}

// The aggregate has the harness's keys and values computed in closed form.
func TestAggregate(t *testing.T) {
	recs := []EpisodeRecord{rec("push", 4, false, 60, "timeout"), rec("pick", 2, true, 10, ""), rec("pick", 0, true, 20, ""),
		rec("pick", 1, false, 60, ""), rec("push", 3, true, 30, "")}
	agg := Aggregate(ResultMeta{Benchmark: "reel-sim", HarnessVersion: "reel 0", Config: map[string]any{"seed": 7}, Shard: &ShardInfo{1, 2}}, recs)
	b, err := json.Marshal(agg)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "reel-sim", got["benchmark"])
	assert.Equal(t, "sync", got["mode"])
	assert.Equal(t, 7.0, got["seed"])
	assert.Equal(t, 0.6, got["mean_success"])
	assert.Equal(t, 5.0, got["num_episodes_total"])
	assert.Equal(t, map[string]any{"success": "mean"}, got["metric_keys"])
	assert.Equal(t, map[string]any{"id": 1.0, "total": 2.0}, got["shard"])
	assert.NotEmpty(t, got["created_at"])
	tasks := got["tasks"].([]any)
	require.Len(t, tasks, 2)
	pick, push := tasks[0].(map[string]any), tasks[1].(map[string]any)
	assert.Equal(t, "pick", pick["task"])
	assert.Equal(t, 0.6667, pick["mean_success"], "2 of 3, rounded to 4 places")
	assert.Equal(t, 30.0, pick["avg_steps"])
	assert.NotContains(t, pick, "num_errors")
	assert.Equal(t, 1.0, push["num_errors"])
	assert.Equal(t, 0.5, push["mean_success"], "a failed episode counts as a failure")
	ids := []float64{}
	for _, e := range pick["episodes"].([]any) {
		ids = append(ids, e.(map[string]any)["episode_id"].(float64))
	}
	assert.Equal(t, []float64{0, 1, 2}, ids, "episodes sorted by id")
	assert.Equal(t, "timeout", push["episodes"].([]any)[1].(map[string]any)["failure_reason"])
}

func TestEpisodeRecordJSON(t *testing.T) {
	r := EpisodeRecord{Benchmark: "b", Task: "pick", EpisodeID: 3, Metrics: map[string]any{"success": true}, Steps: 9, ElapsedSec: 0.5,
		Extra: map[string]any{"instruction": "pick up the red square", "seed": 11.0}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var flat map[string]any
	require.NoError(t, json.Unmarshal(b, &flat))
	assert.Equal(t, "pick up the red square", flat["instruction"], "the task's context is written flat, as the harness does")
	assert.NotContains(t, flat, "failure_reason")
	var back EpisodeRecord
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, back)
	assert.True(t, back.Success())
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"task": "x"}`), &back), `"episode_id"`)
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"episode_id": 1}`), &back), `"task"`)
}

func TestWriteAndMergeResults(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]any{"episodes": 5, "seed": 1}
	var files []string
	for id := range 2 {
		var recs []EpisodeRecord
		eps, err := ShardEpisodes(5, id, 2)
		require.NoError(t, err)
		for _, e := range eps {
			recs = append(recs, rec("pick", e, e%2 == 0, 10+e, ""))
		}
		jsonl, agg, err := WriteResults(dir, ResultMeta{Benchmark: "reel-sim", Config: cfg, Shard: &ShardInfo{id, 2}, ServerInfo: map[string]any{"model_server": "m"}}, recs)
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, "reel-sim_shard"+string(rune('0'+id))+"of2.jsonl"), jsonl)
		assert.FileExists(t, agg)
		files = append(files, map[int]string{0: jsonl, 1: agg}[id]) // one JSONL, one aggregate
	}
	meta, recs, warnings, err := MergeResults(files)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Nil(t, meta.Shard)
	assert.Equal(t, "m", meta.ServerInfo["model_server"])
	assert.NotContains(t, meta.Config, "shard_id")
	require.Len(t, recs, 5)
	agg := Aggregate(meta, recs)
	assert.Equal(t, 0.6, agg["mean_success"], "episodes 0, 2, 4 succeed")

	// One shard alone: a warning; the same shard twice, or another benchmark: refused.
	_, recs, warnings, err = MergeResults(files[1:])
	require.NoError(t, err)
	assert.Len(t, recs, 2)
	assert.Equal(t, []string{"shard 0 of 2 is missing", "2 episodes merged, the evaluation was configured for 5"}, warnings)
	_, _, _, err = MergeResults([]string{files[1], files[1]})
	assert.ErrorContains(t, err, "are both shard 1 of 2")
	other := filepath.Join(dir, "other.jsonl")
	require.NoError(t, os.WriteFile(other, []byte(`{"benchmark": "libero", "task": "t", "episode_id": 9, "metrics": {"success": true}}`+"\n"), 0o644))
	_, _, _, err = MergeResults([]string{files[0], other})
	assert.ErrorContains(t, err, `benchmark "libero", but`)
	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"task\": \"t\", \"episode_id\": 1}\nnot json\n"), 0o644))
	_, _, _, err = MergeResults([]string{bad})
	assert.ErrorContains(t, err, "bad.jsonl:2: not an episode record")
}
