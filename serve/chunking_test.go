package serve

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// Served: each connection ensembles its own chunks (the fake policy's action is {call, index,
// observation id}); another connection's chunks never reach it, and an invalid mode stops Listen.
func TestServeChunkingPerConnection(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	cfg.Chunking = policy.Chunking{Mode: ChunkAverage}
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

	cfg.Chunking = policy.Chunking{Mode: "bogus"}
	srv := NewServer(p, cfg)
	defer srv.Close()
	require.ErrorContains(t, srv.Listen(), `chunking "bogus"`)
}
