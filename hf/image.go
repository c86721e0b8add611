package hf

import (
	"encoding/json"
	"fmt"
	"image/color"
	_ "image/jpeg" // decoders for LoadImage
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/internal/safeio"
)

// Preprocessor is preprocessor_config.json as transformers' SiglipImageProcessor and
// CLIPImageProcessor read it (src/transformers/models/siglip/image_processing_siglip.py,
// src/transformers/models/clip/image_processing_clip.py): resize (to a fixed size, or the shortest
// edge), center crop, rescale, normalise.
type Preprocessor struct {
	DoResize      bool      `json:"do_resize"`
	Size          sizeSpec  `json:"size"`
	Resample      int       `json:"resample"` // PIL filter: 1 Lanczos, 2 bilinear, 3 bicubic
	DoCenterCrop  bool      `json:"do_center_crop"`
	CropSize      sizeSpec  `json:"crop_size"`
	DoRescale     bool      `json:"do_rescale"`
	RescaleFactor float64   `json:"rescale_factor"`
	DoNormalize   bool      `json:"do_normalize"`
	ImageMean     []float64 `json:"image_mean"`
	ImageStd      []float64 `json:"image_std"`
}

// sizeSpec is {"height": H, "width": W} or {"shortest_edge": S}.
type sizeSpec struct {
	Height, Width, ShortestEdge int
}

func (s *sizeSpec) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil { // a bare number: a square
		s.Height, s.Width = n, n
		return nil
	}
	var m struct {
		Height       int `json:"height"`
		Width        int `json:"width"`
		ShortestEdge int `json:"shortest_edge"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("expected {\"height\": H, \"width\": W} or {\"shortest_edge\": S}")
	}
	s.Height, s.Width, s.ShortestEdge = m.Height, m.Width, m.ShortestEdge
	return nil
}

// ReadPreprocessor reads DIR/preprocessor_config.json; without one, the defaults of
// SiglipImageProcessor at the vision tower's image size (the model's own size, bicubic, [0, 1] →
// [−1, 1]).
func ReadPreprocessor(dir string, imageSize int) (*Preprocessor, error) {
	return ReadPreprocessorFile(filepath.Join(dir, "preprocessor_config.json"), imageSize)
}

// ReadPreprocessorFile is ReadPreprocessor for a named file.
func ReadPreprocessorFile(path string, imageSize int) (*Preprocessor, error) {
	p := &Preprocessor{DoResize: true, Size: sizeSpec{Height: imageSize, Width: imageSize}, Resample: 3,
		DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true, ImageMean: []float64{0.5, 0.5, 0.5}, ImageStd: []float64{0.5, 0.5, 0.5}}
	found, err := readProcessorJSON(path, p)
	if err != nil {
		return nil, err
	}
	if !found {
		return p, nil
	}
	switch {
	case p.Resample < 1 || p.Resample > 3:
		return nil, fmt.Errorf("hf: %s: field resample: %d is not supported (1 Lanczos, 2 bilinear, 3 bicubic)", path, p.Resample)
	case p.DoNormalize && (len(p.ImageMean) != 3 || len(p.ImageStd) != 3):
		return nil, fmt.Errorf("hf: %s: fields image_mean and image_std: expected 3 values each", path)
	case p.DoResize && p.Size.ShortestEdge <= 0 && (p.Size.Height <= 0 || p.Size.Width <= 0):
		return nil, fmt.Errorf("hf: %s: field size: expected positive height and width or shortest_edge", path)
	case p.DoCenterCrop && (p.CropSize.Height <= 0 || p.CropSize.Width <= 0):
		return nil, fmt.Errorf("hf: %s: field crop_size: expected positive height and width", path)
	}
	return p, nil
}

// LoadImage decodes a PNG or JPEG file into 8-bit RGB, HWC (PIL's convert("RGB"): alpha dropped,
// grey replicated).
func LoadImage(path string) (rgb []uint8, w, h int, err error) {
	img, err := safeio.ReadImage(path)
	if err != nil {
		return nil, 0, 0, err
	}
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	rgb = make([]uint8, 0, w*h*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			rgb = append(rgb, c.R, c.G, c.B)
		}
	}
	return rgb, w, h, nil
}

// PixelValues preprocesses an 8-bit RGB image (HWC) into pixel_values [1, 3, H, W] f32, as the
// slow (PIL) image processors do: PIL resize, center crop, x·rescale_factor in float32, then
// (x − mean) / std.
func (p *Preprocessor) PixelValues(rgb []uint8, w, h int) *tensors.Tensor {
	if p.DoResize {
		tw, th := p.Size.Width, p.Size.Height
		if s := p.Size.ShortestEdge; s > 0 { // get_resize_output_image_size(default_to_square=False)
			short, long := min(w, h), max(w, h)
			nl := int(float64(s) * float64(long) / float64(short))
			if w <= h {
				tw, th = s, nl
			} else {
				tw, th = nl, s
			}
		}
		rgb = ResizePIL(rgb, w, h, tw, th, p.Resample)
		w, h = tw, th
	}
	if p.DoCenterCrop {
		cw, ch := p.CropSize.Width, p.CropSize.Height
		top, left := (h-ch)/2, (w-cw)/2
		out := make([]uint8, cw*ch*3)
		for y := range ch {
			for x := range cw {
				sy, sx := y+top, x+left
				if sy < 0 || sy >= h || sx < 0 || sx >= w {
					continue // padded with zeros
				}
				copy(out[(y*cw+x)*3:(y*cw+x)*3+3], rgb[(sy*w+sx)*3:(sy*w+sx)*3+3])
			}
		}
		rgb, w, h = out, cw, ch
	}
	pix := make([]float32, 3*w*h)
	for c := range 3 {
		for i := range w * h {
			v := float32(rgb[i*3+c])
			if p.DoRescale {
				v = float32(float64(rgb[i*3+c]) * p.RescaleFactor)
			}
			if p.DoNormalize {
				v = (v - float32(p.ImageMean[c])) / float32(p.ImageStd[c])
			}
			pix[c*w*h+i] = v
		}
	}
	return tensors.FromFlatDataAndDimensions(pix, 1, 3, h, w)
}

var pilFilterNames = map[int]string{1: "Lanczos", 2: "bilinear", 3: "bicubic"}

// ResizePIL resizes 8-bit RGB (HWC) from w×h to tw×th exactly as Pillow's Image.resize with
// LANCZOS (1), BILINEAR (2) or BICUBIC (3) does (python-pillow/Pillow src/libImaging/Resample.c): separable
// convolution, horizontal pass first, support widened by the downscaling factor (antialiasing),
// coefficients in 22-bit fixed point, each pass rounded and clipped to 8 bits.
func ResizePIL(rgb []uint8, w, h, tw, th, resample int) []uint8 {
	filter, support := bilinearFilter, 1.0
	switch resample {
	case 3:
		filter, support = bicubicFilter, 2.0
	case 1: // LANCZOS (Idefics3 / SmolVLM)
		filter, support = lanczosFilter, 3.0
	}
	if tw != w {
		bounds, kk, ksize := pilCoeffs(w, tw, filter, support)
		out := make([]uint8, tw*h*3)
		for y := range h {
			for x := range tw {
				xmin, n := bounds[2*x], bounds[2*x+1]
				k := kk[x*ksize:]
				for c := range 3 {
					ss := int32(1 << (pilPrecision - 1))
					for i := range n {
						ss += int32(rgb[(y*w+xmin+i)*3+c]) * k[i]
					}
					out[(y*tw+x)*3+c] = clip8(ss)
				}
			}
		}
		rgb, w = out, tw
	}
	if th != h {
		bounds, kk, ksize := pilCoeffs(h, th, filter, support)
		out := make([]uint8, w*th*3)
		for y := range th {
			ymin, n := bounds[2*y], bounds[2*y+1]
			k := kk[y*ksize:]
			for x := range w {
				for c := range 3 {
					ss := int32(1 << (pilPrecision - 1))
					for i := range n {
						ss += int32(rgb[((ymin+i)*w+x)*3+c]) * k[i]
					}
					out[(y*w+x)*3+c] = clip8(ss)
				}
			}
		}
		rgb = out
	}
	return rgb
}

const pilPrecision = 32 - 8 - 2

func clip8(v int32) uint8 {
	switch {
	case v >= 1<<pilPrecision<<8:
		return 255
	case v <= 0:
		return 0
	}
	return uint8(v >> pilPrecision)
}

func bilinearFilter(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

// lanczosFilter is Pillow's lanczos_filter: sinc(x)·sinc(x/3) on [−3, 3).
func lanczosFilter(x float64) float64 {
	if x < -3 || x >= 3 {
		return 0
	}
	return pilSinc(x) * pilSinc(x/3)
}

func pilSinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func bicubicFilter(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// pilCoeffs is Pillow's precompute_coeffs + normalize_coeffs_8bpc for resizing in → out: per
// output pixel the first input index and tap count, and the fixed-point taps (ksize per pixel).
func pilCoeffs(in, out int, filter func(float64) float64, support float64) (bounds []int, kk []int32, ksize int) {
	scale := float64(in) / float64(out)
	fs := max(scale, 1)
	support *= fs
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*out)
	kk = make([]int32, out*ksize)
	w := make([]float64, ksize)
	for xx := range out {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / fs
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in) - xmin
		ww := 0.0
		for x := range xmax {
			w[x] = filter((float64(x+xmin) - center + 0.5) * ss)
			ww += w[x]
		}
		for x := range xmax {
			if ww != 0 {
				w[x] /= ww
			}
			if w[x] < 0 {
				kk[xx*ksize+x] = int32(-0.5 + w[x]*(1<<pilPrecision))
			} else {
				kk[xx*ksize+x] = int32(0.5 + w[x]*(1<<pilPrecision))
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, kk, ksize
}

// Describe is a one-line summary of the preprocessing.
func (p *Preprocessor) Describe() string {
	var parts []string
	if p.DoResize {
		filter := pilFilterNames[p.Resample]
		if p.Size.ShortestEdge > 0 {
			parts = append(parts, fmt.Sprintf("resize shortest edge to %d (%s)", p.Size.ShortestEdge, filter))
		} else {
			parts = append(parts, fmt.Sprintf("resize to %d×%d (%s)", p.Size.Width, p.Size.Height, filter))
		}
	}
	if p.DoCenterCrop {
		parts = append(parts, fmt.Sprintf("center crop %d×%d", p.CropSize.Width, p.CropSize.Height))
	}
	if p.DoRescale {
		parts = append(parts, fmt.Sprintf("rescale ×%.6g", p.RescaleFactor))
	}
	if p.DoNormalize {
		parts = append(parts, fmt.Sprintf("normalise mean %v std %v", p.ImageMean, p.ImageStd))
	}
	return strings.Join(parts, ", ")
}

// readProcessorJSON decodes a processor config file (preprocessor_config.json and its kin) into
// into; found is false, with no error, when the file does not exist (the defaults apply).
func readProcessorJSON(path string, into any) (found bool, err error) {
	data, err := safeio.ReadFile(path, safeio.JSONLimit)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("hf: %s: %w", path, err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return false, fmt.Errorf("hf: %s: %w", path, err)
	}
	return true, nil
}
