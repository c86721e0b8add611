package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeRun(t *testing.T, dir, tag string) {
	t.Helper()
	for _, rel := range []string{"checkpoints/step-00000001/state.json", MetricsFile, "plots/loss.png", TensorBoardDir + "/events", "recipe.yaml"} {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(tag+rel), 0o644))
	}
}

func readRun(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	}))
	return out
}

// overwriteAside puts the old run back after a failure that saved nothing, keeps it aside after
// one that saved a checkpoint, and deletes it after a success.
func TestOverwriteAside(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "old:")
	old := readRun(t, dir)

	finish, err := overwriteAside(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte("new partial"), 0o644))
	note, err := finish(true)
	require.NoError(t, err)
	require.Empty(t, note)
	require.Equal(t, old, readRun(t, dir), "a failure that saved no checkpoint restores the old run")

	finish, err = overwriteAside(dir)
	require.NoError(t, err)
	writeRun(t, dir, "new:")
	note, err = finish(true)
	require.NoError(t, err)
	require.Contains(t, note, ".overwritten-")
	after := readRun(t, dir)
	kept := 0
	for rel, b := range after {
		if strings.HasPrefix(rel, ".overwritten-") {
			kept++
			require.True(t, strings.HasPrefix(b, "old:"), rel)
		} else {
			require.True(t, strings.HasPrefix(b, "new:"), rel)
		}
	}
	require.Equal(t, len(old), kept, "an interrupted run that saved checkpoints keeps the old outputs aside")

	dir = t.TempDir()
	writeRun(t, dir, "old:")
	finish, err = overwriteAside(dir)
	require.NoError(t, err)
	writeRun(t, dir, "new:")
	_, err = finish(false)
	require.NoError(t, err)
	for rel, b := range readRun(t, dir) {
		require.True(t, strings.HasPrefix(b, "new:"), "%s after a success", rel)
	}
}
