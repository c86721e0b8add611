// Package safeio is the one place reel opens and reads the files a user hands it (configs,
// tokenizers, recipes, dataset metadata, arrays, checkpoints, images): it refuses what is not a
// regular file after following symlinks (a link to /dev/zero would be read until memory runs out,
// a FIFO would block forever), opens without blocking, and reads whole files only up to a size
// cap chosen per kind of file. Errors are *os.PathError values, so they print as one line naming
// the file and still match os.ErrNotExist.
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size caps per kind of file. Each is far above what a real file of the kind holds (the largest
// tokenizer.json of common checkpoints is tens of MiB; configs and recipes are kilobytes) and far
// below what would exhaust memory.
const (
	// JSONLimit caps small JSON metadata: config.json, generation_config.json,
	// tokenizer_config.json, safetensors index files, a dataset's meta/info.json, run state.
	JSONLimit = 64 << 20
	// TokenizerLimit caps tokenizer.json, tokenizer.model, vocab.json and merges.txt.
	TokenizerLimit = 512 << 20
	// RecipeLimit caps a YAML recipe (and each recipe it names as base:).
	RecipeLimit = 4 << 20
	// MetaLimit caps line-oriented dataset metadata (meta/*.jsonl, captions, questions).
	MetaLimit = 1 << 30
	// ArrayLimit caps a .npy array read whole (pixel_values of one prompt).
	ArrayLimit = 4 << 30
	// ImageLimit caps an encoded image file (PNG/JPEG) read whole.
	ImageLimit = 256 << 20
)

// ErrNotRegular is the cause of every refusal of a special file.
var ErrNotRegular = errors.New("not a regular file")

// kind describes a non-regular mode for the error line.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "is a directory"
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m&fs.ModeCharDevice != 0:
		return "is a character device"
	case m&fs.ModeDevice != 0:
		return "is a device"
	default:
		return "is a special file"
	}
}

type notRegular struct{ what string }

func (e notRegular) Error() string        { return e.what + ", not a regular file" }
func (e notRegular) Is(target error) bool { return target == ErrNotRegular }

// Stat follows symlinks and fails unless path is a regular file.
func Stat(path string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			pe.Op = "open" // what the caller asked for, as os.Open would report it
		}
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: path, Err: notRegular{kind(st.Mode())}}
	}
	return st, nil
}

// Open opens path for reading when it is a regular file (after following symlinks). The open
// itself does not block even if the file is swapped for a FIFO between the check and the open.
func Open(path string) (*os.File, error) {
	if _, err := Stat(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: notRegular{kind(st.Mode())}}
	}
	return f, nil
}

// ReadFile reads a regular file whole, refusing one larger than limit bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%s is over the %s limit for this kind of file", Size(st.Size()), Size(limit))}
	}
	// The file may grow while it is read: read at most limit+1 bytes and check.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("over the %s limit for this kind of file", Size(limit))}
	}
	return b, nil
}

// Cause strips the *os.PathError wrapper, for callers that already name the file.
func Cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Size prints a byte count in binary units.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
