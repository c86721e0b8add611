// Package models holds reel's architectures as GoMLX graph-building functions, one file per
// architecture, on top of the small set of layers in this file.
//
// Layers are written for the CPU (Go SIMD backend) as much as for XLA: attention is a plain
// einsum over a [batch, heads, tokens, head_dim] layout (measured 2.5× faster than GoMLX's
// generic MultiHeadAttention on the Go backend), and dense layers are a DotGeneral + bias add
// (faster to train there than GoMLX's fused nn.Dense; see Linear).
package models

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
)

// InitStd is the standard deviation of the normal initialisation of embedding tables (token and
// position embeddings). Dense weights use LeCun-normal instead: N(0, 1/fan_in). A fixed 0.02
// (GPT/ViT style) is tuned for widths around 768; at the 64-wide tiny recipes it shrinks every
// layer's output ~6×, and the tiny VLM then hardly learned to read its image prefix (accuracy
// near the language prior) while the fan-in–scaled init learns it in a few hundred steps.
const InitStd = 0.02

// normalInit initialises float variables of rank ≥ 2 from N(0, std²) using the Store's seeded RNG
// (so the recipe seed fixes the initialisation); vectors (biases, norms' beta) start at zero.
func normalInit(store *model.Store, std float64) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		if !shape.DType.IsFloat() || shape.Rank() <= 1 {
			return Zeros(g, shape)
		}
		return MulScalar(store.RandomNormal(g, shape), std)
	}
}

// WithInit returns scope configured with reel's default initialiser.
func WithInit(scope *model.Scope) *model.Scope {
	return scope.WithInitializer(normalInit(scope.Store(), InitStd))
}

// precisionKey is the graph state key of the matmul precision (see SetPrecision).
type precisionKey struct{}

// SetPrecision selects the precision of g's matrix products (Linear, attention, Conv2D): "f32" (the
// default) or "bf16" mixed precision, as in the recipe's train.precision. Under bf16 both
// operands of each product are rounded to bf16 and the product, accumulated in f32 by the
// backends (XLA/cuBLAS, the Go backend's bf16 kernels), is returned in bf16 and converted back to
// f32 — what PyTorch's autocast does. GoMLX differentiates a DotGeneral in its output dtype, so
// the two backward products of each matmul run in bf16 too. Parameters, optimizer state, norms,
// softmax, residual adds and losses stay f32; bf16's f32-sized exponent needs no loss scaling.
func SetPrecision(g *Graph, precision string) {
	if precision == "bf16" {
		g.AttachState(precisionKey{}, dtypes.BFloat16)
	} else {
		g.AttachState(precisionKey{}, nil)
	}
}

// lowPrecision returns the dtype of g's matrix products if SetPrecision lowered it.
func lowPrecision(g *Graph) (dtypes.DType, bool) {
	dt, ok := g.State(precisionKey{}).(dtypes.DType)
	return dt, ok
}

// mixedDotGeneral is DotGeneral in the graph's precision (see SetPrecision), returned in lhs's
// dtype. (GoMLX's Einsum drops a DotBuilder's dtype configuration, so reel's products are written
// as DotGenerals.)
func mixedDotGeneral(lhs *Node, lhsContracting, lhsBatch []int, rhs *Node, rhsContracting, rhsBatch []int) *Node {
	dt, ok := lowPrecision(lhs.Graph())
	if !ok || lhs.DType() == dt {
		return DotGeneral(lhs, lhsContracting, lhsBatch, rhs, rhsContracting, rhsBatch)
	}
	out := Dot(ConvertDType(lhs, dt), ConvertDType(rhs, dt)).
		WithAccumulatorDType(dtypes.InvalidDType).WithOutputDType(dt).
		General(lhsContracting, lhsBatch, rhsContracting, rhsBatch)
	return ConvertDType(out, lhs.DType())
}

// Linear is y = x·W + b over the last axis of x. W has shape [in, out], initialised
// LeCun-normal N(0, 1/in) so activations keep their scale at any width; b starts at zero.
//
// It is a DotGeneral plus a broadcast add rather than GoMLX's fused nn.Dense: on the Go backend
// the fused layer's backward pass transposes its input explicitly (20% of a ViT step); with
// DotGeneral a ViT-tiny training step is 29% faster (0.395 → 0.280 s, `reel bench vit`). Its
// weight gradient is matmulWeights'.
func Linear(scope *model.Scope, x *Node, out int, bias bool) *Node {
	return LinearSplit(scope, x, out, 1, bias)[0]
}

// LinearSplit is Linear returned as `parts` equal column blocks [..., out/parts] (the same
// variables: W [in, out], b [out]), each its own product, so that splitting a fused projection
// (attention's q, k, v) slices weights rather than activations: the Go backend slices and pads
// (their gradient) element by element, 5% of a ViT-tiny step for q, k, v.
func LinearSplit(scope *model.Scope, x *Node, out, parts int, bias bool) []*Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	wv := scope.WithInitializer(normalInit(scope.Store(), 1/math.Sqrt(float64(in)))).
		VariableWithShape("weights", shapes.Make(x.DType(), in, out))
	ys := matmulWeights(x, wv.NodeValue(x.Graph()), parts)
	var bv *model.Variable
	if bias {
		bv = scope.VariableWithShape("biases", shapes.Make(x.DType(), out))
		b := bv.NodeValue(x.Graph())
		o := out / parts
		for i, y := range ys {
			bi := b
			if parts > 1 {
				bi = Slice(b, AxisRange(i*o, (i+1)*o))
			}
			ys[i] = Add(y, ExpandLeftToRank(bi, y.Rank()))
		}
	}
	if h, b := loraDelta(scope, x, out, wv, bv); h != nil { // LoRA: + h·B, per column block
		for i, d := range matmulWeights(h, b, parts) {
			ys[i] = Add(ys[i], d)
		}
	}
	return ys
}

// matmulWeight is x·W over the last axis of x, for a weight W [in, out] (see matmulWeights).
func matmulWeight(x, w *Node) *Node { return matmulWeights(x, w, 1)[0] }

// matmulWeights is x·W_i over the last axis of x for the `parts` equal column blocks W_i of a
// weight W [in, out], with a weight gradient that transposes one activation instead of two.
//
// x is flattened to [N, in] first, so every transpose its gradients need is a 2-D one. The Go
// backend's GEMM wants the left operand's contracting axis last; the weight gradient xᵀ·dy
// contracts N, the leading axis of both, and the backend then transposes both x and dy with its
// generic element-by-element transpose (3-D inputs) or its tiled 2-D one. Here the gradient is
// written out instead: whichever of x [N, in] and dy_i [N, out/parts] is narrower is transposed
// explicitly (2-D, tiled, parallel; x once for all parts) and becomes the left operand (contracting
// axis last); the other is used as stored ([N, ·], contracting axis first, a layout the GEMM takes).
// For a ViT block that moves 4·D columns of N instead of 17·D. The activation gradient Σ dy_i·W_iᵀ
// needs no transpose.
//
// GoMLX has custom gradients only for identities, so W passes through one whose gradient returns
// the product above, and each y_i through one that records dy_i for it: the reverse pass visits the
// y_i's identities (created later) before W's. GoMLX's own weight-gradient products are then left
// unused, and both backends drop them.
func matmulWeights(x, w *Node, parts int) []*Node {
	in, out := w.Shape().Dimensions[0], w.Shape().Dimensions[1]
	o := out / parts
	if o*parts != out {
		panic(fmt.Sprintf("models.matmulWeights: %d parts do not divide w's %d columns", parts, out))
	}
	x2 := x
	if x.Rank() != 2 {
		x2 = Reshape(x, -1, in)
	}
	dys := make([]*Node, parts) // set by the y_i's identities, read by w's: the reverse pass visits those first
	wc := IdentityWithCustomGradient(w, func(_, _ *Node) *Node {
		var xt *Node
		dws := make([]*Node, parts)
		for i, dy := range dys {
			if dy == nil { // y_i's gradient was stopped (StopGradient downstream): W_i gets none
				dws[i] = Zeros(w.Graph(), shapes.Make(w.DType(), in, o))
				continue
			}
			if in <= o { // dW_i = (xᵀ) · dy_i
				if xt == nil {
					xt = Transpose(x2, 0, 1)
				}
				dws[i] = mixedDotGeneral(xt, []int{1}, nil, dy, []int{0}, nil)
			} else { // dW_i = ((dy_iᵀ) · x)ᵀ, the last transpose weight-sized
				dws[i] = Transpose(mixedDotGeneral(Transpose(dy, 0, 1), []int{1}, nil, x2, []int{0}, nil), 0, 1)
			}
		}
		if parts == 1 {
			return dws[0]
		}
		return Concatenate(dws, 1)
	})
	dims := slices.Clone(x.Shape().Dimensions)
	dims[len(dims)-1] = o
	ys := make([]*Node, parts)
	for i := range parts {
		wi := wc
		if parts > 1 {
			wi = Slice(wc, AxisRange(), AxisRange(i*o, (i+1)*o))
		}
		y := mixedDotGeneral(x2, []int{1}, nil, wi, []int{0}, nil)
		y = IdentityWithCustomGradient(y, func(_, v *Node) *Node { dys[i] = v; return v })
		if x.Rank() != 2 {
			y = Reshape(y, dims...)
		}
		ys[i] = y
	}
	return ys
}

// LayerNorm normalises the last axis and applies a learned scale (init 1) and shift (init 0).
func LayerNorm(scope *model.Scope, x *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions[x.Rank()-1]
	gamma := scope.VariableWithValue("gamma", ones(x.DType(), d)).NodeValue(g)
	beta := scope.VariableWithShape("beta", shapes.Make(x.DType(), d)).NodeValue(g)
	return nn.LayerNorm(x, []int{-1}, 1e-5, gamma, beta, nil)
}

func ones(dtype dtypes.DType, n int) any {
	if dtype == dtypes.Float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// MLP is Linear → GELU → Linear.
func MLP(scope *model.Scope, x *Node, hidden int) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	h := Linear(scope.In("fc1"), x, hidden, true)
	h = activation.Apply(activation.TypeGelu, h)
	return Linear(scope.In("fc2"), h, d, true)
}

// Tap observes or rewrites an intermediate activation while a graph is built: at every named
// site a model calls tap(site, x) and continues with what it returns. Interpretability tools use
// it to capture activations (return x unchanged), patch them (activation patching) or ablate
// attention heads; a nil Tap is the identity. Sites are documented where they are tapped.
type Tap func(site string, x *Node) *Node

// At applies the tap at site (identity for a nil Tap).
func (t Tap) At(site string, x *Node) *Node {
	if t == nil {
		return x
	}
	return t(site, x)
}

// AttentionCore is softmax(q·kᵀ/√hd + mask)·v for q, k, v of shape [B, T, H, hd].
// It is the custom layer whose gradient is checked against finite differences in the tests.
func AttentionCore(q, k, v, mask *Node) *Node {
	return AttentionCoreBias(q, k, v, mask, nil)
}

// AttentionCoreBias is AttentionCore with an additive key-side bias [B, Tk] on the logits
// (e.g. STTS's log(score): a low-scored key receives less attention from every query). It is the
// kernel of every attention layer (MultiHeadAttention in attention.go).
//
// Its backward pass is written out (attentionBackward) rather than left to autodiff; see there.
func AttentionCoreBias(q, k, v, mask, keyBias *Node) *Node {
	hd := q.Shape().Dimensions[3]
	scale := 1 / math.Sqrt(float64(hd))
	// Custom gradients exist in GoMLX only for identities: q, k, v and the bias pass through ones
	// that return the gradients attentionBackward computes when the reverse pass reaches the
	// output's identity, which it visits first (created last). Autodiff's own backward of the
	// products and the softmax is then left unused, and the backends drop it. The backward reads
	// the identities' outputs, so that each input has one use and the Go backend hands its buffer
	// through instead of copying it.
	var grads attentionGrads
	qc := IdentityWithCustomGradient(q, func(_, _ *Node) *Node { return grads.q })
	kc := IdentityWithCustomGradient(k, func(_, _ *Node) *Node { return grads.k })
	vc := IdentityWithCustomGradient(v, func(_, _ *Node) *Node { return grads.v })
	// Head-major operands, made once for both passes: bthd → bhtd is one of the Go backend's fast
	// transposes (as [B, Tk, H, hd] it would move v's Tk last element by element), and it leaves
	// every product in a layout its GEMM takes.
	qh, kh, vh := headMajor(qc), headMajor(kc), headMajor(vc)
	logits := mixedDotGeneral(qh, []int{3}, []int{0, 1}, kh, []int{3}, []int{0, 1}) // bhqd,bhkd->bhqk
	logits = MulScalar(logits, scale)
	if keyBias != nil {
		bc := IdentityWithCustomGradient(keyBias, func(_, _ *Node) *Node { return grads.bias })
		logits = Add(logits, InsertAxes(bc, 1, 1)) // [B, 1, 1, Tk]
	}
	var probs *Node
	if mask != nil {
		m := mask
		if m.Rank() == 2 { // [T, T] → [1, 1, T, T]
			m = InsertAxes(m, 0, 0)
		} else { // [B, T, T] → [B, 1, T, T]
			m = InsertAxes(m, 1)
		}
		m = BroadcastToDims(m, logits.Shape().Dimensions...)
		probs = MaskedSoftmax(logits, m, -1)
	} else {
		probs = Softmax(logits, -1)
	}
	out := headMajor(mixedDotGeneral(probs, []int{3}, []int{0, 1}, vh, []int{2}, []int{0, 1})) // bhqk,bhkd->bhqd → bqhd
	return IdentityWithCustomGradient(out, func(_, dOut *Node) *Node {
		grads = attentionBackward(qc, qh, kh, vh, probs, dOut, scale, keyBias != nil)
		return dOut
	})
}

type attentionGrads struct{ q, k, v, bias *Node }

// attentionBackward returns the gradients of O = softmax(q·kᵀ·s + bias + mask)·v for q, k, v
// [B, T, H, hd], given the probabilities P [B, H, Tq, Tk], dO [B, Tq, H, hd], and q and the
// head-major qh, kh, vh [B, H, T, hd] the forward pass made:
//
//	dP = dO·vᵀ,  dL = P ⊙ (dP − Σ_k P ⊙ dP)   (softmax backward; masked entries have P = 0)
//	dq = s·dL·k,  dk = s·dLᵀ·q,  dv = Pᵀ·dO,  dbias = Σ_{h,q} dL
//
// Every product is laid out head-major with its left operand contracting its last axis, the
// layouts the Go backend's GEMM takes without copying. dk and dv contract over queries, so one of
// their operands must be transposed: the [Tq, Tk] ones (dL, P) for short sequences, or, when that
// moves more data (Tq·Tk > hd·(Tq + Tk), e.g. 513 video tokens with hd 64), the [T, hd] ones (q and
// dO in, dkᵀ and dvᵀ out). Every transpose is made of the backend's fast ones (tiled 2-D, row
// copies). Autodiff's version of the same backward made the backend transpose six [B, H, T, ·]
// tensors element by element in each attention layer (10% of a ViT-tiny step).
func attentionBackward(q, qh, kh, vh, probs, dOut *Node, scale float64, bias bool) attentionGrads {
	dOh := headMajor(dOut)
	dP := mixedDotGeneral(dOh, []int{3}, []int{0, 1}, vh, []int{3}, []int{0, 1}) // bhqd,bhkd->bhqk
	dL := Mul(probs, Sub(dP, ReduceAndKeep(Mul(dP, probs), ReduceSum, -1)))
	dS := MulScalar(dL, scale)
	g := attentionGrads{
		q: headMajor(mixedDotGeneral(dS, []int{3}, []int{0, 1}, kh, []int{2}, []int{0, 1})), // bhqk,bhkd->bhqd
	}
	d := probs.Shape().Dimensions
	tq, tk, hd := d[2], d[3], q.Shape().Dimensions[3]
	if tq*tk > hd*(tq+tk) {
		qT, dOT := headMajorT(q), headMajorT(dOut)                                                      // [B, H, hd, Tq]
		g.k = fromHeadMajorT(mixedDotGeneral(qT, []int{3}, []int{0, 1}, dS, []int{2}, []int{0, 1}))     // bhdq,bhqk->bhdk
		g.v = fromHeadMajorT(mixedDotGeneral(dOT, []int{3}, []int{0, 1}, probs, []int{2}, []int{0, 1})) // bhdq,bhqk->bhdk
	} else {
		g.k = headMajor(mixedDotGeneral(swapLast(dS), []int{3}, []int{0, 1}, qh, []int{2}, []int{0, 1}))     // bhkq,bhqd->bhkd
		g.v = headMajor(mixedDotGeneral(swapLast(probs), []int{3}, []int{0, 1}, dOh, []int{2}, []int{0, 1})) // bhkq,bhqd->bhkd
	}
	if bias {
		g.bias = ReduceSum(dL, 1, 2)
	}
	return g
}

// headMajor swaps axes 1 and 2 of x: [B, T, H, hd] ↔ [B, H, T, hd].
func headMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }

// headMajorT is x [B, T, H, hd] as [B, H, hd, T]: a 2-D transpose of [B·T, H·hd] and a transpose
// that keeps the last axis, both fast paths of the Go backend (it would move a 4-D x's T to the
// end element by element).
func headMajorT(x *Node) *Node {
	d := x.Shape().Dimensions
	b, t, h, hd := d[0], d[1], d[2], d[3]
	y := Transpose(Reshape(x, b*t, h*hd), 0, 1)                  // [H·hd, B·T]
	return TransposeAllAxes(Reshape(y, h, hd, b, t), 2, 0, 1, 3) // [B, H, hd, T]
}

// fromHeadMajorT is headMajorT's inverse: x [B, H, hd, T] as [B, T, H, hd].
func fromHeadMajorT(x *Node) *Node {
	d := x.Shape().Dimensions
	b, h, hd, t := d[0], d[1], d[2], d[3]
	y := Transpose(Reshape(x, b*h*hd, t), 0, 1)                  // [T, B·H·hd]
	return TransposeAllAxes(Reshape(y, t, b, h, hd), 1, 0, 2, 3) // [B, T, H, hd]
}

// swapLast transposes the last two axes of x [B, H, M, N] as a 2-D transpose of [B·H·M, N]
// followed by a transpose that keeps the last axis: the Go backend runs both with its fast paths
// (tiled; row copies), where it would swap the two axes of a 4-D tensor element by element.
func swapLast(x *Node) *Node {
	d := x.Shape().Dimensions
	b, h, m, n := d[0], d[1], d[2], d[3]
	t := Transpose(Reshape(x, b*h*m, n), 0, 1)           // [N, B·H·M]
	t = TransposeAllAxes(Reshape(t, n, b*h, m), 1, 0, 2) // [B·H, N, M]
	return Reshape(t, b, h, n, m)
}

// Remat applies block to x; when the graph checkpoints activations (GraphOptions.Remat) it keeps
// only the block's input and output for the backward pass and recomputes what lies between
// (GoMLX's Node.Checkpoint / StopCheckpoint): activation memory per transformer block drops to
// one residual stream, for about one more forward pass of compute.
func Remat(x *Node, block func(*Node) *Node) *Node {
	if !rematOn(x.Graph()) {
		return block(x)
	}
	return block(x.Checkpoint()).StopCheckpoint()
}

// Embedding looks up rows of a [vocab, dim] table for integer ids of any shape.
func Embedding(scope *model.Scope, ids *Node, vocab, dim int, dtype dtypes.DType) *Node {
	table := scope.VariableWithShape("embeddings", shapes.Make(dtype, vocab, dim)).NodeValue(ids.Graph())
	return Gather(table, InsertAxes(ids, -1))
}

// PositionEmbedding adds a learned [T, D] position table to x [B, T, D].
func PositionEmbedding(scope *model.Scope, x *Node) *Node {
	t, d := x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	pos := scope.VariableWithShape("positions", shapes.Make(x.DType(), t, d)).NodeValue(x.Graph())
	return Add(x, InsertAxes(pos, 0))
}

// Conv2D is a 2-D convolution over x [B, H, W, Cin] (channels last) with a k×k kernel, the given
// stride and zero padding (k−1)/2 on each side, plus a bias: [B, Ho, Wo, out] with
// Ho = ⌊(H + 2·⌊(k−1)/2⌋ − k)/stride⌋ + 1. The kernel [k, k, Cin, out] is LeCun-normal,
// N(0, 1/(k·k·Cin)).
//
// It is computed as im2col + one matrix multiplication: the k² shifted (strided) views of the
// padded input are concatenated on the channel axis and multiplied by the kernel reshaped to
// [k·k·Cin, out]. On the Go backend that is ~30× faster than its generic convolution (which took
// 80% of a TrajViT2 step), and XLA fuses it just as well. On the Go backend the views are one
// Gather of pixel rows (im2colGather: the TrajViT2-tiny step 0.15–0.19 → 0.13 s); elsewhere they
// are strided slices, which XLA fuses.
func Conv2D(scope *model.Scope, x *Node, out, k, stride int) *Node {
	d := x.Shape().Dimensions
	h, w, in := d[1], d[2], d[3]
	kernel := scope.WithInitializer(normalInit(scope.Store(), 1/math.Sqrt(float64(k*k*in)))).
		VariableWithShape("kernel", shapes.Make(x.DType(), k, k, in, out)).NodeValue(x.Graph())
	bias := scope.WithInitializer(normalInit(scope.Store(), 0)).
		VariableWithShape("biases", shapes.Make(x.DType(), out)).NodeValue(x.Graph())
	p := (k - 1) / 2
	ho, wo := (h+2*p-k)/stride+1, (w+2*p-k)/stride+1
	xp := x
	if p > 0 {
		xp = Pad(x, ScalarZero(x.Graph(), x.DType()), compute.PadAxis{}, compute.PadAxis{Start: p, End: p},
			compute.PadAxis{Start: p, End: p}, compute.PadAxis{})
	}
	im2col := im2colSlices
	if x.Graph().Backend().String() == "go" { // GoMLX's Go backend (compute/gobackend.BackendName)
		im2col = im2colGather
	}
	cols := im2col(xp, k, stride, ho, wo) // [B, Ho, Wo, k·k·Cin]
	y := matmulWeight(cols, Reshape(kernel, k*k*in, out))
	return Add(y, ExpandLeftToRank(bias, 4))
}

// im2colSlices is Conv2D's im2col: the k² (strided) shifted views of the padded input xp
// [B, Hp, Wp, C] for an output [Ho, Wo], side by side on the channel axis ordered (dy, dx, c) like
// the kernel: [B, Ho, Wo, k·k·C].
func im2colSlices(xp *Node, k, stride, ho, wo int) *Node {
	views := make([]*Node, 0, k*k)
	for dy := range k {
		for dx := range k {
			views = append(views, Slice(xp, AxisRange(),
				AxisRange(dy, dy+stride*(ho-1)+1).Stride(stride),
				AxisRange(dx, dx+stride*(wo-1)+1).Stride(stride), AxisRange()))
		}
	}
	if len(views) == 1 {
		return views[0]
	}
	return Concatenate(views, -1)
}

// im2colGather is im2colSlices on the Go backend: the k² (strided) shifted views of the padded
// input xp [B, Hp, Wp, C], side by side on the channel axis, as one Gather of its pixel rows (C
// contiguous values each). The backend copies gathered rows with copy() and adds the gradient's
// rows with SIMD, where it would slice (and pad back) element by element.
func im2colGather(xp *Node, k, stride, ho, wo int) *Node {
	d := xp.Shape().Dimensions
	b, hp, wp, c := d[0], d[1], d[2], d[3]
	idx := make([]int32, 0, b*ho*wo*k*k)
	for bi := range b {
		for y := range ho {
			for x := range wo {
				for dy := range k {
					for dx := range k {
						idx = append(idx, int32((bi*hp+y*stride+dy)*wp+x*stride+dx))
					}
				}
			}
		}
	}
	ids := ConstTensor(xp.Graph(), tensors.FromFlatDataAndDimensions(idx, b, ho, wo, k*k, 1))
	cols := Gather(Reshape(xp, b*hp*wp, c), ids) // [B, Ho, Wo, k·k, C]
	return Reshape(cols, b, ho, wo, k*k*c)
}

// KeyMask turns a [B, T] boolean "valid token" mask into the [B, T, T] attention mask of
// Attention: every query may attend to every valid key.
func KeyMask(valid *Node) *Node {
	t := valid.Shape().Dimensions[1]
	return BroadcastToDims(InsertAxes(valid, 1), valid.Shape().Dimensions[0], t, t)
}
