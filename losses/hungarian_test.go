package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// bruteAssignment enumerates every assignment of min(n, m) rows to distinct columns and returns
// the lexicographic optimum (fewest +Inf/NaN pairs, then least sum of the finite entries).
func bruteAssignment(cost [][]float64) (forbidden int, finite float64) {
	n, m := len(cost), len(cost[0])
	forbidden, finite = math.MaxInt, math.Inf(1)
	usedCol := make([]bool, m)
	var rec func(i, f int, s float64, remaining int)
	// rec decides row i; remaining is how many more rows must be assigned (n > m leaves rows out).
	rec = func(i, f int, s float64, remaining int) {
		if remaining == 0 {
			if f < forbidden || (f == forbidden && s < finite) {
				forbidden, finite = f, s
			}
			return
		}
		if n-i < remaining {
			return
		}
		if n-i > remaining { // leave row i out
			rec(i+1, f, s, remaining)
		}
		for j := 0; j < m; j++ {
			if usedCol[j] {
				continue
			}
			usedCol[j] = true
			if c := cost[i][j]; math.IsInf(c, 1) || math.IsNaN(c) {
				rec(i+1, f+1, s, remaining-1)
			} else {
				rec(i+1, f, s+c, remaining-1)
			}
			usedCol[j] = false
		}
	}
	rec(0, 0, 0, min(n, m))
	return forbidden, finite
}

// checkAssignment verifies that assign is a valid assignment of cost and returns its number of
// forbidden pairs and the sum of its finite entries.
func checkAssignment(t *testing.T, cost [][]float64, assign []int, total float64, name string) (forbidden int, finite float64) {
	t.Helper()
	n, m := len(cost), len(cost[0])
	require.Len(t, assign, n, name)
	seen := make(map[int]bool)
	assigned := 0
	for i, j := range assign {
		if j == -1 {
			continue
		}
		require.Truef(t, j >= 0 && j < m, "%s: row %d assigned to column %d", name, i, j)
		require.Falsef(t, seen[j], "%s: column %d used twice", name, j)
		seen[j] = true
		assigned++
		if c := cost[i][j]; math.IsInf(c, 1) || math.IsNaN(c) {
			forbidden++
		} else {
			finite += c
		}
	}
	require.Equal(t, min(n, m), assigned, name)
	if forbidden > 0 {
		require.True(t, math.IsInf(total, 1), "%s: total %v with a forbidden pair", name, total)
	} else {
		require.InDelta(t, finite, total, 1e-9, "%s: total is not the sum of the assigned costs", name)
	}
	return forbidden, finite
}

func TestHungarianBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 1; n <= 6; n++ {
		for m := 1; m <= 6; m++ {
			for trial := 0; trial < 24; trial++ {
				integer := trial%2 == 0
				infProb := []float64{0, 0, 0.2, 0.5, 0.8, 0.95}[trial%6]
				cost := make([][]float64, n)
				for i := range cost {
					cost[i] = make([]float64, m)
					for j := range cost[i] {
						switch {
						case rng.Float64() < infProb:
							cost[i][j] = math.Inf(1)
							if trial%5 == 0 {
								cost[i][j] = math.NaN()
							}
						case integer:
							cost[i][j] = float64(rng.IntN(7) - 2) // many ties, some negative
						default:
							cost[i][j] = rng.NormFloat64() * 10
						}
					}
				}
				name := fmt.Sprintf("n=%d m=%d trial=%d cost=%v", n, m, trial, cost)
				assign, total := Hungarian(cost)
				gotF, gotS := checkAssignment(t, cost, assign, total, name)
				wantF, wantS := bruteAssignment(cost)
				require.Equal(t, wantF, gotF, "%s: number of forbidden pairs", name)
				require.InDelta(t, wantS, gotS, 1e-9, "%s: cost", name)
			}
		}
	}
}

func TestHungarianKnown(t *testing.T) {
	assign, total := Hungarian([][]float64{
		{4, 1, 3},
		{2, 0, 5},
		{3, 2, 2},
	})
	require.Equal(t, []int{1, 0, 2}, assign)
	require.Equal(t, 5.0, total)

	// Greedy (row 0 takes its minimum, column 0) is not optimal here.
	assign, total = Hungarian([][]float64{
		{1, 2},
		{1, 100},
	})
	require.Equal(t, []int{1, 0}, assign)
	require.Equal(t, 3.0, total)

	// Rectangular both ways: the transpose gives the transposed answer.
	wide := [][]float64{
		{9, 2, 7, 8},
		{6, 4, 3, 7},
	}
	assign, total = Hungarian(wide)
	require.Equal(t, []int{1, 2}, assign)
	require.Equal(t, 5.0, total)
	assign, total = Hungarian([][]float64{{9, 6}, {2, 4}, {7, 3}, {8, 7}})
	require.Equal(t, []int{-1, 0, 1, -1}, assign)
	require.Equal(t, 5.0, total)

	// +Inf forbids the cheap pair; NaN behaves as +Inf.
	assign, total = Hungarian([][]float64{
		{math.Inf(1), 1},
		{1, 100},
	})
	require.Equal(t, []int{1, 0}, assign)
	require.Equal(t, 2.0, total)
	assign, total = Hungarian([][]float64{
		{math.NaN(), 1},
		{1, 100},
	})
	require.Equal(t, []int{1, 0}, assign)
	require.Equal(t, 2.0, total)

	// No finite assignment: total +Inf, fewest forbidden pairs.
	assign, total = Hungarian([][]float64{
		{1, math.Inf(1)},
		{2, math.Inf(1)},
	})
	require.True(t, math.IsInf(total, 1))
	require.Equal(t, []int{0, 1}, assign, "one forbidden pair either way: row 0 keeps the cheaper finite one")

	// Large magnitudes are compared exactly.
	assign, total = Hungarian([][]float64{
		{1e12, 1e12 + 1},
		{1e12 + 3, 1e12 + 1},
	})
	require.Equal(t, []int{0, 1}, assign)
	require.Equal(t, 2e12+1, total)
}

func TestHungarianEmptyAndInvalid(t *testing.T) {
	assign, total := Hungarian(nil)
	require.Empty(t, assign)
	require.Zero(t, total)
	assign, total = Hungarian([][]float64{})
	require.Empty(t, assign)
	require.Zero(t, total)
	assign, total = Hungarian([][]float64{{}, {}})
	require.Equal(t, []int{-1, -1}, assign)
	require.Zero(t, total)

	require.Panics(t, func() { Hungarian([][]float64{{1, 2}, {3}}) }, "ragged rows")
	require.Panics(t, func() { Hungarian([][]float64{{1, math.Inf(-1)}}) }, "-Inf")
}

func TestHungarianLarge(t *testing.T) {
	// A 60×80 problem: the result must be a valid assignment no worse than the greedy one and
	// satisfy the optimality condition of no improving 2-swap or move to a free column.
	rng := rand.New(rand.NewPCG(9, 10))
	n, m := 60, 80
	cost := make([][]float64, n)
	for i := range cost {
		cost[i] = make([]float64, m)
		for j := range cost[i] {
			cost[i][j] = rng.Float64()
		}
	}
	assign, total := Hungarian(cost)
	checkAssignment(t, cost, assign, total, "60x80")
	used := make([]bool, m)
	for _, j := range assign {
		used[j] = true
	}
	for i := 0; i < n; i++ {
		for k := i + 1; k < n; k++ {
			swap := cost[i][assign[k]] + cost[k][assign[i]] - cost[i][assign[i]] - cost[k][assign[k]]
			require.GreaterOrEqual(t, swap, -1e-12, "swapping rows %d and %d improves", i, k)
		}
		for j := 0; j < m; j++ {
			if !used[j] {
				require.GreaterOrEqual(t, cost[i][j], cost[i][assign[i]]-1e-12, "moving row %d to free column %d improves", i, j)
			}
		}
	}
}
