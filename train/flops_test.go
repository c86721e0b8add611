package train_test

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/bench"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// GraphFLOPs counts 2·|out|·|contracted| for every matrix product, whatever its axes.
func TestGraphFLOPsCountsProducts(t *testing.T) {
	backend, err := gobackend.New("")
	require.NoError(t, err)
	g := NewGraph(backend, "flops")
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 4, 8, 16)) // [B, T, D]
	w := Parameter(g, "w", shapes.Make(dtypes.Float32, 16, 32))   // [D, E]
	y := Einsum("btd,de->bte", x, w)                              // 2·(4·8·32)·16
	s := Einsum("bqd,bkd->bqk", y, y)                             // 2·(4·8·8)·32
	img := Parameter(g, "img", shapes.Make(dtypes.Float32, 2, 10, 10, 3))
	k := Parameter(g, "k", shapes.Make(dtypes.Float32, 3, 3, 3, 5))
	c := Convolve(img, k).NoPadding().Done() // [2, 8, 8, 5]: 2·(2·8·8·5)·(3·3·3)
	out := Add(ReduceAllSum(s), ReduceAllSum(c))
	_ = Einsum("btd,bte->de", x, y) // not needed by the output: not counted
	want := 2.0*4*8*32*16 + 2.0*4*8*8*32 + 2.0*2*8*8*5*27
	require.Equal(t, want, train.GraphFLOPs(out))
}

// A training step's counted FLOPs are those of the forward pass plus its two gradients (≈3×), as
// worked out from the ViT's shapes: per token and block, 24·D² for the projections and MLP and
// 4·T·D for attention; the patch embedding needs no input gradient (2×).
func TestStepFLOPsOfViTMatchAnalyticCount(t *testing.T) {
	backend, err := gobackend.New("")
	require.NoError(t, err)
	cfg := models.ViTConfig{ImageSize: 32, PatchSize: 8, Dim: 48, Layers: 2, Heads: 2, MLPRatio: 4}
	const batch, classes = 4, 10
	task := bench.NewViTClassifier(cfg, batch, classes)
	r := recipes.Defaults()
	r.Train.BatchSize, r.Train.GradAccum = batch, 1
	st, err := train.StepTime(task, &r, backend, 1, 1)
	require.NoError(t, err)
	T, D, P := 16.0, 48.0, 8.0*8*3
	blocks := float64(cfg.Layers) * T * (24*D*D + 4*T*D)
	embed, head := T*2*P*D, 2*D*classes
	want := batch * (3*blocks + 2*embed + 3*head)
	require.InEpsilon(t, want, st.FLOPs, 0.02, "counted %.4g, analytic %.4g", st.FLOPs, want)
	require.Greater(t, st.Peak.FLOPS, 1e8, "the Go backend's matmul peak is measured: %s", st.Peak.Source)
	require.Greater(t, st.MFU(), 0.0)
	require.Zero(t, st.HalfFLOPs)

	// Under train.precision: bf16 the same products (and so the same FLOPs) run in bf16.
	r.Train.Precision = "bf16"
	st16, err := train.StepTime(task, &r, backend, 1, 1)
	require.NoError(t, err)
	require.InEpsilon(t, st.FLOPs, st16.FLOPs, 0.02)
	require.InEpsilon(t, st16.FLOPs, st16.HalfFLOPs, 0.01, "all but the classifier head's products in bf16")
}

// Known GPUs get their data-sheet peak for the run's precision; the more specific name wins.
func TestGPUPeakTable(t *testing.T) {
	p, ok := train.GPUPeak("NVIDIA H200", "bf16")
	require.True(t, ok)
	require.Equal(t, 989e12, p.FLOPS)
	p, _ = train.GPUPeak("NVIDIA H100 PCIe", "f32")
	require.Equal(t, 378e12, p.FLOPS)
	p, _ = train.GPUPeak("NVIDIA L40S", "bf16")
	require.Equal(t, 362e12, p.FLOPS)
	_, ok = train.GPUPeak("device#0", "f32")
	require.False(t, ok)
}
