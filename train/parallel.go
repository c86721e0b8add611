package train

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/dtensor"
	"github.com/gomlx/gomlx/ml/model"
)

// Data parallelism (train.devices).
//
// The training step is one program over a 1-D device mesh "data": every input whose leading axis
// is the micro-batch is sharded along it (each device gets micro/devices examples), everything
// else (the learning rate, packing indices) and every variable is replicated. GoMLX hands the
// program to XLA's Shardy partitioner (distributed.AutoSharding), which keeps the semantics of
// the single-device program: the loss is the mean over the whole micro-batch, so the gradients
// of the per-device shards are all-reduced before the (replicated) AdamW update, and every device
// ends the step with the same parameters. Checkpoints merge the replicated variables, so they
// are the same files a single-device run writes.
//
// On one device the same path runs (inputs become one-shard distributed tensors and the outputs
// are collected per device) without asking the backend to partition: GoMLX's Go backend has no
// partitioner, and a 1-device partition is the identity. TestDataParallelOneDeviceEqualsPlain
// checks that this path reproduces plain single-device training bit for bit.

// meshAxis names the data-parallel mesh axis.
const meshAxis = "data"

// dataParallel is the device layout of a run's training step.
type dataParallel struct {
	devices    int
	micro      int // examples per micro-batch (all devices together)
	mesh       *distributed.DeviceMesh
	replicated *distributed.ShardingSpec
	sharded    *distributed.ShardingSpec // leading axis over the mesh
	configured map[*model.Exec][]*distributed.ShardingSpec
}

// newDataParallel checks train.devices (0 = all of the backend's devices) against the backend
// and the micro-batch size.
func newDataParallel(b compute.Backend, devices, micro int) (*dataParallel, error) {
	avail := b.NumDevices()
	n := devices
	if n == 0 {
		n = avail
	}
	if n > avail {
		return nil, fmt.Errorf("train.devices: %d, but backend %s has %d device(s) (0 uses all of them)", devices, b.String(), avail)
	}
	if n < 1 {
		return nil, fmt.Errorf("train.devices: %d, expected 0 (all devices) or a device count ≥ 1", devices)
	}
	if micro%n != 0 {
		return nil, fmt.Errorf("train.devices: %d devices do not divide the micro-batch of %d examples (train.batch_size / train.grad_accum); choose a batch that is a multiple of %d", n, micro, n)
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{meshAxis})
	if err != nil {
		return nil, fmt.Errorf("train.devices: %w", err)
	}
	sharded, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{meshAxis})
	if err != nil {
		return nil, fmt.Errorf("train.devices: %w", err)
	}
	return &dataParallel{devices: n, micro: micro, mesh: mesh, replicated: distributed.NewReplicatedShardingSpec(mesh),
		sharded: sharded, configured: map[*model.Exec][]*distributed.ShardingSpec{}}, nil
}

// specs returns each input's sharding: the micro-batch axis over the mesh, else replicated.
func (dp *dataParallel) specs(inputs []*tensors.Tensor) []*distributed.ShardingSpec {
	specs := make([]*distributed.ShardingSpec, len(inputs))
	for i, x := range inputs {
		specs[i] = dp.replicated
		if dp.devices > 1 && x.Rank() >= 1 && x.Shape().Dimensions[0] == dp.micro {
			specs[i] = dp.sharded
		}
	}
	return specs
}

// call runs the training-step executor e on inputs over the mesh and returns device 0's
// (replicated) outputs and the step's model FLOPs (counted once: the logical program's).
func (dp *dataParallel) call(e *model.Exec, inputs []*tensors.Tensor) (out []*tensors.Tensor, flops flopCount, err error) {
	// An executor's input shardings are fixed by its first call (an input that is sharded stays
	// sharded even if a later batch's leading axis differs, e.g. a packing input's row count).
	specs, ok := dp.configured[e]
	if !ok {
		specs = dp.specs(inputs)
		if dp.devices > 1 {
			e.AutoSharding(dp.mesh).WithInputShardingSpecs(specs...).WithOutputShardingSpecs(dp.replicated)
		}
		dp.configured[e] = specs
	}
	if len(specs) != len(inputs) {
		return nil, flopCount{}, fmt.Errorf("data-parallel step: %d inputs, but the step was configured with %d", len(inputs), len(specs))
	}
	args := make([]any, len(inputs))
	for i, x := range inputs {
		var d *dtensor.Tensor
		if dp.devices == 1 {
			d, err = dtensor.NewTensor(specs[i], []*tensors.Tensor{x}) // the input itself is the one shard
		} else {
			d, err = dtensor.ShardTensor(specs[i], x) // host copies, one per device
		}
		if err != nil {
			return nil, flopCount{}, fmt.Errorf("sharding input %d %s over %d devices: %w", i, x.Shape(), dp.devices, err)
		}
		if dp.devices > 1 {
			defer func() { _ = d.FinalizeAll() }()
		}
		args[i] = d
	}
	outs, flops, err := execArgs(e, args)
	if err != nil {
		return nil, flopCount{}, err
	}
	perDevice := len(outs) / dp.devices
	for _, o := range outs[perDevice:] { // replicas of device 0's outputs
		o.FinalizeAll()
	}
	return outs[:perDevice], flops, nil
}
