package policy

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkAt is the k-th chunk of a fake policy: horizon actions of one value, 10k + i.
func chunkAt(k, horizon int) [][]float32 {
	c := make([][]float32, horizon)
	for i := range c {
		c[i] = []float32{float32(10*k + i)}
	}
	return c
}

// The buffer's actions for horizon 4, execute 2, in closed form: the policy is queried on every
// second step, and the two actions left of chunk k meet the first two of chunk k+1.
func TestChunkBufferModes(t *testing.T) {
	for _, c := range []struct {
		chunking Chunking
		want     []float32
	}{
		// newest: execute-k, 0 1 | 10 11 | 20 21.
		{Chunking{}, []float32{0, 1, 10, 11, 20, 21}},
		// average: (2+10)/2 = 6, (3+11)/2 = 7; then (12+20)/2 = 16, (13+21)/2 = 17.
		{Chunking{Mode: ChunkAverage}, []float32{0, 1, 6, 7, 16, 17}},
		// ema 0.25: 0.25·10 + 0.75·2 = 4, 0.25·11 + 0.75·3 = 5; 0.25·20 + 0.75·12 = 14, 15.
		{Chunking{Mode: ChunkEMA, EMAWeight: 0.25}, []float32{0, 1, 4, 5, 14, 15}},
		// ema's default weight is the harness's 0.5: the average.
		{Chunking{Mode: ChunkEMA}, []float32{0, 1, 6, 7, 16, 17}},
	} {
		require.NoError(t, c.chunking.Check())
		b := NewChunkBuffer(c.chunking, 2)
		var got []float32
		queries := 0
		for range 6 {
			if b.Due() {
				b.Push(chunkAt(queries, 4))
				queries++
			}
			got = append(got, b.Pop()[0])
		}
		assert.Equalf(t, c.want, got, "%+v", c.chunking)
		assert.Equal(t, 3, queries)
		b.Reset()
		assert.True(t, b.Due(), "reset empties the buffer")
	}
	// Without execute the whole chunk is used before the next query.
	b := NewChunkBuffer(Chunking{Mode: ChunkAverage}, 0)
	b.Push(chunkAt(0, 3))
	for range 3 {
		assert.False(t, b.Due())
		b.Pop()
	}
	assert.True(t, b.Due())
	// Blending never writes into a chunk the policy returned.
	b = NewChunkBuffer(Chunking{Mode: ChunkAverage}, 1)
	first, second := chunkAt(0, 2), chunkAt(1, 2)
	b.Push(first)
	b.Pop()
	b.Push(second)
	assert.Equal(t, chunkAt(1, 2), second)
	assert.Equal(t, float32(5.5), b.Pop()[0])

	for _, bad := range []Chunking{{Mode: "rtc2"}, {Mode: ChunkEMA, EMAWeight: 1.5}, {Mode: ChunkEMA, EMAWeight: -1},
		{Mode: ChunkRTC, Schedule: "cosine"}, {Mode: ChunkRTC, MaxGuidance: -1}, {Delay: -1}, {Mode: ChunkRTC, RTCHorizon: -2}} {
		assert.Error(t, bad.Check(), "%+v", bad)
	}
}

// countingPolicy answers observation i of its k-th call (k from 0) with chunkAt(10k + id), id the
// observation's state[0], so each action names the call and the episode that asked for it.
type countingPolicy struct {
	horizon int
	calls   [][]float32 // the ids asked for, per call
}

func (p *countingPolicy) Act(obs []Observation) ([][][]float32, error) {
	var ids []float32
	out := make([][][]float32, len(obs))
	for i, o := range obs {
		ids = append(ids, o.State[0])
		out[i] = chunkAt(10*len(p.calls)+int(o.State[0]), p.horizon)
	}
	p.calls = append(p.calls, ids)
	return out, nil
}

// Two episodes in lockstep, horizon 4, execute 2, average: each episode blends only its own
// chunks, p is asked only for the episodes whose buffer is due, and a finished episode (dropped
// from the batch) leaves the other's buffer alone.
func TestEnsembledEpisodes(t *testing.T) {
	p := &countingPolicy{horizon: 4}
	e := Ensemble(p, Chunking{Mode: ChunkAverage}, 2)
	require.NoError(t, e.StartEpisodes(2))
	obs := func(ids ...int) []Observation {
		var o []Observation
		for _, id := range ids {
			o = append(o, Observation{State: []float32{float32(id)}})
		}
		return o
	}
	step := func(episodes ...int) []float32 {
		chunks, err := e.ActEpisodes(episodes, obs(episodes...))
		require.NoError(t, err)
		var got []float32
		for _, c := range chunks {
			require.Len(t, c, 1, "one action per call")
			got = append(got, c[0][0])
		}
		return got
	}
	// Call 0 (both): chunk values 100·0 + 10·id + i → episode 0: 0 1 2 3, episode 1: 10 11 12 13.
	assert.Equal(t, []float32{0, 10}, step(0, 1))
	assert.Equal(t, []float32{1, 11}, step(0, 1))
	// Call 1 (both): episode 0's 2 3 meet 100 101 → 51 52; episode 1's 12 13 meet 110 111 → 61 62.
	assert.Equal(t, []float32{51, 61}, step(0, 1))
	// Episode 0 finished: episode 1 continues from its own buffer without a call.
	assert.Equal(t, []float32{62}, step(1))
	// Call 2 (episode 1 only): 102+10 = 112, 113 meet 210, 211 → 161, 162.
	assert.Equal(t, []float32{161}, step(1))
	assert.Equal(t, [][]float32{{0, 1}, {0, 1}, {1}}, p.calls)
	_, err := e.ActEpisodes([]int{2}, obs(2))
	assert.ErrorContains(t, err, "episode 2 outside the 2 started")
}

// RTC's weights are the kinetix code's get_prefix_weights, whose docstring gives start 2, end 6,
// total 10 (linear): 1 1 4/5 3/5 2/5 1/5 0 0 0 0; exp is the paper's Eq. 5, w·(e^w − 1)/(e − 1).
func TestPrefixWeights(t *testing.T) {
	lin := []float64{1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0}
	got := PrefixWeights(2, 6, 10, ScheduleLinear)
	exp := PrefixWeights(2, 6, 10, ScheduleExp)
	for i, w := range lin {
		assert.InDelta(t, w, got[i], 1e-6, "linear %d", i)
		assert.InDelta(t, w*math.Expm1(w)/(math.E-1), exp[i], 1e-6, "exp %d", i)
	}
	assert.Equal(t, []float32{1, 1, 0, 0, 0}, PrefixWeights(2, 4, 5, ScheduleZeros))
	assert.Equal(t, []float32{1, 1, 1, 1, 0}, PrefixWeights(2, 4, 5, ScheduleOnes))
	// end before start: start is cut to end; end 0 guides nothing.
	assert.Equal(t, []float32{1, 0, 0}, PrefixWeights(3, 1, 3, ScheduleExp))
	assert.Equal(t, []float32{0, 0, 0}, PrefixWeights(0, 0, 3, ScheduleExp))
}

// An inference delay of d actions keeps the first d buffered actions (executed while the chunk is
// computed), horizon 4, execute 2, delay 1: 0 1 | 2 11 | 12 21 (the paper's naive asynchronous
// execution); the jumps at the boundaries are counted where the new chunk's actions start.
func TestChunkBufferDelayAndJumps(t *testing.T) {
	for _, c := range []struct {
		chunking Chunking
		want     []float32
		jump     float64
		n        int
	}{
		{Chunking{}, []float32{0, 1, 10, 11, 20, 21}, 9, 2},                           // 1 → 10, 11 → 20
		{Chunking{Delay: 1}, []float32{0, 1, 2, 11, 12, 21}, 9, 2},                    // 2 → 11, 12 → 21
		{Chunking{Mode: ChunkAverage, Delay: 1}, []float32{0, 1, 2, 7, 12, 17}, 5, 2}, // 2 → (3+11)/2, 12 → (13+21)/2
		{Chunking{Delay: 2}, []float32{0, 1, 2, 3, 12, 13}, 9, 1},                     // chunk 1 is served from the third query on: 3 → 12
	} {
		require.NoError(t, c.chunking.CheckChunks(4, 2))
		b := NewChunkBuffer(c.chunking, 2)
		var got []float32
		queries := 0
		for range 6 {
			if b.Due() {
				b.Push(chunkAt(queries, 4))
				queries++
			}
			got = append(got, b.Pop()[0])
		}
		assert.Equalf(t, c.want, got, "%+v", c.chunking)
		assert.Equal(t, c.n, b.Jumps().N, "%+v", c.chunking)
		assert.InDelta(t, c.jump, b.Jumps().Mean(), 1e-9, "%+v", c.chunking)
	}
	require.Error(t, Chunking{Delay: 3}.CheckChunks(4, 2), "the delay cannot exceed execute")
	require.Error(t, Chunking{Delay: 2}.CheckChunks(2, 2), "nor reach the horizon")
}

// RTC's guide is what is left of the last chunk, weighted from the delay to the end of the overlap
// (RTCHorizon cuts it).
func TestChunkBufferGuide(t *testing.T) {
	b := NewChunkBuffer(Chunking{Mode: ChunkRTC, Delay: 1}, 2)
	assert.False(t, b.Guide().Guides(), "an empty buffer guides nothing")
	b.Push(chunkAt(0, 5))
	b.Pop()
	b.Pop()
	g := b.Guide()
	assert.Equal(t, [][]float32{{2}, {3}, {4}}, g.Prev)
	assert.Equal(t, PrefixWeights(1, 3, 5, ScheduleExp), g.Weights)
	b = NewChunkBuffer(Chunking{Mode: ChunkRTC, Delay: 1, RTCHorizon: 2, Schedule: ScheduleOnes}, 2)
	b.Push(chunkAt(0, 5))
	b.Pop()
	b.Pop()
	assert.Equal(t, []float32{1, 1, 0, 0, 0}, b.Guide().Weights)
}

// inpaintingPolicy is countingPolicy that can be guided: it records the guides and answers a
// guided observation with its committed actions where their weight is 1.
type inpaintingPolicy struct {
	countingPolicy
	guides [][]Guide
	beta   float64
}

func (p *inpaintingPolicy) Inpaints() bool { return true }

func (p *inpaintingPolicy) ActInpainting(obs []Observation, guides []Guide, beta float64) ([][][]float32, error) {
	out, _ := p.Act(obs)
	p.guides, p.beta = append(p.guides, guides), beta
	for i, g := range guides {
		for k, w := range g.Weights {
			if w == 1 {
				out[i][k] = g.Prev[k]
			}
		}
	}
	return out, nil
}

// Under rtc an episode's first chunk is plain sampling, the next ones guided by what its buffer
// holds; a policy that cannot be guided is refused.
func TestEnsembledRTC(t *testing.T) {
	p := &inpaintingPolicy{countingPolicy: countingPolicy{horizon: 4}}
	e := Ensemble(p, Chunking{Mode: ChunkRTC, Delay: 1, MaxGuidance: 7}, 2)
	require.NoError(t, e.StartEpisodes(1))
	var got []float32
	for range 4 {
		c, err := e.Act([]Observation{{State: []float32{0}}})
		require.NoError(t, err)
		got = append(got, c[0][0][0])
	}
	// Chunk 0: 0 1 2 3; chunk 1 (guided by 2 3, the first frozen): 2 then 101.
	assert.Equal(t, []float32{0, 1, 2, 101}, got)
	require.Len(t, p.guides, 1)
	assert.Equal(t, [][]float32{{2}, {3}}, p.guides[0][0].Prev)
	assert.Equal(t, PrefixWeights(1, 2, 4, ScheduleExp), p.guides[0][0].Weights)
	assert.Equal(t, 7.0, p.beta)
	assert.InDelta(t, 99, e.Jumps().Mean(), 1e-9)

	err := Ensemble(&countingPolicy{horizon: 4}, Chunking{Mode: ChunkRTC}, 2).StartEpisodes(1)
	assert.ErrorContains(t, err, "not a flow-matching policy")
}
