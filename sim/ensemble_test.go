package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// A policy behind per-episode chunk buffers (policy.Ensemble, what eval.chunking selects) with
// newest chunking, executed one action per call, plays exactly the rollouts of execute-k: the
// same policy calls, actions, successes, steps and jumps at chunk boundaries.
func TestEvaluateEnsembledNewestIsExecuteK(t *testing.T) {
	cfg := DefaultConfig()
	ec := EvalConfig{Episodes: 12, Seed: 11, Horizon: 4, Execute: 3, Workers: 2}
	direct := newExpertPolicy(t, cfg, ec)
	want, err := Evaluate(cfg, ec, direct)
	require.NoError(t, err)

	wrapped := newExpertPolicy(t, cfg, ec)
	one := ec
	one.Horizon, one.Execute = 1, 1
	got, err := Evaluate(cfg, one, policy.Ensemble(wrapped, policy.Chunking{Mode: policy.ChunkNewest}, ec.Execute))
	require.NoError(t, err)
	assert.Equal(t, want.FamilyResult, got.FamilyResult)
	assert.Equal(t, want.Families, got.Families)
	assert.Equal(t, direct.batches, wrapped.batches, "the policy is asked at the same rounds for the same worlds")
	// The jumps at chunk boundaries, counted by Evaluate for execute-k and by the buffers for the
	// ensemble, agree.
	assert.Greater(t, want.Boundaries, ec.Episodes)
	assert.Equal(t, want.Boundaries, got.Boundaries)
	assert.Greater(t, want.BoundaryJump, 0.0)
	assert.InDelta(t, want.BoundaryJump, got.BoundaryJump, 1e-9)
	for i := range direct.worlds {
		assert.Equal(t, direct.worlds[i].State(), wrapped.worlds[i].State())
	}
}
