package train

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/internal/errline"
)

// Peak is the peak FLOP/s that MFU is measured against.
type Peak struct {
	FLOPS  float64 // FLOP/s; 0 when unknown
	Source string  // where the figure comes from, for logs and the README
}

// gpuPeaks lists dense (no sparsity) tensor-core peaks of known GPUs, from the vendors' data
// sheets: bf16 and, for f32 matmuls, TF32 (go-xla runs f32 products as TF32 on CUDA by default;
// its backend option "notf32" turns that off, and MFU is then understated).
// The first entry whose key occurs in the device description wins, so more specific names come
// first.
var gpuPeaks = []struct {
	key        string
	bf16, tf32 float64
}{
	{"GH200", 989e12, 494e12},
	{"H200", 989e12, 494e12},
	{"H100 PCIe", 756e12, 378e12},
	{"H100 NVL", 835e12, 418e12},
	{"H100", 989e12, 494e12}, // SXM
	{"H800", 989e12, 494e12},
	{"B200", 2250e12, 1100e12},
	{"A100", 312e12, 156e12},
	{"A800", 312e12, 156e12},
	{"L40S", 362e12, 183e12},
	{"L40", 181e12, 90.5e12},
	{"L4", 121e12, 60e12},
}

// GPUPeak returns the table peak of the GPU whose description is desc, for precision "bf16"
// or "f32", or false if the GPU is not in the table.
func GPUPeak(desc, precision string) (Peak, bool) {
	d := strings.ToUpper(desc)
	for _, p := range gpuPeaks {
		if strings.Contains(d, strings.ToUpper(p.key)) {
			if precision == "bf16" {
				return Peak{p.bf16, fmt.Sprintf("%s bf16 data-sheet peak %.0f TFLOP/s", p.key, p.bf16/1e12)}, true
			}
			return Peak{p.tf32, fmt.Sprintf("%s tf32 data-sheet peak %.0f TFLOP/s", p.key, p.tf32/1e12)}, true
		}
	}
	return Peak{}, false
}

var cpuPeaks sync.Map // cpuPeakKey → Peak (measured once per process)

// PeakFLOPS returns the peak MFU is computed against on backend b: the data-sheet figure of a
// known GPU, or, on the Go (CPU) backend, the measured throughput of a large f32 matrix product
// on this machine (the best that backend's matmul reaches, the honest CPU "peak").
func PeakFLOPS(b compute.Backend, precision string) Peak {
	if b == nil {
		return Peak{}
	}
	if b.String() != "go" { // String is the registered backend name ("go", "xla"); Name is prose
		desc := ""
		if b.NumDevices() > 0 {
			desc = b.DeviceDescription(0)
		}
		if p, ok := GPUPeak(desc, precision); ok {
			return p
		}
		// PJRT's device description is often just "CudaDevice(id=0)": ask the driver.
		for _, g := range backends.GPUs() {
			if p, ok := GPUPeak(g, precision); ok {
				return p
			}
		}
		return Peak{0, fmt.Sprintf("unknown device %q: no peak, MFU not reported", desc)}
	}
	key := cpuPeakKey{b, precision == "bf16"}
	if v, ok := cpuPeaks.Load(key); ok {
		return v.(Peak)
	}
	p := measureMatmulPeak(b, key.bf16)
	cpuPeaks.Store(key, p)
	return p
}

type cpuPeakKey struct {
	b    compute.Backend
	bf16 bool
}

// measureMatmulPeak times a 1024³ matrix product on b (best of 20 after a warm-up), in f32 or,
// as train.precision: bf16 runs its products, in bf16 with an f32 accumulator.
func measureMatmulPeak(b compute.Backend, bf16 bool) (peak Peak) {
	defer func() {
		if r := recover(); r != nil {
			peak = Peak{0, fmt.Sprintf("matmul peak measurement failed: %s", errline.First(r))}
		}
	}()
	runtime.GC() // a collection running beside the product takes a core from it
	const n = 1024
	vals := make([]float32, n*n)
	for i := range vals {
		vals[i] = float32(i%7) * 0.25
	}
	x := tensors.FromFlatDataAndDimensions(vals, n, n)
	y := tensors.FromFlatDataAndDimensions(vals, n, n)
	name, product := "f32", func(x, y *graph.Node) *graph.Node { return graph.MatMul(x, y) }
	if bf16 { // operands converted outside the timed product, as a bf16 step's are mostly
		name = "bf16"
		product = func(x, y *graph.Node) *graph.Node {
			return graph.Dot(x, y).WithAccumulatorDType(dtypes.InvalidDType).WithOutputDType(dtypes.BFloat16).Product()
		}
		conv := graph.MustNewExec(b, func(x *graph.Node) *graph.Node { return graph.ConvertDType(x, dtypes.BFloat16) })
		x, y = conv.MustExec(x)[0], conv.MustExec(y)[0]
		conv.Finalize()
	}
	exec := graph.MustNewExec(b, product)
	defer exec.Finalize()
	best := time.Duration(1 << 62)
	for i := range 21 {
		start := time.Now()
		out := exec.MustExec(x, y) // the Go backend executes synchronously
		d := time.Since(start)
		out[0].FinalizeAll()
		if i > 0 && d < best {
			best = d
		}
	}
	f := 2 * float64(n) * n * n / best.Seconds()
	return Peak{f, fmt.Sprintf("measured %s matmul peak of the %s backend on this CPU: %.0f GFLOP/s", name, b.String(), f/1e9)}
}
