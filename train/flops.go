package train

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Model FLOPs are counted from the graph that actually runs, not estimated from a formula: every
// DotGeneral (dense layers, attention scores and mixing, their gradients) and ConvGeneral of the
// compiled step. Element-wise work (softmax, norms, optimizer update) is left out, as in the
// usual MFU convention (PaLM, appendix B), so MFU = counted FLOPs / step time / peak FLOP/s.
// There is no rematerialisation in reel's step graphs, so nothing is counted twice.

var (
	reDotContract = regexp.MustCompile(`lhsContractingAxes=\[([0-9 ]*)\]`)
	reConvKernel  = regexp.MustCompile(`KernelInputChannels:(\d+) KernelOutputChannels:\d+ KernelSpatial:\[([0-9 ]*)\]`)
)

// GraphFLOPs returns the floating-point operations (a multiply-add counts 2) of the matrix
// products and convolutions that outputs depend on. Nodes no output needs (autodiff builds the
// gradient of every product's inputs, e.g. of the pixels; the backends drop them) are not counted.
func GraphFLOPs(outputs ...*graph.Node) float64 {
	var total float64
	for _, f := range GraphFLOPsByDType(outputs...) {
		total += f
	}
	return total
}

// GraphFLOPsByDType is GraphFLOPs split by the products' operand dtype (e.g. how much of a step
// runs in bf16 under train.precision: bf16).
func GraphFLOPsByDType(outputs ...*graph.Node) map[dtypes.DType]float64 {
	total := map[dtypes.DType]float64{}
	seen := map[*graph.Node]bool{}
	stack := append([]*graph.Node(nil), outputs...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, n.Inputs()...)
		switch n.Type() {
		case graph.NodeTypeDotGeneral:
			// out[batch, lhsFree, rhsFree] = Σ_contracting lhs·rhs: 2·|out|·|contracting| FLOPs.
			m := reDotContract.FindStringSubmatch(n.String())
			if m == nil {
				continue
			}
			k := 1.0
			lhs := n.Inputs()[0].Shape()
			for _, a := range axes(m[1]) {
				k *= float64(lhs.Dimensions[a])
			}
			total[n.Inputs()[0].DType()] += 2 * float64(n.Shape().Size()) * k
		case graph.NodeTypeConvGeneral:
			// Each output element sums over the kernel's spatial window and input channels.
			m := reConvKernel.FindStringSubmatch(n.String())
			if m == nil {
				continue
			}
			kernel := n.Inputs()[1].Shape()
			ci, _ := strconv.Atoi(m[1])
			k := float64(kernel.Dimensions[ci])
			for _, a := range axes(m[2]) {
				k *= float64(kernel.Dimensions[a])
			}
			total[n.Inputs()[0].DType()] += 2 * float64(n.Shape().Size()) * k
		}
	}
	return total
}

func axes(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		if a, err := strconv.Atoi(f); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// graphFLOPs holds the FLOPs of each graph built by a counted function.
var graphFLOPs sync.Map // *graph.Graph → flopCount

type flopCount struct{ total, half float64 } // all FLOPs, and those of bf16/f16 products

// counted wraps a graph-building function so that the FLOPs of every graph it builds are
// recorded (once, when the graph is built) for flopsOf.
func counted(fn func(*model.Scope, *model.Graph, []*model.Node) []*model.Node) func(*model.Scope, *model.Graph, []*model.Node) []*model.Node {
	return func(scope *model.Scope, g *model.Graph, inputs []*model.Node) []*model.Node {
		outs := fn(scope, g, inputs)
		roots := append([]*graph.Node(nil), outs...)
		for v := range scope.Store().IterVariables() { // updated variables are outputs too
			if v.ChangedInGraph(g) {
				roots = append(roots, v.NodeValue(g))
			}
		}
		byDType := GraphFLOPsByDType(roots...)
		var c flopCount
		for dt, f := range byDType {
			c.total += f
			if dt.IsHalfPrecision() {
				c.half += f
			}
		}
		graphFLOPs.Store(g, c)
		return outs
	}
}

// flopsOf returns the recorded FLOPs of g (zero if it was not built by a counted function).
func flopsOf(g *graph.Graph) flopCount {
	if v, ok := graphFLOPs.Load(g); ok {
		return v.(flopCount)
	}
	return flopCount{}
}
