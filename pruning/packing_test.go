package pruning

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
)

// checkPacking verifies the invariants of a packing of lengths: every sequence is placed exactly
// once inside its row, no two tokens share a slot, Segment agrees with the placement, the mask is
// symmetric and block-diagonal, GatherIndex and ScatterIndex are inverse on the token slots, and
// (first fit) no two rows are at most half full.
func checkPacking(t *testing.T, p Packing, lengths []int, rowLen int) {
	t.Helper()
	n := len(lengths)
	require.Equal(t, rowLen, p.RowLen)
	require.Equal(t, lengths, p.Lengths)
	require.Len(t, p.Row, n)
	require.Len(t, p.Offset, n)

	total := 0
	owner := make([]int, p.Rows*rowLen)
	for s := range owner {
		owner[s] = -1
	}
	fill := make([]int, p.Rows)
	for i, l := range lengths {
		total += l
		require.True(t, p.Row[i] >= 0 && p.Row[i] < p.Rows, "sequence %d row %d of %d", i, p.Row[i], p.Rows)
		require.True(t, p.Offset[i] >= 0 && p.Offset[i]+l <= rowLen, "sequence %d overflows its row", i)
		for j := range l {
			s := p.Row[i]*rowLen + p.Offset[i] + j
			require.Equal(t, -1, owner[s], "slot %d taken by sequences %d and %d", s, owner[s], i)
			owner[s] = i
		}
		fill[p.Row[i]] += l
	}
	require.Equal(t, owner, p.Segment())
	if p.Rows > 0 {
		require.InDelta(t, float64(total)/float64(p.Rows*rowLen), p.Utilization(), 1e-12)
	}
	halfFull := 0
	for _, f := range fill {
		if 2*f <= rowLen {
			halfFull++
		}
	}
	require.LessOrEqual(t, halfFull, 1, "first fit leaves at most one row at most half full: %v", fill)

	// Mask: [Rows][RowLen][RowLen], symmetric, true exactly within a sequence's block and on the
	// diagonal for padding.
	mask := p.Mask()
	require.Len(t, mask, p.Rows*rowLen*rowLen)
	for r := range p.Rows {
		for q := range rowLen {
			for k := range rowLen {
				m := mask[(r*rowLen+q)*rowLen+k]
				require.Equal(t, m, mask[(r*rowLen+k)*rowLen+q], "mask not symmetric at row %d (%d,%d)", r, q, k)
				sq, sk := owner[r*rowLen+q], owner[r*rowLen+k]
				want := (sq >= 0 && sq == sk) || q == k
				require.Equal(t, want, m, "row %d q %d k %d", r, q, k)
			}
		}
	}

	// Gather / Scatter: inverse permutations between the ΣLengths tokens and the token slots.
	gather, scatter := p.GatherIndex(), p.ScatterIndex()
	require.Len(t, gather, p.Rows*rowLen)
	require.Len(t, scatter, total)
	for tok, s := range scatter {
		require.Equal(t, tok, gather[s])
	}
	tokens := 0
	for s, tok := range gather {
		require.Equal(t, owner[s] < 0, tok < 0, "slot %d", s)
		if tok >= 0 {
			tokens++
			require.Equal(t, s, scatter[tok])
		}
	}
	require.Equal(t, total, tokens)
	// Sequence i, token j is source base[i]+j.
	base := 0
	for i, l := range lengths {
		for j := range l {
			require.Equal(t, p.Row[i]*rowLen+p.Offset[i]+j, scatter[base+j])
		}
		base += l
	}
}

// The textbook example: 5,4,3,3,2,2,1 (Σ 20) into rows of 8 needs ⌈20/8⌉ = 3 rows, and FFD finds
// them: {5,3}, {4,3,1}, {2,2}.
func TestPackFFDKnownExample(t *testing.T) {
	lengths := []int{5, 4, 3, 3, 2, 2, 1}
	p, err := PackFFD(lengths, 8)
	require.NoError(t, err)
	checkPacking(t, p, lengths, 8)
	require.Equal(t, 3, p.Rows)
	require.Equal(t, []int{0, 1, 0, 1, 2, 2, 1}, p.Row)
	require.Equal(t, []int{0, 0, 5, 4, 0, 2, 7}, p.Offset)
	require.InDelta(t, 20.0/24, p.Utilization(), 1e-12)

	// Decreasing order matters: first fit in input order would use 3 rows ({3,3}, {5}, {5}).
	lengths = []int{3, 3, 5, 5}
	p, err = PackFFD(lengths, 8)
	require.NoError(t, err)
	checkPacking(t, p, lengths, 8)
	require.Equal(t, 2, p.Rows)
	require.Equal(t, []int{0, 1, 0, 1}, p.Row)
	require.Equal(t, []int{5, 5, 0, 0}, p.Offset)
}

func TestPackFFDDeterminism(t *testing.T) {
	// Ties go by index.
	p, err := PackFFD([]int{3, 3, 3}, 4)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2}, p.Row)
	p, err = PackFFD([]int{2, 2, 2, 2}, 4)
	require.NoError(t, err)
	require.Equal(t, []int{0, 0, 1, 1}, p.Row)
	require.Equal(t, []int{0, 2, 0, 2}, p.Offset)

	// Same input, same packing; the input slice is not modified.
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := make([]int, 50)
	for i := range lengths {
		lengths[i] = rng.IntN(17)
	}
	orig := append([]int(nil), lengths...)
	a, err := PackFFD(lengths, 16)
	require.NoError(t, err)
	b, err := PackFFD(lengths, 16)
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, orig, lengths)
}

func TestPackFFDErrorsAndEdges(t *testing.T) {
	_, err := PackFFD([]int{3, 9, 2}, 8)
	require.ErrorContains(t, err, "sequence 1 has 9 tokens")
	_, err = PackFFD([]int{-1}, 8)
	require.Error(t, err)
	_, err = PackFFD([]int{1}, 0)
	require.Error(t, err)

	// Exactly full rows.
	p, err := PackFFD([]int{8, 8}, 8)
	require.NoError(t, err)
	checkPacking(t, p, []int{8, 8}, 8)
	require.Equal(t, 1.0, p.Utilization())

	// No sequences: no rows.
	p, err = PackFFD(nil, 8)
	require.NoError(t, err)
	require.Equal(t, 0, p.Rows)
	require.Empty(t, p.Mask())
	require.Empty(t, p.ScatterIndex())
	require.Equal(t, 0.0, p.Utilization())

	// Empty sequences hold no slots but still get a valid row.
	p, err = PackFFD([]int{0, 0}, 4)
	require.NoError(t, err)
	checkPacking(t, p, []int{0, 0}, 4)
	require.Equal(t, 1, p.Rows)
	require.Equal(t, []int{-1, -1, -1, -1}, p.GatherIndex())
	p, err = PackFFD([]int{0, 3, 0}, 4)
	require.NoError(t, err)
	checkPacking(t, p, []int{0, 3, 0}, 4)
	require.Equal(t, []int{0, 0, 0}, p.Row)
	require.Equal(t, []int{0, 1, 2, -1}, p.GatherIndex())
}

// Random lengths: every invariant holds, and the row count is at least the volume bound.
func TestPackFFDRandomInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		rowLen := 1 + rng.IntN(24)
		lengths := make([]int, rng.IntN(25))
		total := 0
		for i := range lengths {
			lengths[i] = rng.IntN(rowLen + 1)
			total += lengths[i]
		}
		p, err := PackFFD(lengths, rowLen)
		require.NoError(t, err, "trial %d", trial)
		checkPacking(t, p, lengths, rowLen)
		require.GreaterOrEqual(t, p.Rows, (total+rowLen-1)/rowLen)
	}
}

// toyAttention is single-head softmax attention with identity projections over n tokens of width
// d (x is [n·d]): out_q = Σ_k softmax_k(x_q·x_k) x_k over the keys k with allowed(q, k).
func toyAttention(x []float64, n, d int, allowed func(q, k int) bool) []float64 {
	out := make([]float64, n*d)
	for q := range n {
		maxScore := math.Inf(-1)
		scores := make([]float64, n)
		for k := range n {
			if !allowed(q, k) {
				continue
			}
			for c := range d {
				scores[k] += x[q*d+c] * x[k*d+c]
			}
			maxScore = max(maxScore, scores[k])
		}
		var z float64
		for k := range n {
			if allowed(q, k) {
				w := math.Exp(scores[k] - maxScore)
				z += w
				for c := range d {
					out[q*d+c] += w * x[k*d+c]
				}
			}
		}
		for c := range d {
			out[q*d+c] /= z
		}
	}
	return out
}

// Packing several sequences, attending inside each row under the block-diagonal mask and
// scattering back gives, per token, what attending over each sequence alone gives; without the
// mask it does not.
func TestPackFFDAttentionEquivalence(t *testing.T) {
	const d, rowLen = 4, 12
	rng := rand.New(rand.NewPCG(3, 5))
	lengths := []int{7, 3, 12, 5, 1, 4, 9, 2}
	total := 0
	for _, l := range lengths {
		total += l
	}
	tokens := make([]float64, total*d) // the flat [ΣLengths, D] token matrix
	for i := range tokens {
		tokens[i] = rng.NormFloat64()
	}

	// Reference: each sequence alone.
	want := make([]float64, 0, total*d)
	base := 0
	for _, l := range lengths {
		seq := tokens[base*d : (base+l)*d]
		want = append(want, toyAttention(seq, l, d, func(q, k int) bool { return true })...)
		base += l
	}

	p, err := PackFFD(lengths, rowLen)
	require.NoError(t, err)
	checkPacking(t, p, lengths, rowLen)
	require.Less(t, p.Rows, len(lengths))

	// Pack [ΣLengths, D] → [Rows, RowLen, D]; padding slots get a large fill that would spoil any
	// token that saw it.
	packed := make([]float64, p.Rows*rowLen*d)
	for s, src := range p.GatherIndex() {
		for c := range d {
			if src < 0 {
				packed[s*d+c] = 5
			} else {
				packed[s*d+c] = tokens[src*d+c]
			}
		}
	}
	attend := func(mask []bool) []float64 {
		out := make([]float64, 0, len(packed))
		for r := range p.Rows {
			row := packed[r*rowLen*d : (r+1)*rowLen*d]
			out = append(out, toyAttention(row, rowLen, d, func(q, k int) bool {
				return mask == nil || mask[(r*rowLen+q)*rowLen+k]
			})...)
		}
		return out
	}
	unpack := func(out []float64) []float64 {
		got := make([]float64, total*d)
		for tok, s := range p.ScatterIndex() {
			copy(got[tok*d:(tok+1)*d], out[s*d:(s+1)*d])
		}
		return got
	}

	outMasked := attend(p.Mask())
	for _, v := range outMasked {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "padding slots must stay defined")
	}
	got := unpack(outMasked)
	for i := range want {
		require.InDelta(t, want[i], got[i], 1e-12, "token %d channel %d", i/d, i%d)
	}

	// Sanity: attending over whole rows (no mask) mixes sequences and padding.
	unmasked := unpack(attend(nil))
	differs := false
	for i := range want {
		if math.Abs(want[i]-unmasked[i]) > 1e-6 {
			differs = true
		}
	}
	require.True(t, differs, "the test must be sensitive to the mask")
}

// TestPackedBlocksMatchEachVideoAlone: the kept tokens of several videos, packed into rows
// (PackKept) and run through two real encoder blocks under the block-diagonal mask, then unpacked,
// equal running each video's kept tokens through the same blocks alone; padding stays zero.
func TestPackedBlocksMatchEachVideoAlone(t *testing.T) {
	const B, N, D, heads = 5, 12, 8, 2
	rng := rand.New(rand.NewPCG(9, 2))
	keep := make([][]bool, B)
	for v := range keep {
		keep[v] = make([]bool, N)
		for i := range N {
			keep[v][i] = rng.Float64() < 0.1+0.2*float64(v) // lengths from ~1 to ~11
		}
		keep[v][v] = true
	}
	pb, err := PackKept(keep)
	require.NoError(t, err)
	require.Less(t, pb.Rows, B, "some videos must share a row")
	x := randTensor(rng, B, N, D)

	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(4))
	blocks := func(scope *model.Scope, x, mask *Node) *Node {
		scope = models.WithInit(scope)
		for i := range 2 {
			x = models.Block(scope.In("block_%d", i), x, heads, 2, mask)
		}
		return x
	}
	packed, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		p := &PackedNodes{Gather: in[1], SlotValid: in[2], Mask: in[3], UnpackIdx: in[4], Valid: in[5]}
		rows, mask := p.Pack(in[0])
		tokens, valid := p.Unpack(blocks(scope, rows, mask))
		return []*Node{tokens, valid}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer packed.Finalize()
	args := []any{x}
	for _, a := range pb.Tensors() {
		args = append(args, a)
	}
	out, err := packed.Exec(args...)
	require.NoError(t, err)
	got := tensors.MustCopyFlatData[float32](out[0])
	valid := tensors.MustCopyFlatData[bool](out[1])

	alone, err := model.NewExecCanonical(backend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{blocks(scope, in[0], nil)}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer alone.Finalize()
	xs := tensors.MustCopyFlatData[float32](x)
	for v := range B {
		var seq []float32
		for i, k := range keep[v] {
			if k {
				seq = append(seq, xs[(v*N+i)*D:(v*N+i+1)*D]...)
			}
		}
		l := len(seq) / D
		o, err := alone.Exec(tensors.FromFlatDataAndDimensions(seq, 1, l, D))
		require.NoError(t, err)
		want := tensors.MustCopyFlatData[float32](o[0])
		for j := range pb.K {
			require.Equal(t, j < l, valid[v*pb.K+j], "video %d token %d valid", v, j)
			for c := range D {
				g := got[(v*pb.K+j)*D+c]
				if j < l {
					require.InDelta(t, want[j*D+c], g, 1e-5, "video %d token %d channel %d", v, j, c)
				} else {
					require.Zero(t, g, "padding")
				}
			}
		}
	}
}

func TestPackKeptBucketsAndErrors(t *testing.T) {
	keep := [][]bool{{true, false, false, false, false, false, false, false}, {true, true, true, false, false, false, false, false}, {true, false, false, false, false, false, false, false}}
	pb, err := PackKept(keep)
	require.NoError(t, err)
	require.Equal(t, []int{1, 3, 1}, pb.Lengths)
	require.Equal(t, 1, pb.Rows, "5 tokens fit one row of 8")
	require.Equal(t, 4, pb.K, "3 rounded up to a multiple of ⌈8/4⌉ = 2")
	_, err = PackKept([][]bool{{true, false}, {false, false}})
	require.ErrorContains(t, err, "video 1 keeps no token")
	_, err = PackKept([][]bool{{true, false}, {true}})
	require.ErrorContains(t, err, "video 1 has 1 tokens")
}
