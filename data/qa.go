package data

import (
	"fmt"
	"strconv"

	"github.com/reelml/reel/text"
)

// EncodeQA lays out x = [BOS q... SEP a... EOS PAD...] of length maxLen, the
// targets y[i] = x[i+1] (PAD at the end), and mask[i] = 1 exactly where y[i]
// is an answer token or the EOS that follows the answer. Question and answer
// are split with Tokenize; unknown words map to UNKID. It returns a one-line
// error if the sequence does not fit in maxLen.
func EncodeQA(v *text.Vocab, question, answer string, maxLen int) (x, y []int32, mask []float32, err error) {
	q := text.Tokenize(question)
	a := text.Tokenize(answer)
	n := len(q) + len(a) + 3
	if n > maxLen {
		return nil, nil, nil, fmt.Errorf("data.EncodeQA: question+answer need %d tokens (with BOS/SEP/EOS), more than maxLen=%d: %q -> %q", n, maxLen, question, answer)
	}
	x = make([]int32, maxLen)
	y = make([]int32, maxLen)
	mask = make([]float32, maxLen)
	p := 0
	x[p] = text.BOSID
	p++
	for _, w := range q {
		x[p] = int32(v.ID(w))
		p++
	}
	sep := p
	x[p] = text.SEPID
	p++
	for _, w := range a {
		x[p] = int32(v.ID(w))
		p++
	}
	x[p] = text.EOSID
	eos := p
	copy(y, x[1:])
	y[maxLen-1] = text.PadID
	// y[i] is an answer token or the EOS for i in [sep, eos-1].
	for i := sep; i < eos; i++ {
		mask[i] = 1
	}
	return x, y, mask, nil
}

// VQABatch is a host-side VQA batch, row-major.
type VQABatch struct {
	Size, ImageSize, MaxLen int
	// Images holds Size images of ImageSize×ImageSize×3 (HWC) values in [0,1].
	Images []float32
	// Tokens, Targets and Mask are Size×MaxLen, as laid out by EncodeQA.
	Tokens, Targets []int32
	Mask            []float32
	Kinds           []string
	Answers         []string
}

// QAEncoder lays out one question and answer as EncodeQA does: tokens, next-token targets and
// the answer mask of length maxLen (e.g. with a pretrained model's tokenizer instead of a Vocab).
type QAEncoder func(question, answer string, maxLen int) (x, y []int32, mask []float32, err error)

// VocabQA is the QAEncoder of a word vocabulary: EncodeQA with v.
func VocabQA(v *text.Vocab) QAEncoder {
	return func(q, a string, n int) ([]int32, []int32, []float32, error) { return EncodeQA(v, q, a, n) }
}

// MakeVQABatch encodes examples into one batch. Every image must be
// imageSize×imageSize×3, and every question/answer must fit in maxLen.
func MakeVQABatch(v *text.Vocab, examples []Example, imageSize, maxLen int) (*VQABatch, error) {
	return MakeVQABatchWith(VocabQA(v), examples, imageSize, maxLen)
}

// MakeVQABatchWith is MakeVQABatch with the question/answer layout of enc.
func MakeVQABatchWith(enc QAEncoder, examples []Example, imageSize, maxLen int) (*VQABatch, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("data.MakeVQABatch: no examples")
	}
	if imageSize <= 0 || maxLen <= 0 {
		return nil, fmt.Errorf("data.MakeVQABatch: imageSize=%d and maxLen=%d must be positive", imageSize, maxLen)
	}
	b := len(examples)
	pix := imageSize * imageSize * 3
	out := &VQABatch{
		Size: b, ImageSize: imageSize, MaxLen: maxLen,
		Images:  make([]float32, b*pix),
		Tokens:  make([]int32, b*maxLen),
		Targets: make([]int32, b*maxLen),
		Mask:    make([]float32, b*maxLen),
		Kinds:   make([]string, b),
		Answers: make([]string, b),
	}
	for i, ex := range examples {
		if ex.Size != imageSize || len(ex.Image) != pix {
			return nil, fmt.Errorf("data.MakeVQABatch: example %d: image is %d×%d (%d values), want %d×%d×3", i, ex.Size, ex.Size, len(ex.Image), imageSize, imageSize)
		}
		x, y, m, err := enc(ex.Question, ex.Answer, maxLen)
		if err != nil {
			return nil, fmt.Errorf("example %d: %w", i, err)
		}
		copy(out.Images[i*pix:], ex.Image)
		copy(out.Tokens[i*maxLen:], x)
		copy(out.Targets[i*maxLen:], y)
		copy(out.Mask[i*maxLen:], m)
		out.Kinds[i] = ex.Kind
		out.Answers[i] = ex.Answer
	}
	return out, nil
}

// AnswerPos returns the first position of one example's mask row (as laid out by EncodeQA) that
// is part of the answer — the position whose logits predict the answer's first token — or -1.
func AnswerPos(mask []float32) int {
	for p, m := range mask {
		if m > 0 {
			return p
		}
	}
	return -1
}

// MaxCount is the largest number the synthetic generator can answer with.
const MaxCount = 50

// sceneTemplateWords are all non-attribute words used by the question templates.
var sceneTemplateWords = []string{
	"?", "how", "many", "objects", "object", "what", "color", "shape", "is", "the",
	"or", "there", "a", "an",
	"yes", "no", "left", "right", "top", "bottom",
}

// SceneVocab returns the vocabulary of every word the synthetic scene
// generator can emit in questions and answers, for every possible
// SceneConfig: template words, all shapes and their plurals, all colours and
// the number words "0".."50". Its order is fixed, so checkpoints trained on
// different scene recipes share token ids.
func SceneVocab() *text.Vocab {
	words := append([]string(nil), sceneTemplateWords...)
	words = append(words, allShapes...)
	for _, s := range allShapes {
		words = append(words, plural(s))
	}
	words = append(words, allColors...)
	for i := 0; i <= MaxCount; i++ {
		words = append(words, strconv.Itoa(i))
	}
	return text.NewVocab(words)
}
