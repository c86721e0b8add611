package analysis

import (
	"io"
	"math"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// subject trains the tiny VLM briefly on counting (so clean and corrupted answers differ) and
// opens its checkpoint.
func subject(t *testing.T) *Subject {
	t.Helper()
	if testing.Short() {
		t.Skip("trains a tiny model for a few seconds")
	}
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	t.Cleanup(backend.Finalize)
	r, err := recipes.Load("counting-pretrain-tiny", []string{"train.steps=150", "train.eval_every=0",
		"checkpoint.every=0", "data.counting_fraction=1", "eval.examples=16", "eval.sets=[counting]"})
	require.NoError(t, err)
	task, err := tasks.New(r)
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = train.Run(t.Context(), task, train.Options{Recipe: r, RecipeYAML: mustYAML(t, r), OutDir: dir, Backend: backend, Log: io.Discard})
	require.NoError(t, err)
	s, err := Open(backend, dir, func(w string) { t.Log(w) })
	require.NoError(t, err)
	return s
}

func mustYAML(t *testing.T, r *recipes.Recipe) []byte {
	y, err := r.YAML()
	require.NoError(t, err)
	return y
}

func TestPatching(t *testing.T) {
	s := subject(t)
	P := s.Cfg.Vision.NumPatches()

	// Identical clean and corrupted images: patching can restore nothing, exactly.
	same, err := s.Patching(PatchingConfig{Pairs: 16, Seed: 3, Identical: true})
	require.NoError(t, err)
	require.Equal(t, same.CleanLD, same.CorruptLD)
	for _, c := range same.Top {
		require.Zero(t, c.DeltaLD, "identical inputs: %s #%d", c.Site, c.Position)
	}

	r, err := s.Patching(PatchingConfig{Pairs: 32, Seed: 3})
	require.NoError(t, err)
	require.Greater(t, math.Abs(r.CleanLD-r.CorruptLD), 0.05, "a trained model must tell n from n−1 objects")
	require.Len(t, r.Restoration, len(PatchSites(s.Cfg)))
	for i, site := range r.Sites {
		require.Len(t, r.Restoration[i], P+1)
		if !isDecoder(site) {
			// Every image token at a ViT block or the decoder input carries the whole image:
			// patching all of them restores the clean run exactly.
			require.InDelta(t, 1.0, r.Restoration[i][P], 1e-4, site)
		}
	}
	// The last decoder block's image tokens are read by nothing after it.
	last := r.Restoration[len(r.Sites)-1]
	for pos, v := range last {
		require.InDelta(t, 0, v, 1e-6, "last decoder block, position %d", pos)
	}
}

func TestHeadAblation(t *testing.T) {
	s := subject(t)
	hb, err := s.countingBatch(24, 5)
	require.NoError(t, err)
	plain, err := s.exec(func(scope *model.Scope, in []*Node) []*Node {
		return []*Node{models.VLM(scope, s.Cfg, in[0], in[1])}
	})
	require.NoError(t, err)
	defer plain.Finalize()
	want, err := run(plain, hb.p.Images, hb.p.Tokens)
	require.NoError(t, err)
	ablate, err := s.ablationExec(hb)
	require.NoError(t, err)
	defer ablate.Finalize()
	L, H := s.Cfg.TextLayers, s.Cfg.TextHeads
	logits := func(removed ...int) []float32 {
		mask := make([]float32, L*H)
		for i := range mask {
			mask[i] = 1
		}
		for _, r := range removed {
			mask[r] = 0
		}
		out, err := run(ablate, hb.p.Images, hb.p.Tokens, hb.p.Targets, hb.p.Mask, tensors.FromFlatDataAndDimensions(mask, L, H))
		require.NoError(t, err)
		return flat32(out[1])
	}
	require.Equal(t, flat32(want[0]), logits(), "no head removed: outputs must be unchanged")
	for h := range L * H {
		require.NotEqual(t, flat32(want[0]), logits(h), "removing head %d must change the outputs", h)
	}

	res, err := s.Heads(HeadsConfig{Examples: 32, Seed: 5, TopK: 2, RandomDraws: 3})
	require.NoError(t, err)
	require.Len(t, res.Scores, L*H)
	for i := 1; i < len(res.Scores); i++ {
		require.GreaterOrEqual(t, res.Scores[i-1].Score, res.Scores[i].Score)
	}
	require.Equal(t, []string{res.Scores[0].Name, res.Scores[1].Name}, res.TopK.Heads)
	require.Len(t, res.Random, 3)
}
