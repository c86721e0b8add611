package tasks

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// openpi's augmentation strengths (src/openpi/models/model.py preprocess_observation).
var augmentOn = []string{"data.augment.crop=0.05", "data.augment.rotate=5", "data.augment.brightness=0.3",
	"data.augment.contrast=0.4", "data.augment.saturation=0.5"}

func tinyVLA(t *testing.T, sets ...string) *VLA {
	t.Helper()
	r, err := recipes.Load("molmobot-tiny", append([]string{"train.batch_size=4", "eval.examples=4", "eval.batch_size=4",
		"data.wrist=true"}, sets...))
	require.NoError(t, err)
	task, err := New(r)
	require.NoError(t, err)
	t.Cleanup(task.(*VLA).Close)
	return task.(*VLA)
}

func flat(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	v, ok := x.Value().([][][][][]float32)
	require.True(t, ok, "images are [B, C, S, S, 3] float32")
	var out []float32
	for _, a := range v {
		for _, b := range a {
			for _, c := range b {
				for _, d := range c {
					out = append(out, d...)
				}
			}
		}
	}
	return out
}

// Augmentation changes the training images only: the same micro-batch twice (two tasks, as a
// resumed run rebuilds it) is identical; against no augmentation only the images differ (the
// scene camera geometrically and in colour, the wrist camera in colour only), and evaluation
// batches are exactly those without augmentation.
func TestAugmentTrainingOnly(t *testing.T) {
	on1, on2, off := tinyVLA(t, augmentOn...), tinyVLA(t, augmentOn...), tinyVLA(t)
	require.Len(t, on1.spec.Cameras, 2)
	b1, err := on1.MicroBatch(3)
	require.NoError(t, err)
	b2, err := on2.MicroBatch(3)
	require.NoError(t, err)
	b0, err := off.MicroBatch(3)
	require.NoError(t, err)
	require.Equal(t, len(b0), len(b1))
	for k := range b1 {
		require.Truef(t, b1[k].Equal(b2[k]), "input %d differs between two builds of micro-batch 3", k)
		if k > 0 {
			require.Truef(t, b1[k].Equal(b0[k]), "input %d (not the images) changed with augmentation", k)
		}
	}
	require.False(t, b1[0].Equal(b0[0]), "augmentation left the images alone")
	other, err := on1.MicroBatch(4)
	require.NoError(t, err)
	require.False(t, other[0].Equal(b1[0]))

	// Per camera: the pixels that differ.
	a, z := flat(t, b1[0]), flat(t, b0[0])
	require.Equal(t, len(a), len(z))
	s := on1.r.Model.ImageSize
	px := s * s * 3
	for cam := range 2 {
		changed := 0
		for e := range 4 {
			o := (e*2 + cam) * px
			for i := range px {
				if a[o+i] != z[o+i] {
					changed++
				}
			}
		}
		require.NotZerof(t, changed, "camera %s not augmented", on1.spec.Cameras[cam].Name)
	}

	for _, name := range on1.EvalSets() {
		e1, err := on1.EvalSet(name)
		require.NoError(t, err)
		e0, err := off.EvalSet(name)
		require.NoError(t, err)
		require.Equal(t, e0.NumBatches(), e1.NumBatches())
		for i := range e1.NumBatches() {
			x1, x0 := e1.Batch(i), e0.Batch(i)
			for k := range x1 {
				require.Truef(t, x1[k].Equal(x0[k]), "eval set %s batch %d input %d differs with augmentation on", name, i, k)
			}
		}
	}
}

// A run stopped and resumed trains on the same augmented images as one that runs straight
// through: the final weights are identical.
func TestAugmentResumeExact(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny policy twice")
	}
	r, err := recipes.Load("molmobot-tiny", append([]string{"train.steps=4", "train.batch_size=2", "eval.examples=2",
		"eval.batch_size=2", "train.eval_every=0", "checkpoint.every=2", "model.vision_layers=1", "model.text_layers=1",
		"train.warmup_steps=1"}, augmentOn...))
	require.NoError(t, err)
	y, err := yaml.Marshal(r)
	require.NoError(t, err)
	run := func(dir string, stopAfter int, resume bool) string {
		task, err := New(r)
		require.NoError(t, err)
		defer task.(*VLA).Close()
		res, err := train.Run(context.Background(), task, train.Options{Recipe: r, RecipeYAML: y, OutDir: dir,
			Backend: goBackend(t), Log: io.Discard, StopAfter: stopAfter, Resume: resume})
		require.NoError(t, err)
		return res.Checkpoint
	}
	root := t.TempDir()
	straight := run(filepath.Join(root, "a"), 0, false)
	run(filepath.Join(root, "b"), 2, false)
	resumed := run(filepath.Join(root, "b"), 0, true)
	va, sa, err := checkpoints.LoadVariables(straight)
	require.NoError(t, err)
	vb, sb, err := checkpoints.LoadVariables(resumed)
	require.NoError(t, err)
	require.Equal(t, int64(4), sa.Step)
	require.Equal(t, sa.Step, sb.Step)
	require.Equal(t, len(va), len(vb))
	for k, x := range va {
		if k == "/#rngState" {
			// GoMLX's in-graph random state: reel draws every random number on the host (VLA's doc),
			// and the state is not restored bit-exactly on resume with or without augmentation.
			continue
		}
		require.Truef(t, x.Equal(vb[k]), "variable %s differs between the straight and the resumed run", k)
	}
}
