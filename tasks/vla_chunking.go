package tasks

import (
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/sim"
)

// ClosedLoop returns the policy and the evaluation settings a closed-loop evaluation of p (a
// policy of spec) runs with: under eval.chunking newest, p itself with spec.Execute actions of each
// chunk executed; under average or ema, p behind one chunk-ensembling buffer per episode
// (policy.Ensemble), which answers one action per call (Horizon and Execute 1).
func (t *VLA) ClosedLoop(p policy.Policy, spec policy.Spec) (policy.Policy, sim.EvalConfig) {
	ec := t.EvalConfig()
	ec.Horizon, ec.Execute = spec.Horizon, spec.Execute
	c := policy.Chunking{Mode: t.r.Eval.Chunking, EMAWeight: t.r.Eval.EMAWeight}.WithDefaults()
	if c.Mode == policy.ChunkNewest {
		return p, ec
	}
	ec.Horizon, ec.Execute = 1, 1
	return policy.Ensemble(p, c, spec.Execute), ec
}
