package tasks

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// qwenSTTSRun builds stts-videoqa-qwen2.5vl-tiny's task with the given pruning and runs, with one
// fresh random initialisation, the task's STTS forward pass and, in the same graph, the unpruned
// Qwen2.5-VL (models.QwenVL: transformers' cu_seqlens and window permutation, verified against the
// PyTorch twin in package hf) on the whole prompt: the text logits of both and the kept groups.
func qwenSTTSRun(t *testing.T, method string) (task *VideoQA, pruned, full []float32, kept []int32, k int) {
	t.Helper()
	r, err := recipes.Load("stts-videoqa-qwen2.5vl-tiny", []string{"pruning.method=" + method})
	require.NoError(t, err)
	task, err = NewVideoQA(r)
	require.NoError(t, err)
	q := task.pre.qwen
	const b, l = 2, 6
	m := r.Model
	rng := rand.New(rand.NewPCG(5, 6))
	video := make([]float32, b*m.Frames*m.ImageSize*m.ImageSize*3)
	for i := range video {
		video[i] = rng.Float32()
	}
	toks := make([]int32, b*l)
	for i := range toks {
		toks[i] = int32(rng.IntN(90))
	}
	rank := make([]float32, b*m.Frames/2*9)
	for i := range rank {
		rank[i] = rng.Float32()
	}
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(3))
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, video, tokens, rank *Node) []*Node {
		sel := task.Selector()
		sel.RandomRank = rank
		px := QwenVideoPatchRows(task.pre.normalize(video), q.cfg.Vision)
		logits, kept, _ := models.QwenVLSTTS(scope, q.cfg, sel.TokenSelector(), models.QwenVLSTTSInputs{Patches: px, Grid: q.grid,
			ScoreAfter: m.ScoreAfter, Head: q.head, After: q.after, Tokens: tokens, Positions: q.positions(l)})
		return []*Node{logits, kept}
	})
	require.NoError(t, err)
	defer exec.Finalize()
	// The unpruned model on the whole layout, its videos' patches one after another (the same
	// store: the same weights).
	ref, err := model.NewExec(backend, store, func(scope *model.Scope, video, tokens *Node) *Node {
		g := video.Graph()
		px := QwenVideoPatchRows(task.pre.normalize(video), q.cfg.Vision)
		n := len(q.prefix) + l
		var flat []int32
		for _, axis := range q.positions(l) {
			flat = append(flat, int32s(axis)...)
		}
		out := models.QwenVL(scope, q.cfg, models.QwenVLInputs{
			IDs:       Concatenate([]*Node{BroadcastToDims(Const(g, [][]int32{int32s(q.prefix)}), b, len(q.prefix)), tokens}, 1),
			Positions: BroadcastToDims(Reshape(Const(g, flat), 3, 1, n), 3, b, n),
			Videos:    Reshape(px, b*q.grid.Patches(), q.cfg.Vision.PatchDim()), VideoGrids: []models.Grid{q.grid, q.grid}})
		return Slice(out, AxisRange(), AxisRange(n-l, n))
	})
	require.NoError(t, err)
	defer ref.Finalize()
	videoT := tensors.FromFlatDataAndDimensions(video, b, m.Frames, m.ImageSize, m.ImageSize, 3)
	tokT := tensors.FromFlatDataAndDimensions(toks, b, l)
	res, err := exec.Exec(videoT, tokT, tensors.FromFlatDataAndDimensions(rank, b, len(rank)/b))
	require.NoError(t, err)
	want, err := ref.Exec(videoT, tokT)
	require.NoError(t, err)
	res = append(res[:1], want[0], res[1])
	return task, tensors.MustCopyFlatData[float32](res[0]), tensors.MustCopyFlatData[float32](res[1]),
		tensors.MustCopyFlatData[int32](res[2]), res[2].Shape().Dimensions[1]
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TestQwenSTTSKeepAll: with every merge group kept (pruning.method none), the STTS path — the
// tower on masks over per-group rotary positions and segments, the kept tokens' M-RoPE positions
// gathered from the unpruned layout — gives the unpruned Qwen2.5-VL's logits.
func TestQwenSTTSKeepAll(t *testing.T) {
	_, pruned, full, kept, k := qwenSTTSRun(t, "none")
	require.Equal(t, 36, k, "4 temporal patches of 3×3 merge groups")
	for i, g := range kept {
		require.Equal(t, int32(i%k), g)
	}
	worst := 0.0
	for i := range full {
		worst = math.Max(worst, math.Abs(float64(pruned[i]-full[i])))
	}
	t.Logf("keep-all vs unpruned logits: max abs diff %.2g", worst)
	require.Less(t, worst, 1e-5)
}

// TestQwenSTTSKeptShare: pruning keeps exactly ⌈keep · 36⌉ = 18 merge groups per video, the first
// temporal patch's 9 among them, in ascending (processor) order, and the eval set's kept share is
// exactly 0.5; the pruned logits differ from the unpruned ones.
func TestQwenSTTSKeptShare(t *testing.T) {
	for _, method := range []string{"random", "stts"} {
		t.Run(method, func(t *testing.T) {
			task, pruned, full, kept, k := qwenSTTSRun(t, method)
			require.Equal(t, 18, k)
			require.Equal(t, 18, task.Selector().Kept())
			for v := range 2 {
				row := kept[v*k : (v+1)*k]
				for i := range 9 {
					require.Equal(t, int32(i), row[i], "video %d: the first temporal patch is kept", v)
				}
				for i := 1; i < k; i++ {
					require.Less(t, row[i-1], row[i], "video %d: ascending", v)
				}
				require.Less(t, row[k-1], int32(36))
			}
			require.NotEqual(t, full, pruned)
		})
	}
	r, err := recipes.Load("stts-videoqa-qwen2.5vl-tiny", []string{"eval.examples=4", "eval.batch_size=4"})
	require.NoError(t, err)
	task, err := NewVideoQA(r)
	require.NoError(t, err)
	e, err := task.EvalSet("videoqa")
	require.NoError(t, err)
	require.Equal(t, 0.5, e.(*videoQAEval).kept)
}
