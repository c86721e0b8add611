package policy

import (
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

	for _, bad := range []Chunking{{Mode: "rtc"}, {Mode: ChunkEMA, EMAWeight: 1.5}, {Mode: ChunkEMA, EMAWeight: -1}} {
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
