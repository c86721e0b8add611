package safeio

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
)

// MaxImageSide bounds the width and height of every image reel decodes (files given to
// `reel hf run --image`, dataset frames, images sent to `reel serve`): a small compressed file
// declaring huge dimensions (a decompression bomb) is refused from its header, before any pixel
// buffer is allocated.
const MaxImageSide = 4096

// DecodeImage decodes PNG or JPEG bytes. format is "png", "jpeg" or "" (either, detected from
// the data). The header's dimensions are checked against MaxImageSide before decoding.
func DecodeImage(data []byte, format string) (image.Image, error) {
	decodeConfig, decode := image.DecodeConfig, func(r *bytes.Reader) (image.Image, error) {
		m, _, err := image.Decode(r)
		return m, err
	}
	what := "PNG or JPEG"
	switch format {
	case "png":
		decodeConfig = func(r io.Reader) (image.Config, string, error) { c, err := png.DecodeConfig(r); return c, "png", err }
		decode = func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }
		what = "png"
	case "jpeg":
		decodeConfig = func(r io.Reader) (image.Config, string, error) { c, err := jpeg.DecodeConfig(r); return c, "jpeg", err }
		decode = func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) }
		what = "jpeg"
	case "":
	default:
		return nil, fmt.Errorf("image format %q is not supported (expected png or jpeg)", format)
	}
	cfg, _, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a %s image: %w", what, err)
	}
	if err := CheckImageSize(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a %s image: %w", what, err)
	}
	return img, nil
}

// CheckImageSize refuses dimensions outside 1..MaxImageSide.
func CheckImageSize(w, h int) error {
	if w <= 0 || h <= 0 || w > MaxImageSide || h > MaxImageSide {
		return fmt.Errorf("image is %d×%d (height×width), larger than the %d×%d limit", h, w, MaxImageSide, MaxImageSide)
	}
	return nil
}

// ReadImage reads and decodes a PNG or JPEG file (see DecodeImage); errors name the file.
func ReadImage(path string) (image.Image, error) {
	data, err := ReadFile(path, ImageLimit)
	if err != nil {
		return nil, err
	}
	img, err := DecodeImage(data, "")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	return img, nil
}
