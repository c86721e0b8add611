package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// `reel serve --chunking` is checked before anything is loaded: one line, exit status 2.
func TestServeChunkingFlags(t *testing.T) {
	dir := t.TempDir()
	line := requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "bogus"), 2)
	require.Contains(t, line, `--chunking: chunking "bogus": want newest, average, ema or rtc`)
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "rtc", "--rtc-schedule", "cosine"), 2)
	require.Contains(t, line, `rtc schedule "cosine": want exp, linear, ones or zeros`)
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "newest", "--max-guidance", "3"), 2)
	require.Contains(t, line, "--max-guidance applies to --chunking rtc, not newest")
	line = requireUserError(t, reel(t, dir, "serve", "run", "--inference-delay", "-1"), 2)
	require.Contains(t, line, "inference delay -1: want ≥ 0 actions")
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "ema", "--ema-weight", "1.5"), 2)
	require.Contains(t, line, "ema weight 1.5: want a value in (0, 1]")
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "average", "--ema-weight", "0.3"), 2)
	require.Contains(t, line, "--ema-weight applies to --chunking ema, not average")
	// Valid flags get as far as the run directory.
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "ema", "--ema-weight", "0.3"), 1)
	require.Contains(t, line, "run")
	line = requireUserError(t, reel(t, dir, "serve", "run", "--chunking", "rtc", "--inference-delay", "2", "--max-guidance", "5"), 1)
	require.Contains(t, line, "run")
}
