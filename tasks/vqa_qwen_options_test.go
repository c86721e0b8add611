package tasks

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// TestQwenVLTrainOptions: LoRA, freezing, remat and bf16 on the tiny Qwen2.5-VL of
// counting-finetune-qwen2.5vl-tiny, each trained a few steps through train.Run.
//   - LoRA (train.lora.targets by transformers module names, model/language_model/layers/*/…):
//     every q/k/v/o and MLP projection of the decoder gets an adapter that moves, while the
//     adapted base weights keep their initial values and have no optimizer state;
//   - train.freeze model.visual.*: every tower variable keeps its initial value and has no
//     optimizer state, the token embeddings (not frozen) move;
//   - train.remat: the same losses as without (recomputation changes no value);
//   - train.precision bf16: the first loss within bf16's precision of f32's and not equal to it.
func TestQwenVLTrainOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model five times")
	}
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	run := func(sets ...string) (losses []float64, vars map[string]*tensors.Tensor) {
		t.Helper()
		r, err := recipes.Load("counting-finetune-qwen2.5vl-tiny", append([]string{"train.steps=3", "train.warmup_steps=0",
			"train.batch_size=4", "train.log_every=1", "train.eval_every=0", "checkpoint.every=0", "eval.examples=4",
			"eval.batch_size=4"}, sets...))
		require.NoError(t, err)
		task, err := NewVQA(r)
		require.NoError(t, err)
		out := t.TempDir()
		var log strings.Builder
		y, err := r.YAML()
		require.NoError(t, err)
		_, err = train.Run(t.Context(), task, train.Options{Recipe: r, RecipeYAML: y, OutDir: out, Backend: backend, Log: &log})
		require.NoError(t, err, log.String())
		rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
		require.NoError(t, err)
		for _, row := range rows {
			if l, ok := row["loss"].(float64); ok {
				losses = append(losses, l)
			}
		}
		ck, err := checkpoints.Resolve(out, func(string) {})
		require.NoError(t, err)
		vars, _, err = checkpoints.LoadVariables(ck)
		require.NoError(t, err)
		return losses, vars
	}
	flat := func(x *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](x) }
	_, init := run("train.lr=0")
	base, tuned := run()
	require.Len(t, base, 3)

	t.Run("lora", func(t *testing.T) {
		adapters := 0
		for name, v := range tuned {
			if !strings.HasPrefix(name, "/model/") || !strings.Contains(name, "/lora/") {
				continue
			}
			require.Regexp(t, `^/model/language_model/layers/[01]/(self_attn/[qkvo]_proj|mlp/(gate|up|down)_proj)/lora/[ab]$`, name)
			adapters++
			if strings.HasSuffix(name, "/b") { // B starts at zero; A's update is scaled by it
				require.NotEqual(t, flat(init[name]), flat(v), "%s moves", name)
			}
		}
		require.Equal(t, 2*7*2, adapters, "A and B for 7 projections in 2 layers")
		for _, name := range []string{"/model/language_model/layers/0/self_attn/q_proj/weights", "/model/language_model/layers/1/mlp/down_proj/weights"} {
			require.Contains(t, tuned, name)
			require.Equal(t, flat(init[name]), flat(tuned[name]), "%s: the adapted base weight is frozen", name)
			require.NotContains(t, tuned, "/AdamOptimizer"+name+"_1st_moment", "no optimizer state for %s", name)
		}
	})
	t.Run("freeze", func(t *testing.T) {
		n := 0
		for name, v := range tuned {
			if strings.HasPrefix(name, "/model/visual/") {
				n++
				require.Equal(t, flat(init[name]), flat(v), name)
			}
			require.False(t, strings.HasPrefix(name, "/AdamOptimizer/model/visual/"), "the optimizer holds no state for the frozen tower: %s", name)
		}
		require.Equal(t, 30, n)
		emb := "/model/language_model/embed_tokens/weight"
		require.Contains(t, tuned, emb)
		require.NotEqual(t, flat(init[emb]), flat(tuned[emb]), "the embeddings train")
	})
	t.Run("remat", func(t *testing.T) {
		losses, _ := run("train.remat=true")
		require.InDeltaSlice(t, base, losses, 1e-5*base[0])
	})
	t.Run("bf16", func(t *testing.T) {
		losses, _ := run("train.precision=bf16")
		require.NotEqual(t, base[0], losses[0], "bf16 products change the loss")
		require.Less(t, math.Abs(losses[0]-base[0])/base[0], 0.02)
	})
}
