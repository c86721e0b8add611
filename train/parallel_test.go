package train

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/dtensor"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// regTask is a small MLP regression with graph noise (the Store's RNG), so a step exercises
// data, initialisation, randomness and the optimizer.
type regTask struct{ micro int }

func (r regTask) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	x, y := make([]float32, r.micro*6), make([]float32, r.micro)
	for j := range x {
		x[j] = float32(rng.NormFloat64())
	}
	for j := range y {
		y[j] = x[6*j] - 0.5*x[6*j+1]
	}
	return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, r.micro, 6), tensors.FromFlatDataAndDimensions(y, r.micro)}, nil
}
func (r regTask) MicroBatchSize() int { return r.micro }
func (regTask) Loss(scope *model.Scope, in []*Node) *Node {
	scope = models.WithInit(scope)
	h := models.Linear(scope.In("l1"), in[0], 16, true)
	h = Add(h, MulScalar(scope.Store().RandomNormal(in[0].Graph(), h.Shape()), 0.01))
	p := models.Linear(scope.In("l2"), Tanh(h), 1, true)
	d := Sub(Reshape(p, in[1].Shape().Dimensions...), in[1])
	return ReduceAllMean(Mul(d, d))
}
func (regTask) EvalSets() []string                      { return nil }
func (regTask) EvalSet(string) (EvalData, error)        { return nil, nil }
func (regTask) EvalGraph(*model.Scope, []*Node) []*Node { return nil }

// On one device the data-parallel step path (inputs as distributed tensors over a 1-device mesh,
// outputs collected per device) gives exactly the numbers of the plain single-device path.
func TestDataParallelOneDeviceEqualsPlain(t *testing.T) {
	backend, err := gobackend.New("")
	require.NoError(t, err)
	task := regTask{micro: 8}
	r := recipes.Defaults()
	r.Train.BatchSize, r.Train.GradAccum = 8, 1
	run := func(parallel bool) (losses []float64, vars map[string][]float32) {
		tr := &Trainer{opts: Options{Recipe: &r, Backend: backend}, task: task, cfg: r.Train}
		tr.store, err = NewStore(r.Train.Seed)
		require.NoError(t, err)
		require.NoError(t, tr.buildExecs())
		require.NoError(t, tr.warmUp())
		for step := range int64(6) {
			batch, err := task.MicroBatch(step)
			require.NoError(t, err)
			in := append([]*tensors.Tensor{tensors.FromScalar(float32(1e-2))}, batch...)
			var out []*tensors.Tensor
			if parallel {
				out, _, err = tr.dp.call(tr.applyExec, in)
			} else {
				out, _, err = callFLOPs(tr.applyExec, in)
			}
			require.NoError(t, err)
			losses = append(losses, scalar(out[0]))
			finalize(out)
		}
		vars = map[string][]float32{}
		for v := range tr.store.IterVariables() {
			if v.Trainable {
				vars[v.Path()], err = tensors.CopyFlatData[float32](v.MustValue())
				require.NoError(t, err)
			}
		}
		return losses, vars
	}
	plainLoss, plainVars := run(false)
	dpLoss, dpVars := run(true)
	require.Equal(t, plainLoss, dpLoss)
	require.Equal(t, plainVars, dpVars)
	require.Less(t, plainLoss[5], plainLoss[0], "the loss should fall")
}

// With more devices than one, the micro-batch inputs (and only they) are split along their
// leading axis, one contiguous slice per device, and merging the shards gives the batch back.
func TestDataParallelShardsTheBatchAxis(t *testing.T) {
	mesh, err := distributed.NewDeviceMesh([]int{4}, []string{meshAxis})
	require.NoError(t, err)
	sharded, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{meshAxis})
	require.NoError(t, err)
	dp := &dataParallel{devices: 4, micro: 8, mesh: mesh, replicated: distributed.NewReplicatedShardingSpec(mesh), sharded: sharded}
	x := make([]float32, 8*3)
	for i := range x {
		x[i] = float32(i)
	}
	batch := tensors.FromFlatDataAndDimensions(x, 8, 3)
	lr := tensors.FromScalar(float32(0.1))
	idx := tensors.FromFlatDataAndDimensions([]int32{0, 1, 2}, 3) // not the batch axis
	specs := dp.specs([]*tensors.Tensor{lr, batch, idx})
	require.Equal(t, []*distributed.ShardingSpec{dp.replicated, dp.sharded, dp.replicated}, specs)
	d, err := dtensor.ShardTensor(specs[1], batch)
	require.NoError(t, err)
	require.Len(t, d.Shards(), 4)
	first, err := tensors.CopyFlatData[float32](d.Shards()[1])
	require.NoError(t, err)
	require.Equal(t, x[6:12], first, "device 1 holds examples 2 and 3")
	merged, err := d.Merge()
	require.NoError(t, err)
	back, err := tensors.CopyFlatData[float32](merged)
	require.NoError(t, err)
	require.Equal(t, x, back)
}

func TestDataParallelChecksDevices(t *testing.T) {
	backend, err := gobackend.New("")
	require.NoError(t, err)
	_, err = newDataParallel(backend, 2, 8)
	require.ErrorContains(t, err, "train.devices: 2, but backend go has 1 device(s)")
	dp, err := newDataParallel(backend, 0, 8)
	require.NoError(t, err)
	require.Equal(t, 1, dp.devices, "0 = all of the backend's devices")
}
