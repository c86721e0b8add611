package policy

import (
	"fmt"
	"math"
)

// Image is an RGB image in HWC layout with values in [0, 1]: Pix holds H×W×3 values, row-major.
type Image struct {
	W, H int
	Pix  []float32
}

// NewImage returns a black w×h image.
func NewImage(w, h int) Image { return Image{W: w, H: h, Pix: make([]float32, w*h*3)} }

// Check reports whether the image's buffer matches its size.
func (im Image) Check() error {
	if im.W < 1 || im.H < 1 || len(im.Pix) != im.W*im.H*3 {
		return fmt.Errorf("image of %d×%d pixels has %d values, expected %d", im.W, im.H, len(im.Pix), max(0, im.W*im.H*3))
	}
	return nil
}

// Resize modes: how an image is fitted to another size.
const (
	// ResizePad scales the image to fit inside the target keeping its aspect ratio and pads the
	// rest with black, centred (openpi's resize_with_pad, LeRobot's pi0 preprocessing).
	ResizePad = "pad"
	// ResizeCrop scales the image to cover the target keeping its aspect ratio and cuts the
	// centre.
	ResizeCrop = "crop"
	// ResizeStretch scales each axis independently to the target size.
	ResizeStretch = "stretch"
	// ResizePadTopLeft is LeRobot's SmolVLA preprocessing (huggingface/lerobot
	// src/lerobot/policies/common/vla_utils.py resize_with_pad): scaled to fit keeping the aspect
	// ratio (sizes truncated), resampled as torch's F.interpolate(bilinear, align_corners=False)
	// without antialiasing, padded with black on the left and top.
	ResizePadTopLeft = "pad_topleft"
)

// ParseResizeMode checks a resize mode name ("" means ResizePad).
func ParseResizeMode(mode string) (string, error) {
	switch mode {
	case "":
		return ResizePad, nil
	case ResizePad, ResizeCrop, ResizeStretch, ResizePadTopLeft:
		return mode, nil
	}
	return "", fmt.Errorf("resize mode %q is not one of pad, crop, stretch, pad_topleft", mode)
}

// Resize fits im to w×h with the given mode (see ParseResizeMode). Resampling is bilinear with
// antialiasing: each output pixel is a triangle-filter average of the input whose support widens
// with the downscaling factor, as PIL's BILINEAR and jax.image.resize(antialias=True) compute, so
// a 640×480 camera shrunk to 32 pixels averages its pixels rather than sampling a few of them.
// An image already of size w×h is returned as is.
func Resize(im Image, w, h int, mode string) (Image, error) {
	if err := im.Check(); err != nil {
		return Image{}, err
	}
	if w < 1 || h < 1 {
		return Image{}, fmt.Errorf("resize to %d×%d: sizes must be positive", w, h)
	}
	mode, err := ParseResizeMode(mode)
	if err != nil {
		return Image{}, err
	}
	if im.W == w && im.H == h {
		return im, nil
	}
	out := NewImage(w, h)
	sw, sh := float64(im.W), float64(im.H)
	switch mode {
	case ResizeStretch:
		resample(im, 0, 0, sw, sh, out, 0, 0, w, h)
	case ResizePad:
		s := math.Min(float64(w)/sw, float64(h)/sh)
		rw := min(w, max(1, int(math.Round(sw*s))))
		rh := min(h, max(1, int(math.Round(sh*s))))
		resample(im, 0, 0, sw, sh, out, (w-rw)/2, (h-rh)/2, rw, rh)
	case ResizePadTopLeft:
		ratio := math.Max(sw/float64(w), sh/float64(h))
		rw, rh := max(1, int(sw/ratio)), max(1, int(sh/ratio))
		resampleTaps(im, torchBilinear(im.W, rw), torchBilinear(im.H, rh), out, w-rw, h-rh)
	case ResizeCrop:
		s := math.Max(float64(w)/sw, float64(h)/sh)
		cw, ch := float64(w)/s, float64(h)/s // the source region that is kept
		resample(im, (sw-cw)/2, (sh-ch)/2, cw, ch, out, 0, 0, w, h)
	}
	return out, nil
}

// resample draws the source rectangle [x0, x0+sw) × [y0, y0+sh) of src (pixel units, possibly
// fractional) into the ow×oh rectangle of dst at (ox, oy), separably: rows first, then columns.
func resample(src Image, x0, y0, sw, sh float64, dst Image, ox, oy, ow, oh int) {
	resampleTaps(src, filterWeights(src.W, x0, sw, ow), filterWeights(src.H, y0, sh, oh), dst, ox, oy)
}

// torchBilinear are the taps of torch's F.interpolate(mode="bilinear", align_corners=False,
// antialias=False) from size to n samples: source (o + 0.5)·size/n − 0.5 clamped at 0, its two
// neighbours linearly weighted (upsample_bilinear2d's area_pixel_compute_source_index).
func torchBilinear(size, n int) [][]tap {
	scale := float32(size) / float32(n)
	out := make([][]tap, n)
	for o := range out {
		src := max(scale*(float32(o)+0.5)-0.5, 0)
		i0 := int(src)
		l := src - float32(i0)
		i1 := min(i0+1, size-1)
		out[o] = []tap{{i0, 1 - l}, {i1, l}}
	}
	return out
}

// resampleTaps draws src through the column taps wx and row taps wy into dst at (ox, oy),
// separably: rows first, then columns.
func resampleTaps(src Image, wx, wy [][]tap, dst Image, ox, oy int) {
	ow := len(wx)
	// Horizontal pass over the source rows the vertical pass needs: src.H × ow × 3.
	tmp := make([]float32, src.H*ow*3)
	for y := range src.H {
		row := src.Pix[y*src.W*3 : (y+1)*src.W*3]
		for x, taps := range wx {
			var r, g, b float32
			for _, t := range taps {
				p := row[t.i*3 : t.i*3+3]
				r, g, b = r+t.w*p[0], g+t.w*p[1], b+t.w*p[2]
			}
			o := (y*ow + x) * 3
			tmp[o], tmp[o+1], tmp[o+2] = r, g, b
		}
	}
	for y, taps := range wy {
		for x := range ow {
			var r, g, b float32
			for _, t := range taps {
				p := tmp[(t.i*ow+x)*3:]
				r, g, b = r+t.w*p[0], g+t.w*p[1], b+t.w*p[2]
			}
			o := ((oy+y)*dst.W + ox + x) * 3
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2] = r, g, b
		}
	}
}

type tap struct {
	i int
	w float32
}

// filterWeights returns, for each of n output samples covering the source interval
// [start, start+length) of an axis with size pixels, the source pixels and normalised weights of
// a triangle filter centred on the output sample, its support scaled by the downscaling factor.
func filterWeights(size int, start, length float64, n int) [][]tap {
	scale := length / float64(n)
	support := math.Max(scale, 1)
	out := make([][]tap, n)
	for o := range out {
		centre := start + (float64(o)+0.5)*scale
		lo := max(0, int(math.Floor(centre-support)))
		hi := min(size-1, int(math.Ceil(centre+support)))
		var taps []tap
		var sum float64
		for i := lo; i <= hi; i++ {
			w := 1 - math.Abs((float64(i)+0.5-centre)/support)
			if w > 0 {
				taps = append(taps, tap{i, float32(w)})
				sum += w
			}
		}
		if len(taps) == 0 { // a sample between pixels of a degenerate range: nearest pixel
			taps, sum = []tap{{min(size-1, max(0, int(centre))), 1}}, 1
		}
		for k := range taps {
			taps[k].w = float32(float64(taps[k].w) / sum)
		}
		out[o] = taps
	}
	return out
}
