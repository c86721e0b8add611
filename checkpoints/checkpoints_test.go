package checkpoints

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

var (
	testWeights = [][]float32{{1, 2, 3}, {4, 5, 6}}
	testBias    = []float64{-0.5, 0.25, 1e-30}
)

// newTestStore returns a store with a float32 matrix, a float64 vector and an int scalar, with
// values that depend on k (so checkpoints of different "steps" differ).
func newTestStore(t *testing.T, k float32) *model.Store {
	t.Helper()
	store := model.NewStore()
	w := make([][]float32, len(testWeights))
	for i, row := range testWeights {
		w[i] = make([]float32, len(row))
		for j, x := range row {
			w[i][j] = x * k
		}
	}
	_, err := store.RootScope().In("layer").CreateVariable("weights", tensors.FromValue(w))
	require.NoError(t, err)
	_, err = store.RootScope().In("layer").CreateVariable("bias", tensors.FromValue(testBias))
	require.NoError(t, err)
	_, err = store.RootScope().CreateVariable("counter", tensors.FromValue(int64(k)))
	require.NoError(t, err)
	return store
}

func saveN(t *testing.T, root string, steps []int64, keep int) []string {
	t.Helper()
	var dirs []string
	for _, s := range steps {
		store := newTestStore(t, float32(s))
		dir, err := Save(root, store, State{Step: s, DataIndex: 2 * s, Seed: 7, Recipe: "test"}, []byte("name: test\n"), map[string][]byte{"extra.json": []byte("{}\n")}, keep)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(root, DirName(s)), dir)
		dirs = append(dirs, dir)
	}
	return dirs
}

func tmpDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var tmps []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasSuffix(e.Name(), ".tmp") {
			tmps = append(tmps, e.Name())
		}
	}
	return tmps
}

func modelBin(t *testing.T, dir string) string {
	t.Helper()
	bins, err := filepath.Glob(filepath.Join(dir, modelDir, "*.bin"))
	require.NoError(t, err)
	require.Len(t, bins, 1, "expected exactly one .bin in %s/%s", dir, modelDir)
	return bins[0]
}

func TestSaveKeepAndLatest(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{10, 20, 30}, 2)

	list, err := List(root)
	require.NoError(t, err)
	require.Equal(t, dirs[1:], list, "keep=2 must keep only the two newest")
	_, err = os.Stat(dirs[0])
	require.True(t, os.IsNotExist(err), "oldest checkpoint should be pruned")

	latest, err := os.ReadFile(filepath.Join(root, LatestFile))
	require.NoError(t, err)
	require.Equal(t, DirName(30), strings.TrimSpace(string(latest)))
	require.Empty(t, tmpDirs(t, root), "no temporary files may be left behind")

	st, err := Verify(dirs[2])
	require.NoError(t, err)
	require.Equal(t, int64(30), st.Step)
	require.Equal(t, int64(60), st.DataIndex)
	require.Equal(t, int64(7), st.Seed)
	require.Equal(t, "test", st.Recipe)
	require.NotEmpty(t, st.Time)
	require.Contains(t, st.Files, recipeFile)

	recipe, err := ReadRecipe(dirs[2])
	require.NoError(t, err)
	require.Equal(t, "name: test\n", string(recipe))

	newest, nst, err := Newest(root, func(w string) { t.Errorf("unexpected warning: %s", w) })
	require.NoError(t, err)
	require.Equal(t, dirs[2], newest)
	require.Equal(t, int64(30), nst.Step)
}

func TestSaveSameStepReplaces(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	saveN(t, root, []int64{5, 5}, 0)
	list, err := List(root)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Empty(t, tmpDirs(t, root))
}

func TestLoadRestoresValues(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{3}, 0)

	fresh := model.NewStore()
	st, err := Load(dirs[0], fresh)
	require.NoError(t, err)
	require.Equal(t, int64(3), st.Step)

	w := fresh.GetVariable("/layer/weights")
	require.NotNil(t, w, "variable /layer/weights not restored")
	wv, err := w.Value()
	require.NoError(t, err)
	require.Equal(t, [][]float32{{3, 6, 9}, {12, 15, 18}}, wv.Value())

	b := fresh.GetVariable("/layer/bias")
	require.NotNil(t, b)
	bv, err := b.Value()
	require.NoError(t, err)
	require.Equal(t, testBias, bv.Value(), "float64 values must round-trip exactly")

	c := fresh.GetVariable("/counter")
	require.NotNil(t, c)
	cv, err := c.Value()
	require.NoError(t, err)
	require.Equal(t, int64(3), cv.Value())

	vars, _, err := LoadVariables(dirs[0])
	require.NoError(t, err)
	require.Contains(t, vars, "/layer/weights")
	require.Contains(t, vars, "/layer/bias")
	require.Contains(t, vars, "/counter")
}

func TestCorruptFallsBack(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{10, 20}, 3)

	bin := modelBin(t, dirs[1])
	fi, err := os.Stat(bin)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(bin, fi.Size()/2))

	_, err = Verify(dirs[1])
	require.Error(t, err)
	msg := err.Error()
	require.NotContains(t, msg, "\n", "error must be one line")
	require.Contains(t, msg, "corrupt or truncated")
	require.Contains(t, msg, filepath.Base(bin))

	_, err = Load(dirs[1], model.NewStore())
	require.ErrorContains(t, err, "corrupt or truncated")

	var warnings []string
	dir, st, err := Newest(root, func(w string) { warnings = append(warnings, w) })
	require.NoError(t, err)
	require.Equal(t, dirs[0], dir)
	require.Equal(t, int64(10), st.Step)
	require.Len(t, warnings, 1)
	require.Contains(t, warnings[0], "corrupt or truncated")
	require.Contains(t, warnings[0], "falling back")

	// Resolve of the run directory falls back as well.
	warnings = nil
	got, err := Resolve(filepath.Dir(root), func(w string) { warnings = append(warnings, w) })
	require.NoError(t, err)
	require.Equal(t, dirs[0], got)
	require.Len(t, warnings, 1)

	// All checkpoints corrupt: a clear error, not an empty result.
	require.NoError(t, os.Truncate(modelBin(t, dirs[0]), 3))
	_, _, err = Newest(root, nil)
	require.ErrorContains(t, err, "no valid checkpoint")
}

func TestMissingStateFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{1}, 0)
	require.NoError(t, os.Remove(filepath.Join(dirs[0], stateFile)))
	_, err := Verify(dirs[0])
	require.ErrorContains(t, err, stateFile)
}

func TestResolve(t *testing.T) {
	run := t.TempDir()
	root := filepath.Join(run, "checkpoints")
	dirs := saveN(t, root, []int64{1, 2}, 0)

	for _, p := range []string{run, root, dirs[1]} {
		got, err := Resolve(p, nil)
		require.NoError(t, err, p)
		require.Equal(t, dirs[1], got, p)
	}
	got, err := Resolve(dirs[0], nil) // an explicit older step directory is taken as is
	require.NoError(t, err)
	require.Equal(t, dirs[0], got)

	missing := filepath.Join(run, "does-not-exist")
	_, err = Resolve(missing, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), missing)
	require.Contains(t, err.Error(), "no such run or checkpoint directory")

	_, err = Resolve(filepath.Join(dirs[0], "recipe.yaml"), nil)
	require.ErrorContains(t, err, "got a file")

	empty := t.TempDir()
	_, err = Resolve(empty, nil)
	require.ErrorContains(t, err, "no checkpoints found")
}

func TestLeftoverTmpIgnored(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{10}, 0)

	// Simulate a crash while writing step 20: a partial temporary directory, and a newer
	// step number than anything saved.
	crash := filepath.Join(root, ".tmp-"+DirName(20)+"-123456")
	require.NoError(t, os.MkdirAll(filepath.Join(crash, modelDir), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(crash, modelDir, "partial.bin"), []byte{1, 2}, 0o644))
	// Also a stray LATEST.tmp from a crash during the LATEST update.
	require.NoError(t, os.WriteFile(filepath.Join(root, LatestFile+".tmp"), []byte(DirName(20)), 0o644))

	list, err := List(root)
	require.NoError(t, err)
	require.Equal(t, dirs, list)

	dir, st, err := Newest(root, func(w string) { t.Errorf("unexpected warning: %s", w) })
	require.NoError(t, err)
	require.Equal(t, dirs[0], dir)
	require.Equal(t, int64(10), st.Step)

	// A later save still works and prunes normally; the crash leftover is not counted as a checkpoint.
	saveN(t, root, []int64{30}, 1)
	list, err = List(root)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(root, DirName(30))}, list)
}

func TestLatestPointsToOlder(t *testing.T) {
	// LATEST wins over a higher-numbered directory (e.g. a re-run that saved an earlier step last).
	root := filepath.Join(t.TempDir(), "checkpoints")
	dirs := saveN(t, root, []int64{10, 20}, 0)
	require.NoError(t, os.WriteFile(filepath.Join(root, LatestFile), []byte(DirName(10)+"\n"), 0o644))
	dir, _, err := Newest(root, nil)
	require.NoError(t, err)
	require.Equal(t, dirs[0], dir)
}

func TestListMissingRoot(t *testing.T) {
	list, err := List(filepath.Join(t.TempDir(), "nope"))
	require.NoError(t, err)
	require.Empty(t, list)
	dir, _, err := Newest(filepath.Join(t.TempDir(), "nope"), nil)
	require.NoError(t, err)
	require.Empty(t, dir)
}

// Extra files (a policy's spec) are saved beside the recipe and covered by the checksums.
func TestExtraFilesChecksummed(t *testing.T) {
	root := t.TempDir()
	dir := saveN(t, root, []int64{3}, 1)[0]
	b, err := os.ReadFile(filepath.Join(dir, "extra.json"))
	require.NoError(t, err)
	require.Equal(t, "{}\n", string(b))
	_, err = Verify(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.json"), []byte("{\"x\": 1}\n"), 0o644))
	_, err = Verify(dir)
	require.ErrorContains(t, err, "extra.json")
	_, err = Save(root, newTestStore(t, 1), State{Step: 4}, nil, map[string][]byte{"../evil": nil}, 1)
	require.ErrorContains(t, err, "not a plain, free file name")
}
