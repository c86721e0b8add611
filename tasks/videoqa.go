package tasks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/pruning"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// VideoQA trains a video VLM (per-frame ViT → token pruning → projector → causal decoder) to answer
// questions about synthetic, mostly static clips. Inputs: video [B, T, S, S, 3] f32, tokens,
// targets [B, L] i32, mask [B, L] f32 and random ranks [B, T·G] f32 (drawn, from the seed so runs
// stay reproducible, for pruning.method random only; zeros otherwise); with pruning.method spatiotemporal, the
// five packing inputs of pruning.PackedBatch follow (the ExeVRM keep decisions, made on the
// raw pixels of each group token's patch, packed into rows).
type VideoQA struct {
	r      *recipes.Recipe
	cfg    models.VideoVLMConfig
	vocab  *text.Vocab
	encode data.QAEncoder
	// model.pretrained: a Hugging Face LLaVA whose SigLIP tower scores and prunes (models.VideoLlava)
	// instead of models.VideoVLM.
	pre   *pretrainedVLM
	vllm  models.VideoLlavaConfig
	gen   *data.VideoQAGenerator
	micro int
	evals evalCache
}

// NewVideoQA builds the videoqa task of a recipe.
func NewVideoQA(r *recipes.Recipe) (*VideoQA, error) {
	m, d := r.Model, r.Data
	if d.Source != "synthetic" {
		return nil, fmt.Errorf("data.source: task videoqa supports synthetic data only (got %s)", d.Source)
	}
	t := &VideoQA{r: r, vocab: data.VideoQAVocab(), micro: r.Train.BatchSize / r.Train.GradAccum}
	t.encode = data.VocabQA(t.vocab)
	t.cfg = models.VideoVLMConfig{
		Vision: models.ViTConfig{ImageSize: m.ImageSize, PatchSize: m.PatchSize, Dim: m.VisionDim, Layers: m.VisionLayers,
			Heads: m.VisionHeads, MLPRatio: m.MLPRatio, SinCos: m.SinCosPos, ConvStem: m.ConvStem},
		Frames: m.Frames, ScoreAfter: m.ScoreAfter, Motion: m.Motion, TextDim: m.TextDim, TextLayers: m.TextLayers, TextHeads: m.TextHeads,
		MLPRatio: m.MLPRatio, MaxTextLen: m.MaxTextLen, VocabSize: t.vocab.Size(),
	}
	gen, err := data.NewVideoQAGenerator(data.VideoQAConfig{
		Video: data.VideoConfig{Size: m.ImageSize, Frames: m.Frames, MinObjects: max(1, d.MinObjects), MaxObjects: d.MaxObjects,
			Shapes: d.Shapes, Colors: d.Colors, MinSize: d.MinSize, MaxSize: d.MaxSize, Background: d.Background,
			MaxSpeed: d.MaxSpeed, AppearLeave: d.AppearLeave},
		MotionFrames: d.MotionFrames, Kinds: d.QAKinds,
	})
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	t.gen = gen
	if m.Pretrained != "" {
		if err := t.setupPretrained(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// setupPretrained reads model.pretrained (a LLaVA with a SigLIP tower) and checks it against the
// recipe.
func (t *VideoQA) setupPretrained() error {
	m, p := t.r.Model, t.r.Pruning
	switch {
	case m.Motion:
		return fmt.Errorf("model.motion: not with model.pretrained (the pretrained tower has no motion projection); set it false")
	case p.Method == "spatiotemporal":
		return fmt.Errorf("pruning.method: spatiotemporal is not supported with model.pretrained (none, random or stts)")
	}
	pre, err := loadPretrainedVLM(m, t.vocab)
	if err != nil {
		return err
	}
	if pre.cfg.QwenVL != nil {
		return t.setupQwen(pre)
	}
	if pre.cfg.Llava == nil {
		return fmt.Errorf("model.pretrained: video QA with STTS needs a LLaVA (SigLIP tower + Llama/Qwen2 decoder), got %s", pre.cfg.Arch)
	}
	t.pre = pre
	if pre.encode != nil {
		t.encode = pre.encode
	}
	t.vllm = models.VideoLlavaConfig{Llava: *pre.cfg.Llava, Frames: m.Frames, ScoreAfter: m.ScoreAfter, Group: m.Group}
	if err := t.vllm.Validate(); err != nil {
		if strings.HasPrefix(err.Error(), "model.") { // a recipe field
			return err
		}
		return fmt.Errorf("model.pretrained: %w", err) // a field of the checkpoint's config
	}
	text := pre.cfg.Text()
	if n := t.Selector().Kept()*m.Group*m.Group + m.MaxTextLen; text.MaxPositions > 0 && n > text.MaxPositions {
		return fmt.Errorf("model.max_text_len: %d kept patch tokens + %d text tokens exceed max_position_embeddings %d",
			n-m.MaxTextLen, m.MaxTextLen, text.MaxPositions)
	}
	return nil
}

// InitVariables implements train.Initializer: a pretrained directory's weights (the STTS scorer
// keeps its fresh initialisation).
func (t *VideoQA) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if t.pre == nil {
		return 0, "", nil
	}
	return t.pre.initVariables(backend, store)
}

// Model returns the video VLM configuration.
func (t *VideoQA) Model() models.VideoVLMConfig { return t.cfg }

// Selector returns the recipe's token selector (a fresh one per graph).
func (t *VideoQA) Selector() *pruning.Selector {
	sel := videoSelector(t.r)
	switch {
	case t.pre != nil && t.pre.qwen != nil: // merge groups of each temporal patch's grid
		q := t.pre.qwen
		sel.Grid, sel.Group, sel.Frames = q.grid.H, q.cfg.Vision.MergeSize, q.grid.T
	case t.pre != nil:
		v := t.pre.cfg.VisionTower()
		sel.Grid = v.ImageSize / v.PatchSize
	}
	return sel
}

// videoSelector is a videovlm recipe's token selector (a fresh one per graph).
func videoSelector(r *recipes.Recipe) *pruning.Selector {
	p := r.Pruning
	return &pruning.Selector{Mode: p.Method, Group: r.Model.Group, Grid: r.Model.ImageSize / r.Model.PatchSize,
		Frames: r.Model.Frames, Keep: p.Keep}
}

// MicroBatchSize implements train.Task.
func (t *VideoQA) MicroBatchSize() int { return t.micro }

// MicroBatch implements train.Task.
func (t *VideoQA) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	rng := data.NewRand(seedFor(t.r.Train.Seed, "train", i))
	ex := make([]data.VideoQAExample, t.micro)
	for j := range ex {
		ex[j] = t.gen.Example(rng, "")
	}
	return t.tensors(ex, seedFor(t.r.Train.Seed, "random-rank", i))
}

func (t *VideoQA) tensors(ex []data.VideoQAExample, rankSeed uint64) ([]*tensors.Tensor, error) {
	videos, qa := make([][]float32, len(ex)), make([][2]string, len(ex))
	for i, e := range ex {
		videos[i], qa[i] = e.Video.Frames, [2]string{e.Question, e.Answer}
	}
	return videoVLMInputs(t.r, t.Selector(), t.encode, videos, qa, rankSeed)
}

// videoVLMInputs lays out a videovlm batch (see VideoQA): videos (each Frames×S×S×3), their
// question/answer pairs encoded with encode, random ranks (one per group token of sel) and, with
// pruning.method spatiotemporal, the packing of its keep decisions.
func videoVLMInputs(r *recipes.Recipe, sel *pruning.Selector, encode data.QAEncoder, videos [][]float32, qa [][2]string, rankSeed uint64) ([]*tensors.Tensor, error) {
	m := r.Model
	b, f, s, L := len(videos), m.Frames, m.ImageSize, m.MaxTextLen
	pix := f * s * s * 3
	video := make([]float32, b*pix)
	tok, tgt := make([]int32, b*L), make([]int32, b*L)
	msk := make([]float32, b*L)
	for i, v := range videos {
		copy(video[i*pix:], v)
		x, y, mm, err := encode(qa[i][0], qa[i][1], L)
		if err != nil {
			return nil, err
		}
		copy(tok[i*L:], x)
		copy(tgt[i*L:], y)
		copy(msk[i*L:], mm)
	}
	n := sel.Frames * sel.GroupTokens()
	rank := make([]float32, b*n) // read by random pruning only; zeros otherwise
	if r.Pruning.Method == "random" {
		rng := rand.New(rand.NewPCG(rankSeed, 7))
		for i := range rank {
			rank[i] = rng.Float32()
		}
	}
	out := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(video, b, f, s, s, 3), tensors.FromFlatDataAndDimensions(tok, b, L),
		tensors.FromFlatDataAndDimensions(tgt, b, L), tensors.FromFlatDataAndDimensions(msk, b, L),
		tensors.FromFlatDataAndDimensions(rank, b, n)}
	if r.Pruning.Method == "spatiotemporal" {
		pb, err := pruning.PackKept(exeVRMKeep(m, videos))
		if err != nil {
			return nil, err
		}
		out = append(out, pb.Tensors()...)
	}
	return out, nil
}

// exeVRMKeep applies the ExeVRM rules to each video's group tokens: a token's "patch" is the raw
// pixels of its Group×Group patch block. A video left with no token keeps its first.
func exeVRMKeep(m recipes.ModelConfig, videos [][]float32) [][]bool {
	side := m.PatchSize * m.Group
	keep := make([][]bool, len(videos))
	for i, v := range videos {
		k := slices.Concat(pruning.SpatiotemporalKeep(pruning.RawPatches(v, m.Frames, m.ImageSize, side),
			m.ImageSize/side, pruning.DefaultSpatiotemporal())...)
		if !slices.Contains(k, true) {
			k[0] = true
		}
		keep[i] = k
	}
	return keep
}

// VideoQABatch is the graph side of a video VLM batch (video QA and the ExeVRM reward model),
// bound once from the graph's inputs by train.Bind; videoVLMInputs lists the host tensors in this
// field order. The packing fields are present with pruning.method exevrm only.
type VideoQABatch struct {
	Video      *Node // [B, F, S, S, 3] float32 in [0, 1]
	Tokens     *Node // [B, L] int32: question and answer, teacher-forced
	Targets    *Node // [B, L] int32: the next tokens
	Mask       *Node // [B, L] float32: 1 where a target is an answer token the loss reads
	RandomRank *Node // [B, F·groups] float32: the ranks of random pruning (zeros otherwise)
	// The packing of the ExeVRM keep decisions (pruning.PackedBatch.Tensors, in order).
	Gather, SlotValid, PackMask, UnpackIdx, PackValid *Node
}

// packed returns the batch's packing as graph nodes, nil when it carries none.
func (b VideoQABatch) packed() *pruning.PackedNodes {
	if b.Gather == nil {
		return nil
	}
	return &pruning.PackedNodes{Gather: b.Gather, SlotValid: b.SlotValid, Mask: b.PackMask, UnpackIdx: b.UnpackIdx, Valid: b.PackValid}
}

func (t *VideoQA) forward(scope *model.Scope, b VideoQABatch) (logits, aux *Node) {
	if t.pre != nil { // model.pretrained: pruning none, random or stts (setupPretrained)
		sel := t.Selector()
		sel.RandomRank = b.RandomRank
		if t.pre.qwen != nil {
			return t.qwenForward(scope, sel, b)
		}
		return models.VideoLlava(scope, t.vllm, sel.TokenSelector(), t.pre.normalize(b.Video), b.Tokens)
	}
	return videoVLMForward(scope, t.r, t.cfg, b)
}

// videoVLMForward runs the video VLM on a batch of videoVLMInputs.
func videoVLMForward(scope *model.Scope, r *recipes.Recipe, cfg models.VideoVLMConfig, b VideoQABatch) (logits, aux *Node) {
	sel := videoSelector(r)
	sel.RandomRank = b.RandomRank
	if sel.Mode == "spatiotemporal" {
		sel.Packed = b.packed()
	}
	return models.VideoVLM(scope, cfg, sel.TokenSelector(), b.Video, b.Tokens)
}

// Loss implements train.Task: answer cross-entropy (+ aux_weight · STTS auxiliary loss).
func (t *VideoQA) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[VideoQABatch](in)
	logits, aux := t.forward(scope, b)
	loss := losses.MaskedCrossEntropy(logits, b.Targets, b.Mask)
	if aux != nil {
		loss = Add(loss, MulScalar(aux, t.r.Pruning.AuxWeight))
	}
	return loss
}

// EvalGraph implements train.Task: per-example exact match and summed answer NLL.
func (t *VideoQA) EvalGraph(scope *model.Scope, in []*Node) []*Node {
	b := train.Bind[VideoQABatch](in)
	logits, _ := t.forward(scope, b)
	correct, nll := losses.SequenceExactMatch(logits, b.Targets, b.Mask)
	return []*Node{ConvertDType(correct, dtypes.Float32), ConvertDType(nll, dtypes.Float32)}
}

// EvalSets implements train.Task.
func (t *VideoQA) EvalSets() []string { return t.r.Eval.Sets }

// EvalSet implements train.Task: held-out questions of every configured kind, in turn.
func (t *VideoQA) EvalSet(name string) (train.EvalData, error) {
	if name != "videoqa" {
		return nil, fmt.Errorf("eval.sets: unknown set %q for task videoqa (want videoqa)", name)
	}
	return t.evals.get(name, func() (train.EvalData, error) { return t.buildEvalSet(name) })
}

func (t *VideoQA) buildEvalSet(name string) (train.EvalData, error) {
	rng := data.NewRand(seedFor(t.r.Eval.Seed, "eval/"+name, 0))
	kinds := t.gen.Config().Kinds
	ex := make([]data.VideoQAExample, t.r.Eval.Examples)
	for i := range ex {
		ex[i] = t.gen.Example(rng, kinds[i%len(kinds)])
	}
	bs := min(t.r.Eval.BatchSize, len(ex))
	e := &videoQAEval{bs: bs}
	var err error
	e.batches, err = evalBatches(ex, bs, func(chunk []data.VideoQAExample, start int) ([]*tensors.Tensor, error) {
		return t.tensors(chunk, seedFor(t.r.Eval.Seed, "eval-rank", int64(start)))
	})
	if err != nil {
		return nil, fmt.Errorf("eval set %s: %w", name, err)
	}
	for _, x := range ex {
		e.kinds = append(e.kinds, x.Kind)
	}
	kept := 0
	for bi, b := range e.batches {
		for j, k := range t.keptPerVideo(b) {
			if bi*bs+j < len(ex) { // not the last batch's padding
				kept += k
			}
		}
	}
	e.kept = float64(kept) / float64(len(ex)) / float64(t.Selector().Frames*t.Selector().GroupTokens())
	return e, nil
}

type videoQAEval struct {
	bs      int
	batches [][]*tensors.Tensor
	kinds   []string
	kept    float64 // mean share of a video's tokens the pruned blocks see
}

// KeptTokens is the mean number of tokens per video that the blocks after pruning see in a batch
// of this task.
func (t *VideoQA) KeptTokens(batch []*tensors.Tensor) float64 {
	kept := t.keptPerVideo(batch)
	total := 0
	for _, k := range kept {
		total += k
	}
	return float64(total) / float64(len(kept))
}

// keptPerVideo counts the tokens each video of a batch keeps: from the batch's packing (spatiotemporal),
// otherwise fixed by the recipe.
func (t *VideoQA) keptPerVideo(batch []*tensors.Tensor) []int {
	kept := make([]int, batch[0].Shape().Dimensions[0])
	if t.r.Pruning.Method != "spatiotemporal" {
		for i := range kept {
			kept[i] = t.Selector().Kept()
		}
		return kept
	}
	valid, k := tensors.MustCopyFlatData[bool](batch[9]), batch[9].Shape().Dimensions[1]
	for i, v := range valid {
		if v {
			kept[i/k]++
		}
	}
	return kept
}

func (e *videoQAEval) NumBatches() int               { return len(e.batches) }
func (e *videoQAEval) Batch(i int) []*tensors.Tensor { return e.batches[i] }

// Metrics: accuracy (exact match) overall and per question kind, the mean NLL per answer token
// (loss), and the share of each video's tokens kept by pruning.
func (e *videoQAEval) Metrics(outs [][]*tensors.Tensor) map[string]float64 {
	n, ok := map[string]float64{}, map[string]float64{}
	total, correct, nll, tokens := 0.0, 0.0, 0.0, 0.0
	for bi, o := range outs {
		c := tensors.MustCopyFlatData[float32](o[0])
		l := tensors.MustCopyFlatData[float32](o[1])
		mask := tensors.MustCopyFlatData[float32](e.batches[bi][3])
		L := len(mask) / e.bs
		for j := range e.bs {
			idx := bi*e.bs + j
			if idx >= len(e.kinds) {
				break
			}
			n[e.kinds[idx]]++
			ok[e.kinds[idx]] += float64(c[j])
			total++
			correct += float64(c[j])
			nll += float64(l[j])
			for _, w := range mask[j*L : (j+1)*L] {
				tokens += float64(w)
			}
		}
	}
	m := map[string]float64{"accuracy": correct / total, "loss": nll / math.Max(tokens, 1), "kept": e.kept}
	for k, v := range n {
		m["accuracy_"+k] = ok[k] / v
	}
	return m
}
