package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/internal/gradcheck"
)

// Tiny attention shapes for the gradient checks.
const (
	gcB, gcT, gcH, gcHD = 1, 3, 2, 2
	gcD                 = gcH * gcHD
	fdEps               = 1e-5 // central-difference step (float64)
	gradRelTol          = 1e-5
	gradAbsTol          = 1e-9 // floor for gradients that are (numerically) zero
)

func goBackend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	t.Cleanup(b.Finalize)
	return b
}

func randFlat(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// causalMask returns the boolean [T, T] mask mask[q, k] = k ≤ q.
func causalMask(g *Graph, t int) *Node {
	q := Iota(g, shapes.Make(dtypes.Int32, t, t), 0)
	k := Iota(g, shapes.Make(dtypes.Int32, t, t), 1)
	return LessOrEqual(k, q)
}

func flat(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	v, err := tensors.CopyFlatData[float64](x)
	require.NoError(t, err)
	return v
}

func requireGradClose(t *testing.T, name string, analytic, numeric []float64) {
	t.Helper()
	gradcheck.RequireClose(t, name, analytic, numeric, gradcheck.Tolerance{Rel: gradRelTol, Abs: gradAbsTol})
}

func TestAttentionCoreGradient(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	n := gcB * gcT * gcH * gcHD
	q, k, v, w := randFlat(rng, n), randFlat(rng, n), randFlat(rng, n), randFlat(rng, n)
	dims := []int{gcB, gcT, gcH, gcHD}

	exec, err := NewExec(backend, func(q, k, v, w *Node) []*Node {
		out := AttentionCore(q, k, v, causalMask(q.Graph(), gcT))
		loss := ReduceAllSum(Mul(out, w))
		grads := Gradient(loss, q, k, v)
		// Loss on query 0 only: by causality it cannot depend on later keys and values.
		loss0 := ReduceAllSum(Mul(Slice(out, AxisRange(), AxisElem(0)), Slice(w, AxisRange(), AxisElem(0))))
		grads0 := Gradient(loss0, k, v)
		return []*Node{loss, out, grads[0], grads[1], grads[2], grads0[0], grads0[1]}
	})
	require.NoError(t, err)
	defer exec.Finalize()
	run := func() []*tensors.Tensor {
		out, err := exec.Exec(
			tensors.FromFlatDataAndDimensions(q, dims...), tensors.FromFlatDataAndDimensions(k, dims...),
			tensors.FromFlatDataAndDimensions(v, dims...), tensors.FromFlatDataAndDimensions(w, dims...))
		require.NoError(t, err)
		return out
	}
	lossOf := func() float64 { return run()[0].Value().(float64) }

	outs := run()
	require.Equal(t, dtypes.Float64, outs[0].DType())
	// Causal: the first query sees only the first key, so its output is v[0] exactly.
	att := flat(t, outs[1])
	for i := 0; i < gcH*gcHD; i++ {
		require.InDelta(t, v[i], att[i], 1e-12, "output of query 0 must equal v[0]")
	}
	per := gcH * gcHD // elements per position
	for j, name := range []string{"dk", "dv"} {
		g0 := flat(t, outs[5+j])
		if name == "dv" { // (dk is 0 everywhere: query 0's softmax has a single unmasked entry)
			require.NotZero(t, g0[0], "dv of query 0's loss w.r.t. position 0")
		}
		for i := per; i < len(g0); i++ {
			require.Zerof(t, g0[i], "%s[%d] of query 0's loss w.r.t. a later position must be 0 (causal mask)", name, i)
		}
	}
	requireGradClose(t, "dq", flat(t, outs[2]), gradcheck.Numeric(q, fdEps, lossOf))
	requireGradClose(t, "dk", flat(t, outs[3]), gradcheck.Numeric(k, fdEps, lossOf))
	requireGradClose(t, "dv", flat(t, outs[4]), gradcheck.Numeric(v, fdEps, lossOf))
}

// TestAttentionCoreBiasGradient checks the written-out attention backward with a key bias and a
// per-example key mask (two examples, key 1 of the second masked) against central differences,
// the bias's gradient included, for both ways of laying out dk and dv: transposing the [Tq, Tk]
// operands (T = 3, hd = 2) and transposing the [T, hd] ones (T = 6, hd = 1).
func TestAttentionCoreBiasGradient(t *testing.T) {
	backend := goBackend(t)
	for _, c := range []struct{ t, hd int }{{3, 2}, {6, 1}} {
		rng := rand.New(rand.NewPCG(7, uint64(c.t)))
		const b = 2
		n := b * c.t * gcH * c.hd
		q, k, v, w, bias := randFlat(rng, n), randFlat(rng, n), randFlat(rng, n), randFlat(rng, n), randFlat(rng, b*c.t)
		dims := []int{b, c.t, gcH, c.hd}
		valid := make([]bool, b*c.t) // [B, T]
		for i := range valid {
			valid[i] = i != c.t+1
		}
		exec := MustNewExec(backend, func(q, k, v, w, bias, valid *Node) []*Node {
			out := AttentionCoreBias(q, k, v, KeyMask(valid), bias)
			loss := ReduceAllSum(Mul(out, w))
			return append([]*Node{loss}, Gradient(loss, q, k, v, bias)...)
		})
		run := func() []*tensors.Tensor {
			return exec.MustExec(tensors.FromFlatDataAndDimensions(q, dims...), tensors.FromFlatDataAndDimensions(k, dims...),
				tensors.FromFlatDataAndDimensions(v, dims...), tensors.FromFlatDataAndDimensions(w, dims...),
				tensors.FromFlatDataAndDimensions(bias, b, c.t), tensors.FromFlatDataAndDimensions(valid, b, c.t))
		}
		lossOf := func() float64 { return run()[0].Value().(float64) }
		outs := run()
		for i, g := range []struct {
			name string
			x    []float64
		}{{"dq", q}, {"dk", k}, {"dv", v}, {"dbias", bias}} {
			requireGradClose(t, fmt.Sprintf("T=%d: %s", c.t, g.name), flat(t, outs[1+i]), gradcheck.Numeric(g.x, fdEps, lossOf))
		}
		db := flat(t, outs[4])
		require.Zero(t, db[c.t+1], "a masked key's bias gets no gradient")
		require.NotZero(t, db[c.t])
		exec.Finalize()
	}
}

func TestAttentionCoreNoMaskAndBatchMask(t *testing.T) {
	// Without a mask AttentionCore is plain softmax attention; a [B, T, T] all-true mask must give
	// the same result.
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	n := gcB * gcT * gcH * gcHD
	dims := []int{gcB, gcT, gcH, gcHD}
	q, k, v := randFlat(rng, n), randFlat(rng, n), randFlat(rng, n)
	out, err := ExecOnceN(backend, func(q, k, v *Node) []*Node {
		g := q.Graph()
		all := Ones(g, shapes.Make(dtypes.Bool, gcB, gcT, gcT))
		return []*Node{AttentionCore(q, k, v, nil), AttentionCore(q, k, v, all)}
	}, tensors.FromFlatDataAndDimensions(q, dims...), tensors.FromFlatDataAndDimensions(k, dims...),
		tensors.FromFlatDataAndDimensions(v, dims...))
	require.NoError(t, err)
	a, b := flat(t, out[0]), flat(t, out[1])
	require.InDeltaSlice(t, a, b, 1e-12)

	// Reference: direct computation for batch 0, head 0, query 1.
	scale := 1 / math.Sqrt(gcHD)
	idx := func(tt, h, d int) int { return (tt*gcH+h)*gcHD + d }
	var logits [gcT]float64
	var z float64
	for kk := 0; kk < gcT; kk++ {
		for d := 0; d < gcHD; d++ {
			logits[kk] += q[idx(1, 0, d)] * k[idx(kk, 0, d)] * scale
		}
	}
	for kk := range logits {
		logits[kk] = math.Exp(logits[kk])
		z += logits[kk]
	}
	for d := 0; d < gcHD; d++ {
		var want float64
		for kk := 0; kk < gcT; kk++ {
			want += logits[kk] / z * v[idx(kk, 0, d)]
		}
		require.InDelta(t, want, a[idx(1, 0, d)], 1e-12)
	}
}

// attentionVars are the variables Attention creates under scope "attn", with their shapes.
var attentionVars = []struct {
	path string
	dims []int
}{
	{"/attn/qkv/weights", []int{gcD, 3 * gcD}},
	{"/attn/qkv/biases", []int{3 * gcD}},
	{"/attn/out/weights", []int{gcD, gcD}},
	{"/attn/out/biases", []int{gcD}},
}

// TestMatmulWeightGradient checks matmulWeights' hand-written weight gradient (both branches:
// x transposed when in ≤ out/parts, dy when in > out/parts; one part and three) and its input
// gradient against central differences, for inputs of rank 1 to 3, and that no gradient comes
// from a stale dy: two products in one graph, each with its own.
func TestMatmulWeightGradient(t *testing.T) {
	backend := goBackend(t)
	for _, c := range []struct {
		xDims      []int
		out, parts int
	}{
		{[]int{2, 3, 3}, 5, 1}, // in ≤ out
		{[]int{2, 3, 5}, 2, 1}, // in > out
		{[]int{4, 3}, 3, 1},    // rank 2, in = out
		{[]int{3}, 4, 1},       // rank 1
		{[]int{2, 3, 2}, 6, 3}, // three parts, in ≤ out/3
		{[]int{2, 3, 4}, 6, 3}, // three parts, in > out/3
	} {
		t.Run(fmt.Sprint(c.xDims, c.out, c.parts), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(c.out)))
			in := c.xDims[len(c.xDims)-1]
			n := 1
			for _, d := range c.xDims {
				n *= d
			}
			x, w, w2 := randFlat(rng, n), randFlat(rng, in*c.out), randFlat(rng, c.out*in)
			r := randFlat(rng, n)
			exec := MustNewExec(backend, func(xn, wn, w2n, rn *Node) []*Node {
				h := Concatenate(matmulWeights(xn, wn, c.parts), -1) // [..., out]
				y := matmulWeight(Tanh(h), w2n)                      // [..., in]: the second product's dy differs
				loss := ReduceAllSum(Mul(y, rn))
				return append([]*Node{loss, h}, Gradient(loss, xn, wn, w2n)...)
			})
			defer exec.Finalize()
			args := func() []any {
				return []any{tensors.FromFlatDataAndDimensions(x, c.xDims...),
					tensors.FromFlatDataAndDimensions(w, in, c.out), tensors.FromFlatDataAndDimensions(w2, c.out, in),
					tensors.FromFlatDataAndDimensions(r, c.xDims...)}
			}
			lossOf := func() float64 { return exec.MustExec(args()...)[0].Value().(float64) }
			outs := exec.MustExec(args()...)
			// The parts, side by side, are x·W.
			h := flat(t, outs[1])
			for row := range n / in {
				for j := range c.out {
					var want float64
					for i := range in {
						want += x[row*in+i] * w[i*c.out+j]
					}
					require.InDelta(t, want, h[row*c.out+j], 1e-12)
				}
			}
			requireGradClose(t, "dx", flat(t, outs[2]), gradcheck.Numeric(x, fdEps, lossOf))
			requireGradClose(t, "dW", flat(t, outs[3]), gradcheck.Numeric(w, fdEps, lossOf))
			requireGradClose(t, "dW2", flat(t, outs[4]), gradcheck.Numeric(w2, fdEps, lossOf))
		})
	}
}

func TestAttentionGradient(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	x := randFlat(rng, gcB*gcT*gcD)
	w := randFlat(rng, gcB*gcT*gcD)
	xDims := []int{gcB, gcT, gcD}

	store := model.NewStore()
	params := make([][]float64, len(attentionVars))
	for i, av := range attentionVars {
		n := 1
		for _, d := range av.dims {
			n *= d
		}
		params[i] = randFlat(rng, n)
		for j := range params[i] {
			params[i][j] *= 0.5
		}
		_, err := store.CreateVariable(av.path, tensors.FromFlatDataAndDimensions(params[i], av.dims...))
		require.NoError(t, err)
	}
	setParams := func() {
		for i, av := range attentionVars {
			require.NoError(t, store.GetVariable(av.path).SetValue(tensors.FromFlatDataAndDimensions(params[i], av.dims...)))
		}
	}

	graphFn := func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		scope.SetTraining(g, true) // variables as parameters, so one executor sees SetValue updates
		xn, wn := in[0], in[1]
		out := Attention(scope.In("attn"), xn, gcH, causalMask(g, gcT))
		loss := ReduceAllSum(Mul(out, wn))
		wrt := []*Node{xn}
		for _, av := range attentionVars {
			wrt = append(wrt, store.GetVariable(av.path).NodeValue(g))
		}
		return append([]*Node{loss}, Gradient(loss, wrt...)...)
	}
	newExec := func() *model.Exec {
		e, err := model.NewExecCanonical(backend, store, graphFn, -1, -1, false, true, true)
		require.NoError(t, err)
		return e
	}
	runWith := func(e *model.Exec) []*tensors.Tensor {
		out, err := e.Exec(tensors.FromFlatDataAndDimensions(x, xDims...), tensors.FromFlatDataAndDimensions(w, xDims...))
		require.NoError(t, err)
		require.Len(t, out, 2+len(attentionVars), "the graph must not update any variable")
		return out
	}

	exec := newExec()
	defer exec.Finalize()
	outs := runWith(exec)
	requireGradClose(t, "dx", flat(t, outs[1]), gradcheck.Numeric(x, fdEps, func() float64 { return runWith(exec)[0].Value().(float64) }))

	// Variables: set the perturbed value and re-run (training mode, so they are graph parameters).
	for i, av := range attentionVars {
		analytic := flat(t, outs[2+i])
		numeric := gradcheck.Numeric(params[i], fdEps, func() float64 {
			setParams()
			return runWith(exec)[0].Value().(float64)
		})
		setParams()
		requireGradClose(t, "d"+av.path, analytic, numeric)
	}
}

func TestExecVariablesAsConstants(t *testing.T) {
	// On the Go backend (Capabilities().PreferConstantsForVariables) GoMLX embeds the current value
	// of every variable as a graph constant when the graph is not in training mode, so a reused
	// model.Exec keeps computing with the values of its first call. That is why train.Trainer
	// builds a fresh eval executor per evaluation. In training mode variables are parameters and
	// an executor sees SetValue updates. This test pins down both behaviours: if the first
	// assertion starts failing, GoMLX changed and the workaround may be dropped.
	backend := goBackend(t)
	for _, training := range []bool{false, true} {
		t.Run(fmt.Sprintf("training=%v", training), func(t *testing.T) {
			store := model.NewStore()
			v, err := store.CreateVariable("/v", tensors.FromValue([]float64{1, 2}))
			require.NoError(t, err)
			e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
				scope.SetTraining(g, training)
				return []*Node{Add(ReduceAllSum(store.GetVariable("/v").NodeValue(g)), in[0])}
			}, -1, -1, false, true, true)
			require.NoError(t, err)
			defer e.Finalize()
			var got []float64
			for i, sum := range []float64{3, 30} {
				if i > 0 {
					require.NoError(t, v.SetValue(tensors.FromValue([]float64{sum / 3, 2 * sum / 3})))
				}
				out, err := e.Exec(tensors.FromValue(float64(0)))
				require.NoError(t, err)
				got = append(got, out[0].Value().(float64))
			}
			if training {
				require.Equal(t, []float64{3, 30}, got, "training graphs must read the current variable values")
			} else if backend.Capabilities().PreferConstantsForVariables {
				require.Equal(t, []float64{3, 3}, got, "inference graphs embed variables as constants (stale on reuse)")
			}
		})
	}
}

func TestPrefixLMMask(t *testing.T) {
	backend := goBackend(t)
	out, err := ExecOnceN(backend, func(g *Graph) []*Node {
		return []*Node{PrefixLMMask(g, 2, 4)}
	})
	require.NoError(t, err)
	want := [][]bool{
		{true, true, false, false}, // image tokens see all image tokens, no text
		{true, true, false, false},
		{true, true, true, false}, // text token 0 sees the image and itself
		{true, true, true, true},
	}
	require.Equal(t, want, out[0].Value())
}

// TestConv2DMatchesConvolve: the im2col convolution equals GoMLX's Convolve (same padding and
// stride), values and input gradients.
func TestConv2DMatchesConvolve(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(4, 5))
	for _, c := range []struct{ h, w, in, out, k, stride int }{{8, 8, 3, 5, 3, 1}, {8, 6, 2, 4, 3, 2}, {9, 9, 3, 2, 3, 2}, {6, 6, 4, 3, 1, 1}, {8, 8, 2, 3, 5, 2}} {
		x := tensors.FromFlatDataAndDimensions(randFlat32(rng, 2*c.h*c.w*c.in), 2, c.h, c.w, c.in)
		store := model.NewStore()
		require.NoError(t, store.SetRNGStateFromSeed(1))
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			y := Conv2D(scope, in[0], c.out, c.k, c.stride)
			kernel := scope.Store().GetVariable("/kernel").NodeValue(g)
			bias := scope.Store().GetVariable("/biases").NodeValue(g)
			p := (c.k - 1) / 2
			ref := Convolve(in[0], kernel).Strides(c.stride).PaddingPerDim([][2]int{{p, p}, {p, p}}).Done()
			ref = Add(ref, Reshape(bias, 1, 1, 1, c.out))
			w := Iota(g, y.Shape(), 3)
			gy := Gradient(ReduceAllSum(Mul(y, ConvertDType(w, y.DType()))), in[0], kernel)
			gr := Gradient(ReduceAllSum(Mul(ref, ConvertDType(w, ref.DType()))), in[0], kernel)
			return []*Node{y, ref, gy[0], gr[0], gy[1], gr[1]}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		out, err := e.Exec(x)
		require.NoError(t, err)
		require.Equal(t, out[1].Shape().Dimensions, out[0].Shape().Dimensions, "%+v", c)
		for i, pair := range [][2]int{{0, 1}, {2, 3}, {4, 5}} { // output, input and kernel gradients
			a, b := tensors.MustCopyFlatData[float32](out[pair[0]]), tensors.MustCopyFlatData[float32](out[pair[1]])
			for j := range a {
				require.InDelta(t, b[j], a[j], 1e-4, "%+v output %d index %d", c, i, j)
			}
		}
		e.Finalize()
	}
}

// im2colGather (the Go backend's) gives im2colSlices' columns and input gradient.
func TestIm2colGatherMatchesSlices(t *testing.T) {
	backend := goBackend(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ hp, wp, ch, k, stride, ho, wo int }{{6, 7, 3, 3, 1, 4, 5}, {9, 9, 2, 3, 2, 4, 4}, {5, 5, 4, 1, 1, 5, 5}} {
		xp := tensors.FromFlatDataAndDimensions(randFlat(rng, 2*c.hp*c.wp*c.ch), 2, c.hp, c.wp, c.ch)
		out := MustExecOnceN(backend, func(xp *Node) []*Node {
			a, b := im2colGather(xp, c.k, c.stride, c.ho, c.wo), im2colSlices(xp, c.k, c.stride, c.ho, c.wo)
			w := ConvertDType(Iota(xp.Graph(), a.Shape(), 3), xp.DType())
			ga := Gradient(ReduceAllSum(Mul(a, w)), xp)[0]
			gb := Gradient(ReduceAllSum(Mul(b, w)), xp)[0]
			return []*Node{a, b, ga, gb}
		}, xp)
		require.Equal(t, []int{2, c.ho, c.wo, c.k * c.k * c.ch}, out[0].Shape().Dimensions)
		require.Equal(t, flat(t, out[1]), flat(t, out[0]), "%+v columns", c)
		require.InDeltaSlice(t, flat(t, out[3]), flat(t, out[2]), 1e-12, "%+v input gradient", c)
	}
}

func randFlat32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestAttentionCoreCrossGradient checks the written-out backward for cross-attention, queries and
// keys of different lengths (Tq ≠ Tk, both longer and shorter) with a [B, Tq, Tk] mask, as the
// action expert's cross-attention to the backbone uses it, against central differences.
func TestAttentionCoreCrossGradient(t *testing.T) {
	backend := goBackend(t)
	for _, c := range []struct{ tq, tk, hd int }{{2, 5, 2}, {5, 2, 2}, {3, 7, 1}, {7, 3, 1}} {
		rng := rand.New(rand.NewPCG(11, uint64(c.tq*10+c.tk)))
		const b = 2
		q, w := randFlat(rng, b*c.tq*gcH*c.hd), randFlat(rng, b*c.tq*gcH*c.hd)
		k, v := randFlat(rng, b*c.tk*gcH*c.hd), randFlat(rng, b*c.tk*gcH*c.hd)
		valid := make([]bool, b*c.tq*c.tk) // example 1 may not see key 0
		for i := range valid {
			valid[i] = !(i >= c.tq*c.tk && i%c.tk == 0)
		}
		exec := MustNewExec(backend, func(q, k, v, w, m *Node) []*Node {
			out := AttentionCore(q, k, v, m)
			loss := ReduceAllSum(Mul(out, w))
			return append([]*Node{loss}, Gradient(loss, q, k, v)...)
		})
		run := func() []*tensors.Tensor {
			return exec.MustExec(tensors.FromFlatDataAndDimensions(q, b, c.tq, gcH, c.hd), tensors.FromFlatDataAndDimensions(k, b, c.tk, gcH, c.hd),
				tensors.FromFlatDataAndDimensions(v, b, c.tk, gcH, c.hd), tensors.FromFlatDataAndDimensions(w, b, c.tq, gcH, c.hd),
				tensors.FromFlatDataAndDimensions(valid, b, c.tq, c.tk))
		}
		lossOf := func() float64 { return run()[0].Value().(float64) }
		outs := run()
		for i, g := range []struct {
			name string
			x    []float64
		}{{"dq", q}, {"dk", k}, {"dv", v}} {
			requireGradClose(t, fmt.Sprintf("Tq=%d Tk=%d: %s", c.tq, c.tk, g.name), flat(t, outs[1+i]), gradcheck.Numeric(g.x, fdEps, lossOf))
		}
		exec.Finalize()
	}
}
