package evaluate

import (
	"fmt"

	"github.com/reelml/reel/serve"
)

// Merged is the outcome of Merge (its JSON keys in alphabetical order, as `reel eval merge` has
// always printed them).
type Merged struct {
	Benchmark   string   `json:"benchmark"`
	Episodes    int      `json:"episodes"`
	Failed      int      `json:"failed"`
	MeanSuccess any      `json:"mean_success"`
	Out         string   `json:"out"`
	Warnings    []string `json:"-"` // a missing shard, …
}

// Merge joins the results of an evaluation's shards (per-episode JSONL or _aggregate.json files
// in the vla-eval harness's result layout) into one aggregate JSON written to out. An episode
// found in two files, or files of different benchmarks, are refused.
func Merge(files []string, out string) (Merged, error) {
	meta, records, warnings, err := serve.MergeResults(files)
	if err != nil {
		return Merged{}, fmt.Errorf("eval merge: %w", err)
	}
	agg := serve.Aggregate(meta, records)
	if err := serve.WriteAggregate(out, agg); err != nil {
		return Merged{Warnings: warnings}, fmt.Errorf("eval merge: %w", err)
	}
	m := Merged{Out: out, Benchmark: meta.Benchmark, Episodes: len(records), MeanSuccess: agg["mean_success"], Warnings: warnings}
	for _, r := range records {
		if r.FailureReason != "" {
			m.Failed++
		}
	}
	return m, nil
}
