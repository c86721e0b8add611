package serve

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
		b := newChunkBuffer(c.chunking, 2)
		var got []float32
		queries := 0
		for range 6 {
			if b.due() {
				b.push(chunkAt(queries, 4))
				queries++
			}
			got = append(got, b.pop()[0])
		}
		assert.Equalf(t, c.want, got, "%+v", c.chunking)
		assert.Equal(t, 3, queries)
		b.reset()
		assert.True(t, b.due(), "reset empties the buffer")
	}
	// Without execute the whole chunk is used before the next query.
	b := newChunkBuffer(Chunking{Mode: ChunkAverage}, 0)
	b.push(chunkAt(0, 3))
	for range 3 {
		assert.False(t, b.due())
		b.pop()
	}
	assert.True(t, b.due())
	// Blending never writes into a chunk the policy returned.
	b = newChunkBuffer(Chunking{Mode: ChunkAverage}, 1)
	first, second := chunkAt(0, 2), chunkAt(1, 2)
	b.push(first)
	b.pop()
	b.push(second)
	assert.Equal(t, chunkAt(1, 2), second)
	assert.Equal(t, float32(5.5), b.pop()[0])

	for _, bad := range []Chunking{{Mode: "rtc"}, {Mode: ChunkEMA, EMAWeight: 1.5}, {Mode: ChunkEMA, EMAWeight: -1}} {
		assert.Error(t, bad.Check(), "%+v", bad)
	}
}

// Served: each connection ensembles its own chunks (the fake policy's action is {call, index,
// observation id}); another connection's chunks never reach it, and an invalid mode stops Listen.
func TestServeChunkingPerConnection(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	cfg.Chunking = Chunking{Mode: ChunkAverage}
	p := &fakePolicy{horizon: 4}
	s := startServer(t, p, cfg)
	a, b := dial(t, s), dial(t, s)
	ctx := ctxT(t)
	step := func(c *Client, id float32) []float32 {
		act, err := c.Step(ctx, testObs(id))
		require.NoError(t, err)
		return act
	}
	assert.Equal(t, []float32{1, 0, 7}, step(a, 7))
	assert.Equal(t, []float32{1, 1, 7}, step(a, 7))
	assert.Equal(t, []float32{2, 0, 9}, step(b, 9), "a new connection starts from its own chunk")
	// a's third step: its call-1 actions 2 and 3 averaged with call 3's actions 0 and 1.
	assert.Equal(t, []float32{2, 1, 7}, step(a, 7))
	assert.Equal(t, []float32{2, 2, 7}, step(a, 7))
	assert.Equal(t, []float32{2, 1, 9}, step(b, 9))
	// Two more served: a's call-3 actions 2 and 3 meet call 4's 0 and 1 (b's step used its buffer).
	assert.Equal(t, []float32{3.5, 1, 7}, step(a, 7))
	calls, _ := p.stats()
	assert.Equal(t, 4, calls)

	cfg.Chunking = Chunking{Mode: "bogus"}
	srv := NewServer(p, cfg)
	defer srv.Close()
	require.ErrorContains(t, srv.Listen(), `chunking "bogus"`)
}
