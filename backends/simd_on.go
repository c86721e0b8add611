//go:build goexperiment.simd

package backends

// SIMD reports whether this binary was built with GOEXPERIMENT=simd (fast CPU matmuls).
const SIMD = true
