package tokenizers

// Sequence packing for pruned video tokens (issue 6, STTS). After pruning, each video keeps a
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
