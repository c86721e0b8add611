package tasks

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// objectsOnly is the tiny VQA task reduced to one question, "how many objects ?", whose answer
// (0–5, uniform) only the image can give: the language prior is 1/6.
type objectsOnly struct{ *VQA }

func (t objectsOnly) examples(seed uint64, n int) []data.Example {
	rng := data.NewRand(seed)
	ex := make([]data.Example, n)
	for i := range ex {
		e := t.gen.CountingExample(rng, 0, 5)
		e.Question, e.Answer = "how many objects ?", strconv.Itoa(len(e.Scene.Objects))
		ex[i] = e
	}
	return ex
}

func (t objectsOnly) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	b, err := data.MakeVQABatch(t.vocab, t.examples(seedFor(1, "train", i), t.micro), t.cfg.Vision.ImageSize, t.cfg.MaxTextLen)
	if err != nil {
		return nil, err
	}
	return batchTensors(b), nil
}

func (t objectsOnly) EvalSets() []string { return []string{"objects"} }

func (t objectsOnly) EvalSet(string) (train.EvalData, error) {
	return t.newEval("objects", t.examples(seedFor(2, "eval", 0), 256))
}

// TestVLMReadsItsImage guards against a "blind" VLM: with GPT-style N(0, 0.02²) dense weights the
// tiny model stayed at the 1/6 prior on this task forever (the decoder's attention never left
// uniform). A VLM that reads its image prefix gets well above the prior within 400 steps
// (measured 0.59; 0.36 with the old init).
func TestVLMReadsItsImage(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for ~10 s")
	}
	r, err := recipes.Load("counting-pretrain-tiny", []string{
		"train.steps=400", "train.lr=1e-3", "train.warmup_steps=30", "train.eval_every=400", "checkpoint.every=400",
	})
	require.NoError(t, err)
	vqa, err := NewVQA(r)
	require.NoError(t, err)
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	res, err := train.Run(t.Context(), objectsOnly{vqa}, train.Options{Recipe: r, OutDir: t.TempDir(), Backend: backend, Log: io.Discard})
	require.NoError(t, err)
	acc := res.Eval["objects/accuracy"]
	t.Logf("held-out accuracy on \"how many objects ?\" after 400 steps: %.3f (prior 0.167)", acc)
	require.Greater(t, acc, 0.45, "the VLM must answer from its image, not from the language prior (1/6)")
}

// TestEvalSplitsDisjointFromTraining: evaluation scenes come from seeds that no training
// micro-batch uses (even when train.seed = eval.seed), and no evaluation image appears in training.
func TestEvalSplitsDisjointFromTraining(t *testing.T) {
	r, err := recipes.Load("counting-pretrain-tiny", []string{"train.seed=5", "eval.seed=5", "eval.examples=64"})
	require.NoError(t, err)
	vqa, err := NewVQA(r)
	require.NoError(t, err)
	trainSeeds := map[uint64]bool{}
	for i := range int64(200_000) {
		trainSeeds[seedFor(r.Train.Seed, "train", i)] = true
	}
	images := map[string]bool{}
	for i := range int64(40) {
		b, err := vqa.MicroBatch(i)
		require.NoError(t, err)
		flat := tensors.MustCopyFlatData[float32](b[0])
		per := len(flat) / vqa.MicroBatchSize()
		for j := range vqa.MicroBatchSize() {
			images[fmt.Sprint(flat[j*per:(j+1)*per])] = true
		}
	}
	for _, name := range r.Eval.Sets {
		require.False(t, trainSeeds[seedFor(r.Eval.Seed, "eval/"+name, 0)], "eval set %s seed collides with a training seed", name)
		set, err := vqa.EvalSet(name)
		require.NoError(t, err)
		for _, e := range set.(*vqaEval).examples {
			require.False(t, images[fmt.Sprint(e.Image)], "an image of eval set %s appears in training", name)
		}
	}
}

// TestPretrainedVLMReadsItsImage: the Hugging Face PaliGemma path of counting-finetune-hf-tiny
// (random weights, image placeholders before the text, prefix-LM token types) learns to answer
// from the image on the objects-only task, well above the 1/6 language prior.
func TestPretrainedVLMReadsItsImage(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for ~20 s")
	}
	r, err := recipes.Load("counting-finetune-hf-tiny", []string{
		"train.steps=300", "train.eval_every=300", "checkpoint.every=300",
	})
	require.NoError(t, err)
	vqa, err := NewVQA(r)
	require.NoError(t, err)
	require.NotNil(t, vqa.Pretrained())
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	res, err := train.Run(t.Context(), objectsOnly{vqa}, train.Options{Recipe: r, OutDir: t.TempDir(), Backend: backend, Log: io.Discard})
	require.NoError(t, err)
	acc := res.Eval["objects/accuracy"]
	t.Logf("PaliGemma-tiny held-out accuracy on \"how many objects ?\" after 300 steps: %.3f (prior 0.167)", acc)
	require.Greater(t, acc, 0.4)
}

// TestPretrainedRecipeErrors: model.pretrained problems are one error naming the field.
func TestPretrainedRecipeErrors(t *testing.T) {
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"model.image_size=64", "model.patch_size=8"}, "model.image_size: 64 must equal the vision tower's image_size 32"},
		{[]string{"model.hf_config="}, "model.hf_config: required with model.pretrained: random"},
		{[]string{"model.hf_config={"}, "model.hf_config: invalid JSON"},
		{[]string{`model.hf_config={"architectures": ["LlamaForCausalLM"]}`}, "is not a VLM"},
		{[]string{"model.pretrained=/nonexistent", "model.hf_config="}, "/nonexistent/config.json: no such file or directory"},
	} {
		r, err := recipes.Load("counting-finetune-hf-tiny", c.set)
		require.NoError(t, err)
		_, err = NewVQA(r)
		require.ErrorContains(t, err, c.want, c.set)
	}
}

// wordLevelTokenizer writes a tokenizer.json (WordLevel model, whitespace pre-tokenizer) and a
// tokenizer_config.json into dir: words[i] has id i.
func wordLevelTokenizer(t *testing.T, dir string, words []string) {
	t.Helper()
	vocab := map[string]int{}
	for i, w := range words {
		vocab[w] = i
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": []any{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"),
		[]byte(`{"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}`), 0o644))
}

// TestPretrainedDirectory: model.pretrained pointing at a Hugging Face directory (the PaliGemma
// fixture, with a word-level tokenizer over reel's scene words) loads its weights into the task's
// model, encodes questions with its tokenizer and fine-tunes: the loss falls.
func TestPretrainedDirectory(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "hf", "testdata", "paligemma")
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	words := make([]string, 256)
	for i := range words {
		words[i] = data.SceneVocab().Word(i)
		if i >= data.SceneVocab().Size() {
			words[i] = fmt.Sprintf("w%d", i)
		}
	}
	words[255] = "<image>"
	wordLevelTokenizer(t, dir, words)
	r, err := recipes.Load("counting-finetune-hf-tiny", []string{"model.pretrained=" + dir, "model.hf_config=",
		"model.image_size=16", "model.patch_size=4", "train.steps=40", "train.lr=3e-3", "train.warmup_steps=0",
		"train.eval_every=0", "checkpoint.every=0", "eval.examples=16", "eval.batch_size=16", "train.batch_size=16"})
	require.NoError(t, err)
	vqa, err := NewVQA(r)
	require.NoError(t, err)
	x, _, mask, err := vqa.encode("how many red circles ?", "3", r.Model.MaxTextLen)
	require.NoError(t, err)
	require.Equal(t, int32(text.BOSID), x[0])
	require.Equal(t, int32(data.SceneVocab().ID("how")), x[1])
	require.Equal(t, float32(1), mask[5], "the last prompt token predicts the answer")
	require.Equal(t, "3", vqa.word(data.SceneVocab().ID("3")))

	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	var log strings.Builder
	out := t.TempDir()
	res, err := train.Run(t.Context(), vqa, train.Options{Recipe: r, OutDir: out, Backend: backend, Log: &log})
	require.NoError(t, err)
	require.Contains(t, log.String(), "initialised 59 variables from "+dir)
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	require.NoError(t, err)
	first := rows[0]["loss"].(float64)
	t.Logf("loss %.3f → %.3f", first, res.FinalLoss)
	require.Less(t, res.FinalLoss, 0.7*first)
}
