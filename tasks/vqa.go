package tasks

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// VQA trains a VLM to answer questions about images with next-token loss on the answer.
// Inputs of a batch: images [B,H,W,3] f32, tokens [B,L] i32, targets [B,L] i32, mask [B,L] f32.
type VQA struct {
	r        *recipes.Recipe
	cfg      models.VLMConfig
	vocab    *text.Vocab
	gen      *data.SceneGenerator // synthetic source
	folder   []data.Example       // folder source
	micro    int
	evalSets evalCache
	// model.pretrained: the Hugging Face VLM the task fine-tunes instead of models.VLM.
	hfc *hf.Config
	pre *pretrainedVLM
	// How questions and answers become tokens, and a token back into a word (the counting
	// metrics): reel's Vocab, or a pretrained directory's tokenizer.
	encode data.QAEncoder
	word   func(id int) string
}

// NewVQA builds the VQA task of a recipe.
func NewVQA(r *recipes.Recipe) (*VQA, error) {
	m := r.Model
	t := &VQA{r: r, vocab: data.SceneVocab(), micro: r.Train.BatchSize / r.Train.GradAccum}
	t.encode = data.VocabQA(t.vocab)
	t.word = t.vocab.Word
	t.cfg = models.VLMConfig{
		Vision: models.ViTConfig{ImageSize: m.ImageSize, PatchSize: m.PatchSize, Dim: m.VisionDim,
			Layers: m.VisionLayers, Heads: m.VisionHeads, MLPRatio: m.MLPRatio, SinCos: m.SinCosPos, ConvStem: m.ConvStem},
		TextDim: m.TextDim, TextLayers: m.TextLayers, TextHeads: m.TextHeads, MLPRatio: m.MLPRatio,
		MaxTextLen: m.MaxTextLen, VocabSize: t.vocab.Size(),
	}
	if m.Pretrained != "" {
		if err := t.setupPretrained(); err != nil {
			return nil, err
		}
	}
	d := r.Data
	switch d.Source {
	case "synthetic":
		gen, err := data.NewSceneGenerator(data.SceneConfig{ImageSize: m.ImageSize, MinObjects: d.MinObjects,
			MaxObjects: d.MaxObjects, Shapes: d.Shapes, Colors: d.Colors, MinSize: d.MinSize, MaxSize: d.MaxSize,
			Overlap: d.Overlap, Background: d.Background, CountingFraction: d.CountingFraction})
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		t.gen = gen
	case "folder":
		ex, err := data.LoadFolder(d.Dir, d.Questions, m.ImageSize)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		t.folder = ex
	}
	return t, nil
}

// seedFor derives an independent 64-bit seed for (seed, stream, index).
func seedFor(seed int64, stream string, i int64) uint64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	h.Write(b[:])
	h.Write([]byte(stream))
	return h.Sum64()
}

// MicroBatchSize implements train.Task.
func (t *VQA) MicroBatchSize() int { return t.micro }

// MicroBatch implements train.Task: synthetic batches come from an RNG seeded by (seed, i);
// folder batches walk a per-epoch permutation seeded by (seed, epoch).
func (t *VQA) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	ex := make([]data.Example, t.micro)
	if t.gen != nil {
		rng := data.NewRand(seedFor(t.r.Train.Seed, "train", i))
		for j := range ex {
			ex[j] = t.gen.Example(rng, "")
		}
	} else {
		n := int64(len(t.folder))
		for j := range ex {
			k := i*int64(t.micro) + int64(j)
			epoch, pos := k/n, k%n
			perm := permutation(seedFor(t.r.Train.Seed, "epoch", epoch), int(n))
			ex[j] = t.folder[perm[pos]]
		}
	}
	b, err := data.MakeVQABatchWith(t.encode, ex, t.cfg.Vision.ImageSize, t.cfg.MaxTextLen)
	if err != nil {
		return nil, err
	}
	return batchTensors(b), nil
}

// VQABatch is the graph side of a VQA batch (data.VQABatch is its host side), bound once from
// the graph's inputs by train.Bind; batchTensors lists the host tensors in this field order.
type VQABatch struct {
	Images  *graph.Node // [B, S, S, 3] float32 in [0, 1]
	Tokens  *graph.Node // [B, L] int32: question and answer, teacher-forced
	Targets *graph.Node // [B, L] int32: the next tokens
	Mask    *graph.Node // [B, L] float32: 1 where a target is an answer token the loss reads
}

func batchTensors(b *data.VQABatch) []*tensors.Tensor {
	s, l := b.ImageSize, b.MaxLen
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(b.Images, b.Size, s, s, 3),
		tensors.FromFlatDataAndDimensions(b.Tokens, b.Size, l),
		tensors.FromFlatDataAndDimensions(b.Targets, b.Size, l),
		tensors.FromFlatDataAndDimensions(b.Mask, b.Size, l),
	}
}

// Loss implements train.Task: masked next-token cross-entropy over the answer tokens.
func (t *VQA) Loss(scope *model.Scope, in []*graph.Node) *graph.Node {
	b := train.Bind[VQABatch](in)
	logits := t.logits(scope, b.Images, b.Tokens, b.Mask)
	return losses.MaskedCrossEntropy(logits, b.Targets, b.Mask)
}

// EvalGraph implements train.Task: per-example exact match, summed answer NLL and the argmax
// tokens.
func (t *VQA) EvalGraph(scope *model.Scope, in []*graph.Node) []*graph.Node {
	b := train.Bind[VQABatch](in)
	logits := t.logits(scope, b.Images, b.Tokens, b.Mask)
	correct, nll := losses.SequenceExactMatch(logits, b.Targets, b.Mask)
	return []*graph.Node{correct, nll, graph.ArgMax(logits, -1, dtypes.Int32)}
}

// EvalSets implements train.Task.
func (t *VQA) EvalSets() []string { return t.r.Eval.Sets }

// EvalSet implements train.Task. Sets are generated once (from eval.seed) and cached.
func (t *VQA) EvalSet(name string) (train.EvalData, error) {
	return t.evalSets.get(name, func() (train.EvalData, error) { return t.buildEvalSet(name) })
}

func (t *VQA) buildEvalSet(name string) (train.EvalData, error) {
	var ex []data.Example
	n := t.r.Eval.Examples
	if t.gen != nil {
		rng := data.NewRand(seedFor(t.r.Eval.Seed, "eval/"+name, 0))
		d := t.r.Data
		shifts := t.gen.OODShifts(t.r.Eval.OODMax)
		if name == "counting_ood" && len(shifts) == 0 {
			return nil, fmt.Errorf("eval.sets: counting_ood has no distribution shift to test (all shapes and colours used in training and eval.ood_max_objects <= data.max_objects)")
		}
		for i := range n {
			switch name {
			case "counting":
				ex = append(ex, t.gen.CountingExample(rng, d.MinObjects, d.MaxObjects))
			case "counting_ood":
				// Shifts in turn, so each gets n/len(shifts) examples.
				e, err := t.gen.OODCountingExample(rng, shifts[i%len(shifts)], t.r.Eval.OODMax)
				if err != nil {
					return nil, fmt.Errorf("eval.sets: counting_ood: %w", err)
				}
				ex = append(ex, e)
			case "general":
				ex = append(ex, t.gen.Example(rng, "general"))
			default:
				return nil, fmt.Errorf("eval.sets: unknown set %q", name)
			}
		}
	} else {
		for _, e := range t.folder {
			if (name == "counting") == (e.Kind == "counting") && name != "counting_ood" {
				ex = append(ex, e)
			}
		}
		if len(ex) == 0 {
			return nil, fmt.Errorf("eval.sets: the folder dataset has no %q examples (kind \"counting\" or other)", name)
		}
	}
	s, err := t.newEval(name, ex)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// vqaEval is a fixed evaluation set cut into equal batches (the last one padded by repeating
// examples, whose outputs are ignored, so every batch has the same shape and compiles once).
type vqaEval struct {
	name     string
	word     func(id int) string
	batches  [][]*tensors.Tensor
	examples []data.Example
	bs       int
}

func (t *VQA) newEval(name string, ex []data.Example) (*vqaEval, error) {
	bs := min(t.r.Eval.BatchSize, len(ex))
	s := &vqaEval{name: name, word: t.word, examples: ex, bs: bs}
	var err error
	s.batches, err = evalBatches(ex, bs, func(chunk []data.Example, _ int) ([]*tensors.Tensor, error) {
		b, err := data.MakeVQABatchWith(t.encode, chunk, t.cfg.Vision.ImageSize, t.cfg.MaxTextLen)
		if err != nil {
			return nil, err
		}
		return batchTensors(b), nil
	})
	if err != nil {
		return nil, fmt.Errorf("eval set %s: %w", name, err)
	}
	return s, nil
}

func (s *vqaEval) NumBatches() int               { return len(s.batches) }
func (s *vqaEval) Batch(i int) []*tensors.Tensor { return s.batches[i] }

// vqaRow is one evaluated example with its outputs and its rows of the batch.
type vqaRow struct {
	ex            data.Example
	correct, nll  float64
	pred, targets []int32   // argmax and target tokens
	mask          []float32 // answer mask
}

// rows calls fn for every example of the set (not the last batch's padding) with its outputs.
func (s *vqaEval) rows(outs [][]*tensors.Tensor, fn func(r vqaRow)) {
	for bi, o := range outs {
		c := tensors.MustCopyFlatData[float32](o[0])
		l := tensors.MustCopyFlatData[float32](o[1])
		pred := tensors.MustCopyFlatData[int32](o[2])
		mask := tensors.MustCopyFlatData[float32](s.batches[bi][3])
		targets := tensors.MustCopyFlatData[int32](s.batches[bi][2])
		L := len(mask) / s.bs
		for j := range s.bs {
			idx := bi*s.bs + j
			if idx >= len(s.examples) {
				break
			}
			fn(vqaRow{ex: s.examples[idx], correct: float64(c[j]), nll: float64(l[j]), pred: pred[j*L : (j+1)*L],
				targets: targets[j*L : (j+1)*L], mask: mask[j*L : (j+1)*L]})
		}
	}
}

// Metrics: accuracy (exact match of the answer), loss (mean NLL per answer token), accuracy per
// question kind, and for counting sets the mean absolute error of the predicted number.
func (s *vqaEval) Metrics(outs [][]*tensors.Tensor) map[string]float64 {
	var correct, nll, tokens, absErr, numeric float64
	kindN, kindOK := map[string]float64{}, map[string]float64{}
	varN, varOK := map[string]float64{}, map[string]float64{}
	s.rows(outs, func(r vqaRow) {
		e := r.ex
		correct += r.correct
		nll += r.nll
		kindN[e.Kind]++
		kindOK[e.Kind] += r.correct
		if e.Variant != "" {
			varN[e.Variant]++
			varOK[e.Variant] += r.correct
		}
		for _, m := range r.mask {
			if m > 0 {
				tokens++
			}
		}
		if first := data.AnswerPos(r.mask); e.Kind == "counting" && first >= 0 {
			if want, err := strconv.Atoi(s.word(int(r.targets[first]))); err == nil {
				numeric++
				absErr += math.Abs(float64(s.predictedCount(r) - want))
			}
		}
	})
	n := float64(len(s.examples))
	m := map[string]float64{"accuracy": correct / n, "loss": nll / math.Max(tokens, 1)}
	if len(kindN) > 1 {
		for k, v := range kindN {
			m["accuracy_"+k] = kindOK[k] / v
		}
	}
	for k, v := range varN {
		m["accuracy_"+k] = varOK[k] / v
	}
	if numeric > 0 {
		m["mae"] = absErr / numeric
	}
	return m
}

// predictedCount is the number an example's argmax tokens answer at its first answer position; a
// non-number answer counts as predicting 0.
func (s *vqaEval) predictedCount(r vqaRow) int {
	if p := data.AnswerPos(r.mask); p >= 0 {
		if v, err := strconv.Atoi(s.word(int(r.pred[p]))); err == nil {
			return v
		}
	}
	return 0
}

// Groups implements train.Grouper: "by_count" holds the accuracy and mean absolute error of
// counting questions per true answer (the numerosity curve). In a set with distribution shifts
// only the more_objects examples are grouped, so that in-distribution and OOD counts can be
// merged (train.MergeGroups) into one curve without mixing in the appearance shifts.
func (s *vqaEval) Groups(outs [][]*tensors.Tensor) map[string][]train.Group {
	type acc struct{ n, ok, absErr float64 }
	by := map[int]*acc{}
	s.rows(outs, func(r vqaRow) {
		e := r.ex
		if e.Kind != "counting" || (e.Variant != "" && e.Variant != "more_objects") {
			return
		}
		want, err := strconv.Atoi(e.Answer)
		if err != nil {
			return
		}
		a := by[want]
		if a == nil {
			a = &acc{}
			by[want] = a
		}
		a.n++
		a.ok += r.correct
		a.absErr += math.Abs(float64(s.predictedCount(r) - want))
	})
	if len(by) == 0 {
		return nil
	}
	keys := make([]int, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var g []train.Group
	for _, k := range keys {
		a := by[k]
		g = append(g, train.Group{Key: strconv.Itoa(k), N: int(a.n), Metrics: map[string]float64{"accuracy": a.ok / a.n, "mae": a.absErr / a.n}})
	}
	return map[string][]train.Group{"by_count": g}
}

// setupPretrained reads model.pretrained / model.hf_config and checks them against the recipe.
func (t *VQA) setupPretrained() error {
	m := t.r.Model
	if m.Arch != "vlm" {
		return fmt.Errorf("model.pretrained: needs model.arch vlm, got %s", m.Arch)
	}
	p, err := loadPretrainedVLM(m, t.vocab)
	if err != nil {
		return err
	}
	t.pre, t.hfc = p, p.cfg
	if p.encode != nil {
		t.encode, t.word = p.encode, p.word
	}
	c := t.hfc
	text := c.Text()
	if c.QwenVL != nil {
		if err := p.setupQwen(m, t.vocab, 0); err != nil {
			return err
		}
		if p.encode != nil { // the chat template's layout
			t.encode = p.encode
		}
		q := p.qwen
		if n := len(q.prefix) + m.MaxTextLen; text.MaxPositions > 0 && n > text.MaxPositions {
			return fmt.Errorf("model.max_text_len: %d prompt-prefix (%d image) + %d text tokens exceed max_position_embeddings %d",
				len(q.prefix), q.imageTokens(), m.MaxTextLen, text.MaxPositions)
		}
		return nil
	}
	if img := c.ImageToken(); p.random() && (img < t.vocab.Size() || img >= text.VocabSize) {
		return fmt.Errorf("model.hf_config: image_token_index %d must lie in [%d, vocab_size %d), beyond reel's %d-word vocabulary",
			img, t.vocab.Size(), text.VocabSize, t.vocab.Size())
	}
	if n := c.ImageTokens() + m.MaxTextLen; text.MaxPositions > 0 && n > text.MaxPositions {
		return fmt.Errorf("model.max_text_len: %d image + %d text tokens exceed max_position_embeddings %d", c.ImageTokens(), m.MaxTextLen, text.MaxPositions)
	}
	return nil
}

// logits are the next-token logits [B, L, V] of tokens [B, L] given images [B, H, W, 3] in
// [0, 1] and the answer mask [B, L]: reel's VLM, or the pretrained one with the image
// placeholders before the text (Qwen-VL: its prompt prefix, see qwenPrompt; for PaliGemma the image and the prompt up to the first answer
// target are the bidirectional prefix, the answer the causal suffix).
func (t *VQA) logits(scope *model.Scope, images, tokens, mask *graph.Node) *graph.Node {
	if t.hfc == nil {
		return models.VLM(scope, t.cfg, images, tokens)
	}
	g := images.Graph()
	b, l := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
	px := t.pre.normalize(images)  // pixel_values [B, 3, H, W]
	if q := t.pre.qwen; q != nil { // Qwen-VL: the prompt's prefix (image block) before the text
		out := hf.Forward(scope, t.hfc, q.inputs(px, tokens)).Logits
		n := len(q.prefix)
		return graph.Slice(out, graph.AxisRange(), graph.AxisRange(n, n+l), graph.AxisRange())
	}
	n := t.hfc.ImageTokens()
	img := graph.BroadcastToDims(graph.Scalar(g, dtypes.Int32, t.hfc.ImageToken()), b, n)
	in := hf.Inputs{IDs: graph.Concatenate([]*graph.Node{img, tokens}, 1), Pixels: px}
	if t.hfc.PaliGemma != nil {
		m := graph.ConvertDType(graph.GreaterThan(mask, graph.ZerosLike(mask)), dtypes.Int32)
		after := graph.Sub(graph.CumSum(m, 1), m) // > 0 after the first answer-target position: the answer
		types := graph.ConvertDType(graph.GreaterThan(after, graph.ZerosLike(after)), dtypes.Int32)
		in.TokenTypes = graph.Concatenate([]*graph.Node{graph.Zeros(g, shapes.Make(dtypes.Int32, b, n)), types}, 1)
	}
	out := hf.Forward(scope, t.hfc, in).Logits
	return graph.Slice(out, graph.AxisRange(), graph.AxisRange(n, n+l), graph.AxisRange())
}

// InitVariables implements train.Initializer: a pretrained directory's weights.
func (t *VQA) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if t.pre == nil {
		return 0, "", nil
	}
	return t.pre.initVariables(backend, store)
}

// Pretrained is the Hugging Face configuration the task fine-tunes (nil: reel's own VLM).
func (t *VQA) Pretrained() *hf.Config { return t.hfc }

// Model returns the task's VLM configuration.
func (t *VQA) Model() models.VLMConfig { return t.cfg }

// Vocab returns the task's vocabulary.
func (t *VQA) Vocab() *text.Vocab { return t.vocab }

// Generator returns the synthetic scene generator of the recipe, or nil for folder data.
func (t *VQA) Generator() *data.SceneGenerator { return t.gen }
