package tasks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/train"
)

// VLA trains a MolmoBot-style policy (models/policy.go) or an RD-VLA policy (models/rdvla.go) on
// expert demonstrations from the procedural simulator, generated on the fly (data.source
// synthetic) or read from a LeRobot dataset written by `reel data gen-sim` (data.source lerobot).
//
// Training inputs: images [B, C, S, S, 3], instruction tokens [B, L] i32, robot state [B, Sd],
// the expert's next H actions [B, H, A] (raw units); then the head's own inputs — flow noise ε
// [B, K, H, A] and flow times [B, K], or the recurrent head's initial state and depth masks —
// and last the simulator's two focus points [B, 4] for the pointing loss. Everything random is
// drawn on the host from the seed, so a resumed run reproduces the same noise. States and
// actions are normalised inside the graph with mean/std statistics kept as non-trainable
// variables: they are saved in every checkpoint and applied at inference.
type VLA struct {
	r       *recipes.Recipe
	cfg     models.PolicyConfig
	sim     sim.Config
	conv    losses.FlowConvention
	vocab   *data.Vocab
	cams    []string
	stats   data.DatasetStats
	micro   int
	rd      *models.RDConfig // model.arch rdvla: the recurrent-depth head
	ds      *data.LeRobotDataset
	eps     []data.Episode // lerobot source, decoded on first use
	epsOnce sync.Once
	epsErr  error
	evals   evalCache
}

// statsEpisodes is how many training episodes the synthetic source's normalisation statistics
// are computed from.
const statsEpisodes = 64

// NewVLA builds the vla task of a recipe.
func NewVLA(r *recipes.Recipe) (*VLA, error) {
	m, d, p := r.Model, r.Data, r.Policy
	conv, err := losses.ParseFlowConvention(p.Flow)
	if err != nil {
		return nil, fmt.Errorf("policy.flow: %v", err)
	}
	t := &VLA{r: r, conv: conv, micro: r.Train.BatchSize / r.Train.GradAccum}
	if t.sim, err = SimConfig(r); err != nil {
		return nil, err
	}
	t.cams = []string{"scene"}
	if d.Wrist {
		t.cams = append(t.cams, "wrist")
	}
	t.vocab = data.NewVocab(sim.Words())
	switch d.Source {
	case "lerobot":
		if err := t.openDataset(d.Dir); err != nil {
			return nil, err
		}
	default:
		t.stats = t.syntheticStats()
	}
	t.stats.State.Std = floorStd(t.stats.State.Std)
	t.stats.Action.Std = floorStd(t.stats.Action.Std)
	t.cfg = models.PolicyConfig{
		Vision: models.ViTConfig{ImageSize: m.ImageSize, PatchSize: m.PatchSize, Dim: m.VisionDim, Layers: m.VisionLayers,
			Heads: m.VisionHeads, MLPRatio: m.MLPRatio, SinCos: m.SinCosPos, ConvStem: m.ConvStem},
		Cameras: len(t.cams), Dim: m.TextDim, Layers: m.TextLayers, Heads: m.TextHeads, MLPRatio: m.MLPRatio,
		MaxTextLen: m.MaxTextLen, VocabSize: t.vocab.Size(), StateDim: sim.StateDim, ActionDim: sim.ActionDim,
		Horizon: p.Horizon, ExpertDim: p.ExpertDim, ExpertHeads: p.ExpertHeads,
	}
	if err := t.cfg.Validate(); err != nil {
		return nil, err
	}
	if m.Arch == "rdvla" {
		t.rd = &models.RDConfig{Policy: t.cfg, CoreLayers: p.CoreLayers, BPTT: p.BPTT}
	}
	return t, nil
}

// SimConfig is the simulator configuration of a vla recipe's data section.
func SimConfig(r *recipes.Recipe) (sim.Config, error) {
	d := r.Data
	c := sim.DefaultConfig()
	c.ImageSize = r.Model.ImageSize
	c.MinObjects, c.MaxObjects = d.MinObjects, d.MaxObjects
	c.Bowls, c.Families, c.Wrist = d.Bowls, d.Families, d.Wrist
	c.Variation, c.MaxSteps, c.ExpertNoise = d.Variation, d.MaxSteps, d.ExpertNoise
	c.Shapes, c.Colors = d.Shapes, d.Colors
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("data: %v", err)
	}
	return c, nil
}

// openDataset opens a LeRobot dataset (its meta files are validated, its statistics read) and
// checks that its first episode fits the recipe. The episodes themselves are decoded only when
// training first needs them (episodes), not when the task is built for eval or serve.
func (t *VLA) openDataset(dir string) error {
	ds, err := data.OpenLeRobot(dir)
	if err != nil {
		return fmt.Errorf("data.dir: %v", err)
	}
	if ds.NumEpisodes() == 0 {
		return fmt.Errorf("data.dir: %s has no episodes", dir)
	}
	t.ds, t.stats = ds, ds.Stats()
	ep, err := ds.Episode(0)
	if err != nil {
		return fmt.Errorf("data.dir: %v", err)
	}
	return t.checkEpisode(&ep, 0)
}

// checkEpisode checks that a stored episode fits the recipe's model.
func (t *VLA) checkEpisode(ep *data.Episode, i int) error {
	dir := t.r.Data.Dir
	switch {
	case ep.Size != t.r.Model.ImageSize:
		return fmt.Errorf("data.dir: %s has %d-pixel images but model.image_size is %d", dir, ep.Size, t.r.Model.ImageSize)
	case len(ep.Cameras) < len(t.cams):
		return fmt.Errorf("data.dir: %s has cameras %v but the recipe needs %v (data.wrist)", dir, ep.Cameras, t.cams)
	case len(ep.State) == 0 || len(ep.State[0]) != sim.StateDim || len(ep.Action[0]) != sim.ActionDim:
		return fmt.Errorf("data.dir: %s episode %d: expected %d state and %d action values per step", dir, i, sim.StateDim, sim.ActionDim)
	}
	return nil
}

// episodes decodes every stored episode once (safe for the concurrent data workers).
func (t *VLA) episodes() ([]data.Episode, error) {
	t.epsOnce.Do(func() {
		for i := range t.ds.NumEpisodes() {
			ep, err := t.ds.Episode(i)
			if err != nil {
				t.epsErr = fmt.Errorf("data.dir: %v", err)
				return
			}
			if t.epsErr = t.checkEpisode(&ep, i); t.epsErr != nil {
				return
			}
			t.eps = append(t.eps, ep)
		}
	})
	return t.eps, t.epsErr
}

// syntheticStats computes per-dimension mean and std of states and actions over the first
// statsEpisodes training episodes (a fixed set: the statistics depend only on the recipe).
func (t *VLA) syntheticStats() data.DatasetStats {
	var states, actions [][]float32
	for i := range int64(statsEpisodes) {
		ep, err := sim.RecordEpisode(t.sim, sim.TrainSeed(uint64(t.r.Train.Seed), i), int(i))
		if err != nil {
			continue
		}
		states = append(states, ep.State...)
		actions = append(actions, ep.Action...)
	}
	return data.DatasetStats{State: data.ComputeStats(states), Action: data.ComputeStats(actions)}
}

// minStd floors the normalisation std of a dimension: a feature that never varies in the training
// data (say, a gripper flag in a dataset without grasps) must not be scaled up 10⁶× at inference.
const minStd = 1e-2

func floorStd(std []float32) []float32 {
	out := make([]float32, len(std))
	for i, s := range std {
		out[i] = max(s, minStd)
	}
	return out
}

// Sim returns the simulator configuration the recipe trains and evaluates on.
func (t *VLA) Sim() sim.Config { return t.sim }

// MicroBatchSize implements train.Task.
func (t *VLA) MicroBatchSize() int { return t.micro }

// vlaExample is one training or evaluation example: the observation at step `step` of an
// expert episode and the expert's next H actions.
type vlaExample struct {
	obs   sim.Observation
	chunk [][]float32
	focus []float32 // the simulator's two focus points x1 y1 x2 y2 (nil for datasets from disk)
}

// example draws an observation and its action chunk from episode ep at step.
func (t *VLA) example(ep *data.Episode, step int) vlaExample {
	s := ep.Size
	px := s * s * 3
	obs := sim.Observation{Images: map[string][]float32{}, Size: s, State: ep.State[step], Instruction: ep.Task}
	for c, name := range ep.Cameras {
		obs.Images[name] = ep.Frames[c][step*px : (step+1)*px]
	}
	labels := ep.Action
	if len(ep.Intended) == len(ep.Action) {
		labels = ep.Intended // the expert's noise-free intent (DART labels)
	}
	ex := vlaExample{obs: obs, chunk: ChunkAt(labels, step, t.r.Policy.Horizon)}
	if step < len(ep.Focus) {
		ex.focus = ep.Focus[step]
	}
	return ex
}

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

// sample draws one example with rng: a fresh simulated expert episode (synthetic) or a stored one.
func (t *VLA) sample(rng *rand.Rand, seed uint64) (vlaExample, error) {
	var ep data.Episode
	if t.ds != nil {
		eps, err := t.episodes()
		if err != nil {
			return vlaExample{}, err
		}
		ep = eps[rng.IntN(len(eps))]
	} else {
		var err error
		if ep, err = sim.RecordEpisode(t.sim, seed, 0); err != nil {
			return vlaExample{}, err
		}
	}
	return t.example(&ep, rng.IntN(ep.Len())), nil
}

// MicroBatch implements train.Task.
func (t *VLA) MicroBatch(i int64) ([]*tensors.Tensor, error) { return t.microBatch(i, 0) }

// microBatch draws training micro-batch i; depth > 0 fixes the recurrent head's depth.
func (t *VLA) microBatch(i int64, depth int) ([]*tensors.Tensor, error) {
	rng := data.NewRand(seedFor(t.r.Train.Seed, "vla/train", i))
	ex := make([]vlaExample, t.micro)
	for j := range ex {
		var err error
		if ex[j], err = t.sample(rng, sim.TrainSeed(uint64(t.r.Train.Seed), i*int64(t.micro)+int64(j))); err != nil {
			return nil, err
		}
	}
	return t.tensors(ex, rng, t.r.Policy.TimeSamples, depth)
}

// tensors lays out a batch: observation inputs (see ObservationTensors), actions, then flow noise
// and times (k samples each), or for the recurrent head its initial state and depth masks
// (depth 0: sampled).
func (t *VLA) tensors(ex []vlaExample, rng *rand.Rand, k, depth int) ([]*tensors.Tensor, error) {
	obs := make([]sim.Observation, len(ex))
	for i := range ex {
		obs[i] = ex[i].obs
	}
	in, err := t.ObservationTensors(obs)
	if err != nil {
		return nil, err
	}
	b, h, a := len(ex), t.cfg.Horizon, t.cfg.ActionDim
	act := make([]float32, 0, b*h*a)
	for _, e := range ex {
		for _, row := range e.chunk {
			act = append(act, row...)
		}
	}
	actions := tensors.FromFlatDataAndDimensions(act, b, h, a)
	focus := make([]float32, 0, 4*b)
	for _, e := range ex {
		if e.focus == nil {
			e.focus = make([]float32, 4)
		}
		focus = append(focus, e.focus...)
	}
	last := tensors.FromFlatDataAndDimensions(focus, b, 4)
	if t.rd != nil {
		return append(append(append(in, actions), t.rdInputs(rng, b, depth)...), last), nil
	}
	noise := make([]float32, b*k*h*a)
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	times := make([]float32, b*k)
	for i := range times {
		times[i] = float32(t.conv.SampleTime(rng))
	}
	return append(in, actions, tensors.FromFlatDataAndDimensions(noise, b, k, h, a), tensors.FromFlatDataAndDimensions(times, b, k), last), nil
}

// ObservationTensors encodes observations as the policy's first three inputs: images
// [B, C, S, S, 3], instruction tokens [B, L] (0-padded) and raw states [B, StateDim].
func (t *VLA) ObservationTensors(obs []sim.Observation) ([]*tensors.Tensor, error) {
	s, L := t.r.Model.ImageSize, t.r.Model.MaxTextLen
	px := s * s * 3
	b, c := len(obs), len(t.cams)
	img := make([]float32, b*c*px)
	tok := make([]int32, b*L)
	st := make([]float32, b*sim.StateDim)
	for i, o := range obs {
		for j, cam := range t.cams {
			im, ok := o.Images[cam]
			if !ok || len(im) != px {
				return nil, fmt.Errorf("observation %d: camera %q: expected a %d×%d×3 image, got %d values", i, cam, s, s, len(im))
			}
			copy(img[(i*c+j)*px:], im)
		}
		if len(o.State) != sim.StateDim {
			return nil, fmt.Errorf("observation %d: expected %d state values, got %d", i, sim.StateDim, len(o.State))
		}
		copy(st[i*sim.StateDim:], o.State)
		words := data.Tokenize(o.Instruction)
		if len(words) > L {
			return nil, fmt.Errorf("observation %d: instruction has %d words, more than model.max_text_len (%d)", i, len(words), L)
		}
		for j, w := range words {
			tok[i*L+j] = int32(t.vocab.ID(w))
		}
	}
	return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(img, b, c, s, s, 3),
		tensors.FromFlatDataAndDimensions(tok, b, L), tensors.FromFlatDataAndDimensions(st, b, sim.StateDim)}, nil
}

// vlaNorm maps states and actions to and from normalised units, (x − mean)/std, with the
// statistics held in non-trainable variables: initialised from the task's stats, then saved in
// and restored from checkpoints, so a policy always acts with the statistics it was trained on.
type vlaNorm struct {
	state, action, actionInv func(*Node) *Node
}

func (t *VLA) norms(scope *model.Scope, g *Graph) vlaNorm {
	ns := scope.In("norm")
	pair := func(name string, st data.Stats) (*Node, *Node) {
		mean := ns.VariableWithValue(name+"_mean", st.Mean).SetTrainable(false).NodeValue(g)
		std := ns.VariableWithValue(name+"_std", st.Std).SetTrainable(false).NodeValue(g)
		return mean, std
	}
	sm, ss := pair("state", t.stats.State)
	am, as := pair("action", t.stats.Action)
	b := func(v, x *Node) *Node { return ExpandLeftToRank(v, x.Rank()) }
	return vlaNorm{
		state:     func(x *Node) *Node { return Div(Sub(x, b(sm, x)), b(ss, x)) },
		action:    func(x *Node) *Node { return Div(Sub(x, b(am, x)), b(as, x)) },
		actionInv: func(x *Node) *Node { return Add(Mul(x, b(as, x)), b(am, x)) },
	}
}

// Loss implements train.Task: the flow-matching loss on K time samples per backbone pass, or the
// MSE of the chunk for the regression head, in normalised action units.
func (t *VLA) Loss(scope *model.Scope, in []*Node) *Node {
	n := t.norms(scope, in[0].Graph())
	policy := scope.In("policy")
	hidden, valid, state, point := t.backbone(policy, n, in[0], in[1], in[2])
	a := n.action(in[3]) // [B, H, A]
	var loss *Node
	switch {
	case t.rd != nil: // regression through the recurrent-depth head, truncated BPTT
		pred := models.NewRDHead(policy.In("rd"), *t.rd, hidden, valid, state).Train(in[4], in[5], in[6])
		loss = losses.FlowLoss(pred, a)
	case t.r.Policy.Head == "mse":
		pred := models.ActionExpert(policy.In("expert"), t.cfg, hidden, valid, state, ZerosLike(InsertAxes(a, 1)), ZerosLike(Slice(in[5], AxisRange(), AxisRange(0, 1))))
		loss = losses.FlowLoss(Squeeze(pred, 1), a)
	default:
		noise, times := in[4], in[5]
		k := noise.Shape().Dimensions[1]
		ak := BroadcastToDims(InsertAxes(a, 1), a.Shape().Dimensions[0], k, t.cfg.Horizon, t.cfg.ActionDim)
		xt, target := t.conv.Interpolate(ak, noise, times)
		loss = losses.FlowLoss(models.ActionExpert(policy.In("expert"), t.cfg, hidden, valid, state, xt, times), target)
	}
	if w := t.pointWeight(); w > 0 { // pointing: squared distance to the nearest valid focus point
		focus := in[len(in)-1] // [B, 4]: two valid points
		d1 := ReduceSum(Square(Sub(point, Slice(focus, AxisRange(), AxisRange(0, 2)))), -1)
		d2 := ReduceSum(Square(Sub(point, Slice(focus, AxisRange(), AxisRange(2, 4)))), -1)
		loss = Add(loss, MulScalar(ReduceAllMean(Min(d1, d2)), w/2))
	}
	return loss
}

// pointWeight is the weight of the pointing loss: policy.point_weight with synthetic data (the
// simulator provides focus points), 0 for datasets from disk.
func (t *VLA) pointWeight() float64 {
	if t.ds != nil {
		return 0
	}
	return t.r.Policy.PointWeight
}

// backbone runs the policy backbone and its pointing head: the per-layer hidden states and key
// mask, the action head's state input (the normalised robot state and the point) and the point.
func (t *VLA) backbone(policy *model.Scope, n vlaNorm, images, tokens, state *Node) (hidden []*Node, valid, headState, point *Node) {
	hidden, valid = models.PolicyContext(policy, t.cfg, images, tokens)
	point = models.PointHead(policy.In("point"), t.cfg, hidden[len(hidden)-1], valid)
	return hidden, valid, Concatenate([]*Node{n.state(state), point}, -1), point
}

// ActGraph returns the policy's action chunks [B, H, A] in raw units for observation inputs
// (images, tokens, state) and initial noise [B, H, A]: for the flow head, EulerSteps Euler steps
// of the learned velocity field from the noise end of the convention (one backbone pass); for the
// regression head, the predicted chunk (noise unused).
func (t *VLA) ActGraph(scope *model.Scope, images, tokens, state, noise *Node) *Node {
	chunk, n := t.act(scope, images, tokens, state, noise)
	return n.actionInv(chunk)
}

// act is ActGraph in normalised action units.
func (t *VLA) act(scope *model.Scope, images, tokens, state, noise *Node) (*Node, vlaNorm) {
	g := images.Graph()
	n := t.norms(scope, g)
	policy := scope.In("policy")
	hidden, valid, st, _ := t.backbone(policy, n, images, tokens, state)
	b := images.Shape().Dimensions[0]
	x0 := InsertAxes(noise, 1) // [B, 1, H, A]
	if t.r.Policy.Head == "mse" {
		zero := Zeros(g, shapes.Make(noise.DType(), b, 1))
		return Squeeze(models.ActionExpert(policy.In("expert"), t.cfg, hidden, valid, st, ZerosLike(x0), zero), 1), n
	}
	calls := 0
	x := t.conv.EulerSample(x0, t.r.Policy.EulerSteps, func(x, tt *Node) *Node {
		expert := policy.In
		if calls > 0 {
			expert = policy.Shared // the same weights at every Euler step
		}
		calls++
		return models.ActionExpert(expert("expert"), t.cfg, hidden, valid, st, x, BroadcastToDims(Reshape(tt, 1, 1), b, 1))
	})
	return Squeeze(x, 1), n
}

// EvalSets implements train.Task.
func (t *VLA) EvalSets() []string { return t.r.Eval.Sets }

// EvalGraph implements train.Task: for held-out expert chunks, the per-example mean squared
// error (normalised units) of the sampled chunk and of its first action.
func (t *VLA) EvalGraph(scope *model.Scope, in []*Node) []*Node {
	var pred *Node
	var n vlaNorm
	if t.rd != nil { // at the depth of the eval batch's masks
		n = t.norms(scope, in[0].Graph())
		policy := scope.In("policy")
		hidden, valid, st, _ := t.backbone(policy, n, in[0], in[1], in[2])
		pred = models.NewRDHead(policy.In("rd"), *t.rd, hidden, valid, st).Train(in[4], in[5], in[6])
	} else {
		pred, n = t.act(scope, in[0], in[1], in[2], Squeeze(Slice(in[4], AxisRange(), AxisRange(0, 1)), 1))
	}
	d := Square(Sub(pred, n.action(in[3]))) // [B, H, A]
	first := ReduceMean(Slice(d, AxisRange(), AxisRange(0, 1)), 1, 2)
	return []*Node{ReduceMean(d, 1, 2), first}
}

// EvalSet implements train.Task: "actions", expert chunks at random steps of held-out episodes.
func (t *VLA) EvalSet(name string) (train.EvalData, error) {
	if name != "actions" {
		return nil, fmt.Errorf("eval.sets: unknown set %q for task vla (want actions)", name)
	}
	return t.evals.get(name, func() (train.EvalData, error) { return t.buildEvalSet(name) })
}

func (t *VLA) buildEvalSet(name string) (train.EvalData, error) {
	rng := data.NewRand(seedFor(t.r.Eval.Seed, "vla/eval/"+name, 0))
	n := t.r.Eval.Examples
	bs := min(t.r.Eval.BatchSize, n)
	e := &vlaEval{bs: bs, n: n}
	var ex []vlaExample
	for i := range n {
		ep, err := sim.RecordEpisode(t.sim, sim.EvalSeed(uint64(t.r.Eval.Seed), int64(i)), i)
		if err != nil {
			return nil, fmt.Errorf("eval set %s: %v", name, err)
		}
		ex = append(ex, t.example(&ep, rng.IntN(ep.Len())))
	}
	var err error
	e.batches, err = evalBatches(ex, bs, func(chunk []vlaExample, _ int) ([]*tensors.Tensor, error) {
		return t.tensors(chunk, rng, 1, int(math.Round(t.r.Policy.MeanDepth)))
	})
	if err != nil {
		return nil, fmt.Errorf("eval set %s: %v", name, err)
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
