package sim

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expertPolicy drives Evaluate with the scripted expert: it keeps its own copies of the
// evaluation worlds (the same seeds), finds the active ones in the order Evaluate batches
// them, and plans each chunk by stepping its copy, which stays in sync with the real world.
type expertPolicy struct {
	t       *testing.T
	worlds  []*World
	rng     *rand.Rand
	h, exec int
	batches []int
}

func newExpertPolicy(t *testing.T, cfg Config, ec EvalConfig) *expertPolicy {
	p := &expertPolicy{t: t, rng: data.NewRand(1), h: ec.Horizon, exec: ec.Execute}
	for i := range ec.Episodes {
		w, err := NewWorld(cfg, EvalSeed(ec.Seed, int64(i)))
		require.NoError(t, err)
		p.worlds = append(p.worlds, w)
	}
	return p
}

func (p *expertPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	p.batches = append(p.batches, len(obs))
	var chunks [][][]float32
	for _, w := range p.worlds {
		if w.Done() {
			continue
		}
		o := obs[len(chunks)]
		require.Equal(p.t, w.Instruction(), o.Instruction)
		require.Equal(p.t, w.State(), o.State)
		chunk := make([][]float32, p.h)
		for k := range chunk {
			chunk[k] = []float32{0, 0, 0}
			if k < p.exec && !w.Done() {
				chunk[k] = w.Expert(p.rng)
				w.Step(chunk[k])
			}
		}
		chunks = append(chunks, chunk)
	}
	require.Len(p.t, chunks, len(obs))
	return chunks, nil
}

type funcPolicy func(obs []policy.Observation) ([][][]float32, error)

func (f funcPolicy) Act(obs []policy.Observation) ([][][]float32, error) { return f(obs) }

func constantChunks(n, h int, action func() []float32) [][][]float32 {
	chunks := make([][][]float32, n)
	for i := range chunks {
		for range h {
			chunks[i] = append(chunks[i], action())
		}
	}
	return chunks
}

func TestEvaluateExpert(t *testing.T) {
	cfg := DefaultConfig()
	ec := EvalConfig{Episodes: 40, Seed: 7, Horizon: 4, Execute: 3, Workers: 2, Videos: 2}
	p := newExpertPolicy(t, cfg, ec)
	res, err := Evaluate(cfg, ec, p)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.Success, 0.9)
	assert.Equal(t, 40, res.N)
	assert.Equal(t, 40, p.batches[0], "the first round batches every world")
	assert.Greater(t, len(p.batches), 1)
	n, steps := 0, 0.0
	for f, fr := range res.Families {
		assert.Contains(t, AllFamilies(), f)
		n += fr.N
		steps += fr.MeanSteps * float64(fr.N)
		assert.LessOrEqual(t, fr.Low, fr.Success)
		assert.GreaterOrEqual(t, fr.High, fr.Success)
	}
	assert.Equal(t, 40, n)
	assert.InDelta(t, res.MeanSteps*40, steps, 1e-6)
	total := 0
	for _, w := range p.worlds {
		total += w.Steps()
	}
	assert.InDelta(t, float64(total)/40, res.MeanSteps, 1e-9)

	require.Len(t, res.Videos, 2)
	for i, v := range res.Videos {
		size := cfg.ImageSize * cfg.ImageSize * 3
		assert.Equal(t, p.worlds[i].Steps(), v.Len())
		assert.Equal(t, p.worlds[i].Instruction(), v.Task)
		assert.Equal(t, p.worlds[i].Success(), v.Success)
		require.Len(t, v.Frames, 1)
		assert.Len(t, v.Frames[0], v.Len()*size)
		assert.Len(t, v.Action, v.Len())
	}

	js, err := json.Marshal(res)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Contains(t, back, "success")
	assert.Contains(t, back, "families")
	assert.NotContains(t, back, "Videos")
}

func TestEvaluateWeakPolicies(t *testing.T) {
	cfg := DefaultConfig()
	ec := EvalConfig{Episodes: 60, Seed: 3, Horizon: 2, Execute: 2}
	res, err := Evaluate(cfg, ec, funcPolicy(func(obs []policy.Observation) ([][][]float32, error) {
		return constantChunks(len(obs), 2, func() []float32 { return []float32{0, 0, 0} }), nil
	}))
	require.NoError(t, err)
	assert.Zero(t, res.Success, "standing still never succeeds")
	assert.Equal(t, float64(cfg.MaxSteps), res.MeanSteps)

	rng := rand.New(rand.NewPCG(1, 2))
	res, err = Evaluate(cfg, ec, funcPolicy(func(obs []policy.Observation) ([][][]float32, error) {
		return constantChunks(len(obs), 2, func() []float32 {
			return []float32{float32(2*rng.Float64() - 1), float32(2*rng.Float64() - 1), float32(2*rng.Float64() - 1)}
		}), nil
	}))
	require.NoError(t, err)
	t.Logf("random policy: success %.2f [%.2f, %.2f] %+v", res.Success, res.Low, res.High, res.Families)
	assert.Less(t, res.Success, 0.2, "a random policy rarely succeeds")
	assert.Zero(t, res.Families["push"].Success+res.Families["place"].Success)
}

func TestEvaluateErrors(t *testing.T) {
	cfg := DefaultConfig()
	ec := EvalConfig{Episodes: 3, Seed: 1, Horizon: 2, Execute: 1}
	boom := errors.New("boom")
	_, err := Evaluate(cfg, ec, funcPolicy(func([]policy.Observation) ([][][]float32, error) { return nil, boom }))
	require.ErrorIs(t, err, boom)
	_, err = Evaluate(cfg, ec, funcPolicy(func(obs []policy.Observation) ([][][]float32, error) {
		return constantChunks(len(obs)-1, 2, func() []float32 { return []float32{0, 0, 0} }), nil
	}))
	require.ErrorContains(t, err, "2 action chunks for 3 observations")
	_, err = Evaluate(cfg, ec, funcPolicy(func(obs []policy.Observation) ([][][]float32, error) {
		return constantChunks(len(obs), 2, func() []float32 { return []float32{0, 0} }), nil
	}))
	require.ErrorContains(t, err, "has 2 values, want 3")
	_, err = Evaluate(cfg, ec, funcPolicy(func(obs []policy.Observation) ([][][]float32, error) {
		return make([][][]float32, len(obs)), nil
	}))
	require.ErrorContains(t, err, "empty action chunk")

	for field, bad := range map[string]EvalConfig{
		"Episodes": {Horizon: 1, Execute: 1},
		"Horizon":  {Episodes: 1, Execute: 1},
		"Execute":  {Episodes: 1, Horizon: 2, Execute: 3},
		"Workers":  {Episodes: 1, Horizon: 1, Execute: 1, Workers: -1},
		"Videos":   {Episodes: 1, Horizon: 1, Execute: 1, Videos: 2},
	} {
		_, err := Evaluate(cfg, bad, funcPolicy(nil))
		require.ErrorContains(t, err, field)
	}
	bad := cfg
	bad.Bowls = 0
	_, err = Evaluate(bad, ec, funcPolicy(nil))
	require.ErrorContains(t, err, "Bowls")
}

func TestWilson(t *testing.T) {
	// 8/10 by hand: p = 0.8, z² = 3.8415; centre (0.8 + 0.19207)/1.38415 = 0.71674,
	// half-width 1.95996·√(0.016 + 0.0096038)/1.38415 = 0.22658.
	lo, hi := Wilson(8, 10)
	assert.InDelta(t, 0.4902, lo, 1e-4)
	assert.InDelta(t, 0.9433, hi, 1e-4)
	lo, hi = Wilson(0, 10) // upper bound z²/(n + z²) = 3.8415/13.8415
	assert.Zero(t, lo)
	assert.InDelta(t, 0.27753, hi, 1e-4)
	lo, hi = Wilson(0, 0)
	assert.Equal(t, [2]float64{0, 1}, [2]float64{lo, hi})
}
