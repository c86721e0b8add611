package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// `reel serve --chunking` is checked before anything is loaded: one line, exit status 2.
func TestServeChunkingFlags(t *testing.T) {
	dir := t.TempDir()
	line := requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "rtc"), 2)
	require.Contains(t, line, `--chunking: chunking "rtc": want newest, average or ema`)
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "ema", "--ema-weight", "1.5"), 2)
	require.Contains(t, line, "ema weight 1.5: want a value in (0, 1]")
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "average", "--ema-weight", "0.3"), 2)
	require.Contains(t, line, "--ema-weight applies to --chunking ema, not average")
	// Valid flags get as far as the run directory.
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "ema", "--ema-weight", "0.3"), 1)
	require.Contains(t, line, "run")
}
