package policy

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

// Chunking selects how an executor of chunks (a served connection, a closed-loop episode) turns
// them into actions; each keeps its own ChunkBuffer. The policy is queried once Spec.Execute
// actions of the last chunk have been executed (or the buffer is empty): with newest that is plain
// execute-k; with average and ema the rest of the chunk stays buffered and is blended with the
// next one. (The harness queries only when its buffer
// is empty, so its blending acts only on chunks longer than what it executes; reel re-queries every
// Spec.Execute actions so that chunks overlap by Horizon - Execute actions.)
type Chunking struct {
	Mode      string  // ChunkNewest (default), ChunkAverage or ChunkEMA
	EMAWeight float64 // ChunkEMA: weight of the new chunk's action, in (0, 1] (default DefaultEMAWeight)
}

// WithDefaults fills in zero fields.
func (c Chunking) WithDefaults() Chunking {
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
	c = c.WithDefaults()
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

// ChunkBuffer is one connection's or episode's actions not yet executed.
type ChunkBuffer struct {
	c       Chunking
	execute int // actions served from a chunk before the next query (0: the whole chunk)
	queue   [][]float32
	served  int // actions served since the last chunk was pushed
}

// NewChunkBuffer returns an empty buffer that asks for a new chunk every execute actions (0: when
// empty).
func NewChunkBuffer(c Chunking, execute int) *ChunkBuffer {
	return &ChunkBuffer{c: c.WithDefaults(), execute: execute}
}

// Due reports whether the policy must be queried before the next action.
func (b *ChunkBuffer) Due() bool {
	return len(b.queue) == 0 || (b.execute > 0 && b.served >= b.execute)
}

// Push lays chunk over the buffered actions: the overlap blended, the rest of chunk appended. A
// buffer longer than chunk keeps its tail (the harness's documented behaviour).
func (b *ChunkBuffer) Push(chunk [][]float32) {
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

// Pop returns the next action; the buffer must not be Due.
func (b *ChunkBuffer) Pop() []float32 {
	a := b.queue[0]
	b.queue = slices.Delete(b.queue, 0, 1)
	b.served++
	return a
}

// Reset forgets the buffered actions (a new episode).
func (b *ChunkBuffer) Reset() { b.queue, b.served = nil, 0 }

// Ensembled runs p behind one ChunkBuffer per episode: each call answers every observation with a
// chunk of one action, querying p (in one batch) only for the episodes whose buffer is due. An
// evaluation of it executes one action per call (Horizon 1, Execute 1), as it does for a policy
// server that buffers chunks itself.
type Ensembled struct {
	p       Policy
	c       Chunking
	execute int
	buffers []*ChunkBuffer
}

var _ EpisodePolicy = (*Ensembled)(nil)

// Ensemble wraps p (whose chunks are to be executed execute actions at a time) with chunking c.
func Ensemble(p Policy, c Chunking, execute int) *Ensembled {
	return &Ensembled{p: p, c: c.WithDefaults(), execute: execute}
}

// StartEpisodes implements EpisodePolicy: n empty buffers (and p's own episodes, if it has any).
func (e *Ensembled) StartEpisodes(n int) error {
	if err := e.c.Check(); err != nil {
		return err
	}
	e.buffers = make([]*ChunkBuffer, n)
	for i := range e.buffers {
		e.buffers[i] = NewChunkBuffer(e.c, e.execute)
	}
	if ep, ok := e.p.(EpisodePolicy); ok {
		return ep.StartEpisodes(n)
	}
	return nil
}

// Act implements Policy, obs[i] being episode i of len(obs) started on the first call.
func (e *Ensembled) Act(obs []Observation) ([][][]float32, error) {
	if e.buffers == nil {
		if err := e.StartEpisodes(len(obs)); err != nil {
			return nil, err
		}
	}
	episodes := make([]int, len(obs))
	for i := range episodes {
		episodes[i] = i
	}
	return e.ActEpisodes(episodes, obs)
}

// ActEpisodes implements EpisodePolicy.
func (e *Ensembled) ActEpisodes(episodes []int, obs []Observation) ([][][]float32, error) {
	if len(episodes) != len(obs) {
		return nil, fmt.Errorf("ensemble: %d episodes for %d observations", len(episodes), len(obs))
	}
	var dueEp []int
	var dueObs []Observation
	var duePos []int
	for k, i := range episodes {
		if i < 0 || i >= len(e.buffers) {
			return nil, fmt.Errorf("ensemble: episode %d outside the %d started", i, len(e.buffers))
		}
		if e.buffers[i].Due() {
			dueEp, dueObs, duePos = append(dueEp, i), append(dueObs, obs[k]), append(duePos, k)
		}
	}
	if len(dueObs) > 0 {
		var chunks [][][]float32
		var err error
		if ep, ok := e.p.(EpisodePolicy); ok {
			chunks, err = ep.ActEpisodes(dueEp, dueObs)
		} else {
			chunks, err = e.p.Act(dueObs)
		}
		if err != nil {
			return nil, err
		}
		if len(chunks) != len(dueObs) {
			return nil, fmt.Errorf("policy returned %d action chunks for %d observations", len(chunks), len(dueObs))
		}
		for j, ch := range chunks {
			if len(ch) == 0 {
				return nil, fmt.Errorf("policy returned an empty action chunk for observation %d", duePos[j])
			}
			e.buffers[dueEp[j]].Push(ch)
		}
	}
	out := make([][][]float32, len(obs))
	for k, i := range episodes {
		out[k] = [][]float32{e.buffers[i].Pop()}
	}
	return out, nil
}
