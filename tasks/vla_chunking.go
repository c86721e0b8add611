package tasks

import (
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/sim"
)

// ClosedLoop returns the policy and the evaluation settings a closed-loop evaluation of p (a
// policy of spec) runs with: under eval.chunking newest without eval.inference_delay, p itself
// with spec.Execute actions of each chunk executed; otherwise (average, ema, rtc, or a delay), p
// behind one chunk buffer per episode (policy.Ensemble), which answers one action per call
// (Horizon and Execute 1).
func (t *VLA) ClosedLoop(p policy.Policy, spec policy.Spec) (policy.Policy, sim.EvalConfig) {
	ec := t.EvalConfig()
	ec.Horizon, ec.Execute = spec.Horizon, spec.Execute
	c := t.Chunking()
	if c.Mode == policy.ChunkNewest && c.Delay == 0 {
		return p, ec
	}
	ec.Horizon, ec.Execute = 1, 1
	return policy.Ensemble(p, c, spec.Execute), ec
}

// Chunking is the recipe's closed-loop chunking (eval.chunking, eval.ema_weight,
// eval.inference_delay and the RTC settings).
func (t *VLA) Chunking() policy.Chunking {
	e := t.r.Eval
	return policy.Chunking{Mode: e.Chunking, EMAWeight: e.EMAWeight, Delay: e.InferenceDelay, RTCHorizon: e.RTCHorizon,
		MaxGuidance: e.MaxGuidance, Schedule: e.RTCSchedule}.WithDefaults()
}
