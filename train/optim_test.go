package train

import (
	"math"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/recipes"
)

func TestLearningRateSchedule(t *testing.T) {
	c := recipes.TrainConfig{LR: 1e-3, Steps: 110, WarmupSteps: 10, Schedule: "cosine", MinLRRatio: 0.1}
	require.InDelta(t, 1e-4, LearningRate(c, 0), 1e-12)  // warmup: (0+1)/10 of the peak
	require.InDelta(t, 1e-3, LearningRate(c, 9), 1e-12)  // end of warmup
	require.InDelta(t, 1e-3, LearningRate(c, 10), 1e-12) // cosine starts at the peak
	mid := 1e-4 + (1e-3-1e-4)*0.5*(1+math.Cos(math.Pi*0.5))
	require.InDelta(t, mid, LearningRate(c, 60), 1e-12)
	require.InDelta(t, 1e-4, LearningRate(c, 110), 1e-12) // ends at min_lr_ratio·peak
	c.Schedule = "constant"
	require.InDelta(t, 1e-3, LearningRate(c, 100), 1e-12)
}

// linTask is a one-matrix, one-bias task whose loss Σ(W⊙C) + Σ(b⊙c) has constant gradients.
type linTask struct{}

func (linTask) MicroBatch(int64) ([]*tensors.Tensor, error) { return nil, nil }
func (linTask) MicroBatchSize() int                         { return 1 }
func (linTask) Loss(scope *model.Scope, in []*Node) *Node {
	g := in[0].Graph()
	w := scope.VariableWithValue("w", [][]float32{{1, -2}, {3, 0.5}}).NodeValue(g)
	b := scope.VariableWithValue("b", []float32{1, -1}).NodeValue(g)
	return Add(ReduceAllSum(Mul(w, Const(w.Graph(), [][]float32{{0.5, -1}, {2, 0}}))),
		ReduceAllSum(Mul(b, Const(b.Graph(), []float32{-3, 0}))))
}
func (linTask) EvalSets() []string                      { return nil }
func (linTask) EvalSet(string) (EvalData, error)        { return nil, nil }
func (linTask) EvalGraph(*model.Scope, []*Node) []*Node { return nil }

func TestAdamWDecaysMatricesOnly(t *testing.T) {
	// One AdamW step from zero moments: m̂ = g, v̂ = g², so θ ← θ·(1 − lr·λ) − lr·g/(|g| + ε) for
	// matrices and θ ← θ − lr·g/(|g| + ε) for vectors (biases and norms are not decayed).
	backend, err := gobackend.New("")
	require.NoError(t, err)
	c := recipes.Defaults().Train
	c.WeightDecay, c.GradClip, c.GradAccum = 0.1, 0, 1
	store := model.NewStore()
	step := stepGraph(linTask{}, c, newOptimizer(c), false)
	e, err := model.NewExecCanonical(backend, store, step, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	const lr = 0.01
	_, err = e.Exec(tensors.FromValue(float32(lr)), tensors.FromValue(float32(0))) // lr, unused input
	require.NoError(t, err)
	adam := func(th, gr float64, decay bool) float64 {
		if decay {
			th *= 1 - lr*c.WeightDecay
		}
		if gr == 0 {
			return th
		}
		return th - lr*gr/(math.Abs(gr)+1e-8)
	}
	w := store.GetVariable("/w").MustValue().Value().([][]float32)
	b := store.GetVariable("/b").MustValue().Value().([]float32)
	want := [][]float64{{adam(1, 0.5, true), adam(-2, -1, true)}, {adam(3, 2, true), adam(0.5, 0, true)}}
	for i := range want {
		for j := range want[i] {
			require.InDelta(t, want[i][j], w[i][j], 1e-6, "w[%d][%d]", i, j)
		}
	}
	require.InDelta(t, adam(1, -3, false), b[0], 1e-6, "b[0]")
	require.InDelta(t, adam(-1, 0, false), b[1], 1e-6, "b[1] has zero gradient and must not decay")
}
