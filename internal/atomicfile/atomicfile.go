// Package atomicfile writes files so that a reader (or a crash) sees either the old content or
// the complete new one, never a partial file: the data goes to a temporary file in the same
// directory, is synced, and is renamed over the destination.
package atomicfile

import (
	"bufio"
	"fmt"
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

// ReplaceDir builds a new directory with build, in a hidden sibling of dst (same file system),
// and only when build succeeds swaps it in for dst by renames: a failed build leaves whatever
// was at dst exactly as it was (the partial build is removed). build gets the empty directory
// to fill. Between the two renames of the swap, dst is briefly missing; the old content is kept
// under a hidden sibling name until the new one is in place.
func ReplaceDir(dst string, build func(tmp string) error) error {
	parent, base := filepath.Dir(dst), filepath.Base(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".new-")
	if err != nil {
		return err
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return SwapDir(tmp, dst)
}

// SwapDir puts the complete directory tmp (a sibling of dst) in dst's place by renames, then
// deletes what was at dst; on failure tmp is removed and dst left as it was.
func SwapDir(tmp, dst string) error {
	parent, base := filepath.Dir(dst), filepath.Base(dst)
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if _, err := os.Lstat(dst); os.IsNotExist(err) {
		if err := os.Rename(tmp, dst); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		return nil
	}
	old, err := os.MkdirTemp(parent, "."+base+".old-")
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	os.Remove(old) // only its unique name is wanted
	if err := os.Rename(dst, old); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if rerr := os.Rename(old, dst); rerr != nil {
			return fmt.Errorf("%w (the old content of %s is in %s, the new in %s)", err, dst, old, tmp)
		}
		os.RemoveAll(tmp)
		return err
	}
	return os.RemoveAll(old)
}
