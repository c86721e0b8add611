package tasks

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/sim"
)

// Recurrent reports whether the policy has the RD-VLA recurrent-depth head (model.arch rdvla).
func (t *VLA) Recurrent() bool { return t.rd != nil }

// rdInputs draws the recurrent head's training inputs: the initial latent state s0
// [B, 1+H, E] ~ TruncNormal(0, 1) on [−2, 2], and the depth masks of RecurTruncated for a depth r
// sampled from models.SampleDepth (depth ≤ 0) or given.
func (t *VLA) rdInputs(rng *rand.Rand, b, depth int) []*tensors.Tensor {
	if depth <= 0 {
		depth = models.SampleDepth(rng, t.r.Policy.MeanDepth)
	}
	ng, g := models.DepthMasks(depth, t.rd.BPTT)
	return []*tensors.Tensor{t.initialState(rng, b), tensors.FromFlatDataAndDimensions(ng, len(ng)),
		tensors.FromFlatDataAndDimensions(g, len(g))}
}

func (t *VLA) initialState(rng *rand.Rand, b int) *tensors.Tensor {
	h, e := t.cfg.Horizon, t.cfg.ExpertDim
	s0 := make([]float32, b*(1+h)*e)
	for i := range s0 {
		x := rng.NormFloat64()
		for x < -2 || x > 2 {
			x = rng.NormFloat64()
		}
		s0[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(s0, b, 1+h, e)
}

// RDPolicy is a trained recurrent-depth checkpoint acting as a sim.Policy. One graph runs the
// backbone and the prelude; a second runs one core iteration and the coda; the host loops the
// second until the chunk converges (adaptive stopping, models.AdaptiveIterate) or for a fixed
// depth. It records how many iterations each observation used, by task family.
type RDPolicy struct {
	task          *VLA
	prelude, step *model.Exec
	mu            sync.Mutex
	rng           *rand.Rand
	step0         int64
	depth         int // fixed depth; 0 = adaptive
	iters         map[string][2]float64
	mean, std     []float32 // action normalisation statistics of the checkpoint
}

// LoadRDPolicy loads a recurrent-depth checkpoint for inference (adaptive depth by default).
func (t *VLA) LoadRDPolicy(backend compute.Backend, dir string, seed uint64) (*RDPolicy, error) {
	if t.rd == nil {
		return nil, fmt.Errorf("%s: not a recurrent-depth policy (model.arch %s)", dir, t.r.Model.Arch)
	}
	store, st, loaded, err := loadStore(dir)
	if err != nil {
		return nil, err
	}
	p := &RDPolicy{task: t, rng: rand.New(rand.NewPCG(seed, 0x7d)), step0: st.Step, iters: map[string][2]float64{}}
	for name, dst := range map[string]*[]float32{"/norm/action_mean": &p.mean, "/norm/action_std": &p.std} {
		v := store.GetVariable(name)
		if v == nil {
			return nil, fmt.Errorf("%s: checkpoint has no %s (normalisation statistics)", dir, name)
		}
		val, err := v.Value()
		if err != nil {
			return nil, err
		}
		*dst = tensors.MustCopyFlatData[float32](val)
	}
	p.prelude, err = model.NewExecCanonical(backend, store, func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		scope.SetTraining(g, false)
		n := t.norms(scope, g)
		policy := scope.In("policy")
		hidden, valid, st, _ := t.backbone(policy, n, in[0], in[1], in[2])
		e, ctx, mask := models.NewRDHead(policy.In("rd"), *t.rd, hidden, valid, st).Prelude()
		return []*model.Node{e, ctx, mask}
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	p.step, err = model.NewExecCanonical(backend, store, func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		scope.SetTraining(g, false)
		next, chunk := models.RDStep(scope.In("policy").In("rd"), *t.rd, in[0], in[1], in[2], in[3])
		return []*model.Node{next, chunk}
	}, -1, -1, false, true, true)
	if err != nil {
		p.prelude.Finalize()
		return nil, err
	}
	if err := t.checkLoaded(p, dir, store, loaded); err != nil {
		p.Close()
		return nil, err
	}
	p.rng, p.iters = rand.New(rand.NewPCG(seed, 0x7d)), map[string][2]float64{} // the check does not count
	return p, nil
}

// SetDepth fixes the number of core iterations (depth ≥ 1), or selects adaptive stopping
// (depth 0: policy.stop_threshold, at most policy.max_depth iterations).
func (p *RDPolicy) SetDepth(depth int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.depth = depth
}

// Iterations returns the mean core iterations per observation since the last call, by task
// family and overall ("all"), and resets the tally.
func (p *RDPolicy) Iterations() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]float64{}
	for k, v := range p.iters {
		out[k] = v[0] / max(1, v[1])
	}
	p.iters = map[string][2]float64{}
	return out
}

// Close releases the compiled graphs.
func (p *RDPolicy) Close() { p.prelude.Finalize(); p.step.Finalize() }

// TrainingStep is the checkpoint's training step.
func (p *RDPolicy) TrainingStep() int64 { return p.step0 }

// Act implements sim.Policy.
func (p *RDPolicy) Act(obs []sim.Observation) (chunks [][][]float32, err error) {
	if len(obs) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy: %v", r)
		}
	}()
	t := p.task
	batch, n := padBatch(obs)
	in, err := t.ObservationTensors(batch)
	if err != nil {
		return nil, err
	}
	pre, err := p.prelude.Exec(in[0], in[1], in[2])
	finalize(in)
	if err != nil {
		return nil, err
	}
	defer finalize(pre)
	state := t.initialState(p.rng, len(batch))
	maxIters, threshold := t.r.Policy.MaxDepth, t.r.Policy.StopThreshold
	if p.depth > 0 {
		maxIters, threshold = p.depth, -1
	}
	out, iters, err := models.AdaptiveIterate(func(k int) ([][]float32, error) {
		res, err := p.step.Exec(pre[0], pre[1], pre[2], state)
		if err != nil {
			return nil, err
		}
		state.FinalizeAll()
		state = res[0]
		norm := tensors.MustCopyFlatData[float32](res[1])
		res[1].FinalizeAll()
		per := len(norm) / len(batch)
		rows := make([][]float32, len(batch))
		for i := range rows {
			rows[i] = norm[i*per : (i+1)*per : (i+1)*per]
		}
		return rows, nil
	}, maxIters, threshold)
	state.FinalizeAll()
	if err != nil {
		return nil, err
	}
	h, a := t.cfg.Horizon, t.cfg.ActionDim
	chunks = make([][][]float32, n)
	for i := range chunks {
		fam := sim.FamilyOf(obs[i].Instruction)
		for _, key := range []string{fam, "all"} {
			v := p.iters[key]
			p.iters[key] = [2]float64{v[0] + float64(iters[i]), v[1] + 1}
		}
		chunks[i] = make([][]float32, h)
		for k := range h {
			act := make([]float32, a)
			for j := range a {
				act[j] = out[i][k*a+j]*p.std[j] + p.mean[j] // back to raw action units
			}
			chunks[i][k] = act
		}
	}
	return chunks, nil
}

// padBatch pads obs to the next power of two (repeating the first) so that the inference graphs
// compile for a handful of batch sizes; n is the real count.
func padBatch(obs []sim.Observation) (batch []sim.Observation, n int) {
	n = len(obs)
	padded := 1 << bits.Len(uint(n-1))
	batch = append(append([]sim.Observation(nil), obs...), make([]sim.Observation, padded-n)...)
	for i := n; i < padded; i++ {
		batch[i] = obs[0]
	}
	return batch, n
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}

// Depths are the fixed depths `reel eval` sweeps (eval.depths).
func (t *VLA) Depths() []int { return t.r.Eval.Depths }

// MicroBatchAtDepth is MicroBatch with the recurrent depth fixed (benchmarks).
func (t *VLA) MicroBatchAtDepth(i int64, depth int) ([]*tensors.Tensor, error) {
	return t.microBatch(i, depth)
}

// DepthSlots is the number of gradient-stopped and backpropagated unrolled core slots the
// training graph has for a depth (see models.RecurTruncated).
func (t *VLA) DepthSlots(depth int) (noGrad, grad int) {
	ng, g := models.DepthMasks(depth, t.rd.BPTT)
	return len(ng), len(g)
}
