// Package atomicfile writes files so that a reader (or a crash) sees either the old content or
// the complete new one, never a partial file: the data goes to a temporary file in the same
// directory, is synced, and is renamed over the destination.
package atomicfile

import (
	"bufio"
	"os"
	"path/filepath"
)

// Write streams content into path atomically. write gets a buffered writer; if it or any file
// operation fails, path is left untouched and the temporary file removed. The file gets mode
// 0644; the parent directory is created if needed.
func Write(path string, write func(w *bufio.Writer) error) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

// WriteFile writes data to path atomically (see Write).
func WriteFile(path string, data []byte) error {
	return Write(path, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
