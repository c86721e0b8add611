package atomicfile

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f.txt")
	require.NoError(t, WriteFile(p, []byte("old")))
	err := Write(p, func(w *bufio.Writer) error {
		w.WriteString("half of the new content")
		return errors.New("disk on fire")
	})
	require.EqualError(t, err, "disk on fire")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "old", string(b), "a failed write leaves the old content")
	require.NoError(t, WriteFile(p, []byte("new")))
	b, _ = os.ReadFile(p)
	require.Equal(t, "new", string(b))
	entries, _ := os.ReadDir(filepath.Dir(p))
	require.Len(t, entries, 1, "no temporary files are left behind")
	st, _ := os.Stat(p)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}
