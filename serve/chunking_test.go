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

// fakeInpainter is fakePolicy that can be guided: it records the guides and answers with the
// committed actions where their weight is 1.
type fakeInpainter struct {
	fakePolicy
	guides []policy.Guide
	beta   float64
}

func (p *fakeInpainter) Inpaints() bool { return true }

func (p *fakeInpainter) ActInpainting(obs []policy.Observation, guides []policy.Guide, beta float64) ([][][]float32, error) {
	out, err := p.Act(obs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.guides, p.beta = append(p.guides, guides...), beta
	for i, g := range guides {
		for k, w := range g.Weights {
			if w == 1 {
				out[i][k] = g.Prev[k]
			}
		}
	}
	return out, err
}

// Served under rtc with an inference delay of 1: a connection's first chunk is plain, the next one
// guided by the actions its buffer holds (its first frozen, then served from the buffer); a policy
// that cannot be guided, or a delay beyond execute, stops Listen.
func TestServeRTC(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	cfg.Chunking = policy.Chunking{Mode: ChunkRTC, Delay: 1, MaxGuidance: 4}
	p := &fakeInpainter{fakePolicy: fakePolicy{horizon: 4}}
	s := startServer(t, p, cfg)
	c := dial(t, s)
	ctx := ctxT(t)
	var got [][]float32
	for range 4 {
		act, err := c.Step(ctx, testObs(7))
		require.NoError(t, err)
		got = append(got, act)
	}
	assert.Equal(t, [][]float32{{1, 0, 7}, {1, 1, 7}, {1, 2, 7}, {2, 1, 7}}, got)
	p.mu.Lock()
	require.Len(t, p.guides, 1)
	assert.Equal(t, [][]float32{{1, 2, 7}, {1, 3, 7}}, p.guides[0].Prev)
	assert.Equal(t, policy.PrefixWeights(1, 2, 4, policy.ScheduleExp), p.guides[0].Weights)
	assert.Equal(t, 4.0, p.beta)
	p.mu.Unlock()

	srv := NewServer(&fakePolicy{horizon: 4}, cfg)
	defer srv.Close()
	require.ErrorContains(t, srv.Listen(), "not a flow-matching policy")
	cfg.Chunking = policy.Chunking{Mode: ChunkNewest, Delay: 3}
	srv2 := NewServer(p, cfg)
	defer srv2.Close()
	require.ErrorContains(t, srv2.Listen(), "inference delay 3")
}
