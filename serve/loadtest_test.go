package serve

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// The load test serves a policy, drives it from concurrent sessions batched and unbatched, and
// finds every reply correct.
func TestBenchServe(t *testing.T) {
	spec := testSpec(testSize, 2, 3, 4, testCameras...)
	spec.Execute = 2
	p := &fakePolicy{horizon: 4}
	reps, err := BenchServe(p, Config{Spec: spec, Name: "fake", BatchWindow: 10 * time.Millisecond},
		LoadTestConfig{Sessions: 6, Duration: 700 * time.Millisecond, EpisodeSteps: 7}, []int{6, 1})
	require.NoError(t, err)
	require.Len(t, reps, 2)
	for _, r := range reps {
		assert.True(t, r.OK(), "%+v", r)
		assert.Greater(t, r.Replies, 12)
		assert.Greater(t, r.Throughput, 0.0)
		assert.LessOrEqual(t, r.P50MS, r.P99MS)
		assert.LessOrEqual(t, r.MeanBatch, float64(r.MaxBatch))
		// Execute=2 of each chunk: about one policy query per two replies (an episode's odd last
		// step also queries).
		assert.InDelta(t, float64(r.Replies)/2, r.MeanBatch*float64(r.Calls), float64(r.Replies)/7+6)
	}
	assert.Equal(t, 1.0, reps[1].MeanBatch)
	assert.False(t, p.concurrent.Load())
}

// mislabel tags every action as another session's: the load client must count them all.
type mislabel struct{ tagPolicy }

func (m *mislabel) Act(obs []policy.Observation) ([][][]float32, error) {
	chunks, err := m.tagPolicy.Act(obs)
	for _, c := range chunks {
		for _, a := range c {
			a[len(a)-2]++
		}
	}
	return chunks, err
}

func TestLoadTestCountsCrossWiredReplies(t *testing.T) {
	spec := testSpec(testSize, 2, 3, 2, testCameras...)
	spec.Execute = 2
	tagged := spec
	tagged.ActionDim += 2
	cfg := testConfig()
	cfg.Spec, cfg.MaxBatch = tagged, 4
	s := startServer(t, &mislabel{tagPolicy{p: &fakePolicy{horizon: 2}}}, cfg)
	rep, err := RunLoadTest(context.Background(), "ws://"+s.Addr(), tagged, LoadTestConfig{Sessions: 3, Duration: 300 * time.Millisecond, EpisodeSteps: 4})
	require.NoError(t, err)
	assert.False(t, rep.OK())
	assert.Greater(t, rep.Replies, 0)
	assert.Equal(t, rep.Replies, rep.CrossWired)
	assert.Zero(t, rep.WrongSeq)
}
