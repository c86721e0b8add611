package pruning

// Sequence packing for pruned video tokens (STTS, arXiv:2603.18004, packs them the same way). After pruning, each video keeps a
// different number of tokens; instead of padding every video to the longest, the kept tokens of
// several videos are packed into fixed-length rows and a block-diagonal attention mask keeps the
// videos from seeing each other, so the encoder computes exactly what it would on each video
// alone. The index maps move a flat [ΣLengths, D] token matrix into rows and back.
//
// Everything here is plain host-side Go: it computes placements, masks and index maps that a
// graph then uses (e.g. with Gather / Scatter).

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/core/tensors"
)

// Packing places sequences (e.g. the kept tokens of each video) into rows of RowLen slots.
// Sequence i occupies slots Offset[i] … Offset[i]+Lengths[i]−1 of row Row[i]; the slots of a row
// not held by any sequence are padding. Flat slot numbers are row·RowLen+slot.
type Packing struct {
	RowLen, Rows int
	Row, Offset  []int // per sequence: its row and its first slot
	Lengths      []int
}

// PackFFD packs sequences of the given lengths first-fit-decreasing (longest first; ties by
// index for determinism) into rows of rowLen: each sequence goes into the first (lowest-index)
// row with enough free slots, appended after what that row already holds, and a new row is opened
// only when none has room. It returns an error if a sequence is longer than rowLen, a length is
// negative or rowLen is not positive. Zero-length sequences hold no slots; they are recorded in
// row 0 (opened if the input has no tokens at all) at its current fill, so Row[i] ∈ [0, Rows)
// always. No lengths give zero rows.
func PackFFD(lengths []int, rowLen int) (Packing, error) {
	if rowLen <= 0 {
		return Packing{}, fmt.Errorf("PackFFD: row length %d must be positive", rowLen)
	}
	for i, l := range lengths {
		if l < 0 {
			return Packing{}, fmt.Errorf("PackFFD: sequence %d has negative length %d", i, l)
		}
		if l > rowLen {
			return Packing{}, fmt.Errorf("PackFFD: sequence %d has %d tokens, more than the row length %d", i, l, rowLen)
		}
	}
	n := len(lengths)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	// Longest first; a stable sort keeps equal lengths in index order.
	slices.SortStableFunc(order, func(a, b int) int { return lengths[b] - lengths[a] })

	p := Packing{
		RowLen:  rowLen,
		Row:     make([]int, n),
		Offset:  make([]int, n),
		Lengths: slices.Clone(lengths),
	}
	var fill []int // per row: slots used so far
	for _, i := range order {
		r := slices.IndexFunc(fill, func(used int) bool { return used+lengths[i] <= rowLen })
		if r < 0 {
			fill = append(fill, 0)
			r = len(fill) - 1
		}
		p.Row[i], p.Offset[i] = r, fill[r]
		fill[r] += lengths[i]
	}
	p.Rows = len(fill)
	return p, nil
}

// Segment returns, per flat slot (Rows·RowLen), the index of the sequence it holds, or -1 for
// padding.
func (p Packing) Segment() []int {
	seg := make([]int, p.Rows*p.RowLen)
	for s := range seg {
		seg[s] = -1
	}
	for i, l := range p.Lengths {
		base := p.Row[i]*p.RowLen + p.Offset[i]
		for j := range l {
			seg[base+j] = i
		}
	}
	return seg
}

// Mask returns the [Rows·RowLen·RowLen] block-diagonal boolean mask, row-major as
// [Rows][RowLen (query)][RowLen (key)]: slot q may attend to slot k iff both hold tokens of the
// same sequence. Padding slots attend only to themselves, so a softmax over every query's keys
// stays defined; tokens never attend to padding. The mask is symmetric in (q, k).
func (p Packing) Mask() []bool {
	seg := p.Segment()
	l := p.RowLen
	mask := make([]bool, p.Rows*l*l)
	for r := range p.Rows {
		for q := range l {
			sq := seg[r*l+q]
			for k := range l {
				mask[(r*l+q)*l+k] = q == k || (sq >= 0 && seg[r*l+k] == sq)
			}
		}
	}
	return mask
}

// GatherIndex returns, per flat slot (Rows·RowLen), the flat source index (sequence i, token j
// → base[i]+j, where base is the prefix sum of Lengths), or -1 for padding — used to pack a
// [ΣLengths, D] token matrix into [Rows, RowLen, D] (padding slots take a fill value).
func (p Packing) GatherIndex() []int {
	idx := make([]int, p.Rows*p.RowLen)
	for s := range idx {
		idx[s] = -1
	}
	base := 0
	for i, l := range p.Lengths {
		slot := p.Row[i]*p.RowLen + p.Offset[i]
		for j := range l {
			idx[slot+j] = base + j
		}
		base += l
	}
	return idx
}

// ScatterIndex is the inverse of GatherIndex: per source token (ΣLengths, sequence i, token j at
// base[i]+j), its flat slot row·RowLen+slot — used to bring [Rows, RowLen, D] results back to
// [ΣLengths, D]. GatherIndex[ScatterIndex[t]] = t for every token t.
func (p Packing) ScatterIndex() []int {
	total := 0
	for _, l := range p.Lengths {
		total += l
	}
	idx := make([]int, 0, total)
	for i, l := range p.Lengths {
		slot := p.Row[i]*p.RowLen + p.Offset[i]
		for j := range l {
			idx = append(idx, slot+j)
		}
	}
	return idx
}

// Utilization is Σ Lengths / (Rows·RowLen), the share of slots holding tokens (0 when there are
// no rows).
func (p Packing) Utilization() float64 {
	if p.Rows == 0 {
		return 0
	}
	total := 0
	for _, l := range p.Lengths {
		total += l
	}
	return float64(total) / float64(p.Rows*p.RowLen)
}

// PackedBatch holds the host-side inputs of a packed video-wide encoder stage for one batch of B
// videos of N tokens each, of which each video keeps a subset (its kept flags): the kept tokens
// are packed first-fit-decreasing into Rows rows of RowLen = N slots (so any video fits in one
// row), the encoder blocks run on the rows under the block-diagonal Mask, and Unpack brings each
// video's kept tokens back, in their original order, padded to K per video.
//
// Shapes are bucketed so that a training run compiles only a few graphs: Rows is rounded up to
// a power of two (at most B) with all-padding rows, K up to a multiple of ⌈N/4⌉ (at most N).
type PackedBatch struct {
	B, N, Rows, RowLen, K int
	Lengths               []int     // kept tokens per video
	Gather                []int32   // [Rows·RowLen]: flat index into the [B·N] tokens (0 for padding)
	SlotValid             []float32 // [Rows·RowLen]: 1 for a slot holding a token, 0 for padding
	Mask                  []bool    // [Rows, RowLen, RowLen] block-diagonal attention mask
	Unpack                []int32   // [B·K]: flat slot index of video b's j-th kept token (0 past its length)
	Valid                 []bool    // [B·K]: whether video b has a j-th kept token
}

// PackKept builds the PackedBatch of kept flags keep[b][i] (B videos of N tokens each). Every
// video must keep at least one token.
func PackKept(keep [][]bool) (PackedBatch, error) {
	b := len(keep)
	if b == 0 {
		return PackedBatch{}, fmt.Errorf("PackKept: no videos")
	}
	n := len(keep[0])
	lengths := make([]int, b)
	kmax := 0
	for v, k := range keep {
		if len(k) != n {
			return PackedBatch{}, fmt.Errorf("PackKept: video %d has %d tokens, video 0 has %d", v, len(k), n)
		}
		for _, f := range k {
			if f {
				lengths[v]++
			}
		}
		if lengths[v] == 0 {
			return PackedBatch{}, fmt.Errorf("PackKept: video %d keeps no token", v)
		}
		kmax = max(kmax, lengths[v])
	}
	p, err := PackFFD(lengths, n)
	if err != nil {
		return PackedBatch{}, err
	}
	rows := 1
	for rows < p.Rows {
		rows *= 2
	}
	rows = min(rows, b)
	step := (n + 3) / 4
	kb := min(n, (kmax+step-1)/step*step)
	p.Rows = rows // the extra rows are all padding
	pb := PackedBatch{B: b, N: n, Rows: rows, RowLen: n, K: kb, Lengths: lengths,
		Gather: make([]int32, rows*n), SlotValid: make([]float32, rows*n), Unpack: make([]int32, b*kb), Valid: make([]bool, b*kb)}
	// The packing's index maps number the kept tokens 0…ΣLengths−1, video by video in order;
	// ids maps that number to the token's flat index v·N + i in the [B·N] tokens.
	ids := make([]int32, 0, len(keep)*n)
	for v, k := range keep {
		for i, f := range k {
			if f {
				ids = append(ids, int32(v*n+i))
			}
		}
	}
	for slot, src := range p.GatherIndex() {
		if src >= 0 {
			pb.Gather[slot], pb.SlotValid[slot] = ids[src], 1
		}
	}
	scatter, base := p.ScatterIndex(), 0
	for v, l := range lengths {
		for j := range l {
			pb.Unpack[v*kb+j], pb.Valid[v*kb+j] = int32(scatter[base+j]), true
		}
		base += l
	}
	pb.Mask = p.Mask()
	return pb, nil
}

// Tensors returns the graph inputs of the packing, in PackedNodes order: gather [Rows·RowLen]
// int32, slot valid [Rows·RowLen] f32, mask [Rows, RowLen, RowLen] bool, unpack [B·K] int32 and
// valid [B, K] bool.
func (pb PackedBatch) Tensors() []*tensors.Tensor {
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(pb.Gather, len(pb.Gather)),
		tensors.FromFlatDataAndDimensions(pb.SlotValid, len(pb.SlotValid)),
		tensors.FromFlatDataAndDimensions(pb.Mask, pb.Rows, pb.RowLen, pb.RowLen),
		tensors.FromFlatDataAndDimensions(pb.Unpack, len(pb.Unpack)),
		tensors.FromFlatDataAndDimensions(pb.Valid, pb.B, pb.K),
	}
}
