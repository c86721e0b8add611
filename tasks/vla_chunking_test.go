package tasks

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

type nopPolicy struct{}

func (nopPolicy) Act(obs []policy.Observation) ([][][]float32, error) { return nil, nil }

// eval.chunking newest rolls the policy out as it is, execute-k; average and ema put it behind
// per-episode ensembling buffers that answer one action per call.
func TestClosedLoopChunking(t *testing.T) {
	task := tinyVLA(t)
	p, ec := task.ClosedLoop(nopPolicy{}, task.Spec())
	require.Equal(t, nopPolicy{}, p)
	require.Equal(t, task.Spec().Horizon, ec.Horizon)
	require.Equal(t, task.Spec().Execute, ec.Execute)

	task = tinyVLA(t, "eval.chunking=ema", "eval.ema_weight=0.3")
	p, ec = task.ClosedLoop(nopPolicy{}, task.Spec())
	require.IsType(t, &policy.Ensembled{}, p)
	require.Equal(t, 1, ec.Horizon)
	require.Equal(t, 1, ec.Execute)
}
