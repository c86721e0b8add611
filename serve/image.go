package serve

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"github.com/reelml/reel/internal/safeio"
	"github.com/vmihailenco/msgpack/v5"
)

// MaxImageSide bounds the width and height of a decoded image, so that a small compressed
// image declaring huge dimensions cannot exhaust memory: reel's one image cap (safeio).
const MaxImageSide = safeio.MaxImageSide

// imageKey marks a map as an encoded image.
const imageKey = "__image__"

// Image is an image on the wire, in the vla-eval image codec's form
// {"__image__": true, "format": "png"|"jpeg"|"raw", "data": bin, "shape": [H, W, C]}
// ("raw" images also carry "dtype": "|u1" and hold HWC uint8 bytes).
type Image struct {
	Format string
	Data   []byte
	DType  string // "raw" only
	Shape  []int  // [H, W, C]; optional for png/jpeg
}

// EncodePNG encodes an h×w×3 HWC image with values in [0,1] as a PNG Image. Values are clamped
// to [0,1] and rounded to 8 bits, so k/255 values round-trip exactly.
func EncodePNG(pix []float32, h, w int) (Image, error) {
	if h <= 0 || w <= 0 || len(pix) != h*w*3 {
		return Image{}, fmt.Errorf("image: %d values do not make an %d×%d×3 image", len(pix), h, w)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < h*w; i++ {
		for c := range 3 {
			img.Pix[4*i+c] = toByte(pix[3*i+c])
		}
		img.Pix[4*i+3] = 255
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	return Image{Format: "png", Data: buf.Bytes(), Shape: []int{h, w, 3}}, nil
}

func toByte(v float32) uint8 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= 1:
		return 255
	}
	return uint8(math.Round(float64(v) * 255))
}

// RGB decodes the image into h×w×3 HWC float32 values in [0,1]: alpha is dropped and grayscale
// replicated.
func (im Image) RGB() (pix []float32, h, w int, err error) {
	switch im.Format {
	case "png", "jpeg":
		return decodeCompressed(im.Format, im.Data, im.Shape)
	case "raw":
		a := NDArray{Data: im.Data, DType: im.DType, Shape: im.Shape}
		if err := a.Validate(); err != nil {
			return nil, 0, 0, fmt.Errorf("raw image: %w", err)
		}
		return hwcToRGB(a)
	}
	return nil, 0, 0, fmt.Errorf("image format %q is not supported (expected png, jpeg or raw)", im.Format)
}

// decodeCompressed decodes PNG or JPEG bytes, checking the declared dimensions before decoding.
func decodeCompressed(format string, data []byte, shape []int) ([]float32, int, int, error) {
	img, err := safeio.DecodeImage(data, format)
	if err != nil {
		return nil, 0, 0, err
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if len(shape) >= 2 && (shape[0] != h || shape[1] != w) {
		return nil, 0, 0, fmt.Errorf("%s image is %d×%d but its shape says %v", format, h, w, shape)
	}
	pix := make([]float32, h*w*3)
	if m, ok := img.(*image.NRGBA); ok || isOpaqueRGBA(img) {
		var src []uint8
		var stride int
		if ok {
			src, stride = m.Pix, m.Stride
		} else {
			r := img.(*image.RGBA)
			src, stride = r.Pix, r.Stride
		}
		for y := range h {
			row := src[y*stride:]
			for x := range w {
				for c := range 3 {
					pix[3*(y*w+x)+c] = float32(row[4*x+c]) / 255
				}
			}
		}
		return pix, h, w, nil
	}
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := 3 * (y*w + x)
			pix[i], pix[i+1], pix[i+2] = float32(c.R)/255, float32(c.G)/255, float32(c.B)/255
		}
	}
	return pix, h, w, nil
}

func isOpaqueRGBA(img image.Image) bool {
	m, ok := img.(*image.RGBA)
	return ok && m.Opaque()
}

// hwcToRGB converts an H×W×C array (C of 1, 3 or 4; uint8 scaled by 1/255, floats as they are)
// into h×w×3 float32 values, as RGB() does.
func hwcToRGB(a NDArray) ([]float32, int, int, error) {
	if len(a.Shape) != 3 || (a.Shape[2] != 1 && a.Shape[2] != 3 && a.Shape[2] != 4) {
		return nil, 0, 0, fmt.Errorf("image array has shape %v, expected [H, W, 3] (or 1 or 4 channels)", a.Shape)
	}
	h, w, c := a.Shape[0], a.Shape[1], a.Shape[2]
	if h == 0 || w == 0 || h > MaxImageSide || w > MaxImageSide {
		return nil, 0, 0, fmt.Errorf("image array is %d×%d, expected sides in 1..%d", h, w, MaxImageSide)
	}
	d, err := parseDType(a.DType)
	if err != nil {
		return nil, 0, 0, err
	}
	if !(d.kind == 'u' && d.size == 1) && d.kind != 'f' {
		return nil, 0, 0, fmt.Errorf("image array has dtype %s, expected uint8 or float", a.DType)
	}
	vals, err := a.Float32s()
	if err != nil {
		return nil, 0, 0, err
	}
	scale := float32(1)
	if d.kind == 'u' {
		scale = 255
	}
	pix := make([]float32, h*w*3)
	for i := range h * w {
		for k := range 3 {
			src := i*c + k
			if c == 1 {
				src = i
			}
			pix[3*i+k] = vals[src] / scale
		}
	}
	return pix, h, w, nil
}

// EncodeMsgpack writes the image in the vla-eval image codec's map form.
func (im Image) EncodeMsgpack(enc *msgpack.Encoder) error {
	m := map[string]any{imageKey: true, "format": im.Format, "data": im.Data}
	if im.Shape != nil {
		m["shape"] = im.Shape
	}
	if im.DType != "" {
		m["dtype"] = im.DType
	}
	return enc.Encode(m)
}

// imageFromMap interprets a decoded {"__image__": ...} map.
func imageFromMap(m map[string]any) (Image, error) {
	format, ok := m["format"].(string)
	if !ok {
		return Image{}, fmt.Errorf("image: \"format\" must be a string, got %s", typeName(m["format"]))
	}
	data, ok := m["data"].([]byte)
	if !ok {
		return Image{}, fmt.Errorf("image: \"data\" must be binary bytes, got %s", typeName(m["data"]))
	}
	im := Image{Format: format, Data: data}
	if v, present := m["shape"]; present {
		shape, err := intList(v)
		if err != nil {
			return Image{}, fmt.Errorf("image: \"shape\": %w", err)
		}
		im.Shape = shape
	}
	if v, present := m["dtype"]; present {
		if im.DType, ok = v.(string); !ok {
			return Image{}, fmt.Errorf("image: \"dtype\" must be a string, got %s", typeName(v))
		}
	}
	if format == "raw" && im.DType == "" {
		im.DType = "|u1"
	}
	return im, nil
}
