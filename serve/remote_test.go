package serve

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// A lockstep evaluator of three environments: each Act answers every slot with its own
// one-action chunk, the server batches the slots into one policy call, execute-k happens on the
// server, and StartEpisodes resets every slot.
func TestRemotePolicyLockstep(t *testing.T) {
	const n = 3
	cfg := testConfig()
	cfg.MaxBatch = n
	cfg.BatchWindow = time.Minute // batches fill by count
	cfg.Spec.Execute = 2
	p := &fakePolicy{horizon: 4}
	s := startServer(t, p, cfg)

	rp, err := NewRemotePolicy(ctxT(t), s.Addr(), n)
	require.NoError(t, err)
	defer rp.Close()
	assert.Equal(t, n, rp.Slots())
	assert.Equal(t, 3, rp.Info().ActionDim)
	var _ policy.Policy = rp

	obs := []policy.Observation{testObs(0), testObs(1), testObs(2)}
	act := func() [][][]float32 {
		chunks, err := rp.Act(obs)
		require.NoError(t, err)
		require.Len(t, chunks, n)
		return chunks
	}
	require.NoError(t, rp.StartEpisodes(n))
	for step, want := range [][2]float32{{1, 0}, {1, 1}, {2, 0}} {
		for i, chunk := range act() {
			assert.Equal(t, [][]float32{{want[0], want[1], float32(i)}}, chunk, "step %d slot %d", step, i)
		}
	}
	require.NoError(t, rp.StartEpisodes(n))
	for i, chunk := range act() {
		assert.Equal(t, [][]float32{{3, 0, float32(i)}}, chunk, "after StartEpisodes, slot %d", i)
	}
	_, batches := p.stats()
	assert.Equal(t, []int{n, n, n}, batches)

}

// One slot restarts alone: only its buffer is cleared.
func TestRemotePolicyRestartOneSlot(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	s := startServer(t, &fakePolicy{horizon: 4}, cfg)
	rp, err := NewRemotePolicy(ctxT(t), s.Addr(), 3)
	require.NoError(t, err)
	defer rp.Close()
	obs := []policy.Observation{testObs(0), testObs(1), testObs(2)}
	first, err := rp.Act(obs)
	require.NoError(t, err)
	require.NoError(t, rp.StartEpisode(1, map[string]any{"episode": 7}))
	second, err := rp.Act(obs)
	require.NoError(t, err)
	assert.Equal(t, first[0][0][0], second[0][0][0], "slot 0 continues its chunk")
	assert.Equal(t, float32(1), second[0][0][1], "slot 0 continues its chunk")
	assert.Equal(t, float32(0), second[1][0][1], "slot 1 got a fresh chunk")
	assert.Greater(t, second[1][0][0], first[1][0][0], "slot 1 queried the policy again")
	assert.Equal(t, first[2][0][0], second[2][0][0], "slot 2 continues its chunk")
	assert.Equal(t, float32(1), second[2][0][1], "slot 2 continues its chunk")

	// episode_end also drops the rest of the chunk.
	require.NoError(t, rp.EndEpisode(2, map[string]any{"success": true}))
	third, err := rp.Act(obs)
	require.NoError(t, err)
	assert.Equal(t, float32(0), third[2][0][1])
}

// Act grows the pool when it gets more observations than slots, and fails cleanly (naming the
// slot) when the server rejects an observation.
func TestRemotePolicyGrowAndErrors(t *testing.T) {
	s := startServer(t, &fakePolicy{horizon: 1}, testConfig())
	rp, err := NewRemotePolicy(ctxT(t), "ws://"+s.Addr(), 1)
	require.NoError(t, err)
	defer rp.Close()
	chunks, err := rp.Act([]policy.Observation{testObs(5), testObs(6)})
	require.NoError(t, err)
	assert.Equal(t, 2, rp.Slots())
	assert.Equal(t, float32(6), chunks[1][0][2])

	bad := testObs(1)
	bad.State = []float32{1, 2, 3}
	_, err = rp.Act([]policy.Observation{testObs(5), bad})
	assert.ErrorContains(t, err, "slot 1: policy server: observation.states has shape [3], the policy reads [2]")
	chunks, err = rp.Act([]policy.Observation{testObs(5), testObs(6)})
	require.NoError(t, err, "the connections stay usable")
	assert.Len(t, chunks, 2)
	assert.Error(t, rp.EndEpisode(5, nil))
}

func TestDialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s := startServer(t, &fakePolicy{horizon: 1}, testConfig())
	addr := s.Addr()
	_, err := Dial(ctx, "ws://"+addr+"/health")
	assert.Error(t, err, "not a websocket endpoint")
	_, err = NewRemotePolicy(ctx, "ws://127.0.0.1:1", 2)
	assert.Error(t, err)
}
