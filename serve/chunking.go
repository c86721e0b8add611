package serve

import "github.com/reelml/reel/policy"

// Chunking modes of Config.Chunking (policy.Chunking: the vla-eval harness's action_ensemble).
const (
	ChunkNewest      = policy.ChunkNewest
	ChunkAverage     = policy.ChunkAverage
	ChunkEMA         = policy.ChunkEMA
	DefaultEMAWeight = policy.DefaultEMAWeight
)
