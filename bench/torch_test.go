package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// The PyTorch twin's first round tries the core count and one intra-op thread and keeps the
// faster setting (passed through $REEL_TORCH_THREADS) for the later rounds; a failing script is
// an error.
func TestTorchRunKeepsFasterThreadSetting(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: there is one setting")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	log := filepath.Join(dir, "calls")
	// A stand-in for python: 0.5 s per step with one thread, 0.9 s with more; it logs each call.
	require.NoError(t, os.WriteFile(fake, []byte(`#!/bin/sh
n=${REEL_TORCH_THREADS:-0}
echo "$n" >> `+log+`
s=0.9; [ "$n" = 1 ] && s=0.5
echo "{\"step_s\": $s, \"peak_mib\": 1, \"params\": 7, \"threads\": $n, \"torch\": \"fake\"}"
`), 0o755))
	tr := torchRun{python: fake, job: Job{Script: "x.py"}, device: "cpu", precision: "f32", steps: 1}
	for range 3 {
		sec, err := tr.round()
		require.NoError(t, err)
		require.Equal(t, 0.5, sec)
	}
	require.Equal(t, 1, tr.best.Threads)
	calls, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d\n1\n1\n1\n", runtime.NumCPU()), string(calls), "both settings once, then the faster")

	// On CUDA it runs with PyTorch's default threads.
	cu := torchRun{python: fake, job: Job{Script: "x.py"}, device: "cuda", precision: "f32", steps: 1}
	sec, err := cu.round()
	require.NoError(t, err)
	require.Equal(t, 0.9, sec)

	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nexit 3\n"), 0o755))
	bad := torchRun{python: fake, job: Job{Script: "x.py"}, device: "cpu", precision: "f32", steps: 1}
	_, err = bad.round()
	require.Error(t, err)
}
