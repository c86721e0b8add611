package serve

import (
	"fmt"
	"slices"
)

// Chunking modes: how a connection turns the policy's overlapping action chunks into one action
// per observation. They are the vla-eval harness's PredictModelServer action_ensemble strategies
// (allenai/vla-evaluation-harness src/vla_eval/model_servers/chunking.py ActionChunkBuffer): a
// new chunk is laid over the actions of the previous ones not yet executed, the overlap blended
// action by action, the rest appended.
const (
	ChunkNewest  = "newest"  // the new chunk replaces what is left (execute-k)
	ChunkAverage = "average" // (old + new) / 2 on the overlap
	ChunkEMA     = "ema"     // w·new + (1-w)·old on the overlap, w = Chunking.EMAWeight
)

// DefaultEMAWeight is the harness's default ema_alpha.
const DefaultEMAWeight = 0.5

// Chunking selects the chunk ensembling of every connection; each connection keeps its own
// buffer. The policy is queried once Spec.Execute actions of the last chunk have been served (or
// the buffer is empty): with newest that is plain execute-k; with average and ema the rest of the
// chunk stays buffered and is blended with the next one. (The harness queries only when its buffer
// is empty, so its blending acts only on chunks longer than what it executes; reel re-queries every
// Spec.Execute actions so that chunks overlap by Horizon - Execute actions.)
type Chunking struct {
	Mode      string  // ChunkNewest (default), ChunkAverage or ChunkEMA
	EMAWeight float64 // ChunkEMA: weight of the new chunk's action, in (0, 1] (default DefaultEMAWeight)
}

// withDefaults fills in zero fields.
func (c Chunking) withDefaults() Chunking {
	if c.Mode == "" {
		c.Mode = ChunkNewest
	}
	if c.EMAWeight == 0 {
		c.EMAWeight = DefaultEMAWeight
	}
	return c
}

// Check reports a mode or weight that is not one of the above.
func (c Chunking) Check() error {
	c = c.withDefaults()
	switch c.Mode {
	case ChunkNewest, ChunkAverage, ChunkEMA:
	default:
		return fmt.Errorf("chunking %q: want newest, average or ema", c.Mode)
	}
	if !(c.EMAWeight > 0 && c.EMAWeight <= 1) {
		return fmt.Errorf("ema weight %g: want a value in (0, 1]", c.EMAWeight)
	}
	return nil
}

// blend is the ensemble of one overlapping action.
func (c Chunking) blend(old, new []float32) []float32 {
	switch c.Mode {
	case ChunkAverage:
		out := make([]float32, len(new))
		for i := range out {
			out[i] = (old[i] + new[i]) / 2
		}
		return out
	case ChunkEMA:
		w := float32(c.EMAWeight)
		out := make([]float32, len(new))
		for i := range out {
			out[i] = w*new[i] + (1-w)*old[i]
		}
		return out
	}
	return new
}

// chunkBuffer is one connection's actions not yet executed.
type chunkBuffer struct {
	c       Chunking
	execute int // actions served from a chunk before the next query (0: the whole chunk)
	queue   [][]float32
	served  int // actions served since the last chunk was pushed
}

func newChunkBuffer(c Chunking, execute int) *chunkBuffer {
	return &chunkBuffer{c: c.withDefaults(), execute: execute}
}

// due reports whether the policy must be queried before the next action.
func (b *chunkBuffer) due() bool {
	return len(b.queue) == 0 || (b.execute > 0 && b.served >= b.execute)
}

// push lays chunk over the buffered actions: the overlap blended, the rest of chunk appended. A
// buffer longer than chunk keeps its tail (the harness's documented behaviour).
func (b *chunkBuffer) push(chunk [][]float32) {
	overlap := min(len(b.queue), len(chunk))
	q := make([][]float32, 0, max(len(b.queue), len(chunk)))
	for i := range overlap {
		if len(b.queue[i]) != len(chunk[i]) { // a policy's action size never changes; be safe
			q = append(q, chunk[i])
			continue
		}
		q = append(q, b.c.blend(b.queue[i], chunk[i]))
	}
	q = append(q, chunk[overlap:]...)
	if len(b.queue) > len(chunk) {
		q = append(q, b.queue[len(chunk):]...)
	}
	b.queue, b.served = q, 0
}

// pop returns the next action.
func (b *chunkBuffer) pop() []float32 {
	a := b.queue[0]
	b.queue = slices.Delete(b.queue, 0, 1)
	b.served++
	return a
}

// reset forgets the buffered actions (a new episode).
func (b *chunkBuffer) reset() { b.queue, b.served = nil, 0 }
