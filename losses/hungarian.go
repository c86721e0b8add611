package losses

import (
	"fmt"
	"math"
)

// Hungarian solves the rectangular linear assignment problem exactly: it returns, for each row
// of cost (n×m), the column assigned to it (-1 if n > m and the row is left out), minimising the
// total cost, and that total.
//
// Every row is assigned when n ≤ m, every column when n > m; no column is used twice. The total
// is Σ_i cost[i][assign[i]] over the assigned rows (0 for an empty matrix or m = 0).
//
// Entries equal to +Inf are forbidden pairs: when an assignment with only finite entries exists,
// the returned one is optimal among those. NaN is treated as +Inf. When no finite assignment
// exists, total is +Inf and the assignment first minimises the number of forbidden pairs, then
// the sum of its finite entries (best effort when finite entries are near ±MaxFloat64).
//
// Hungarian panics on ragged rows and on −Inf entries (such a problem has no meaningful optimum).
//
// Algorithm: shortest augmenting paths with dual potentials (Kuhn–Munkres in the
// Jonker–Volgenant form), O(n²m) for n ≤ m. Rows are added one at a time; for row i a
// Dijkstra-like search over the reduced costs c'(r, j) = c(r, j) − u(r) − v(j) ≥ 0 finds the
// cheapest augmenting path to a free column, the potentials are moved by the path length so that
// reduced costs stay non-negative and are zero along the matching, and the path is flipped. For
// n > m the transpose is solved.
func Hungarian(cost [][]float64) (assign []int, total float64) {
	n := len(cost)
	if n == 0 {
		return []int{}, 0
	}
	m := len(cost[0])
	for i, row := range cost {
		if len(row) != m {
			panic(fmt.Sprintf("losses.Hungarian: ragged cost matrix: row 0 has %d columns, row %d has %d", m, i, len(row)))
		}
		for j, c := range row {
			if math.IsInf(c, -1) {
				panic(fmt.Sprintf("losses.Hungarian: cost[%d][%d] is -Inf", i, j))
			}
		}
	}
	assign = make([]int, n)
	for i := range assign {
		assign[i] = -1
	}
	if m == 0 {
		return assign, 0
	}

	// a is the (possibly transposed) matrix with rows ≤ columns, NaN replaced by +Inf.
	transpose := n > m
	rows, cols := n, m
	if transpose {
		rows, cols = m, n
	}
	a := make([][]float64, rows)
	for r := range a {
		a[r] = make([]float64, cols)
		for c := range a[r] {
			var x float64
			if transpose {
				x = cost[c][r]
			} else {
				x = cost[r][c]
			}
			if math.IsNaN(x) {
				x = math.Inf(1)
			}
			a[r][c] = x
		}
	}

	rowToCol, ok := assignRowsToCols(a)
	if !ok {
		// No assignment with only finite entries: replace +Inf by a big M such that one more
		// forbidden pair always costs more than any difference in finite entries
		// (M > 2·rows·R, R = max |finite entry|), and solve again.
		r := 0.0
		for _, row := range a {
			for _, x := range row {
				if !math.IsInf(x, 0) {
					r = math.Max(r, math.Abs(x))
				}
			}
		}
		big := 2*float64(rows)*(r+1) + 1
		if math.IsInf(big, 0) || big > math.MaxFloat64/float64(4*(rows+1)) {
			big = math.MaxFloat64 / float64(4*(rows+1))
		}
		for _, row := range a {
			for c, x := range row {
				if math.IsInf(x, 1) {
					row[c] = big
				}
			}
		}
		rowToCol, _ = assignRowsToCols(a)
	}

	for r, c := range rowToCol {
		if transpose {
			assign[c] = r
		} else {
			assign[r] = c
		}
	}
	for i, j := range assign {
		if j < 0 {
			continue
		}
		x := cost[i][j]
		if math.IsNaN(x) {
			x = math.Inf(1)
		}
		total += x
	}
	return assign, total
}

// assignRowsToCols solves the assignment problem for a rows×cols matrix a with rows ≤ cols and
// entries in ℝ ∪ {+Inf}. It returns the column of each row, or ok = false when some row cannot
// be matched through finite entries (no finite-cost assignment exists).
//
// Indices inside are 1-based, with column 0 a virtual column holding the row being inserted.
// u, v are the row and column potentials; p[j] is the row matched to column j (0 = free);
// way[j] is the previous column on the shortest alternating path to j; minv[j] is the
// shortest reduced-cost distance found so far from the inserted row to column j.
func assignRowsToCols(a [][]float64) (rowToCol []int, ok bool) {
	rows, cols := len(a), len(a[0])
	inf := math.Inf(1)
	u := make([]float64, rows+1)
	v := make([]float64, cols+1)
	p := make([]int, cols+1)
	way := make([]int, cols+1)
	minv := make([]float64, cols+1)
	used := make([]bool, cols+1)
	for i := 1; i <= rows; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = inf
			used[j] = false
		}
		for {
			// Grow the shortest-path tree by the cheapest unreached column j1.
			used[j0] = true
			i0 := p[j0]
			delta, j1 := inf, -1
			for j := 1; j <= cols; j++ {
				if used[j] {
					continue
				}
				if cur := a[i0-1][j-1] - u[i0] - v[j]; cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			if j1 < 0 {
				return nil, false // only +Inf entries lead out of the tree
			}
			// Shift the potentials: tree rows up by delta, tree columns down by delta, so that
			// the edge to j1 becomes tight and every reduced cost stays ≥ 0.
			for j := 0; j <= cols; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break // reached a free column
			}
		}
		// Flip the matching along the augmenting path back to the virtual column 0.
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	rowToCol = make([]int, rows)
	for j := 1; j <= cols; j++ {
		if p[j] != 0 {
			rowToCol[p[j]-1] = j - 1
		}
	}
	return rowToCol, true
}
