package losses

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Mask losses of the TrajTok/TrajViT2 trainer: predicted masks are matched to target masks (see
// Hungarian), and each matched pair k of example b contributes with weight w[b, k] (1 = matched
// pair, 0 = padding). The pair losses are combined as the weighted mean
//
//	L = Σ_{b,k} w[b,k] · ℓ[b,k] / Σ_{b,k} w[b,k]     (0 when Σ w = 0).

// weightedPairMean returns Σ w·ℓ / Σ w for per-pair losses ℓ and weights w [B, K], or 0 when all
// weights are zero.
func weightedPairMean(perPair, weight *Node) *Node {
	weight = ConvertDType(weight, perPair.DType())
	sumW := ReduceAllSum(weight)
	positive := GreaterThan(sumW, ZerosLike(sumW))
	denominator := Where(positive, sumW, OnesLike(sumW))
	return Div(ReduceAllSum(Mul(perPair, weight)), denominator)
}

// DiceLoss: per pair 1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1), summed over the last axis (pixels);
// pred, target [B, K, N]; weight [B, K] (1 = matched pair, 0 = padding) → scalar weighted mean over pairs.
//
// pred holds probabilities in [0, 1] (e.g. softmax or sigmoid masks); target may be binary or
// soft. The +1 smoothing (as in DETR/Mask2Former) makes an empty prediction of an empty target a
// loss of 0 and keeps the gradient finite.
func DiceLoss(pred, target, weight *Node) *Node {
	target = ConvertDType(target, pred.DType())
	intersection := ReduceSum(Mul(pred, target), -1)                           // Σ p·t   [B, K]
	sizes := Add(ReduceSum(pred, -1), ReduceSum(target, -1))                   // Σ p + Σ t
	dice := Div(AddScalar(MulScalar(intersection, 2), 1), AddScalar(sizes, 1)) // (2·Σ p·t + 1) / (Σ p + Σ t + 1)
	return weightedPairMean(OneMinus(dice), weight)
}

// Default focal-loss parameters (Lin et al. 2017; DETR/Mask2Former): pass them to FocalLoss.
const (
	DefaultFocalAlpha = 0.25
	DefaultFocalGamma = 2.0
)

// Probability clipping of FocalLoss, so that log p and log(1 − p) stay finite.
const focalEpsilon = 1e-6

// FocalLoss: binary focal loss on probabilities, per pixel
// −[t·α·(1−p)^γ·log p + (1−t)·(1−α)·p^γ·log(1−p)], p clipped to [1e-6, 1−1e-6], averaged over
// pixels then weighted-mean over pairs like DiceLoss. α = 0.25, γ = 2 by default (args:
// DefaultFocalAlpha, DefaultFocalGamma).
//
// (Lin et al., "Focal Loss for Dense Object Detection", 2017, with α weighting the positives.)
// pred, target [B, K, N]; weight [B, K]. The clipping zeroes the gradient of pixels with p outside
// [1e-6, 1−1e-6].
func FocalLoss(pred, target, weight *Node, alpha, gamma float64) *Node {
	target = ConvertDType(target, pred.DType())
	p := ClipScalar(pred, focalEpsilon, 1-focalEpsilon)
	q := OneMinus(p)
	gammaNode := Scalar(p.Graph(), p.DType(), gamma)
	// α·(1−p)^γ·log p: positives, down-weighted where already confident (p → 1).
	positive := MulScalar(Mul(Pow(q, gammaNode), Log(p)), alpha)
	// (1−α)·p^γ·log(1−p): negatives, down-weighted where already confident (p → 0).
	negative := MulScalar(Mul(Pow(p, gammaNode), Log(q)), 1-alpha)
	perPixel := Neg(Add(Mul(target, positive), Mul(OneMinus(target), negative)))
	return weightedPairMean(ReduceMean(perPixel, -1), weight)
}

// InfoNCE is the symmetric contrastive loss of CLIP: logits = (a·bᵀ)/τ for L2-normalised
// a, b [B, D] (normalise inside), loss = (CE(logits, diag) + CE(logitsᵀ, diag)) / 2.
// temperature is a scalar node (learnable or constant).
//
// Pair i (row i of a with row i of b) is the positive, the other B−1 rows the negatives:
//
//	CE(logits, diag)  = −(1/B) Σ_i log softmax_j(logits[i, j])[j = i]   (a → b)
//	CE(logitsᵀ, diag) = −(1/B) Σ_j log softmax_i(logits[i, j])[i = j]   (b → a)
//
// (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
// 2021; van den Oord et al., "Representation Learning with Contrastive Predictive Coding", 2018.)
func InfoNCE(a, b, temperature *Node) *Node {
	g := a.Graph()
	temperature = ConvertDType(temperature, a.DType())
	an := L2Normalize(a, -1)
	bn := L2Normalize(ConvertDType(b, a.DType()), -1)
	logits := Div(Einsum("id,jd->ij", an, bn), temperature) // cos(a_i, b_j) / τ   [B, B]
	batch := logits.Shape().Dimensions[0]
	diag := Diagonal(g, batch)
	zeros := ZerosLike(logits)
	// The diagonal is selected with Where, not multiplied by an identity, so that a −Inf off the
	// diagonal (tiny τ) cannot turn into 0·(−Inf) = NaN.
	rowsCE := Neg(ReduceAllMean(ReduceSum(Where(diag, LogSoftmax(logits, 1), zeros), 1))) // a → b
	colsCE := Neg(ReduceAllMean(ReduceSum(Where(diag, LogSoftmax(logits, 0), zeros), 0))) // b → a
	return DivScalar(Add(rowsCE, colsCE), 2)
}

// CLIP's temperature: initial τ = 0.07 and lower bound τ ≥ 1/100.
const (
	initialTemperature = 0.07
	maxLogitScale      = 100.0
)

// LearnableTemperature returns τ = exp(−logit_scale) with logit_scale a trainable scalar variable
// initialised to ln(1/0.07) and clamped so 1/τ ≤ 100 (CLIP) — takes a *model.Scope
// ("github.com/gomlx/gomlx/ml/model"); use scope.VariableWithValue.
//
// The variable is "logit_scale" in scope, of the given dtype. The clamp is applied in the graph,
// τ = exp(−min(logit_scale, ln 100)), rather than by rewriting the variable after each step as
// CLIP does: beyond ln 100 the gradient w.r.t. logit_scale is 0.
func LearnableTemperature(scope *model.Scope, g *Graph, dtype dtypes.DType) *Node {
	initial := shapes.CastAsDType(math.Log(1/initialTemperature), dtype)
	logitScale := scope.VariableWithValue("logit_scale", initial).NodeValue(g)
	return Exp(Neg(MinScalar(logitScale, math.Log(maxLogitScale))))
}
