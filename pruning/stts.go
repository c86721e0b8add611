package pruning

// STTS: learned spatio-temporal token scoring and pruning inside a video VLM's vision encoder
// ("Unified Spatio-Temporal Token Scoring for Efficient Video VLMs", Zhang et al.,
// arXiv:2603.18004; allenai/STTS olmo/nn/temporal_image_vit.py). Per frame, after ViT block
// `score_after` (the paper: after block 3 of its 27-block SigLIP 2 ViT, models.STTSPaperScoreAfter):
//
//  1. Group: 3×3 neighbouring patch tokens are attention-pooled into one token (a learned query
//     scores the 9 members; the token is the softmax-weighted mean of their values).
//  2. Score: s_{t,i} = σ(MLP([x_{t−1,i}, x_{t,i}])) for t ≥ 1 — how much token i changed since the
//     previous frame. Scores are min-max normalised over the video to [e⁻², 1]; frame-0 tokens
//     score exactly 1.
//  3. Bias: the next block is a video-wide attention block with log(s) added to every key's logit
//     (log s ∈ [−2, 0]). This is the scorer's only gradient path besides the auxiliary loss: the
//     pruning decision itself is not differentiable.
//  4. Auxiliary loss: 0.5 · MSE(s_{t,i}, 1 − cos(x_{t−1,i}, x_{t,i})) on t ≥ 1 (target detached):
//     redundant tokens (unchanged since the previous frame) should score low.
//  5. Prune: rank all tokens of the whole video globally and keep the top k = ⌈keep·N⌉; frame-0
//     tokens are always kept. Kept tokens stay in their original order (and keep the position
//     information they were embedded with); the rest of the encoder and the language model only
//     see them — that is where the compute goes down.
//
// Random pruning (the baseline) ranks by random scores instead, with the same k and first-frame
// rule, and no bias. Spatiotemporal token pruning (the training-free baseline, spatiotemporal.go) decides on raw pixels
// before the network runs, so each video keeps a different number of tokens: those are packed
// into rows with a block-diagonal mask (packing.go, PackedBatch) for the remaining blocks and
// unpacked, padded, for the language model.
//
// Where reel differs from the paper's code: there the ViT keeps its patch tokens (729 per frame)
// through every block and per frame; the 3×3 pooling that feeds the scorer is a side branch, the
// bias enters the next block at patch level, pruning then drops whole 3×3 patch groups from the
// remaining per-frame blocks (kept patches of several frames bin-packed into rows), and the
// connector pools the surviving groups 3×3 at the ViT's output for the language model. reel pools
// the patch tokens into group tokens at the scorer and runs the blocks after it video-wide on
// group tokens (9× fewer than patches), which keeps the graph's shapes static: the unit pruned and
// the budget (a share of the video's 3×3 groups, frame 0 kept) are the paper's, the tokens the
// later blocks see are not.

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// MinScore is the lower end of the normalised score range, e⁻² (so log(score) ≥ −2).
var MinScore = math.Exp(-2)

// GroupPool attention-pools non-overlapping g×g groups of patch tokens x [B, grid², D] (row-major
// patch grid) into [B, (grid/g)², D].
func GroupPool(scope *model.Scope, x *Node, grid, g int) *Node {
	scope = models.WithInit(scope)
	d := x.Shape().Dimensions
	b, dim := d[0], d[2]
	n := grid / g
	y := Reshape(x, b, n, g, n, g, dim)
	y = TransposeAllAxes(y, 0, 1, 3, 2, 4, 5) // [B, n, n, g, g, D]
	y = Reshape(y, b, n*n, g*g, dim)          // [B, G, g², D]
	keys := models.Linear(scope.In("key"), y, dim, false)
	vals := models.Linear(scope.In("value"), y, dim, true)
	q := scope.VariableWithShape("query", shapes.Make(x.DType(), dim)).NodeValue(x.Graph())
	w := Softmax(MulScalar(Einsum("bgpd,d->bgp", keys, q), 1/math.Sqrt(float64(dim))), -1)
	return Einsum("bgp,bgpd->bgd", w, vals)
}

// Score returns the normalised STTS scores [B, T, G] of group tokens x [B, T, G, D] and the raw
// sigmoid scores of frames 1… [B, T−1, G] (for the auxiliary loss).
func Score(scope *model.Scope, x *Node) (scores, raw *Node) {
	scope = models.WithInit(scope)
	d := x.Shape().Dimensions
	b, t, gN, dim := d[0], d[1], d[2], d[3]
	prev := Slice(x, AxisRange(), AxisRange(0, t-1))
	cur := Slice(x, AxisRange(), AxisRangeToEnd(1))
	h := Concatenate([]*Node{prev, cur}, -1) // [B, T−1, G, 2D]
	h = activation.Apply(activation.TypeGelu, models.Linear(scope.In("fc1"), h, dim, true))
	raw = Sigmoid(Squeeze(models.Linear(scope.In("fc2"), h, 1, true), -1)) // [B, T−1, G]
	scores = Concatenate([]*Node{Ones(x.Graph(), shapes.Make(x.DType(), b, 1, gN)), NormalizeScores(raw)}, 1)
	return scores, raw
}

// NormalizeScores min-max normalises s [B, …] over all but the batch axis to [e⁻², 1].
func NormalizeScores(s *Node) *Node {
	axes := make([]int, s.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	lo := StopGradient(ReduceAndKeep(s, ReduceMin, axes...))
	hi := StopGradient(ReduceAndKeep(s, ReduceMax, axes...))
	u := Div(Sub(s, lo), AddScalar(Sub(hi, lo), 1e-6))
	return AddScalar(MulScalar(u, 1-MinScore), MinScore)
}

// AuxLoss is 0.5·MSE(raw score, 1 − cos(x_{t−1}, x_t)) over frames 1… (the target is detached).
func AuxLoss(raw, x *Node) *Node {
	t := x.Shape().Dimensions[1]
	prev := L2Normalize(Slice(x, AxisRange(), AxisRange(0, t-1)), -1)
	cur := L2Normalize(Slice(x, AxisRange(), AxisRangeToEnd(1)), -1)
	target := StopGradient(OneMinus(ReduceSum(Mul(prev, cur), -1))) // [B, T−1, G]
	return MulScalar(ReduceAllMean(Square(Sub(raw, target))), 0.5)
}

// KeepCount is the number of tokens kept out of n at the given ratio (at least firstFrame, the
// always-kept first-frame tokens, at most n).
func KeepCount(n, firstFrame int, keep float64) int {
	return min(n, max(firstFrame, int(math.Ceil(keep*float64(n)))))
}

// Prune keeps, per video, the k tokens of x [B, N, D] with the highest rank scores [B, N] (ties
// to the earlier token), with the first firstFrame tokens always kept, and returns them in their
// original order [B, k, D] with the kept flags [B, N]. Selection is a one-hot matrix product, so
// the kept tokens' values carry gradients (the choice itself does not).
func Prune(x, rank *Node, k, firstFrame int) (kept, keptMask *Node) {
	g := x.Graph()
	n := x.Shape().Dimensions[1]
	first := LessThan(Iota(g, shapes.Make(dtypes.Int32, n), 0), Scalar(g, dtypes.Int32, firstFrame))
	boost := ConvertDType(first, rank.DType()) // rank scores are ≤ 1: +2 puts frame 0 strictly first
	r := Add(StopGradient(rank), MulScalar(InsertAxes(boost, 0), 2))
	keptMask = TopKMask(r, k, -1) // [B, N]
	pos := Sub(CumSum(ConvertDType(keptMask, dtypes.Int32), 1), Scalar(g, dtypes.Int32, 1))
	sel := Mul(OneHot(pos, k, x.DType()), InsertAxes(ConvertDType(keptMask, x.DType()), -1)) // [B, N, k]
	return Einsum("bnk,bnd->bkd", sel, x), keptMask
}

// Selector implements models.TokenSelector for the pruning modes "none", "random", "stts" and
// "spatiotemporal".
type Selector struct {
	Mode       string       // none | random | stts | spatiotemporal
	Group      int          // group side (paper: 3)
	Grid       int          // patch grid side per frame
	Frames     int          // T
	Keep       float64      // keep ratio (random, stts)
	RandomRank *Node        // [B, T·G] random scores (mode random), supplied with the batch
	Packed     *PackedNodes // mode spatiotemporal: the batch's PackedBatch as graph inputs

	scores *Node // STTS scores of the graph being built, from Score to Select
}

// GroupTokens is the number of group tokens per frame.
func (s *Selector) GroupTokens() int { n := s.Grid / s.Group; return n * n }

// Kept is the number of tokens the video-wide blocks after pruning see (mode spatiotemporal: varies per
// video; the keep-ratio count is returned).
func (s *Selector) Kept() int {
	n := s.Frames * s.GroupTokens()
	if s.Mode == "none" {
		return n
	}
	return KeepCount(n, s.GroupTokens(), s.Keep)
}

// Pool implements models.TokenSelector (attention pooling of Group×Group patches).
func (s *Selector) Pool(scope *model.Scope, x *Node) *Node {
	return GroupPool(scope, x, s.Grid, s.Group)
}

type selector struct{ *Selector }

// TokenSelector adapts s to models.TokenSelector.
func (s *Selector) TokenSelector() models.TokenSelector { return selector{s} }

func (s selector) Group(scope *model.Scope, x *Node) *Node { return s.Pool(scope, x) }

func (s selector) Score(scope *model.Scope, x *Node) (bias, aux *Node) {
	if s.Mode != "stts" {
		return nil, nil
	}
	scores, raw := Score(scope, x)
	b := x.Shape().Dimensions[0]
	s.scores = Reshape(scores, b, -1)
	return Log(s.scores), AuxLoss(raw, x)
}

func (s selector) Select(x *Node) (rows, mask *Node) {
	switch s.Mode {
	case "stts":
		kept, _ := Prune(x, s.scores, s.Kept(), s.GroupTokens())
		return kept, nil
	case "random":
		kept, _ := Prune(x, s.RandomRank, s.Kept(), s.GroupTokens())
		return kept, nil
	case "spatiotemporal":
		return s.Packed.Pack(x)
	}
	return x, nil
}

func (s selector) Unpack(rows *Node) (tokens, valid *Node) {
	if s.Mode == "spatiotemporal" {
		return s.Packed.Unpack(rows)
	}
	return rows, nil
}

// PackedNodes are a PackedBatch's index maps and masks as graph inputs (see PackedBatch.Tensors).
type PackedNodes struct {
	Gather    *Node // [Rows·RowLen] int32
	SlotValid *Node // [Rows·RowLen] float
	Mask      *Node // [Rows, RowLen, RowLen] bool
	UnpackIdx *Node // [B·K] int32
	Valid     *Node // [B, K] bool
}

// Pack moves the kept tokens of x [B, N, D] into rows [Rows, RowLen, D] (padding slots zero) and
// returns them with the block-diagonal mask.
func (p *PackedNodes) Pack(x *Node) (rows, mask *Node) {
	d := x.Shape().Dimensions
	flat := Reshape(x, d[0]*d[1], d[2])
	m := p.Mask.Shape().Dimensions
	rows = Gather(flat, InsertAxes(p.Gather, -1)) // [Rows·RowLen, D]
	rows = Mul(rows, InsertAxes(ConvertDType(p.SlotValid, x.DType()), -1))
	return Reshape(rows, m[0], m[1], d[2]), p.Mask
}

// Unpack brings packed rows [Rows, RowLen, D] back to per-video tokens [B, K, D] (zero past each
// video's length) and their valid flags [B, K].
func (p *PackedNodes) Unpack(rows *Node) (tokens, valid *Node) {
	d := rows.Shape().Dimensions
	v := p.Valid.Shape().Dimensions
	out := Gather(Reshape(rows, d[0]*d[1], d[2]), InsertAxes(p.UnpackIdx, -1)) // [B·K, D]
	out = Reshape(out, v[0], v[1], d[2])
	return Mul(out, InsertAxes(ConvertDType(p.Valid, rows.DType()), -1)), p.Valid
}
