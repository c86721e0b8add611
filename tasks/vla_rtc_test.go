package tasks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/sim"
)

// A trained flow policy (MolmoBot's flow head, pi0) inpaints through OpenPolicy: with nothing to
// continue (weights 0) its guided chunk is its plain chunk bit for bit (same seed), and with the
// first two actions frozen (the paper's hard mask, β = 10 = 1/Δτ) the chunk starts on the
// committed actions.
func TestPolicyInpainting(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny policies")
	}
	for _, recipe := range []string{"molmobot-tiny", "pi0-tiny", "pi05-tiny"} {
		t.Run(recipe, func(t *testing.T) { testPolicyInpainting(t, recipe) })
	}
}

func testPolicyInpainting(t *testing.T, recipe string) {
	run := trainTinyPolicy(t, recipe)
	open := func() Policy {
		p, err := OpenPolicy(goBackend(t), run, nil, 3)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		return p
	}
	plainP, guidedP := open(), open()
	ip, ok := guidedP.(policy.Inpainter)
	require.True(t, ok)
	require.True(t, ip.Inpaints())
	spec := guidedP.Spec()
	w, err := sim.NewWorld(sim.DefaultConfig(), sim.EvalSeed(0, 0))
	require.NoError(t, err)
	obs := []policy.Observation{w.Observe(), w.Observe()}
	plain, err := plainP.Act(obs)
	require.NoError(t, err)
	committed := make([][]float32, spec.Horizon)
	for k := range committed {
		committed[k] = make([]float32, spec.ActionDim)
		for j := range committed[k] {
			committed[k][j] = plain[0][k][j] + float32(0.5*math.Cos(float64(3*k+j)))
		}
	}
	none := policy.Guide{Prev: committed, Weights: make([]float32, spec.Horizon)}
	hard := policy.Guide{Prev: committed, Weights: policy.PrefixWeights(2, 2, spec.Horizon, policy.ScheduleZeros)}
	got, err := ip.ActInpainting(obs, []policy.Guide{none, hard}, 10)
	require.NoError(t, err)
	require.Equal(t, plain[0], got[0], "nothing to continue: plain sampling")
	for k := range 2 {
		for j := range spec.ActionDim {
			require.InDelta(t, committed[k][j], got[1][k][j], 0.05, "frozen action %d value %d (plain %v)", k, j, plain[1][k][j])
		}
	}
}

// eval.chunking rtc and a simulated inference delay put the policy behind per-episode buffers.
func TestClosedLoopRTC(t *testing.T) {
	for _, sets := range [][]string{{"eval.chunking=rtc", "eval.inference_delay=2"}, {"eval.inference_delay=1"}} {
		task := tinyVLA(t, sets...)
		p, ec := task.ClosedLoop(nopPolicy{}, task.Spec())
		require.IsType(t, &policy.Ensembled{}, p, "%v", sets)
		require.Equal(t, 1, ec.Execute)
	}
	c := tinyVLA(t, "eval.chunking=rtc", "eval.inference_delay=2", "eval.max_guidance=3", "eval.rtc_schedule=linear", "eval.rtc_horizon=4").Chunking()
	require.Equal(t, policy.Chunking{Mode: policy.ChunkRTC, EMAWeight: 0.5, Delay: 2, RTCHorizon: 4, MaxGuidance: 3, Schedule: policy.ScheduleLinear}, c)
}

// The cost of real-time chunking's guidance (a vector-Jacobian product through the action expert
// at every Euler step) against plain sampling, for molmobot-tiny at the closed-loop batch of 64:
// go test ./tasks -run '^$' -bench PolicyInpainting -benchtime 5x
func BenchmarkPolicyInpainting(b *testing.B) {
	run := trainTinyPolicy(b, "molmobot-tiny", "model.vision_layers=2", "model.text_layers=2")
	p, err := OpenPolicy(goBackend(b), run, nil, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	spec := p.Spec()
	w, err := sim.NewWorld(sim.DefaultConfig(), sim.EvalSeed(0, 0))
	if err != nil {
		b.Fatal(err)
	}
	obs, guides := make([]policy.Observation, 64), make([]policy.Guide, 64)
	o := w.Observe()
	prev := make([][]float32, spec.Horizon-spec.Execute)
	for k := range prev {
		prev[k] = make([]float32, spec.ActionDim)
	}
	for i := range obs {
		obs[i] = o
		guides[i] = policy.Guide{Prev: prev, Weights: policy.PrefixWeights(2, len(prev), spec.Horizon, policy.ScheduleExp)}
	}
	ip := p.(policy.Inpainter)
	for _, c := range []struct {
		name string
		act  func() error
	}{
		{"plain", func() error { _, err := p.Act(obs); return err }},
		{"rtc", func() error { _, err := ip.ActInpainting(obs, guides, policy.DefaultMaxGuidance); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.act(); err != nil { // compiles the graph for this batch
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := c.act(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
