package tasks

import (
	"math"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
)

// requireFlowParity checks a LeRobot flow policy against its PyTorch twin's parity fixture
// (testdata/lerobot_*/parity.safetensors): with store holding the directory's weights, net's
// training loss for the fixture's noise and flow times, and its sampled, unnormalised chunk for
// the fixture's starting noise, equal the twin's within 1e-4. withState feeds the fixture's
// state as a network input (pi0, SmolVLA; pi0.5 has it in the prompt instead).
func requireFlowParity(t *testing.T, net models.Policy, store *model.Store, want map[string]*tensors.Tensor, withState bool) {
	t.Helper()
	img := want["images"]
	d := img.Shape().Dimensions
	images := tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](img), d[0], 1, d[1], d[2], d[3])
	tf := tensors.MustCopyFlatData[float32](want["tokens"])
	ti := make([]int32, len(tf))
	for i, v := range tf {
		ti[i] = int32(v)
	}
	tokens := tensors.FromFlatDataAndDimensions(ti, want["tokens"].Shape().Dimensions...)
	inputs := []any{images, tokens}
	if withState {
		inputs = append(inputs, want["state"])
	}
	// batch binds the inputs in that order; it returns the batch and the inputs left.
	batch := func(in []*Node) (models.PolicyBatch, []*Node) {
		b := models.PolicyBatch{Images: in[0], Tokens: in[1]}
		if withState {
			b.State = in[2]
			return b, in[3:]
		}
		return b, in[2:]
	}
	backend := goBackend(t)
	lossExec, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		b, rest := batch(in)
		b.Actions, b.Noise = rest[0], map[string]*Node{"noise": rest[1], "time": rest[2]}
		return []*Node{net.Loss(scope, b)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer lossExec.Finalize()
	sampleExec, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		b, rest := batch(in)
		b.Noise = map[string]*Node{"noise": rest[0]}
		return []*Node{net.Sample(scope, b)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer sampleExec.Finalize()
	a, err := lossExec.Exec(slices.Concat(inputs, []any{want["actions"], want["noise"], want["time"]})...)
	require.NoError(t, err)
	b, err := sampleExec.Exec(slices.Concat(inputs, []any{want["sample_noise"]})...)
	require.NoError(t, err)
	loss := tensors.MustCopyFlatData[float32](a[0])[0]
	wantLoss := tensors.MustCopyFlatData[float32](want["loss"])[0]
	t.Logf("loss reel %.7f twin %.7f", loss, wantLoss)
	require.InDelta(t, wantLoss, loss, 1e-4)
	got, exp := tensors.MustCopyFlatData[float32](b[0]), tensors.MustCopyFlatData[float32](want["sampled_actions"])
	require.Equal(t, want["sampled_actions"].Shape().Dimensions, b[0].Shape().Dimensions)
	var worst float64
	for i := range exp {
		worst = math.Max(worst, math.Abs(float64(got[i]-exp[i])))
	}
	t.Logf("sampled actions: max |reel − twin| = %.2g over %d values", worst, len(exp))
	require.Less(t, worst, 1e-4)
}
