package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// pi0-tiny trains with train.remat from the CLI (once refused) and its losses are those of the
// same run without it, step by step (the seed fixes data, init and noise; remat changes only
// what the backward pass keeps).
func TestPi0TinyTrainsWithRemat(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice")
	}
	dir := t.TempDir()
	run := func(out, remat string) map[int]float64 {
		r := reel(t, dir, append([]string{"train", "pi0-tiny", "--out", out, "--set", "train.steps=4", "--set", "train.batch_size=4",
			"--set", "train.remat=" + remat}, tiny...)...)
		requireOK(t, r)
		return trainRows(t, filepath.Join(dir, out))
	}
	plain, remat := run("plain", "false"), run("remat", "true")
	require.Len(t, remat, 4)
	for s, l := range plain {
		require.InDelta(t, l, remat[s], 1e-5*l, "step %d", s)
	}
}
