package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// Pi0Params's closed form counts the variables the pi0 graph creates: pi0-small built (its
// weights initialised as a fresh run does) holds exactly that many parameters outside the
// normalisation statistics; the real size is openpi's 3.3 B (SigLIP So400m 412 M, Gemma-2B with
// its 257 216-token embeddings 2.51 B, the gemma_300m expert 311 M).
func TestPi0ParamsMatchesTheBuiltModel(t *testing.T) {
	s := FinetuneShapes["pi0-small"]
	r, err := recipes.Load(s.Recipe, append([]string{"train.batch_size=2"}, s.Sets...))
	require.NoError(t, err)
	r.Model.HFConfig, r.Model.ImageSize = s.HFConfig, s.ImageSize
	task, err := tasks.New(r)
	require.NoError(t, err)
	b, _, err := backends.Select("go")
	require.NoError(t, err)
	store, err := train.InitialStore(b, task, r.Train)
	require.NoError(t, err)
	var built int64
	for v := range store.IterVariables() {
		if !v.Trainable || strings.HasPrefix(v.Path(), "/norm/") {
			continue
		}
		built += int64(v.Shape().Size())
	}
	st, err := Pi0StateOf(s)
	require.NoError(t, err)
	require.Equal(t, built, st.Total)

	real, err := Pi0StateOf(FinetuneShapes["pi0"])
	require.NoError(t, err)
	require.InDelta(t, 3.24e9, float64(real.Total), 0.01e9)
	require.InDelta(t, 412.4e6, float64(real.Params["vision"]), 0.1e6)
	require.InDelta(t, 311.5e6, float64(real.Params["expert"]), 0.1e6)
	require.InDelta(t, 16*float64(real.Total)/(1<<30), real.FullF32GiB, 1e-9)
}

// The chunk latency alternates reel and the PyTorch twin round by round (a stand-in python that
// reads one line per chunk here), noting the load average beside each round; the reel chunk is
// pi0-small's sampling graph.
func TestPi0LatencyAlternatesWithTwin(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	log := filepath.Join(dir, "args")
	require.NoError(t, os.WriteFile(fake, []byte(`#!/bin/sh
echo "$@" > `+log+`
echo '{"ready": true, "params": 42}'
while read line; do echo '{"chunk_s": 0.5}'; done
`), 0o755))
	rows, err := RunPi0Latency(Pi0LatencyConfig{Shape: FinetuneShapes["pi0-small"], Layers: 2, Cameras: 2, Rounds: 2, Backend: "go",
		Python: fake, Twin: "twin.py", Script: "pi0_torch.py"})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "reel", rows[0].Impl)
	require.Equal(t, 2, rows[0].Layers)
	require.Equal(t, 2, rows[0].VisionLayers, "the vision tower cut in the same proportion (4 of 4)")
	require.Len(t, rows[0].Rounds, 2)
	require.Greater(t, rows[0].ChunkS, 0.0)
	require.Equal(t, "pytorch", rows[1].Impl)
	require.Equal(t, int64(42), rows[1].Params)
	require.Equal(t, []float64{0.5, 0.5}, rows[1].Rounds)
	require.Len(t, rows[1].Load, 2)
	args, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, "pi0_torch.py twin.py 2 2 2 48 50 10\n", string(args))
}
