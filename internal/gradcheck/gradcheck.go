// Package gradcheck holds the finite-difference gradient check shared by the tests of the
// packages that define custom layers and losses.
package gradcheck

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tolerance accepts an analytic gradient a against a numeric n when |a − n| ≤ Rel·max(|a|, |n|) + Abs.
type Tolerance struct{ Rel, Abs float64 }

// Numeric returns ∂loss/∂x[i] by central differences of step eps, calling loss with x
// perturbed in place (and restored).
func Numeric(x []float64, eps float64, loss func() float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		orig := x[i]
		x[i] = orig + eps
		lp := loss()
		x[i] = orig - eps
		lm := loss()
		x[i] = orig
		g[i] = (lp - lm) / (2 * eps)
	}
	return g
}

// RequireClose compares analytic and numeric gradients element-wise, and fails when every
// gradient is (numerically) zero, which would make the check vacuous.
func RequireClose(t testing.TB, name string, analytic, numeric []float64, tol Tolerance) {
	t.Helper()
	require.Len(t, analytic, len(numeric), name)
	nonZero := 0
	for i := range analytic {
		a, n := analytic[i], numeric[i]
		bound := tol.Rel*math.Max(math.Abs(a), math.Abs(n)) + tol.Abs
		require.LessOrEqualf(t, math.Abs(a-n), bound, "%s[%d]: analytic %.12g, numeric %.12g", name, i, a, n)
		if math.Abs(a) > 1e-6 {
			nonZero++
		}
	}
	require.Positivef(t, nonZero, "%s: all gradients are zero; the check is vacuous", name)
}
