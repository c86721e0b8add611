package data

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A video that is a FIFO or a link to a device is refused by name, without starting ffmpeg on it.
func TestHostileVideoSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "clip.mp4")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	zero := filepath.Join(dir, "zero.mp4")
	require.NoError(t, os.Symlink("/dev/zero", zero))
	for _, c := range []struct{ path, want string }{{fifo, "named pipe"}, {zero, "character device"}, {dir, "is a directory"}} {
		done := make(chan error, 1)
		go func() { _, err := DecodeVideo(c.path, 4, 8, 2); done <- err }()
		select {
		case err := <-done:
			require.ErrorContains(t, err, "video "+c.path+": ")
			require.ErrorContains(t, err, c.want)
		case <-time.After(20 * time.Second):
			t.Fatalf("DecodeVideo(%s) blocked", c.path)
		}
	}
}
