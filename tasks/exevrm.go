package tasks

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// ExeVRM trains a video reward model in the manner of ExeVRM (Video-Based Reward Modeling for
// Computer-Use Agents, arXiv 2603.10178): it reads only the instruction and keyframes of the
// execution video and says whether the task was accomplished. The model is reel's video VLM
// (models.VideoVLM: per-frame ViT, STTS / ExeVRM / random token pruning as pruning.method,
// projector, causal decoder) asked "INSTRUCTION is the task complete ?" and trained with the
// answer's cross-entropy on "true" / "false" — so the success log-probability is a token
// log-probability, as TOPReward (Token Probabilities as Hidden Zero-Shot Rewards for Robotics,
// arXiv 2602.19313) reads progress from log p("True").
//
// Clips: model.frames keyframes sampled uniformly (first and last frame included) from the whole
// episode or, for a share data.prefix_share of training clips, from a random prefix of it; a
// prefix is positive only if the episode succeeds and the prefix reaches its decision step.
// Data: reward episodes recorded from the simulator (sim.RecordRewardEpisode: expert, failed,
// adversarial instruction rewrites), the held-out ones from evaluation seeds.
//
// Inputs are videoVLMInputs' (video, tokens, targets, mask, random ranks, ExeVRM packing).
type ExeVRM struct {
	r     *recipes.Recipe
	cfg   models.VideoVLMConfig
	vocab *text.Vocab
	sim   sim.Config
	micro int
	yes   int // token ids of the answers
	no    int
	evals evalCache
	once  sync.Once
	pool  []rewardEpisode // training episodes
	base  frameDiffRule   // the frame-difference baseline, tuned on pool
	err   error
	qwen  *exeVRMQwen // model.pretrained: a Qwen3-VL reward model (nil: reel's video VLM)
}

// rewardEpisode is one labelled execution video at the model's image size.
type rewardEpisode struct {
	frames   []uint8 // T × S × S × 3, 0–255 (a quarter of float32's memory: pools are large)
	T        int
	task     string
	family   string
	kind     string
	success  bool
	decision int
}

// ExeVRMQuestion is the question the reward model answers about a clip of instr.
func ExeVRMQuestion(instr string) string { return instr + " is the task complete ?" }

// exeVRMVocab is the word vocabulary: the simulator's instruction words, the question and the
// two answers.
func exeVRMVocab() *text.Vocab {
	return text.NewVocab(append(sim.Words(), "is", "task", "complete", "?", "true", "false"))
}

// NewExeVRM builds the exevrm task of a recipe. The training episodes are recorded on first use.
func NewExeVRM(r *recipes.Recipe) (*ExeVRM, error) {
	m, d := r.Model, r.Data
	if d.Source != "synthetic" && d.Source != "lerobot" {
		return nil, fmt.Errorf("data.source: task exevrm trains on synthetic reward episodes or a LeRobot dataset with success labels (got %s)", d.Source)
	}
	t := &ExeVRM{r: r, vocab: exeVRMVocab(), micro: r.Train.BatchSize / r.Train.GradAccum}
	if m.Pretrained != "" { // a Qwen3-VL as the reward model (exevrm_qwen.go)
		var err error
		if t.qwen, err = newExeVRMQwen(r, t.vocab); err != nil {
			return nil, err
		}
	}
	t.yes, t.no = t.vocab.ID("true"), t.vocab.ID("false")
	t.cfg = models.VideoVLMConfig{
		Vision: models.ViTConfig{ImageSize: m.ImageSize, PatchSize: m.PatchSize, Dim: m.VisionDim, Layers: m.VisionLayers,
			Heads: m.VisionHeads, MLPRatio: m.MLPRatio, SinCos: m.SinCosPos, ConvStem: m.ConvStem},
		Frames: m.Frames, ScoreAfter: m.ScoreAfter, Motion: m.Motion, TextDim: m.TextDim, TextLayers: m.TextLayers, TextHeads: m.TextHeads,
		MLPRatio: m.MLPRatio, MaxTextLen: m.MaxTextLen, VocabSize: t.vocab.Size(),
	}
	var err error
	if t.sim, err = SimConfig(r); err != nil {
		return nil, err
	}
	dirs := []string{r.Eval.Dir}
	if d.Source == "lerobot" {
		dirs = append(dirs, d.Dir)
	}
	for _, dir := range dirs {
		if dir != "" { // refused before training starts; the episodes are read on first use
			if _, err := lerobot.Open(dir); err != nil {
				return nil, err
			}
		}
	}
	// The longest instruction must fit with the question and the answer.
	if n := len(text.Tokenize(ExeVRMQuestion("put the yellow triangle in the purple bowl"))) + 4; n > m.MaxTextLen {
		return nil, fmt.Errorf("model.max_text_len: %d is too short for the longest question and answer (%d tokens)", m.MaxTextLen, n)
	}
	return t, nil
}

// Model returns the video VLM configuration.
func (t *ExeVRM) Model() models.VideoVLMConfig { return t.cfg }

// MicroBatchSize implements train.Task.
func (t *ExeVRM) MicroBatchSize() int { return t.micro }

// record generates n reward episodes of the recipe's scenes: training ones from train.seed, or
// held-out ones (sim.EvalSeed: never a training scene) from eval.seed.
func (t *ExeVRM) record(n int, eval bool) ([]rewardEpisode, error) {
	w := &rewardCollector{eps: make([]rewardEpisode, n)}
	seed := t.r.Train.Seed
	if eval {
		seed = t.r.Eval.Seed
	}
	_, err := sim.GenerateReward(t.sim, sim.RewardOptions{GenerateOptions: sim.GenerateOptions{Episodes: n, Seed: uint64(seed),
		Workers: t.r.Data.Workers}, Eval: eval}, w)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return w.eps, nil
}

type rewardCollector struct{ eps []rewardEpisode }

// Write stores ep under its index (indices are distinct: no lock needed for distinct slots).
func (c *rewardCollector) Write(ep lerobot.Episode) error {
	pix := make([]uint8, len(ep.Frames[0]))
	for i, x := range ep.Frames[0] {
		pix[i] = toByte(x)
	}
	c.eps[ep.Index] = rewardEpisode{frames: pix, T: ep.Len(), task: ep.Task, family: ep.Family, kind: ep.Kind,
		success: ep.Success, decision: ep.DecisionStep}
	return nil
}

// toByte quantises a [0, 1] value to 0–255, as a dataset's video stores it.
func toByte(x float32) uint8 { return uint8(math.Round(float64(max(0, min(1, x))) * 255)) }

// trainPool records (or, for data.source lerobot, reads) the training episodes once and tunes
// the baseline's threshold on them.
func (t *ExeVRM) trainPool() ([]rewardEpisode, error) {
	t.once.Do(func() {
		if t.r.Data.Source == "lerobot" {
			t.pool, t.err = t.readDataset(t.r.Data.Dir)
		} else {
			t.pool, t.err = t.record(t.r.Data.Episodes, false)
		}
		if t.err == nil {
			t.base = tuneFrameDiff(t.pool, t.r.Model.Frames, t.r.Model.ImageSize)
		}
	})
	return t.pool, t.err
}

// readDataset reads a LeRobot dataset of labelled execution videos (as 'reel data gen-reward'
// writes, or any dataset whose episode metadata has success): the first camera's frames at the
// model's image size (data.resize), the first task, and the decision step when recorded (else
// the last frame).
func (t *ExeVRM) readDataset(dir string) ([]rewardEpisode, error) {
	ds, err := lerobot.Open(dir)
	if err != nil {
		return nil, err
	}
	cams := ds.Cameras()
	if len(cams) == 0 {
		return nil, fmt.Errorf("lerobot dataset %s: no camera (the reward model reads videos)", dir)
	}
	s := t.r.Model.ImageSize
	out := make([]rewardEpisode, ds.NumEpisodes())
	for i := range out {
		info := ds.EpisodeMeta(i)
		if info.Success == nil {
			return nil, fmt.Errorf("lerobot dataset %s: episode %d has no success label (episode metadata column success, as 'reel data gen-reward' writes)", dir, info.EpisodeIndex)
		}
		dec := info.Length - 1
		if info.DecisionStep != nil {
			if dec = *info.DecisionStep; dec < 0 || dec >= info.Length {
				return nil, fmt.Errorf("lerobot dataset %s: episode %d: decision_step %d outside its %d frames", dir, info.EpisodeIndex, dec, info.Length)
			}
		}
		steps := make([]int, info.Length)
		for k := range steps {
			steps[k] = k
		}
		ims, err := ds.Frames(i, cams[0], steps, s, s, t.r.Data.Resize)
		if err != nil {
			return nil, err
		}
		e := rewardEpisode{T: info.Length, family: cmp.Or(info.Family, "unknown"), kind: cmp.Or(info.Kind, "unlabelled"),
			success: *info.Success, decision: dec, frames: make([]uint8, 0, info.Length*s*s*3)}
		if len(info.Tasks) > 0 {
			e.task = info.Tasks[0]
		}
		for _, im := range ims {
			for _, x := range im.Pix {
				e.frames = append(e.frames, toByte(x))
			}
		}
		out[i] = e
	}
	return out, nil
}

// keyframes returns k frame indices spread uniformly over [0, end], both ends included.
func keyframes(end, k int) []int {
	out := make([]int, k)
	for j := range out {
		if k > 1 {
			out[j] = int(math.Round(float64(j) * float64(end) / float64(k-1)))
		} else {
			out[j] = end
		}
	}
	return out
}

// clip is the keyframe video of the prefix [0, end] of ep.
func (e *rewardEpisode) clip(end, k, s int) []float32 {
	fs := s * s * 3
	out := make([]float32, 0, k*fs)
	for _, f := range keyframes(end, k) {
		for _, b := range e.frames[f*fs : (f+1)*fs] {
			out = append(out, float32(b)/255)
		}
	}
	return out
}

// label is whether the prefix [0, end] shows the task accomplished.
func (e *rewardEpisode) label(end int) bool { return e.success && end >= e.decision }

func answer(ok bool) string {
	if ok {
		return "true"
	}
	return "false"
}

// MicroBatch implements train.Task: episodes drawn uniformly from the training pool, each cut at
// a random prefix with probability data.prefix_share; with data.positive_share, a clip of a class
// drawn first (that share positive).
func (t *ExeVRM) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	pool, err := t.trainPool()
	if err != nil {
		return nil, err
	}
	rng := data.NewRand(seedFor(t.r.Train.Seed, "train", i))
	m := t.r.Model
	videos, qa := make([][]float32, t.micro), make([][2]string, t.micro)
	for j := range videos {
		// With data.positive_share > 0, each clip's class is drawn first and clips are drawn
		// until one of that class comes (a balanced batch leaves the answer prior nothing to gain).
		want := -1
		if ps := t.r.Data.PositiveShare; ps > 0 {
			want = 0
			if rng.Float64() < ps {
				want = 1
			}
		}
		for try := 0; ; try++ {
			e := &pool[rng.IntN(len(pool))]
			end := e.T - 1
			if rng.Float64() < t.r.Data.PrefixShare {
				end = rng.IntN(e.T)
			}
			ok := e.label(end)
			if want >= 0 && ok != (want == 1) {
				if try < 10000 {
					continue
				}
				return nil, fmt.Errorf("data.positive_share: no %s clip in %d draws from the %d training episodes", answer(want == 1), try+1, len(pool))
			}
			videos[j], qa[j] = e.clip(end, m.Frames, m.ImageSize), [2]string{ExeVRMQuestion(e.task), answer(ok)}
			break
		}
	}
	return t.inputs(videos, qa, seedFor(t.r.Train.Seed, "random-rank", i))
}

// Loss implements train.Task: the answer's cross-entropy (+ aux_weight · STTS auxiliary loss).
func (t *ExeVRM) Loss(scope *model.Scope, in []*Node) *Node {
	logits, targets, mask, aux := t.forward(scope, in)
	loss := losses.MaskedCrossEntropy(logits, targets, mask)
	if aux != nil {
		loss = Add(loss, MulScalar(aux, t.r.Pruning.AuxWeight))
	}
	return loss
}

// Score is the reward model's evidence for success of each clip [B]: logit("true") −
// logit("false") at the answer position (the first position b.Mask marks), so that log σ(score)
// is the log-probability of success with the answer restricted to true/false.
func (t *ExeVRM) Score(scope *model.Scope, in []*Node) *Node {
	logits, _, mask, _ := t.forward(scope, in) // mask [B, L]
	l := mask.Shape().Dimensions[1]
	prev := Concatenate([]*Node{ZerosLike(Slice(mask, AxisRange(), AxisRange(0, 1))), Slice(mask, AxisRange(), AxisRange(0, l-1))}, 1)
	first := Mul(mask, OneMinus(prev)) // one-hot of the answer position
	at := Einsum("blv,bl->bv", ConvertDType(logits, dtypes.Float32), first)
	return Sub(Squeeze(Slice(at, AxisRange(), AxisElem(t.yes)), 1), Squeeze(Slice(at, AxisRange(), AxisElem(t.no)), 1))
}

// EvalGraph implements train.Task: the success score of each clip.
func (t *ExeVRM) EvalGraph(scope *model.Scope, in []*Node) []*Node {
	return []*Node{t.Score(scope, in)}
}

// forward runs the reward model on a batch of t.inputs: the logits [B, L, V], the targets and
// the answer mask [B, L], and STTS's auxiliary loss (nil without).
func (t *ExeVRM) forward(scope *model.Scope, in []*Node) (logits, targets, mask, aux *Node) {
	if t.qwen != nil {
		b := train.Bind[exeVRMQwenBatch](in)
		return t.qwen.forward(scope, b), b.Targets, b.Mask, nil
	}
	b := train.Bind[VideoQABatch](in)
	logits, aux = videoVLMForward(scope, t.r, t.cfg, b)
	return logits, b.Targets, b.Mask, aux
}

// inputs lays out clips and their question/answer pairs as the graph's inputs.
func (t *ExeVRM) inputs(videos [][]float32, qa [][2]string, rankSeed uint64) ([]*tensors.Tensor, error) {
	if t.qwen != nil {
		return t.qwen.inputs(videos, qa)
	}
	return videoVLMInputs(t.r, videoSelector(t.r), data.VocabQA(t.vocab), videos, qa, rankSeed)
}

// EvalSets implements train.Task.
func (t *ExeVRM) EvalSets() []string { return t.r.Eval.Sets }

// EvalSet implements train.Task: eval.episodes held-out reward episodes (evaluation seeds: scenes
// never trained on), each as its whole clip and, for temporal attribution, as the prefixes that
// end at each of its keyframes.
func (t *ExeVRM) EvalSet(name string) (train.EvalData, error) {
	if name != "reward" {
		return nil, fmt.Errorf("eval.sets: unknown set %q for task exevrm (want reward)", name)
	}
	return t.evals.get(name, func() (train.EvalData, error) { return t.buildEvalSet() })
}

// exeVRMItem is one clip of the evaluation set: episode ep cut at keyframe j (j = frames−1 is
// the whole clip).
type exeVRMItem struct{ ep, j int }

func (t *ExeVRM) buildEvalSet() (train.EvalData, error) {
	if _, err := t.trainPool(); err != nil { // the baseline's threshold
		return nil, err
	}
	var eps []rewardEpisode
	var err error
	if t.r.Eval.Dir != "" {
		eps, err = t.readDataset(t.r.Eval.Dir)
	} else {
		eps, err = t.record(t.r.Eval.Episodes, true)
	}
	if err != nil {
		return nil, err
	}
	m := t.r.Model
	k := m.Frames
	var items []exeVRMItem
	for i := range eps {
		for j := range k {
			items = append(items, exeVRMItem{i, j})
		}
	}
	bs := min(t.r.Eval.BatchSize, len(items))
	e := &exeVRMEval{bs: bs, eps: eps, items: items, k: k}
	e.batches, err = evalBatches(items, bs, func(chunk []exeVRMItem, start int) ([]*tensors.Tensor, error) {
		videos, qa := make([][]float32, len(chunk)), make([][2]string, len(chunk))
		for n, it := range chunk {
			ep := &eps[it.ep]
			videos[n] = ep.clip(keyframes(ep.T-1, k)[it.j], k, m.ImageSize)
			qa[n] = [2]string{ExeVRMQuestion(ep.task), "true"}
		}
		return t.inputs(videos, qa, seedFor(t.r.Eval.Seed, "eval-rank", int64(start)))
	})
	if err != nil {
		return nil, fmt.Errorf("eval set reward: %w", err)
	}
	e.base = frameDiffBaseline(eps, k, m.ImageSize, t.base)
	return e, nil
}

type exeVRMEval struct {
	bs      int
	batches [][]*tensors.Tensor
	eps     []rewardEpisode
	items   []exeVRMItem
	k       int
	base    map[string]float64
}

func (e *exeVRMEval) NumBatches() int               { return len(e.batches) }
func (e *exeVRMEval) Batch(i int) []*tensors.Tensor { return e.batches[i] }

// Metrics: the model's metrics (rewardMetrics) from its scores, and the frame-difference
// baseline's under "baseline_".
func (e *exeVRMEval) Metrics(outs [][]*tensors.Tensor) map[string]float64 {
	scores := make([][]float64, len(e.eps)) // [episode][keyframe prefix]
	for i := range scores {
		scores[i] = make([]float64, e.k)
	}
	for bi, o := range outs {
		s := tensors.MustCopyFlatData[float32](o[0])
		for j := range e.bs {
			idx := bi*e.bs + j
			if idx >= len(e.items) {
				break
			}
			it := e.items[idx]
			scores[it.ep][it.j] = float64(s[j])
		}
	}
	pred := make([]bool, len(e.eps))
	attr := make([]int, len(e.eps))
	for i, s := range scores {
		pred[i] = s[e.k-1] > 0
		attr[i] = keyframes(e.eps[i].T-1, e.k)[jumpFrame(s)]
	}
	m := rewardMetrics(e.eps, pred, attr)
	for k, v := range e.base {
		m["baseline_"+k] = v
	}
	return m
}

// jumpFrame is the keyframe at which the success evidence rises most over the previous prefix
// (prefix 0, the first frame alone, is compared with nothing): the model's temporal attribution,
// gradient-free.
func jumpFrame(s []float64) int {
	best, at := math.Inf(-1), 0
	for j := 1; j < len(s); j++ {
		if d := s[j] - s[j-1]; d > best {
			best, at = d, j
		}
	}
	return at
}

// rewardMetrics are a success detector's metrics on labelled episodes: accuracy, precision,
// recall, F1 (positive = success); accuracy per kind group (expert, failed, adversarial — for
// adversarial negatives the share rejected) and per family; and the temporal attribution error
// mean |attributed frame − decision step| / episode length over the successful episodes.
func rewardMetrics(eps []rewardEpisode, pred []bool, attr []int) map[string]float64 {
	var tp, fp, fn, correct, attrErr, nPos float64
	n, ok := map[string]float64{}, map[string]float64{}
	for i, ep := range eps {
		hit := pred[i] == ep.success
		if hit {
			correct++
		}
		switch {
		case pred[i] && ep.success:
			tp++
		case pred[i]:
			fp++
		case ep.success:
			fn++
		}
		for _, key := range []string{"kind_" + sim.KindGroup(ep.kind), "family_" + ep.family} {
			n[key]++
			if hit {
				ok[key]++
			}
		}
		if ep.success {
			nPos++
			attrErr += math.Abs(float64(attr[i]-ep.decision)) / float64(ep.T)
		}
	}
	m := map[string]float64{"accuracy": correct / float64(len(eps)), "precision": tp / max(tp+fp, 1), "recall": tp / max(tp+fn, 1),
		"positives": nPos / float64(len(eps))}
	m["f1"] = 2 * tp / max(2*tp+fp+fn, 1)
	if nPos > 0 {
		m["attribution_error"] = attrErr / nPos
	}
	for k, v := range n {
		m["accuracy_"+k] = ok[k] / v
	}
	return m
}

// frameDiffRule is the frame-difference heuristic: success iff the mean absolute pixel
// difference between the last keyframe and keyframe From (0: the first, frames−2: the one
// before the last — motion at the very end) exceeds Threshold.
type frameDiffRule struct {
	From      int
	Threshold float64
}

// frameDiff is the mean absolute pixel difference between keyframes a and b of a clip.
func frameDiff(clip []float32, a, b, s int) float64 {
	fs := s * s * 3
	d := 0.0
	for p := range fs {
		d += math.Abs(float64(clip[a*fs+p] - clip[b*fs+p]))
	}
	return d / float64(fs)
}

// tuneFrameDiff returns the frame-difference rule with the best accuracy on eps: for each
// reference keyframe (the first, the one before the last), the threshold midway between two
// consecutive sorted differences that classifies most episodes right.
func tuneFrameDiff(eps []rewardEpisode, k, s int) frameDiffRule {
	type pt struct {
		d  float64
		ok bool
	}
	var rule frameDiffRule
	best := -1
	for _, from := range []int{0, k - 2} {
		pts := make([]pt, len(eps))
		pos := 0
		for i := range eps {
			pts[i] = pt{frameDiff(eps[i].clip(eps[i].T-1, k, s), k-1, from, s), eps[i].success}
			if eps[i].success {
				pos++
			}
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].d < pts[b].d })
		// A threshold below pts[i] predicts success for i…: correct = negatives below + positives from i.
		negBelow, posBelow := 0, 0
		for i := 0; i <= len(pts); i++ {
			if c := negBelow + (pos - posBelow); c > best {
				best = c
				rule.From = from
				switch {
				case i == 0:
					rule.Threshold = math.Inf(-1)
				case i == len(pts):
					rule.Threshold = math.Inf(1)
				default:
					rule.Threshold = (pts[i-1].d + pts[i].d) / 2
				}
			}
			if i < len(pts) {
				if pts[i].ok {
					posBelow++
				} else {
					negBelow++
				}
			}
		}
	}
	return rule
}

// frameDiffBaseline evaluates the frame-difference rule on eps; its attribution is
// largestChange.
func frameDiffBaseline(eps []rewardEpisode, k, s int, rule frameDiffRule) map[string]float64 {
	pred := make([]bool, len(eps))
	attr := make([]int, len(eps))
	for i := range eps {
		c := eps[i].clip(eps[i].T-1, k, s)
		pred[i] = frameDiff(c, k-1, rule.From, s) > rule.Threshold
		attr[i] = keyframes(eps[i].T-1, k)[largestChange(c, k, s)]
	}
	return rewardMetrics(eps, pred, attr)
}

// largestChange is the keyframe of clip (k keyframes of side s) that differs most from the one
// before it, by summed absolute pixel difference: the frame-difference baseline's temporal
// attribution (the first such keyframe on ties; 0 when nothing changes).
func largestChange(clip []float32, k, s int) int {
	fs := s * s * 3
	steps := make([]float64, k)
	for j := 1; j < k; j++ {
		for p := range fs {
			steps[j] += math.Abs(float64(clip[j*fs+p] - clip[(j-1)*fs+p]))
		}
	}
	return slices.Index(steps, slices.Max(steps))
}

// ClipInputs lays out clips (an instruction and the frames of a prefix of its video, oldest
// first) as graph inputs for Score: model.frames keyframes sampled uniformly from each clip's
// frames, each fitted to the model's image size (policy.Resize, pad).
func (t *ExeVRM) ClipInputs(instructions []string, frames [][]policy.Image) ([]*tensors.Tensor, error) {
	m := t.r.Model
	s := m.ImageSize
	videos, qa := make([][]float32, len(frames)), make([][2]string, len(frames))
	for i, fr := range frames {
		if len(fr) == 0 {
			return nil, fmt.Errorf("clip %d has no frames", i)
		}
		v := make([]float32, 0, m.Frames*s*s*3)
		for _, f := range keyframes(len(fr)-1, m.Frames) {
			im, err := policy.Resize(fr[f], s, s, policy.ResizePad)
			if err != nil {
				return nil, fmt.Errorf("clip %d frame %d: %w", i, f, err)
			}
			v = append(v, im.Pix...)
		}
		videos[i], qa[i] = v, [2]string{ExeVRMQuestion(instructions[i]), "true"}
	}
	return t.inputs(videos, qa, 0)
}
