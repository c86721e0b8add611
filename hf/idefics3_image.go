package hf

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/text"
)

// ImageGrid is how Idefics3's / SmolVLM's image processor split one image: Rows × Cols tiles
// before the global image (0 × 0: the global image only).
type ImageGrid struct {
	Rows, Cols int
}

// Tiles is the number of pixel_values rows the image takes (the splits and the global image).
func (g ImageGrid) Tiles() int { return g.Rows*g.Cols + 1 }

// Idefics3Processor is preprocessor_config.json as transformers' Idefics3ImageProcessor and
// SmolVLMImageProcessor (src/transformers/models/idefics3/image_processing_idefics3.py,
// src/transformers/models/smolvlm/image_processing_smolvlm.py, the slow PIL processors) read it:
// resize the longest edge to size.longest_edge (even shortest edge, at most 4096), then with
// do_image_splitting resize both sides up to multiples of max_image_size.longest_edge and cut the
// image into those tiles, row by row, followed by the whole image resized to one tile (the global
// image); without splitting, the image resized to one square tile. Then rescale and normalise.
// Differences: reel drops an alpha channel as PIL's convert("RGB") does, where the processor
// composites RGBA images onto white after resizing; RGB images are processed identically.
type Idefics3Processor struct {
	DoResize         bool      `json:"do_resize"`
	Size             edgeSpec  `json:"size"`
	Resample         int       `json:"resample"`
	DoImageSplitting bool      `json:"do_image_splitting"`
	MaxImageSize     edgeSpec  `json:"max_image_size"`
	DoRescale        bool      `json:"do_rescale"`
	RescaleFactor    float64   `json:"rescale_factor"`
	DoNormalize      bool      `json:"do_normalize"`
	ImageMean        []float64 `json:"image_mean"`
	ImageStd         []float64 `json:"image_std"`
}

// edgeSpec is {"longest_edge": N}.
type edgeSpec struct {
	LongestEdge int `json:"longest_edge"`
}

// ReadIdefics3Processor reads DIR/preprocessor_config.json; without one, SmolVLMImageProcessor's
// defaults with one tile the vision tower's image size (size.longest_edge 4 tiles, Lanczos,
// splitting, IDEFICS_STANDARD mean/std 0.5).
func ReadIdefics3Processor(dir string, tile int) (*Idefics3Processor, error) {
	return ReadIdefics3ProcessorFile(filepath.Join(dir, "preprocessor_config.json"), tile)
}

// ReadIdefics3ProcessorFile is ReadIdefics3Processor for a named file.
func ReadIdefics3ProcessorFile(path string, tile int) (*Idefics3Processor, error) {
	p := &Idefics3Processor{DoResize: true, Size: edgeSpec{4 * tile}, Resample: 1, DoImageSplitting: true,
		MaxImageSize: edgeSpec{tile}, DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
		ImageMean: []float64{0.5, 0.5, 0.5}, ImageStd: []float64{0.5, 0.5, 0.5}}
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
	case p.DoResize && (p.Size.LongestEdge <= 0 || p.Size.LongestEdge > 4096):
		return nil, fmt.Errorf("hf: %s: field size: expected {\"longest_edge\": N} with 0 < N ≤ 4096", path)
	case p.MaxImageSize.LongestEdge != tile:
		return nil, fmt.Errorf("hf: %s: field max_image_size: longest_edge %d must equal the vision tower's image_size %d", path, p.MaxImageSize.LongestEdge, tile)
	}
	return p, nil
}

// Describe is a one-line summary of the preprocessing.
func (p *Idefics3Processor) Describe() string {
	var parts []string
	if p.DoResize {
		parts = append(parts, fmt.Sprintf("resize longest edge to %d (%s)", p.Size.LongestEdge, pilFilterNames[p.Resample]))
	}
	m := p.MaxImageSize.LongestEdge
	if p.DoImageSplitting {
		parts = append(parts, fmt.Sprintf("split into %d×%d tiles + the global image", m, m))
	} else {
		parts = append(parts, fmt.Sprintf("resize to %d×%d", m, m))
	}
	if p.DoRescale {
		parts = append(parts, fmt.Sprintf("rescale ×%.6g", p.RescaleFactor))
	}
	if p.DoNormalize {
		parts = append(parts, fmt.Sprintf("normalise mean %v std %v", p.ImageMean, p.ImageStd))
	}
	return strings.Join(parts, ", ")
}

// resizeToMaxLen is _resize_output_size_rescale_to_max_len then
// _resize_output_size_scale_below_upper_bound(4096): the longest edge to maxLen, the other
// rounded up to even.
func resizeToMaxLen(h, w, maxLen int) (int, int) {
	aspect := float64(w) / float64(h)
	if w >= h {
		w = maxLen
		h = int(float64(w) / aspect)
		if h%2 != 0 {
			h++
		}
	} else {
		h = maxLen
		w = int(float64(h) * aspect)
		if w%2 != 0 {
			w++
		}
	}
	h, w = max(h, 1), max(w, 1)
	aspect = float64(w) / float64(h)
	const upper = 4096
	if w >= h && w > upper {
		w = upper
		h = int(float64(w) / aspect)
	} else if h > w && h > upper {
		h = upper
		w = int(float64(h) * aspect)
	}
	return max(h, 1), max(w, 1)
}

// resizeForVisionEncoder is resize_for_vision_encoder's size: both sides up to multiples of m.
func resizeForVisionEncoder(h, w, m int) (int, int) {
	ceilTo := func(x int) int { return int(math.Ceil(float64(x)/float64(m))) * m }
	aspect := float64(w) / float64(h)
	if w >= h {
		w = ceilTo(w)
		h = ceilTo(int(float64(w) / aspect))
	} else {
		h = ceilTo(h)
		w = ceilTo(int(float64(h) * aspect))
	}
	return h, w
}

// Process preprocesses an 8-bit RGB image (HWC, w×h) into pixel_values [tiles, 3, T, T] f32 (T
// the tile size) and the split grid.
func (p *Idefics3Processor) Process(rgb []uint8, w, h int) (*tensors.Tensor, ImageGrid) {
	m := p.MaxImageSize.LongestEdge
	if p.DoResize {
		th, tw := resizeToMaxLen(h, w, p.Size.LongestEdge)
		rgb, w, h = ResizePIL(rgb, w, h, tw, th, p.Resample), tw, th
	}
	var tiles [][]uint8
	var grid ImageGrid
	if p.DoImageSplitting {
		th, tw := resizeForVisionEncoder(h, w, m)
		rgb, w, h = ResizePIL(rgb, w, h, tw, th, p.Resample), tw, th
		if h > m || w > m { // split_image: ceil(h/m) × ceil(w/m) crops of m × m
			grid = ImageGrid{Rows: (h + m - 1) / m, Cols: (w + m - 1) / m}
			for r := range grid.Rows {
				for c := range grid.Cols {
					tile := make([]uint8, m*m*3)
					for y := range m {
						copy(tile[y*m*3:(y+1)*m*3], rgb[((r*m+y)*w+c*m)*3:((r*m+y)*w+c*m+m)*3])
					}
					tiles = append(tiles, tile)
				}
			}
		}
	}
	if w != m || h != m {
		rgb = ResizePIL(rgb, w, h, m, m, p.Resample)
	}
	tiles = append(tiles, rgb)
	pix := make([]float32, 0, len(tiles)*3*m*m)
	for _, t := range tiles {
		for c := range 3 {
			for i := range m * m {
				v := float32(t[i*3+c])
				if p.DoRescale {
					v = float32(float64(t[i*3+c]) * p.RescaleFactor)
				}
				if p.DoNormalize {
					v = (v - float32(p.ImageMean[c])) / float32(p.ImageStd[c])
				}
				pix = append(pix, v)
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(pix, len(tiles), 3, m, m), grid
}

// Idefics3 prompt tokens, as Idefics3Processor / SmolVLMProcessor spell them.
const (
	idefics3FakeToken   = "<fake_token_around_image>"
	idefics3GlobalToken = "<global-img>"
)

// idefics3ImageText is the processor's expansion of one "<image>" (processing_smolvlm.py
// _prompt_split_image / _prompt_single_image; the same in processing_idefics3.py).
func idefics3ImageText(g ImageGrid, seqLen int) string {
	img := strings.Repeat(ImagePlaceholder, seqLen)
	var b strings.Builder
	if g.Rows*g.Cols > 0 {
		for r := range g.Rows {
			for c := range g.Cols {
				fmt.Fprintf(&b, "%s<row_%d_col_%d>%s", idefics3FakeToken, r+1, c+1, img)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(idefics3FakeToken + idefics3GlobalToken + img + idefics3FakeToken)
	return b.String()
}

// idefics3Expand replaces the i-th "<image>" of s by image i's expansion; s must hold one per image.
func idefics3Expand(s string, grids []ImageGrid, seqLen int) (string, error) {
	parts := strings.Split(s, ImagePlaceholder)
	if n := len(parts) - 1; n != len(grids) {
		return "", fmt.Errorf("the prompt has %d %s placeholders for %d image(s)", n, ImagePlaceholder, len(grids))
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(idefics3ImageText(grids[i-1], seqLen))
		}
		b.WriteString(p)
	}
	return b.String(), nil
}

// Idefics3PromptIDs tokenises prompt as Idefics3Processor / SmolVLMProcessor do for images split
// as grids: each "<image>" of the prompt (one is put first when the prompt has none) expanded to
// the tiles' tokens, then encode(text, add_special_tokens=True); the tokenizer splits the
// processor's added tokens (<image>, <fake_token_around_image>, <row_r_col_c>, <global-img>).
func (m *Model) Idefics3PromptIDs(tok text.Tokenizer, prompt string, grids []ImageGrid) ([]int, error) {
	if len(grids) > 0 && !strings.Contains(prompt, ImagePlaceholder) {
		prompt = strings.Repeat(ImagePlaceholder, len(grids)) + prompt
	}
	s, err := idefics3Expand(prompt, grids, m.Config.ImageTokens())
	if err != nil {
		return nil, err
	}
	return tok.EncodeSpecial(s), nil
}

// ImageInput reads an image file and preprocesses it as the model's processor does:
// pixel_values [N, C, H, W] and, for Idefics3 / SmolVLM, the image's split grid (N = its tiles);
// other models take one row per image and a zero grid.
func (m *Model) ImageInput(path string) (*tensors.Tensor, ImageGrid, error) {
	v := m.Config.VisionTower()
	if v == nil {
		return nil, ImageGrid{}, fmt.Errorf("%s is a text-only model", m.Config.Arch)
	}
	rgb, w, h, err := LoadImage(path)
	if err != nil {
		return nil, ImageGrid{}, err
	}
	if w < 1 || h < 1 {
		return nil, ImageGrid{}, fmt.Errorf("image %s: %d×%d pixels, expected at least 1×1", path, w, h)
	}
	if m.Config.Idefics3 != nil {
		p, err := ReadIdefics3Processor(m.Dir, v.ImageSize)
		if err != nil {
			return nil, ImageGrid{}, err
		}
		px, g := p.Process(rgb, w, h)
		return px, g, nil
	}
	p, err := ReadPreprocessor(m.Dir, v.ImageSize)
	if err != nil {
		return nil, ImageGrid{}, err
	}
	return p.PixelValues(rgb, w, h), ImageGrid{}, nil
}

// PromptIDsGrids is PromptIDs for images split as grids (one per image): Idefics3 / SmolVLM lay
// out each image's tiles; other models take len(grids) images.
func (m *Model) PromptIDsGrids(tok text.Tokenizer, prompt string, grids []ImageGrid) ([]int, error) {
	if m.Config.Idefics3 != nil {
		return m.Idefics3PromptIDs(tok, prompt, grids)
	}
	return m.PromptIDs(tok, prompt, len(grids))
}

// ChatPromptIDsGrids is ChatPromptIDs for images split as grids: Idefics3's / SmolVLM's template
// writes one "<image>" per image, expanded to its tiles' tokens; the rendered text is tokenised
// without adding special tokens.
func (m *Model) ChatPromptIDsGrids(tok text.Tokenizer, tmpl *text.ChatTemplate, prompt string, grids []ImageGrid, vars map[string]any) ([]int, string, error) {
	if m.Config.Idefics3 == nil {
		return m.ChatPromptIDs(tok, tmpl, prompt, len(grids), vars)
	}
	rendered, err := tmpl.RenderJSON(m.ChatMessages(prompt, len(grids)), true, vars)
	if err != nil {
		return nil, "", fmt.Errorf("chat template %s: %w", tmpl.Origin, err)
	}
	s, err := idefics3Expand(rendered, grids, m.Config.ImageTokens())
	if err != nil {
		return nil, "", fmt.Errorf("chat template %s: %w", tmpl.Origin, err)
	}
	return tok.Encode(s), rendered, nil
}
