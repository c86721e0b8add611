// Package losses holds reel's training objectives as graph functions.
package losses

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// TokenLogProbs returns log p(target) for logits [..., V] and integer targets [...].
func TokenLogProbs(logits, targets *Node) *Node {
	logp := LogSoftmax(logits, -1)
	onehot := OneHot(targets, logits.Shape().Dimensions[logits.Rank()-1], logits.DType())
	return ReduceSum(Mul(logp, onehot), -1)
}

// MaskedCrossEntropy is the mean next-token negative log-likelihood over positions where mask = 1:
// L = −Σ_i m_i log p(y_i) / max(1, Σ_i m_i).
func MaskedCrossEntropy(logits, targets, mask *Node) *Node {
	nll := Neg(TokenLogProbs(logits, targets))
	mask = ConvertDType(mask, logits.DType())
	total := ReduceAllSum(Mul(nll, mask))
	count := MaxScalar(ReduceAllSum(mask), 1.0)
	return Div(total, count)
}

// SequenceExactMatch returns, per example, 1 when every masked position's argmax equals its
// target (for teacher-forced greedy decoding this equals exact-match of the generated answer),
// and the per-example summed NLL over masked positions. logits [B, L, V], targets/mask [B, L].
func SequenceExactMatch(logits, targets, mask *Node) (correct, nll *Node) {
	pred := ArgMax(logits, -1, dtypes.Int32)
	m := ConvertDType(mask, logits.DType())
	wrong := Mul(ConvertDType(NotEqual(pred, targets), logits.DType()), m) // [B, L]
	correct = OneMinus(MinScalar(ReduceSum(wrong, -1), 1.0))
	nll = ReduceSum(Mul(Neg(TokenLogProbs(logits, targets)), m), -1)
	return correct, nll
}

// MSE is the mean over every element of (pred − target)²: the flow-matching objective on
// velocities, and the chunk-regression objective on actions.
func MSE(pred, target *Node) *Node {
	return ReduceAllMean(Square(Sub(pred, target)))
}

// SampleMSE is the mean squared error of each example: [B] for pred and target [B, ...].
func SampleMSE(pred, target *Node) *Node {
	d := Square(Sub(pred, target))
	axes := make([]int, d.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	if len(axes) == 0 {
		return d
	}
	return ReduceMean(d, axes...)
}

// WeightedMean is Σ w·x / (Σ w + 1e-6) for x, w [B]: the sample-weighted loss of reward-aligned
// behaviour cloning (huggingface/lerobot src/lerobot/rewards/sarm/rabc.py normalises a batch's
// weights to sum to B and averages the weighted losses, which is this).
func WeightedMean(x, w *Node) *Node {
	return Div(ReduceAllSum(Mul(x, w)), AddScalar(ReduceAllSum(w), 1e-6))
}
