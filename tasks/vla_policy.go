package tasks

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"sync"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/train"
)

// Policy is a trained VLA checkpoint acting as a policy.Policy: observations in, action chunks
// (raw units, Spec().Horizon actions each) out, every graph in the recipe's train.precision. Most
// families run one graph per call; a recurrent-depth policy (its network a models.Recurrent) runs
// its backbone and prelude once, then one core iteration per graph call until the chunk converges
// (adaptive stopping, models.AdaptiveIterate) or for a fixed depth, and implements
// sim.DepthPolicy (SetDepth, Iterations), which evaluation asks for by type assertion. Batches are
// padded to a power of two so that the graphs compile for a handful of shapes only. It is safe
// for concurrent use.
type Policy interface {
	policy.Policy
	policy.Checker
	// Spec is what the policy reads and returns.
	Spec() policy.Spec
	// TrainingStep is the checkpoint's training step.
	TrainingStep() int64
	// FLOPs are the matrix-product FLOPs of the graphs the last Act ran (recurrent depth: the
	// prelude and one core iteration), and how many of them ran in bf16/f16.
	FLOPs() (total, half float64)
	// Close releases the compiled graphs.
	Close()
}

// trained is what every trained policy shares: the task rebuilt from the checkpoint, its step,
// the noise stream and the compiled graphs.
type trained struct {
	task   *VLA
	step   int64
	graphs []*train.Inference
	mu     sync.Mutex
	rng    *rand.Rand
}

// chunkPolicy samples a chunk in one graph call (flow matching, chunk regression, pi0).
type chunkPolicy struct {
	trained
	exec   *train.Inference
	guided *train.Inference // real-time chunking's guided sampler (vla_rtc.go); nil unless the network inpaints
}

// recurrentPolicy iterates a models.Recurrent network's core on the host.
type recurrentPolicy struct {
	trained
	net   models.Recurrent
	pre   *train.Inference // backbone + prelude
	core  *train.Inference // one core iteration + coda
	depth int              // fixed depth, 0 = adaptive
	iters []iterNote       // iterations used per observation since the last Iterations call
}

var (
	_ Policy          = (*chunkPolicy)(nil)
	_ Policy          = (*recurrentPolicy)(nil)
	_ sim.DepthPolicy = (*recurrentPolicy)(nil)
)

type iterNote struct {
	instruction string
	n           int
}

// OpenPolicy loads the policy checkpoint in dir for inference on backend, knowing it only by its
// recipe (with the overrides sets) and its spec (policy.json): the training data is not opened,
// the normalisation statistics come from the checkpoint, and the family opens its tokenizer from
// the checkpoint. seed fixes the noise of successive calls.
func OpenPolicy(backend compute.Backend, dir string, sets []string, seed uint64) (Policy, error) {
	for _, d := range policyDirs {
		if d.is(dir) {
			return d.open(backend, dir, sets, seed)
		}
	}
	if _, err := checkpoints.Verify(dir); err != nil {
		return nil, err
	}
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), sets)
	if err != nil {
		return nil, err
	}
	if r.Task != "vla" {
		return nil, fmt.Errorf("%s is a %s checkpoint, not a policy (task vla)", dir, r.Task)
	}
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the policy spec: %w (checkpoints written before reel kept specs cannot be served; retrain)", dir, err)
	}
	t, err := newVLAFromSpec(r, spec, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t.LoadPolicy(backend, dir, seed)
}

// LoadPolicy loads the checkpoint in dir (its own normalisation statistics included) as this
// task's policy.
func (t *VLA) LoadPolicy(backend compute.Backend, dir string, seed uint64) (Policy, error) {
	store, err := train.NewStore(0)
	if err != nil {
		return nil, err
	}
	st, err := checkpoints.Load(dir, store)
	if err != nil {
		return nil, err
	}
	loaded := checkpoints.Paths(store)
	return t.buildPolicy(backend, store, st.Step, seed, dir, func() error { return checkpoints.CheckNoNewVariables(dir, store, loaded) })
}

// buildPolicy builds the policy's graphs over store once, on a blank observation (creating the
// variables store lacks), then calls fill: the check that a checkpoint had them all, or the
// loading of weights in another framework's layout into them.
func (t *VLA) buildPolicy(backend compute.Backend, store *model.Store, step int64, seed uint64, dir string, fill func() error) (Policy, error) {
	var err error
	prec := t.r.Train
	var p interface {
		Policy
		reset(seed uint64)
	}
	if net, ok := t.net.(models.Recurrent); ok {
		rp := &recurrentPolicy{trained: trained{task: t, step: step}, net: net}
		obs := models.Layout(t.spec.StateDim > 0, false, false, nil) // the observation inputs
		if rp.pre, err = train.NewInference(backend, store, prec, func(scope *model.Scope, in []*Node) []*Node {
			e, ctx, mask := net.RecurrentPrelude(scope, obs.Bind(in))
			return []*Node{e, ctx, mask}
		}); err != nil {
			return nil, err
		}
		rp.graphs = append(rp.graphs, rp.pre)
		if rp.core, err = train.NewInference(backend, store, prec, func(scope *model.Scope, in []*Node) []*Node {
			b := train.Bind[recurrentStepInputs](in)
			next, chunk, raw := net.RecurrentStep(scope, b.E, b.Ctx, b.Mask, b.State)
			return []*Node{next, chunk, raw}
		}); err != nil {
			rp.Close()
			return nil, err
		}
		rp.graphs = append(rp.graphs, rp.core)
		p = rp
	} else {
		cp := &chunkPolicy{trained: trained{task: t, step: step}}
		layout := t.layout(false, false)
		if cp.exec, err = train.NewInference(backend, store, prec, func(scope *model.Scope, in []*Node) []*Node {
			return []*Node{t.net.Sample(scope, layout.Bind(in))}
		}); err != nil {
			return nil, err
		}
		cp.graphs = append(cp.graphs, cp.exec)
		if cp.guided, err = t.guidedSampler(backend, store, layout); err != nil {
			cp.Close()
			return nil, err
		}
		p = cp
	}
	// Build the graphs once on a blank observation: a recipe that describes another model than
	// the checkpoint's creates variables the checkpoint lacks, and is refused.
	p.reset(seed)
	if _, err := p.Act([]policy.Observation{blankObservation(t.spec)}); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w (does the recipe still match the checkpoint's model?)", dir, err)
	}
	if err := fill(); err != nil {
		p.Close()
		return nil, err
	}
	if n, ok := t.family.(normalized); ok { // the statistics the checkpoint acts with
		norm, err := storeNormalization(store)
		if err != nil {
			p.Close()
			return nil, err
		}
		n.setNormalization(norm)
	}
	p.reset(seed) // the check's draw does not count
	return p, nil
}

// blankObservation is a black-image, zero-state observation that fits spec.
func blankObservation(spec policy.Spec) policy.Observation {
	o := policy.Observation{Images: map[string]policy.Image{}, State: make([]float32, spec.StateDim)}
	for _, c := range spec.Cameras {
		o.Images[c.Name] = policy.NewImage(c.Width, c.Height)
	}
	return o
}

// Spec implements Policy.
func (p *trained) Spec() policy.Spec { return p.task.spec }

// Close implements Policy.
func (p *trained) Close() {
	for _, e := range p.graphs {
		e.Finalize()
	}
}

// TrainingStep implements Policy.
func (p *trained) TrainingStep() int64 { return p.step }

// FLOPs implements Policy.
func (p *trained) FLOPs() (total, half float64) {
	for _, e := range p.graphs {
		t, h := e.FLOPs()
		total, half = total+t, half+h
	}
	return total, half
}

func (p *chunkPolicy) reset(seed uint64) { p.rng = rand.New(rand.NewPCG(seed, 0x5eed)) }

func (p *recurrentPolicy) reset(seed uint64) {
	p.rng, p.iters = rand.New(rand.NewPCG(seed, 0x5eed)), nil
}

// SetDepth implements sim.DepthPolicy: it fixes the number of core iterations (depth ≥ 1), or
// selects adaptive stopping (depth 0: policy.stop_threshold, at most policy.max_depth).
func (p *recurrentPolicy) SetDepth(depth int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.depth = depth
}

// Iterations implements sim.DepthPolicy: the mean core iterations per observation since the last
// call, grouped by group(instruction) and overall ("all"); it resets the tally.
func (p *recurrentPolicy) Iterations(group func(instruction string) string) map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	sum, n := map[string]float64{}, map[string]float64{}
	for _, it := range p.iters {
		keys := []string{"all"}
		if group != nil {
			if g := group(it.instruction); g != "" {
				keys = append(keys, g)
			}
		}
		for _, k := range keys {
			sum[k] += float64(it.n)
			n[k]++
		}
	}
	out := map[string]float64{}
	for k := range sum {
		out[k] = sum[k] / n[k]
	}
	p.iters = nil
	return out
}

// Check implements policy.Checker: it refuses an observation that lacks one of the spec's
// cameras, has a malformed image or a state of another size, and warns of an instruction longer
// than model.max_text_len tokens (the policy reads its first tokens).
func (p *trained) Check(obs policy.Observation) (policy.Observation, []string, error) {
	spec := p.task.spec
	for _, cam := range spec.Cameras {
		im, ok := obs.Images[cam.Name]
		if !ok {
			return obs, nil, fmt.Errorf("no image from camera %q (the policy reads %v)", cam.Name, spec.CameraNames())
		}
		if err := im.Check(); err != nil {
			return obs, nil, fmt.Errorf("camera %q: %w", cam.Name, err)
		}
	}
	if len(obs.State) != spec.StateDim {
		return obs, nil, fmt.Errorf("expected %d state values, got %d", spec.StateDim, len(obs.State))
	}
	var warnings []string
	if n, L := len(p.task.text.encode(p.task.prompt(obs))), p.task.r.Model.MaxTextLen; n > L {
		warnings = append(warnings, fmt.Sprintf("instruction has %d tokens, more than model.max_text_len (%d): the policy reads the first %d", n, L, L))
	}
	return obs, warnings, nil
}

// Act implements policy.Policy: one graph call per batch.
func (p *chunkPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	return p.act(obs, func(in []*tensors.Tensor, b, _ int) ([]float32, error) {
		for _, x := range p.task.net.Noise(p.rng, b, false) {
			in = append(in, x.Value)
		}
		out, err := p.exec.Call(in...)
		if err != nil {
			return nil, err
		}
		defer finalize(out)
		return tensors.MustCopyFlatData[float32](out[0]), nil
	})
}

// Act implements policy.Policy: the prelude once, then core iterations (iterate).
func (p *recurrentPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	return p.act(obs, func(in []*tensors.Tensor, b, n int) ([]float32, error) {
		flat, iters, err := p.iterate(in, b)
		if err != nil {
			return nil, err
		}
		for i := range n {
			p.iters = append(p.iters, iterNote{obs[i].Instruction, iters[i]})
		}
		return flat, nil
	})
}

// act encodes obs, padded to a power of two, runs the policy's graphs (run: the observation
// inputs, the padded and the real batch size; the raw chunks flattened) and splits the chunks.
func (p *trained) act(obs []policy.Observation, run func(in []*tensors.Tensor, b, n int) ([]float32, error)) (chunks [][][]float32, err error) {
	if len(obs) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.task
	batch, n := padBatch(obs)
	in, err := t.ObservationTensors(batch)
	if err != nil {
		return nil, err
	}
	defer finalize(in)
	flat, err := run(in, len(batch), n)
	if err != nil {
		return nil, err
	}
	h, a := t.spec.Horizon, t.spec.ActionDim
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

// iterate runs a recurrent-depth policy on a batch of observation inputs: the prelude once, then
// core iterations until the chunks converge or the depth is reached. It returns the raw chunks,
// flattened, and the iterations each example used.
func (p *recurrentPolicy) iterate(in []*tensors.Tensor, b int) ([]float32, []int, error) {
	t := p.task
	pre, err := p.pre.Call(in...)
	if err != nil {
		return nil, nil, err
	}
	defer finalize(pre)
	state := p.net.InitialState(p.rng, b)
	maxIters, threshold := t.r.Policy.MaxDepth, t.r.Policy.StopThreshold
	if p.depth > 0 {
		maxIters, threshold = p.depth, -1
	}
	rows := func(x []float32) [][]float32 {
		per := len(x) / b
		out := make([][]float32, b)
		for i := range out {
			out[i] = x[i*per : (i+1)*per : (i+1)*per]
		}
		return out
	}
	out, iters, err := models.AdaptiveIterate(func(int) ([][]float32, [][]float32, error) {
		res, err := p.core.Call(pre[0], pre[1], pre[2], state)
		if err != nil {
			return nil, nil, err
		}
		state.FinalizeAll()
		state = res[0]
		norm, raw := tensors.MustCopyFlatData[float32](res[1]), tensors.MustCopyFlatData[float32](res[2])
		res[1].FinalizeAll()
		res[2].FinalizeAll()
		return rows(norm), rows(raw), nil
	}, maxIters, threshold)
	state.FinalizeAll()
	if err != nil {
		return nil, nil, err
	}
	flat := make([]float32, 0, b*len(out[0]))
	for _, r := range out {
		flat = append(flat, r...)
	}
	return flat, iters, nil
}

// padBatch pads obs to the next power of two (repeating the first) so that the inference graphs
// compile for a handful of batch sizes; n is the real count.
func padBatch(obs []policy.Observation) (batch []policy.Observation, n int) {
	n = len(obs)
	padded := 1 << bits.Len(uint(n-1))
	batch = append(append([]policy.Observation(nil), obs...), make([]policy.Observation, padded-n)...)
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

// recurrentStepInputs are the inputs of one recurrent core iteration: the prelude's outputs
// (embedding, context, mask), then the latent state it updates.
type recurrentStepInputs struct {
	E, Ctx, Mask, State *Node
}
