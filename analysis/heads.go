package analysis

// HeadLens-style attention-head attribution (the counting paper's second tool). Each decoder head
// h of layer l writes o_{l,h} = heads_{l}[pos, h, :] · W_O^l[h·hd:(h+1)·hd, :] into the residual
// stream at the answer position. Reading that write directly through the unembedding — the final
// LayerNorm linearised at the example's own scale σ (direct logit attribution) —
//
//	logits_{l,h} = (γ ⊙ (o_{l,h} − mean(o_{l,h})) / σ) · W_U
//	score_{l,h}  = logits_{l,h}[correct number] − mean_{other numbers} logits_{l,h}[number]
//
// says how much the head, on its own, promotes the correct count over the other counts. Heads are
// ranked by their mean score over counting questions; then the top-k heads, and k random heads,
// are zero-ablated (their outputs set to 0 before W_O) and counting accuracy is measured again.
// If counting lives in the top heads, removing them costs far more than removing random ones.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/train"
)

// HeadsConfig configures Heads.
type HeadsConfig struct {
	Examples    int    // in-distribution counting questions
	Seed        uint64 // scene seed
	TopK        int    // heads ablated (0 = a quarter of all heads, at least 1)
	RandomDraws int    // random k-head ablations averaged
}

// HeadScore is one head's mean direct-logit-attribution score.
type HeadScore struct {
	Name  string  `json:"name"` // "L<layer>H<head>"
	Layer int     `json:"layer"`
	Head  int     `json:"head"`
	Score float64 `json:"score"`
}

// Ablation is counting accuracy with some heads removed.
type Ablation struct {
	Heads    []string `json:"heads"`
	Accuracy float64  `json:"accuracy"`
}

// HeadsResult is the output of Heads.
type HeadsResult struct {
	Checkpoint string      `json:"checkpoint"`
	Step       int64       `json:"step"`
	Examples   int         `json:"examples"`
	Scores     []HeadScore `json:"scores"`   // highest first
	Accuracy   float64     `json:"accuracy"` // nothing ablated
	TopK       Ablation    `json:"top_k"`
	Random     []Ablation  `json:"random"`
	// RandomMean is the mean accuracy over the random ablations.
	RandomMean float64 `json:"random_mean_accuracy"`
}

// headsBatch is a counting batch with each example's answer position.
type headsBatch struct {
	p      *Prompt
	pos    *tensors.Tensor // [B] int32 text position of the answer's first token
	answer []int32         // vocabulary id of the correct number
}

func (s *Subject) countingBatch(n int, seed uint64) (*headsBatch, error) {
	rng := data.NewRand(seed)
	gc := s.Gen.Config()
	ex := make([]data.Example, n)
	for i := range ex {
		ex[i] = s.Gen.CountingExample(rng, gc.MinObjects, gc.MaxObjects)
	}
	b, err := data.MakeVQABatch(s.Vocab, ex, gc.ImageSize, s.Cfg.MaxTextLen)
	if err != nil {
		return nil, err
	}
	L := b.MaxLen
	hb := &headsBatch{p: newPrompt(b), answer: make([]int32, n)}
	pos := make([]int32, n)
	for i := range n {
		p := data.AnswerPos(b.Mask[i*L : (i+1)*L])
		pos[i], hb.answer[i] = int32(p), b.Targets[i*L+p]
	}
	hb.pos = tensors.FromFlatDataAndDimensions(pos, n)
	return hb, nil
}

// atPositions picks x[b, offset+pos[b], ...] for x [B, T, ...] → [B, ...].
func atPositions(x, pos *Node, offset int) *Node {
	t := x.Shape().Dimensions[1]
	oh := OneHot(AddScalar(pos, float64(offset)), t, x.DType()) // [B, T]
	for oh.Rank() < x.Rank() {
		oh = InsertAxes(oh, -1)
	}
	return ReduceSum(Mul(x, oh), 1)
}

// Heads ranks the decoder's attention heads and ablates the top ones.
func (s *Subject) Heads(c HeadsConfig) (*HeadsResult, error) {
	if c.Examples < 1 {
		return nil, fmt.Errorf("heads: need at least one example, got %d", c.Examples)
	}
	layers, H := s.Cfg.TextLayers, s.Cfg.TextHeads
	D := s.Cfg.TextDim
	hd := D / H
	k := c.TopK
	if k <= 0 {
		k = max(1, layers*H/4)
	}
	if k > layers*H {
		return nil, fmt.Errorf("heads: --top-k %d is more than the model's %d heads", k, layers*H)
	}
	hb, err := s.countingBatch(c.Examples, c.Seed)
	if err != nil {
		return nil, err
	}
	P := s.Cfg.Vision.NumPatches()
	B := c.Examples

	// 1. Per-head outputs and the final residual at each example's answer position.
	capture, err := s.exec(func(scope *model.Scope, in []*Node) []*Node {
		b := train.Bind[headsCaptureBatch](in)
		acts := map[string]*Node{}
		models.VLMTapped(scope, s.Cfg, b.Images, b.Tokens, func(site string, x *Node) *Node {
			acts[site] = x
			return x
		})
		out := []*Node{atPositions(acts["final"], b.AnswerPos, P)} // [B, D]
		for l := range layers {
			out = append(out, atPositions(acts[fmt.Sprintf("decoder/block_%d/attn/heads", l)], b.AnswerPos, P)) // [B, H, hd]
		}
		return out
	})
	if err != nil {
		return nil, err
	}
	outs, err := run(capture, hb.p.Images, hb.p.Tokens, hb.pos)
	capture.Finalize()
	if err != nil {
		return nil, err
	}
	final := flat32(outs[0])
	gamma, err := s.weight("/ln_final/gamma", D)
	if err != nil {
		return nil, err
	}
	V := s.Cfg.VocabSize
	unembed, err := s.weight("/lm_head/weights", D*V)
	if err != nil {
		return nil, err
	}
	var numbers []int32
	for n := 0; n <= data.MaxCount; n++ {
		if s.Vocab.Has(strconv.Itoa(n)) {
			numbers = append(numbers, int32(s.Vocab.ID(strconv.Itoa(n))))
		}
	}
	var scores []HeadScore
	for l := range layers {
		wo, err := s.weight(fmt.Sprintf("/decoder/block_%d/attn/out/weights", l), D*D)
		if err != nil {
			return nil, err
		}
		heads := flat32(outs[1+l])
		for h := range H {
			total := 0.0
			o := make([]float64, D)
			for b := range B {
				// o = heads[b, h, :] · W_O[h·hd:(h+1)·hd, :]
				clear(o)
				for i := range hd {
					a := float64(heads[(b*H+h)*hd+i])
					row := wo[(h*hd+i)*D : (h*hd+i+1)*D]
					for j := range D {
						o[j] += a * float64(row[j])
					}
				}
				// Linearised final LayerNorm at this example's scale σ.
				mean, varSum := 0.0, 0.0
				for j := range D {
					mean += float64(final[b*D+j])
				}
				mean /= float64(D)
				for j := range D {
					d := float64(final[b*D+j]) - mean
					varSum += d * d
				}
				sigma := math.Sqrt(varSum/float64(D) + 1e-5)
				oMean := 0.0
				for j := range D {
					oMean += o[j]
				}
				oMean /= float64(D)
				for j := range D {
					o[j] = float64(gamma[j]) * (o[j] - oMean) / sigma
				}
				logit := func(v int32) float64 {
					sum := 0.0
					for j := range D {
						sum += o[j] * float64(unembed[j*V+int(v)])
					}
					return sum
				}
				correct, others, nOthers := logit(hb.answer[b]), 0.0, 0
				for _, v := range numbers {
					if v != hb.answer[b] {
						others += logit(v)
						nOthers++
					}
				}
				total += correct - others/float64(max(1, nOthers))
			}
			scores = append(scores, HeadScore{Name: fmt.Sprintf("L%dH%d", l, h), Layer: l, Head: h, Score: total / float64(B)})
		}
	}
	sort.SliceStable(scores, func(a, b int) bool { return scores[a].Score > scores[b].Score })

	// 2. Ablations.
	ablate, err := s.ablationExec(hb)
	if err != nil {
		return nil, err
	}
	defer ablate.Finalize()
	accuracy := func(removed []HeadScore) (Ablation, error) {
		mask := make([]float32, layers*H)
		for i := range mask {
			mask[i] = 1
		}
		a := Ablation{Heads: []string{}}
		for _, r := range removed {
			mask[r.Layer*H+r.Head] = 0
			a.Heads = append(a.Heads, r.Name)
		}
		out, err := run(ablate, hb.p.Images, hb.p.Tokens, hb.p.Targets, hb.p.Mask, tensors.FromFlatDataAndDimensions(mask, layers, H))
		if err != nil {
			return a, err
		}
		for _, v := range flat32(out[0]) {
			a.Accuracy += float64(v)
		}
		a.Accuracy /= float64(B)
		return a, nil
	}
	res := &HeadsResult{Checkpoint: s.Dir, Step: s.Step, Examples: B, Scores: scores}
	none, err := accuracy(nil)
	if err != nil {
		return nil, err
	}
	res.Accuracy = none.Accuracy
	if res.TopK, err = accuracy(scores[:k]); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	for range max(1, c.RandomDraws) {
		perm := rng.Perm(len(scores))
		pick := make([]HeadScore, k)
		for i := range pick {
			pick[i] = scores[perm[i]]
		}
		a, err := accuracy(pick)
		if err != nil {
			return nil, err
		}
		res.Random = append(res.Random, a)
		res.RandomMean += a.Accuracy / float64(max(1, c.RandomDraws))
	}
	return res, nil
}

// headsCaptureBatch is the input of the heads capture graph: a Prompt's images and tokens and
// each example's answer position (headsBatch.pos).
type headsCaptureBatch struct {
	Images    *Node // [B, S, S, 3]
	Tokens    *Node // [B, L] int32
	AnswerPos *Node // [B] int32: text position of the answer's first token
}

// ablationBatch is the input of the head-ablation graph: a Prompt and the head mask.
type ablationBatch struct {
	Images, Tokens, Targets, Mask *Node // as in Prompt
	HeadMask                      *Node // [layers, H] float32: 0 = ablated
}

// ablationExec returns per-example exact-match correctness and the logits [B, L, V] with decoder
// heads scaled by a [layers, H] mask (0 = ablated): inputs of ablationBatch.
func (s *Subject) ablationExec(hb *headsBatch) (*train.Inference, error) {
	return s.exec(func(scope *model.Scope, in []*Node) []*Node {
		b := train.Bind[ablationBatch](in)
		headMask := b.HeadMask
		tap := func(site string, x *Node) *Node {
			for l := range s.Cfg.TextLayers {
				if site == fmt.Sprintf("decoder/block_%d/attn/heads", l) {
					m := Squeeze(Slice(headMask, AxisElem(l), AxisRange()), 0) // [H]
					m = ConvertDType(m, x.DType())
					return Mul(x, Reshape(m, 1, 1, x.Shape().Dimensions[2], 1))
				}
			}
			return x
		}
		logits := models.VLMTapped(scope, s.Cfg, b.Images, b.Tokens, tap)
		correct, _ := losses.SequenceExactMatch(logits, b.Targets, b.Mask)
		return []*Node{ConvertDType(correct, dtypes.Float32), logits}
	})
}

// weight returns a float32 variable of the checkpoint with n values.
func (s *Subject) weight(path string, n int) ([]float32, error) {
	t, ok := s.Weights[path]
	if !ok {
		return nil, fmt.Errorf("heads: checkpoint %s has no variable %s", s.Dir, path)
	}
	v := flat32(t)
	if len(v) != n {
		return nil, fmt.Errorf("heads: %s has %d values, want %d", path, len(v), n)
	}
	return v, nil
}
