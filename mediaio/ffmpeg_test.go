package mediaio

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMessage(t *testing.T) {
	require.Equal(t, "moov atom not found", Message("\n[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5564691ed8c0] moov atom not found\nfile:a.mp4: Invalid data\n", "file:a.mp4"))
	require.Equal(t, "Invalid data found when processing input", Message("file:a.mp4: Invalid data found when processing input\n", "file:a.mp4"))
	require.Equal(t, "", Message(" \n", ""))
	require.Equal(t, "x", Message("Svt[info]: banner\nx\n", ""))
}

func TestCappedBuffer(t *testing.T) {
	b := &CappedBuffer{Max: 4}
	n, err := b.Write([]byte("abcdef"))
	require.NoError(t, err)
	require.Equal(t, 6, n) // the writer never sees a short write
	_, _ = b.Write([]byte("gh"))
	require.Equal(t, "abcd", b.String())
}

func TestFormatFPS(t *testing.T) {
	require.Equal(t, "10", FormatFPS(10))
	require.Equal(t, "29.97", FormatFPS(29.97))
}

func TestDecodeRate(t *testing.T) {
	if _, err := FFmpeg(); err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "a.mp4")
	require.NoError(t, Run([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "2",
		"-c:v", "mpeg4", "-f", "mp4", "file:" + path}, nil, nil, ""))
	wall, cpu, err := DecodeRate(path, "")
	require.NoError(t, err)
	require.Positive(t, wall)
	require.GreaterOrEqual(t, cpu, time.Duration(0), "ffmpeg's -benchmark line parsed (or absent)")
	_, _, err = DecodeRate(path, "scale=32:24,format=rgb24")
	require.NoError(t, err)
	_, _, err = DecodeRate(path, "nosuchfilter")
	require.ErrorContains(t, err, "ffmpeg: ")
	_, _, err = DecodeRate(filepath.Join(t.TempDir(), "missing.mp4"), "")
	require.ErrorContains(t, err, "No such file")
}
