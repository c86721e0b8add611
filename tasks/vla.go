package tasks

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/reward"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/train"
)

// VLA trains a vision-language-action policy (a models.Policy of the recipe's model.arch family,
// vla_family.go: MolmoBot, RD-VLA, pi0) on demonstrations: from the procedural simulator,
// generated on the fly (data.source synthetic), or from a LeRobot dataset (data.source lerobot). The task owns the data and its normalisation; the network is in models,
// and what the trained policy reads and returns is its policy.Spec, written into every
// checkpoint (policy.json) and all that serving and evaluation know of it.
//
// Everything random (examples, flow noise and times, the recurrent head's depth and initial
// state) is drawn on the host from the seed, so a resumed run reproduces the same batches.
type VLA struct {
	r      *recipes.Recipe
	spec   policy.Spec
	family vlaFamily     // model.arch's policy family
	net    models.Policy // the family's network for spec
	text   *textCodec    // instructions: word vocabulary or the family's tokenizer
	micro  int
	simCfg sim.Config
	src    vlaSource // nil for a task rebuilt from a checkpoint's spec (inference only)
	evals  *evalCache
}

// vlaSource is where a VLA task's demonstrations come from.
type vlaSource interface {
	// features describes the robot: cameras (native sizes), state and action dimensions.
	features() policy.Features
	// stats are the per-dimension statistics of states and actions the normalisation uses.
	stats() (state, action lerobot.Stats, err error)
	// batch draws training micro-batch i, n examples (rng is the micro-batch's stream).
	batch(rng *rand.Rand, i int64, n int) ([]vlaExample, error)
	// evalExamples draws n held-out examples.
	evalExamples(rng *rand.Rand, n int) ([]vlaExample, error)
	// focus reports whether examples carry the simulator's focus points (pointing supervision).
	focus() bool
	close()
}

// vlaExample is one training or evaluation example: an observation and the next H actions.
type vlaExample struct {
	obs   policy.Observation
	chunk [][]float32
	focus []float32 // the simulator's two focus points x1 y1 x2 y2; nil when unknown
	// weight is the RA-BC sample weight (train.sample_weights progress; 1 otherwise).
	weight float32
}

// NewVLA builds the vla task of a recipe, opening its data source.
func NewVLA(r *recipes.Recipe) (*VLA, error) {
	t, err := newVLABase(r, "")
	if err != nil {
		return nil, err
	}
	switch r.Data.Source {
	case "lerobot":
		if t.src, err = openDatasetSource(r); err != nil {
			return nil, err
		}
	default:
		if t.weighted() {
			return nil, fmt.Errorf("train.sample_weights: progress needs data.source lerobot (the progress is read from the dataset's %s)", reward.ProgressFile)
		}
		t.src = newSimSource(r, t.simCfg)
	}
	st, act, err := t.src.stats()
	if err != nil {
		return nil, err
	}
	spec := t.buildSpec(t.src.features())
	norm, err := normalization(spec, st, act)
	if err != nil {
		return nil, fmt.Errorf("data.normalization: %w", err)
	}
	if err := t.finish(spec, norm); err != nil {
		return nil, err
	}
	return t, nil
}

// normalization is the affine map (x − offset)/scale of spec's normalisation mode for the data's
// statistics: mean_std maps the mean to 0 and one std to 1; min_max and quantiles map [min, max]
// or [q01, q99] to [−1, 1] (LeRobot's MIN_MAX, openpi's quantile normalisation). Scales are
// floored at minStd.
func normalization(spec policy.Spec, state, action lerobot.Stats) (models.Normalization, error) {
	affine := func(what string, st lerobot.Stats, dim int) (off, scale []float32, err error) {
		if dim == 0 {
			return nil, nil, nil
		}
		a, b, err := st.Norm(spec.Normalization)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		if len(a) != dim || len(b) != dim {
			return nil, nil, fmt.Errorf("%s: statistics have %d values for %d dimensions", what, len(a), dim)
		}
		off, scale = make([]float32, dim), make([]float32, dim)
		for i := range dim {
			if spec.Normalization == policy.NormMeanStd {
				off[i], scale[i] = float32(a[i]), float32(b[i])
			} else {
				off[i], scale[i] = float32((a[i]+b[i])/2), float32((b[i]-a[i])/2)
			}
			scale[i] = max(scale[i], minStd)
		}
		return off, scale, nil
	}
	var n models.Normalization
	var err error
	if n.StateOffset, n.StateScale, err = affine("state", state, spec.StateDim); err != nil {
		return n, err
	}
	if n.ActionOffset, n.ActionScale, err = affine("action", action, spec.ActionDim); err != nil {
		return n, err
	}
	return n, nil
}

// Close stops the data source's background decoding.
func (t *VLA) Close() {
	if t.src != nil {
		t.src.close()
	}
}

// newVLAFromSpec rebuilds a trained policy's task from its recipe and spec, without opening its
// training data: the normalisation statistics come from the checkpoint's variables. ckpt is the
// checkpoint directory ("" : none), whose tokenizer the family prefers (openVLAFamily).
func newVLAFromSpec(r *recipes.Recipe, spec policy.Spec, ckpt string) (*VLA, error) {
	t, err := newVLABase(r, ckpt)
	if err != nil {
		return nil, err
	}
	placeholder := models.Normalization{StateOffset: make([]float32, spec.StateDim), StateScale: ones(spec.StateDim),
		ActionOffset: make([]float32, spec.ActionDim), ActionScale: ones(spec.ActionDim)}
	if err := t.finish(spec, placeholder); err != nil {
		return nil, err
	}
	return t, nil
}

func newVLABase(r *recipes.Recipe, ckpt string) (*VLA, error) {
	t := &VLA{r: r, micro: r.Train.BatchSize / r.Train.GradAccum, evals: &evalCache{}}
	var err error
	if t.family, err = openFamily(r, ckpt); err != nil {
		return nil, err
	}
	t.text = t.family.text()
	if t.simCfg, err = SimConfig(r); err != nil {
		return nil, err
	}
	return t, nil
}

// buildSpec is the policy's spec for a data source's features: its cameras at the network's
// input size, its state and action dimensions, the recipe's chunking and normalisation.
func (t *VLA) buildSpec(f policy.Features) policy.Spec {
	s := t.r.Model.ImageSize
	out := f
	out.Cameras = nil
	for _, c := range f.Cameras {
		out.Cameras = append(out.Cameras, policy.Camera{Name: c.Name, Width: s, Height: s})
	}
	p := t.r.Policy
	return policy.Spec{Name: "reel:" + t.r.Name, Features: out, Horizon: p.Horizon, Execute: p.Execute,
		Normalization: t.r.Data.Normalization, Resize: t.r.Data.Resize, MaxTextLen: t.r.Model.MaxTextLen}
}

// finish sizes the family's network for spec.
func (t *VLA) finish(spec policy.Spec, norm models.Normalization) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	t.spec = spec
	net, err := t.family.network(spec, norm, t.src == nil || t.src.focus())
	if err != nil {
		return err
	}
	t.net = net
	return net.Validate()
}

// InitVariables implements train.Initializer: a family that starts from pretrained weights
// (itself a train.Initializer) loads them.
func (t *VLA) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if in, ok := t.family.(train.Initializer); ok {
		return in.InitVariables(backend, store)
	}
	return 0, "", nil
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// minStd floors the normalisation std of a dimension: a feature that never varies in the training
// data (say, a gripper flag in a dataset without grasps) must not be scaled up 10⁶× at inference.
const minStd = 1e-2

// SimConfig is the simulator configuration of a vla recipe's data section.
func SimConfig(r *recipes.Recipe) (sim.Config, error) {
	d := r.Data
	c := sim.DefaultConfig()
	c.ImageSize = r.Model.ImageSize
	c.MinObjects, c.MaxObjects = d.MinObjects, d.MaxObjects
	c.Bowls, c.Families, c.Wrist = d.Bowls, d.Families, d.Wrist
	c.Variation, c.MaxSteps, c.ExpertNoise = d.Variation, d.MaxSteps, d.ExpertNoise
	c.Shapes, c.Colors = d.Shapes, d.Colors
	c.SuccessTail = d.SuccessTail
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("data: %w", err)
	}
	return c, nil
}

// Spec is what the trained policy reads and returns.
func (t *VLA) Spec() policy.Spec { return t.spec }

// CheckpointFiles implements train.CheckpointFiler: the policy's spec, policy.json.
func (t *VLA) CheckpointFiles() (map[string][]byte, error) {
	b, err := json.MarshalIndent(t.spec, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{policy.SpecFile: append(b, '\n')}
	for name, content := range t.text.files { // the tokenizer travels with the policy
		files[name] = content
	}
	return files, nil
}

// Sim returns the simulator configuration of the recipe's data section (held-out scenes and
// closed-loop evaluation).
func (t *VLA) Sim() sim.Config { return t.simCfg }

// EvalConfig returns the closed-loop evaluation settings of the recipe.
func (t *VLA) EvalConfig() sim.EvalConfig {
	return sim.EvalConfig{Episodes: t.r.Eval.Episodes, Seed: uint64(t.r.Eval.Seed), Horizon: t.spec.Horizon,
		Execute: t.spec.Execute, Videos: t.r.Eval.Videos}
}

// TrainConfig is the recipe's train section, whose graph options (precision, LoRA) the policy is
// evaluated and served with.
func (t *VLA) TrainConfig() recipes.TrainConfig { return t.r.Train }

// Depths are the fixed depths `reel eval` sweeps for a recurrent-depth policy (eval.depths).
func (t *VLA) Depths() []int { return t.r.Eval.Depths }

// MicroBatchSize implements train.Task.
func (t *VLA) MicroBatchSize() int { return t.micro }

// ChunkAt returns actions[step : step+h]; past the episode's end it repeats "stay": no motion,
// the last gripper command (the robot should rest once the task is done).
func ChunkAt(actions [][]float32, step, h int) [][]float32 {
	out := make([][]float32, h)
	last := actions[len(actions)-1]
	for k := range out {
		if step+k < len(actions) {
			out[k] = actions[step+k]
			continue
		}
		rest := make([]float32, len(last))
		rest[len(rest)-1] = last[len(last)-1]
		out[k] = rest
	}
	return out
}

// MicroBatch implements train.Task.
func (t *VLA) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	rng := data.NewRand(seedFor(t.r.Train.Seed, "vla/train", i))
	ex, err := t.src.batch(rng, i, t.micro)
	if err != nil {
		return nil, err
	}
	if err := t.augmentExamples(ex, i); err != nil { // data.augment (vla_augment.go)
		return nil, err
	}
	return t.batch(ex, rng, true, true)
}

// batch lays out examples as the inputs of models.Layout: images, tokens, state, actions (when
// withActions), focus points (training with pointing), then the head's noise for training or
// sampling.
func (t *VLA) batch(ex []vlaExample, rng *rand.Rand, withActions, train bool) ([]*tensors.Tensor, error) {
	obs := make([]policy.Observation, len(ex))
	for i := range ex {
		obs[i] = ex[i].obs
	}
	in, err := t.ObservationTensors(obs)
	if err != nil {
		return nil, err
	}
	b, h, a := len(ex), t.spec.Horizon, t.spec.ActionDim
	if withActions {
		act := make([]float32, 0, b*h*a)
		for _, e := range ex {
			for _, row := range e.chunk {
				act = append(act, row...)
			}
		}
		in = append(in, tensors.FromFlatDataAndDimensions(act, b, h, a))
	}
	if train && t.withFocus() {
		focus := make([]float32, 0, 4*b)
		for _, e := range ex {
			if e.focus == nil {
				e.focus = make([]float32, 4)
			}
			focus = append(focus, e.focus...)
		}
		in = append(in, tensors.FromFlatDataAndDimensions(focus, b, 4))
	}
	for _, n := range t.net.Noise(rng, b, train) {
		in = append(in, n.Value)
	}
	if train && t.weighted() {
		w := make([]float32, b)
		for i, e := range ex {
			w[i] = e.weight
		}
		in = append(in, tensors.FromFlatDataAndDimensions(w, b))
	}
	return in, nil
}

// weighted reports whether training samples are weighted by progress (RA-BC).
func (t *VLA) weighted() bool { return t.r.Train.SampleWeights == "progress" }

// withFocus reports whether training batches carry focus points for the pointing loss.
func (t *VLA) withFocus() bool {
	p, ok := t.net.(models.Pointing)
	return ok && p.Points()
}

// layout names the inputs of batch(…, withActions, train): the sample weights last.
func (t *VLA) layout(withActions, train bool) models.BatchLayout {
	l := models.Layout(t.spec.StateDim > 0, withActions, train && t.withFocus(), t.net.Noise(rand.New(rand.NewPCG(0, 0)), 1, train))
	if train && t.weighted() {
		l = append(l, "weights")
	}
	return l
}

// ObservationTensors encodes observations as a policy graph's first inputs: images
// [B, C, S, S, 3] (each spec camera, fitted to its size with the spec's resize mode), instruction
// tokens [B, L] (0-padded; an instruction longer than model.max_text_len tokens is cut, which the
// policy's Check reports) and, when the spec has a state, raw states [B, StateDim].
func (t *VLA) ObservationTensors(obs []policy.Observation) ([]*tensors.Tensor, error) {
	s, L := t.r.Model.ImageSize, t.r.Model.MaxTextLen
	px := s * s * 3
	b, c := len(obs), len(t.spec.Cameras)
	sd := t.spec.StateDim
	img := make([]float32, b*c*px)
	tok := make([]int32, b*L)
	st := make([]float32, b*sd)
	for i, o := range obs {
		for j, cam := range t.spec.Cameras {
			im, ok := o.Images[cam.Name]
			if !ok {
				return nil, fmt.Errorf("observation %d: no image from camera %q (the policy reads %v)", i, cam.Name, t.spec.CameraNames())
			}
			fit, err := policy.Resize(im, s, s, t.spec.Resize)
			if err != nil {
				return nil, fmt.Errorf("observation %d: camera %q: %w", i, cam.Name, err)
			}
			copy(img[(i*c+j)*px:], fit.Pix)
		}
		if len(o.State) != sd {
			return nil, fmt.Errorf("observation %d: expected %d state values, got %d", i, sd, len(o.State))
		}
		copy(st[i*sd:], o.State)
		ids := t.text.encode(t.prompt(o))
		for j, id := range ids[:min(len(ids), L)] { // the first model.max_text_len tokens
			tok[i*L+j] = int32(id)
		}
	}
	out := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(img, b, c, s, s, 3), tensors.FromFlatDataAndDimensions(tok, b, L)}
	if sd > 0 {
		out = append(out, tensors.FromFlatDataAndDimensions(st, b, sd))
	}
	return out, nil
}

// prompt is the text the policy reads for o: the family's prompt (prompter) or the instruction.
func (t *VLA) prompt(o policy.Observation) string {
	if p, ok := t.family.(prompter); ok {
		return p.prompt(o.Instruction, o.State)
	}
	return o.Instruction
}

// Loss implements train.Task: the action head's loss in normalised action units, plus the
// pointing loss on simulated data.
func (t *VLA) Loss(scope *model.Scope, in []*Node) *Node {
	return t.net.Loss(scope, t.layout(true, true).Bind(in))
}

// EvalSets implements train.Task.
func (t *VLA) EvalSets() []string { return t.r.Eval.Sets }

// EvalGraph implements train.Task: for held-out expert chunks, the per-example mean squared
// error (normalised units) of the sampled chunk and of its first action.
func (t *VLA) EvalGraph(scope *model.Scope, in []*Node) []*Node {
	chunk, first := t.net.ActionErrors(scope, t.layout(true, false).Bind(in))
	return []*Node{chunk, first}
}

// EvalSet implements train.Task: "actions", expert chunks at random steps of held-out episodes.
func (t *VLA) EvalSet(name string) (train.EvalData, error) {
	if name != "actions" {
		return nil, fmt.Errorf("eval.sets: unknown set %q for task vla (want actions)", name)
	}
	return t.evals.get(name, func() (train.EvalData, error) { return t.buildEvalSet(name) })
}

func (t *VLA) buildEvalSet(name string) (train.EvalData, error) {
	if t.src == nil {
		return nil, fmt.Errorf("eval set %s: the task was rebuilt from a checkpoint without its data", name)
	}
	rng := data.NewRand(seedFor(t.r.Eval.Seed, "vla/eval/"+name, 0))
	ex, err := t.src.evalExamples(rng, t.r.Eval.Examples)
	if err != nil {
		return nil, fmt.Errorf("eval set %s: %w", name, err)
	}
	n := len(ex)
	bs := min(t.r.Eval.BatchSize, n)
	e := &vlaEval{bs: bs, n: n}
	e.batches, err = evalBatches(ex, bs, func(chunk []vlaExample, _ int) ([]*tensors.Tensor, error) {
		return t.batch(chunk, rng, true, false)
	})
	if err != nil {
		return nil, fmt.Errorf("eval set %s: %w", name, err)
	}
	return e, nil
}

type vlaEval struct {
	bs, n   int
	batches [][]*tensors.Tensor
}

func (e *vlaEval) NumBatches() int               { return len(e.batches) }
func (e *vlaEval) Batch(i int) []*tensors.Tensor { return e.batches[i] }

// Metrics: mean squared error of the chunk and of its first action, normalised units.
func (e *vlaEval) Metrics(outs [][]*tensors.Tensor) map[string]float64 {
	var chunk, first float64
	for bi, o := range outs {
		c, f := tensors.MustCopyFlatData[float32](o[0]), tensors.MustCopyFlatData[float32](o[1])
		for j := range e.bs {
			if bi*e.bs+j >= e.n {
				break
			}
			chunk += float64(c[j])
			first += float64(f[j])
		}
	}
	return map[string]float64{"chunk_mse": chunk / float64(e.n), "first_mse": first / float64(e.n)}
}

// Network is the policy's network.
func (t *VLA) Network() models.Policy { return t.net }

// WithNetwork returns a copy of the task that trains net instead, a network of the same family
// and sizes (e.g. models.Recurrent's WithFixedDepth, for benchmarks).
func (t *VLA) WithNetwork(net models.Policy) *VLA {
	c := *t
	c.evals = &evalCache{}
	c.net = net
	return &c
}
