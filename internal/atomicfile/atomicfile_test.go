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

func TestReplaceDir(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "ds")
	if err := os.MkdirAll(filepath.Join(dst, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "meta", "info.json"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A failing build leaves dst as it was and nothing beside it.
	err := ReplaceDir(dst, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "partial"), []byte("x"), 0o644); err != nil {
			return err
		}
		return os.ErrInvalid
	})
	if err != os.ErrInvalid {
		t.Fatalf("got %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "meta", "info.json")); err != nil || string(b) != "old" {
		t.Fatalf("old content: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// A successful one replaces it.
	if err := ReplaceDir(dst, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "new"), []byte("n"), 0o644) }); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 1 || entries[0].Name() != "new" {
		t.Fatalf("after the swap: %v", entries)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
