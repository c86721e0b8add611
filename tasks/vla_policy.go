package tasks

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/train"
)

// Policy is a trained VLA checkpoint acting as a sim.Policy: observations in, action chunks
// (raw units, Horizon actions each) out. Batches are padded to a power of two so that the
// inference graph compiles for a handful of shapes only. It is safe for concurrent use.
type Policy struct {
	task *VLA
	exec *model.Exec
	mu   sync.Mutex
	rng  *rand.Rand
	step int64
}

// CheckpointPolicy is a policy loaded from a checkpoint: a Policy or an RDPolicy.
type CheckpointPolicy interface {
	sim.Policy
	Close()
	TrainingStep() int64
}

// LoadPolicy loads the checkpoint in dir (its own normalisation statistics included) for
// inference on backend; seed fixes the noise (flow matching, the recurrent head's initial
// state) of successive calls.
func (t *VLA) LoadPolicy(backend compute.Backend, dir string, seed uint64) (CheckpointPolicy, error) {
	var p CheckpointPolicy
	var err error
	if t.rd != nil {
		p, err = t.LoadRDPolicy(backend, dir, seed)
	} else {
		p, err = t.loadFlowPolicy(backend, dir, seed)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkLoaded builds a freshly loaded policy's graphs with one observation and fails if that
// created variables the checkpoint lacks (the recipe then describes another model).
func (t *VLA) checkLoaded(p sim.Policy, dir string, store *model.Store, loaded map[string]bool) error {
	w, err := sim.NewWorld(t.sim, sim.EvalSeed(0, 0))
	if err != nil {
		return err
	}
	if _, err := p.Act([]sim.Observation{w.Observe()}); err != nil {
		return err
	}
	return checkpoints.CheckNoNewVariables(dir, store, loaded)
}

// loadStore loads a checkpoint into a fresh store and lists the variables it brought.
func loadStore(dir string) (store *model.Store, st checkpoints.State, loaded map[string]bool, err error) {
	if store, err = train.NewStore(0); err != nil {
		return nil, st, nil, err
	}
	if st, err = checkpoints.Load(dir, store); err != nil {
		return nil, st, nil, err
	}
	return store, st, checkpoints.Paths(store), nil
}

func (t *VLA) loadFlowPolicy(backend compute.Backend, dir string, seed uint64) (p *Policy, err error) {
	store, st, loaded, err := loadStore(dir)
	if err != nil {
		return nil, err
	}
	exec, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		scope.SetTraining(g, false)
		return []*model.Node{t.ActGraph(scope, in[0], in[1], in[2], in[3])}
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	p = &Policy{task: t, exec: exec, rng: rand.New(rand.NewPCG(seed, 0x5eed)), step: st.Step}
	if err := t.checkLoaded(p, dir, store, loaded); err != nil {
		p.Close()
		return nil, err
	}
	p.rng = rand.New(rand.NewPCG(seed, 0x5eed)) // the check's draw does not count
	return p, nil
}

// Close releases the compiled graphs.
func (p *Policy) Close() { p.exec.Finalize() }

// TrainingStep is the checkpoint's training step.
func (p *Policy) TrainingStep() int64 { return p.step }

// Act implements sim.Policy.
func (p *Policy) Act(obs []sim.Observation) (chunks [][][]float32, err error) {
	if len(obs) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	batch, n := padBatch(obs)
	padded := len(batch)
	in, err := p.task.ObservationTensors(batch)
	if err != nil {
		return nil, err
	}
	h, a := p.task.cfg.Horizon, p.task.cfg.ActionDim
	noise := make([]float32, padded*h*a)
	for i := range noise {
		noise[i] = float32(p.rng.NormFloat64())
	}
	in = append(in, tensors.FromFlatDataAndDimensions(noise, padded, h, a))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy: %v", r)
		}
	}()
	args := make([]any, len(in))
	for i, x := range in {
		args[i] = x
	}
	out, err := p.exec.Exec(args...)
	for _, t := range in {
		t.FinalizeAll()
	}
	if err != nil {
		return nil, err
	}
	flat := tensors.MustCopyFlatData[float32](out[0])
	out[0].FinalizeAll()
	chunks = make([][][]float32, n)
	for i := range chunks {
		chunks[i] = make([][]float32, h)
		for k := range h {
			off := (i*h + k) * a
			chunks[i][k] = flat[off : off+a : off+a]
		}
	}
	return chunks, nil
}

// EvalConfig returns the closed-loop evaluation settings of the recipe.
func (t *VLA) EvalConfig() sim.EvalConfig {
	return sim.EvalConfig{Episodes: t.r.Eval.Episodes, Seed: uint64(t.r.Eval.Seed), Horizon: t.r.Policy.Horizon,
		Execute: t.r.Policy.Execute, Videos: t.r.Eval.Videos}
}

// ServeConfig is the policy-server configuration matching the recipe: observation sizes and
// cameras to validate, the chunk length and execute-k.
func (t *VLA) ServeConfig() serve.Config {
	return serve.Config{ImageSize: t.r.Model.ImageSize, StateDim: sim.StateDim, Cameras: t.cams,
		ActionDim: sim.ActionDim, Horizon: t.r.Policy.Horizon, Execute: t.r.Policy.Execute, Name: "reel:" + t.r.Name}
}
