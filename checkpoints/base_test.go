package checkpoints

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
)

// An adapter-only checkpoint leaves its base out, and Load puts back what the builder rebuilds
// only when it is the base the checkpoint recorded (its digest); without a builder, or with a
// different base, loading is one error.
func TestAdapterOnlyCheckpoint(t *testing.T) {
	store := newTestStore(t, 2)
	w, err := store.GetVariable("/layer/weights").Value()
	require.NoError(t, err)
	digest, err := VariablesDigest(map[string]*tensors.Tensor{"/layer/weights": w})
	require.NoError(t, err)
	base := &Base{Seed: 3, Variables: []string{"/layer/weights"}, Digest: digest}
	dir, err := SaveWithBase(filepath.Join(t.TempDir(), "checkpoints"), store, State{Step: 1}, []byte("name: x\n"), nil, 1, base)
	require.NoError(t, err)
	got, err := ReadBase(dir)
	require.NoError(t, err)
	require.Equal(t, base, got)

	defer SetBaseBuilder(baseBuilder)
	SetBaseBuilder(nil)
	_, err = Load(dir, newTestStore(t, 5))
	require.ErrorContains(t, err, "cannot rebuild its base")

	rebuilt := tensors.FromValue([][]float32{{2, 4, 6}, {8, 10, 12}}) // newTestStore(2)'s weights
	SetBaseBuilder(func(d string, b Base) (map[string]*tensors.Tensor, error) {
		require.Equal(t, dir, d)
		require.Equal(t, int64(3), b.Seed)
		return map[string]*tensors.Tensor{"/layer/weights": rebuilt}, nil
	})
	vars, _, err := LoadVariables(dir)
	require.NoError(t, err)
	require.Equal(t, [][]float32{{2, 4, 6}, {8, 10, 12}}, vars["/layer/weights"].Value())
	require.Equal(t, testBias, vars["/layer/bias"].Value())

	SetBaseBuilder(func(string, Base) (map[string]*tensors.Tensor, error) {
		return map[string]*tensors.Tensor{"/layer/weights": tensors.FromValue([][]float32{{2, 4, 6}, {8, 10, 13}})}, nil
	})
	_, _, err = LoadVariables(dir)
	require.ErrorContains(t, err, "differs from the one trained")

	// The weights are not in the checkpoint itself.
	SetBaseBuilder(func(string, Base) (map[string]*tensors.Tensor, error) { return map[string]*tensors.Tensor{}, nil })
	_, _, err = LoadVariables(dir)
	require.ErrorContains(t, err, "the rebuilt base has no variable /layer/weights")
}

// CheckFiles names a missing or changed file and what it expected.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	sums, err := SumWeightFiles(dir)
	require.NoError(t, err)
	// sha256("abc"), an independent value.
	require.Equal(t, FileSum{Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}, sums["model.safetensors"])
	require.NoError(t, CheckFiles("model.pretrained", dir, sums))
	require.NoError(t, os.WriteFile(p, []byte("abd"), 0o644))
	require.ErrorContains(t, CheckFiles("model.pretrained", dir, sums), "model.safetensors has sha256")
	require.NoError(t, os.WriteFile(p, []byte("abcd"), 0o644))
	require.ErrorContains(t, CheckFiles("model.pretrained", dir, sums), "has 4 bytes, expected 3")
	require.NoError(t, os.Remove(p))
	require.ErrorContains(t, CheckFiles("model.pretrained", dir, sums), "model.pretrained "+dir+": model.safetensors is missing")
}
