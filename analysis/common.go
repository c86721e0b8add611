// Package analysis holds reel's interpretability tools for trained VLM checkpoints: Visual
// Activation Patching (patching.go) and HeadLens-style attention-head attribution and ablation
// (heads.go), the two tools the counting paper uses to locate counting inside a model.
package analysis

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// Subject is a trained VLM checkpoint ready for analysis.
type Subject struct {
	Dir     string // checkpoint directory
	Step    int64
	Recipe  *recipes.Recipe
	Cfg     models.VLMConfig
	Vocab   *text.Vocab
	Gen     *data.SceneGenerator
	Weights map[string]*tensors.Tensor // variable path → value

	backend compute.Backend
	store   *model.Store
}

// OutDir is where the tools write their results: out, or by default RUN/analysis.
func (s *Subject) OutDir(out string) string {
	if out != "" {
		return out
	}
	return filepath.Join(checkpoints.RunDir(s.Dir), "analysis")
}

// Open loads the newest good checkpoint of a run (or a checkpoint directory) for analysis. The
// tools generate their own controlled scenes: the recipe's synthetic data configuration, or the
// default scenes (at the model's image size) for a VLM trained on a folder dataset.
func Open(backend compute.Backend, path string, warn func(string)) (*Subject, error) {
	dir, err := checkpoints.Resolve(path, warn)
	if err != nil {
		return nil, err
	}
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return nil, err
	}
	task, err := tasks.New(r)
	if err != nil {
		return nil, err
	}
	vqa, ok := task.(*tasks.VQA)
	if !ok {
		return nil, fmt.Errorf("%s: analysis needs a VLM checkpoint (recipe %s has task %s)", dir, r.Name, r.Task)
	}
	gen := vqa.Generator()
	if gen == nil {
		// A VLM trained on a folder dataset shares the scene vocabulary: probe it with the
		// default synthetic scenes at its image size.
		c := data.DefaultSceneConfig()
		c.ImageSize = vqa.Model().Vision.ImageSize
		if gen, err = data.NewSceneGenerator(c); err != nil {
			return nil, err
		}
	}
	store, err := train.NewStore(0)
	if err != nil {
		return nil, err
	}
	st, err := checkpoints.Load(dir, store)
	if err != nil {
		return nil, err
	}
	weights, _, err := checkpoints.LoadVariables(dir)
	if err != nil {
		return nil, err
	}
	return &Subject{Dir: dir, Step: st.Step, Recipe: r, Cfg: vqa.Model(), Vocab: vqa.Vocab(), Gen: gen,
		Weights: weights, backend: backend, store: store}, nil
}

// exec compiles fn over the subject's weights as an inference graph in the recipe's precision.
func (s *Subject) exec(fn func(scope *model.Scope, in []*Node) []*Node) (*train.Inference, error) {
	return train.NewInference(s.backend, s.store, s.Recipe.Train, fn)
}

// run executes e (GoMLX graph errors become one-line errors).
func run(e *train.Inference, in ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	out, err := e.Call(in...)
	if err != nil {
		return nil, fmt.Errorf("analysis: %w", err)
	}
	return out, nil
}

// Prompt is a batch of VLM inputs with the position whose logits answer the question.
type Prompt struct {
	Images  *tensors.Tensor // [B, S, S, 3]
	Tokens  *tensors.Tensor // [B, L]
	Targets *tensors.Tensor // [B, L]
	Mask    *tensors.Tensor // [B, L]
	AnsPos  int             // text position whose logits predict the (first) answer token
}

// prompts encodes examples that share one question template (so the answer position is equal).
func (s *Subject) prompts(ex []data.Example) (*Prompt, error) {
	b, err := data.MakeVQABatch(s.Vocab, ex, s.Cfg.Vision.ImageSize, s.Cfg.MaxTextLen)
	if err != nil {
		return nil, err
	}
	pr := newPrompt(b)
	L := b.MaxLen
	for i := range b.Size {
		first := data.AnswerPos(b.Mask[i*L : (i+1)*L])
		if i > 0 && first != pr.AnsPos {
			return nil, fmt.Errorf("analysis: examples must share the answer position (%d vs %d)", pr.AnsPos, first)
		}
		pr.AnsPos = first
	}
	return pr, nil
}

// newPrompt wraps a host batch as graph inputs (AnsPos unset).
func newPrompt(b *data.VQABatch) *Prompt {
	sz, L := b.ImageSize, b.MaxLen
	return &Prompt{
		Images:  tensors.FromFlatDataAndDimensions(b.Images, b.Size, sz, sz, 3),
		Tokens:  tensors.FromFlatDataAndDimensions(b.Tokens, b.Size, L),
		Targets: tensors.FromFlatDataAndDimensions(b.Targets, b.Size, L),
		Mask:    tensors.FromFlatDataAndDimensions(b.Mask, b.Size, L),
	}
}

// answerLogits slices logits [B, L, V] at text position pos → [B, V].
func answerLogits(logits *Node, pos int) *Node {
	return Squeeze(Slice(logits, AxisRange(), AxisElem(pos), AxisRange()), 1)
}

// tokenID returns the vocabulary id of a single-token answer such as "3".
func (s *Subject) tokenID(word string) (int32, error) {
	if !s.Vocab.Has(word) {
		return 0, fmt.Errorf("analysis: %q is not in the vocabulary", word)
	}
	return int32(s.Vocab.ID(word)), nil
}

func flat32(t *tensors.Tensor) []float32 {
	if t.DType() != dtypes.Float32 {
		panic(fmt.Sprintf("analysis: want float32, got %s", t.DType()))
	}
	return tensors.MustCopyFlatData[float32](t)
}
