package tasks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// TestVideoQAPretrainedDirectory: stts-videoqa-hf's path with a Hugging Face directory (the
// LLaVA SigLIP + Qwen2 fixture, vision_feature_layer −2, with a word-level tokenizer over reel's
// video-QA words): every tensor of the checkpoint finds its variable (the tower's unused last
// layer and post_layernorm included), questions are encoded with the directory's tokenizer, the
// STTS scorer is new, and the fine-tune's loss falls.
func TestVideoQAPretrainedDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	dir := t.TempDir()
	src := filepath.Join("..", "hf", "testdata", "llava-siglip-qwen2")
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	vocab := data.VideoQAVocab()
	words := make([]string, 256)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
		if i < vocab.Size() {
			words[i] = vocab.Word(i)
		}
	}
	wordLevelTokenizer(t, dir, words)
	r, err := recipes.Load("stts-videoqa-hf-tiny", []string{"model.pretrained=" + dir, "model.hf_config=",
		"model.image_size=16", "model.patch_size=4", "model.group=2", "model.frames=4", "model.score_after=0",
		"data.motion_frames=2", "train.steps=30", "train.lr=3e-3", "train.warmup_steps=0", "train.batch_size=8",
		"train.eval_every=0", "checkpoint.every=0", "eval.examples=8", "eval.batch_size=8"})
	require.NoError(t, err)
	task, err := NewVideoQA(r)
	require.NoError(t, err)
	x, _, _, err := task.encode("which shape moved ?", "circle", r.Model.MaxTextLen)
	require.NoError(t, err)
	require.Equal(t, int32(text.BOSID), x[0])
	require.Equal(t, int32(vocab.ID("which")), x[1])

	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	var log strings.Builder
	out := t.TempDir()
	res, err := train.Run(t.Context(), task, train.Options{Recipe: r, OutDir: out, Backend: backend, Log: &log})
	require.NoError(t, err, log.String())
	require.Regexp(t, `initialised \d+ variables from `+dir, log.String())
	require.Equal(t, 0.5, res.Eval["videoqa/kept"], "8 of the 16 patch groups")
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	require.NoError(t, err)
	first := rows[0]["loss"].(float64)
	t.Logf("loss %.3f → %.3f", first, res.FinalLoss)
	require.Less(t, res.FinalLoss, 0.7*first)

	// A directory's model that cannot take STTS is one error naming the field.
	r, err = recipes.Load("stts-videoqa-hf-tiny", []string{"model.pretrained=" + dir, "model.hf_config=",
		"model.image_size=16", "model.patch_size=4", "model.group=2", "model.frames=4", "model.score_after=1", "data.motion_frames=2"})
	require.NoError(t, err)
	_, err = NewVideoQA(r)
	require.ErrorContains(t, err, "model.score_after: 1 must be in [0, 1): the biased layer must come before vision_feature_layer -2")
}
