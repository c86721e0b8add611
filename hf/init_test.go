package hf

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInit: hf init writes, for every architecture of the fixtures, a directory reel loads back
// (the same tensors a Match of the architecture expects, nothing missing or unexpected) and runs;
// the seed fixes the bytes; an independent reader (testdata/check_init.py, Python's json and
// struct) finds the names, shapes and dtypes transformers' modules have.
func TestInit(t *testing.T) {
	backend := testBackend(t)
	root := t.TempDir()
	for _, name := range []string{"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "paligemma", "paligemma2",
		"llava-siglip-qwen2", "llava-clip-llama", "siglip", "clip"} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(root, name)
			res, err := Init(backend, filepath.Join("testdata", name, "config.json"), out, 7)
			require.NoError(t, err)
			m, err := Load(backend, out)
			require.NoError(t, err)
			require.Equal(t, res.Layout, m.Layout)
			require.Equal(t, res.Params, m.NumParams()+ignoredParams(t, m))
			in := RunInputs{}
			e := readExpected(t, filepath.Join("testdata", name))
			if e.Texts != nil {
				in.Tokens = e.Texts
			} else {
				in.Tokens = [][]int{e.Tokens}
			}
			if _, err := os.Stat(filepath.Join("testdata", name, "pixels.npy")); err == nil {
				in.Pixels, err = ReadNPY(filepath.Join("testdata", name, "pixels.npy"))
				require.NoError(t, err)
			}
			r, err := m.Run(backend, in)
			require.NoError(t, err)
			for _, row := range append(flatten3(r.Logits), r.LogitsPerImage...) {
				for _, x := range row {
					require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
				}
			}
			if _, err := os.Stat("/usr/bin/python3"); err == nil && (m.Config.Decoder != nil || m.Config.PaliGemma != nil) {
				cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "check_init.py"), out)
				b, err := cmd.CombinedOutput()
				require.NoError(t, err, "check_init.py: %s", b)
				require.Contains(t, string(b), "ok ")
			}
		})
	}

	// The seed fixes the bytes; another seed gives other weights.
	cfg := filepath.Join("testdata", "qwen3", "config.json")
	a, b, c := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	for dir, seed := range map[string]int64{a: 1, b: 1, c: 2} {
		_, err := Init(backend, cfg, dir, seed)
		require.NoError(t, err)
	}
	read := func(dir string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		require.NoError(t, err)
		return data
	}
	require.True(t, bytes.Equal(read(a), read(b)))
	require.False(t, bytes.Equal(read(a), read(c)))

	// A previous hf init's directory is replaced; anything else is refused and left as it was.
	_, err := Init(backend, cfg, a, 2)
	require.NoError(t, err)
	require.True(t, bytes.Equal(read(a), read(c)))
	require.NoError(t, os.WriteFile(filepath.Join(a, "notes.txt"), []byte("mine"), 0o644))
	_, err = Init(backend, cfg, a, 1)
	require.ErrorContains(t, err, "holds notes.txt")
	require.True(t, bytes.Equal(read(a), read(c)), "the refused directory is untouched")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".init-", "no build directory left behind")
	}
	_, err = Init(backend, filepath.Join(root, "missing.json"), filepath.Join(root, "d"), 1)
	require.Error(t, err)
}

// ignoredParams counts the parameters of tensors reel loads but does not use (a VLM tower's
// pooling head), which Init writes as transformers does.
func ignoredParams(t *testing.T, m *Model) int {
	if len(m.Ignored) == 0 {
		return 0
	}
	w, err := ReadWeightShapes(m.Dir)
	require.NoError(t, err)
	n := 0
	for canon, src := range w.Source {
		for _, ig := range m.Ignored {
			if ig == src {
				n += w.Shapes[canon].Size()
			}
		}
	}
	return n
}
