package sim

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/reelml/reel/lerobot"
)

// EpisodeWriter takes recorded episodes (lerobot.Writer). Write
// must be safe for concurrent use and accept episodes in any order.
type EpisodeWriter interface {
	Write(ep lerobot.Episode) error
}

// GenerateOptions configure Generate.
type GenerateOptions struct {
	Episodes int    // episodes of the whole dataset
	Seed     uint64 // episode g (global index) is drawn from TrainSeed(Seed, g)
	Workers  int    // recording goroutines (0: number of CPUs)
	// Shard and Shards select one part of the dataset (Shards 0 or 1: all of it): shard I of N
	// holds the episodes ShardRange(Episodes, I, N), numbered from 0 in the writer, so that
	// merging the N shards in order gives the dataset one Generate of all episodes writes.
	Shard, Shards int
	// Progress, if set, is called after each episode is written (from one goroutine at a time).
	Progress func(ep lerobot.Episode)
}

// GenerateResult summarises a Generate run.
type GenerateResult struct {
	First, Episodes int // global index of the first episode written, and how many were
	Solved          int // episodes the expert solved
}

// ShardRange returns the global episode indices [lo, hi) of shard i of n of a dataset of
// episodes episodes: contiguous, in order, sizes differing by at most one.
func ShardRange(episodes, i, n int) (lo, hi int) {
	return i * episodes / n, (i + 1) * episodes / n
}

// Generate records expert episodes in procedural scenes of cfg (RecordEpisode) with a pool of
// workers and hands each to w as soon as it is recorded. The episodes depend only on cfg, the
// seed and their global index, never on the number of workers or shards. The first error stops
// the run (episodes in progress finish) and is returned.
func Generate(cfg Config, opts GenerateOptions, w EpisodeWriter) (GenerateResult, error) {
	return generate(cfg, opts, w, func(g, index int) (lerobot.Episode, error) {
		return RecordEpisode(cfg, TrainSeed(opts.Seed, int64(g)), index)
	})
}

// generate runs record(global index, dataset index) for the episodes of opts' shard with a pool
// of workers and hands each episode to w.
func generate(cfg Config, opts GenerateOptions, w EpisodeWriter, record func(g, index int) (lerobot.Episode, error)) (GenerateResult, error) {
	shards := max(opts.Shards, 1)
	switch {
	case opts.Episodes < 1:
		return GenerateResult{}, fmt.Errorf("sim: generate: %d episodes, want at least 1", opts.Episodes)
	case opts.Shard < 0 || opts.Shard >= shards:
		return GenerateResult{}, fmt.Errorf("sim: generate: shard %d of %d out of range [0, %d)", opts.Shard, shards, shards)
	case shards > opts.Episodes:
		return GenerateResult{}, fmt.Errorf("sim: generate: %d shards for %d episodes leaves some empty", shards, opts.Episodes)
	case opts.Workers < 0:
		return GenerateResult{}, fmt.Errorf("sim: generate: workers %d must not be negative", opts.Workers)
	}
	if err := cfg.Validate(); err != nil {
		return GenerateResult{}, fmt.Errorf("sim: generate: %w", err)
	}
	lo, hi := ShardRange(opts.Episodes, opts.Shard, shards)
	workers := opts.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	res := GenerateResult{First: lo}
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(workers, hi-lo) {
		wg.Go(func() {
			for g := range jobs {
				ep, err := record(g, g-lo)
				if err == nil {
					err = w.Write(ep)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					res.Episodes++
					if ep.Success {
						res.Solved++
					}
					if opts.Progress != nil {
						opts.Progress(ep)
					}
				}
				mu.Unlock()
			}
		})
	}
	for g := lo; g < hi; g++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	return res, firstErr
}
