package safeio

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BombPNG returns a valid 1×1 PNG whose IHDR is rewritten to declare w×h (with a correct CRC):
// a decoder that trusted the header would allocate w·h·4 bytes.
func bombPNG(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// signature (8) | length (4) | "IHDR" (4) | width (4) | height (4) | ... | crc
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestDecodeImageRefusesBombsFromTheHeader(t *testing.T) {
	bomb := bombPNG(t, 25000, 25000)
	for _, format := range []string{"", "png"} {
		_, err := DecodeImage(bomb, format)
		if err == nil || !strings.Contains(err.Error(), "25000×25000") || !strings.Contains(err.Error(), "4096×4096") {
			t.Errorf("format %q: got %v, want the size and the limit", format, err)
		}
	}
	p := filepath.Join(t.TempDir(), "bomb.png")
	if err := os.WriteFile(p, bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadImage(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadImage: got %v, want an error naming %s", err, p)
	}
	if img, err := DecodeImage(bombPNG(t, 1, 1), ""); err != nil || img.Bounds().Dx() != 1 {
		t.Errorf("a 1×1 PNG: %v", err)
	}
	if _, err := DecodeImage([]byte("not an image"), "jpeg"); err == nil || !strings.Contains(err.Error(), "not a jpeg image") {
		t.Errorf("garbage: %v", err)
	}
}
