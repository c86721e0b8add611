package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG decoding
	"image/png"
	"os"
	"path/filepath"

	"github.com/reelml/reel/internal/safeio"
)

type folderRecord struct {
	Image    *string `json:"image"`
	Question *string `json:"question"`
	Answer   *string `json:"answer"`
	Kind     string  `json:"kind"`
}

// LoadFolder reads a real-image VQA dataset: questionsPath is JSONL with one
// object per line,
//
//	{"image": "rel/path.png", "question": "...", "answer": "...", "kind": "counting"}
//
// ("kind" is optional and defaults to "general"; blank lines are skipped).
// Image paths are relative to dir (slash-separated). PNG and JPEG images are
// decoded, composited over black if translucent, and resized (stretched, no
// crop) to imageSize×imageSize with area averaging when shrinking and
// bilinear interpolation when enlarging. Decoded images are cached by path,
// so examples referring to the same file share one Image slice.
//
// Errors are one line naming the file and line, e.g.
// `questions.jsonl:7: missing field "answer"`.
func LoadFolder(dir, questionsPath string, imageSize int) ([]Example, error) {
	if imageSize <= 0 {
		return nil, fmt.Errorf("data.LoadFolder: image size %d must be positive", imageSize)
	}
	f, err := safeio.Open(questionsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cache := map[string][]float32{}
	var out []Example
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec folderRecord
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: invalid JSON: %w", questionsPath, line, err)
		}
		for _, fld := range []struct {
			name string
			v    *string
		}{{"image", rec.Image}, {"question", rec.Question}, {"answer", rec.Answer}} {
			if fld.v == nil {
				return nil, fmt.Errorf("%s:%d: missing field %q", questionsPath, line, fld.name)
			}
			if *fld.v == "" {
				return nil, fmt.Errorf("%s:%d: empty field %q", questionsPath, line, fld.name)
			}
		}
		kind := rec.Kind
		if kind == "" {
			kind = "general"
		}
		img, ok := cache[*rec.Image]
		if !ok {
			p := filepath.FromSlash(*rec.Image)
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			img, err = loadImage(p, imageSize)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: image %q: %w", questionsPath, line, *rec.Image, err)
			}
			cache[*rec.Image] = img
		}
		out = append(out, Example{Image: img, Size: imageSize, Question: *rec.Question, Answer: *rec.Answer, Kind: kind})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", questionsPath, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no examples", questionsPath)
	}
	return out, nil
}

func loadImage(path string, size int) ([]float32, error) {
	raw, err := safeio.ReadFile(path, safeio.ImageLimit)
	if err != nil {
		return nil, err
	}
	m, err := safeio.DecodeImage(raw, "")
	if err != nil {
		return nil, err
	}
	b := m.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, errors.New("empty image")
	}
	return resize(toFloat(m), b.Dx(), b.Dy(), size), nil
}

// toFloat converts m to W*H*3 HWC floats in [0,1] (alpha premultiplied, i.e.
// over black).
func toFloat(m image.Image) []float32 {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, w*h*3)
	switch im := m.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := im.Pix[y*im.Stride:]
			for x := 0; x < w; x++ {
				p := row[x*4:]
				a := float32(p[3]) / 255
				o := out[(y*w+x)*3:]
				o[0], o[1], o[2] = float32(p[0])/255*a, float32(p[1])/255*a, float32(p[2])/255*a
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := im.Pix[y*im.Stride:]
			for x := 0; x < w; x++ {
				p := row[x*4:]
				o := out[(y*w+x)*3:]
				o[0], o[1], o[2] = float32(p[0])/255, float32(p[1])/255, float32(p[2])/255
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, bb, _ := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
				o := out[(y*w+x)*3:]
				o[0], o[1], o[2] = float32(r)/65535, float32(g)/65535, float32(bb)/65535
			}
		}
	}
	return out
}

type tap struct {
	idx int
	w   float32
}

// resizeWeights returns for each destination index the source taps: area
// average when shrinking (or equal), bilinear when enlarging.
func resizeWeights(src, dst int) [][]tap {
	out := make([][]tap, dst)
	scale := float64(src) / float64(dst)
	for o := range out {
		if scale >= 1 {
			lo, hi := float64(o)*scale, float64(o+1)*scale
			for i := int(lo); i < src && float64(i) < hi; i++ {
				cov := min(hi, float64(i+1)) - max(lo, float64(i))
				if cov > 1e-9 {
					out[o] = append(out[o], tap{i, float32(cov / scale)})
				}
			}
		} else {
			c := (float64(o)+0.5)*scale - 0.5
			c = max(0, min(float64(src-1), c))
			i0 := int(c)
			i1 := min(src-1, i0+1)
			t := c - float64(i0)
			out[o] = []tap{{i0, float32(1 - t)}, {i1, float32(t)}}
		}
	}
	return out
}

// resize maps a w×h×3 image to size×size×3 (separable: rows then columns).
func resize(src []float32, w, h, size int) []float32 {
	if w == size && h == size {
		return src
	}
	wx, wy := resizeWeights(w, size), resizeWeights(h, size)
	tmp := make([]float32, h*size*3) // h rows × size cols
	for y := 0; y < h; y++ {
		for x, taps := range wx {
			var r, g, b float32
			for _, t := range taps {
				p := src[(y*w+t.idx)*3:]
				r += t.w * p[0]
				g += t.w * p[1]
				b += t.w * p[2]
			}
			o := tmp[(y*size+x)*3:]
			o[0], o[1], o[2] = r, g, b
		}
	}
	out := make([]float32, size*size*3)
	for y, taps := range wy {
		for x := 0; x < size; x++ {
			var r, g, b float32
			for _, t := range taps {
				p := tmp[(t.idx*size+x)*3:]
				r += t.w * p[0]
				g += t.w * p[1]
				b += t.w * p[2]
			}
			o := out[(y*size+x)*3:]
			o[0], o[1], o[2] = clamp01(r), clamp01(g), clamp01(b)
		}
	}
	return out
}

// WriteFolderSample writes n synthetic examples from gen in the LoadFolder
// format: images/img_00000.png ... and dir/questions.jsonl. The examples are
// a deterministic function of seed.
func WriteFolderSample(dir string, n int, gen *SceneGenerator, seed uint64) error {
	if n <= 0 {
		return fmt.Errorf("data.WriteFolderSample: n=%d must be positive", n)
	}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return err
	}
	rng := NewRand(seed)
	var jsonl bytes.Buffer
	enc := json.NewEncoder(&jsonl)
	for i := 0; i < n; i++ {
		ex := gen.Example(rng, "")
		rel := fmt.Sprintf("images/img_%05d.png", i)
		if err := writePNG(filepath.Join(dir, filepath.FromSlash(rel)), ex.Image, ex.Size); err != nil {
			return err
		}
		if err := enc.Encode(map[string]string{"image": rel, "question": ex.Question, "answer": ex.Answer, "kind": ex.Kind}); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "questions.jsonl"), jsonl.Bytes(), 0o644)
}

func writePNG(path string, img []float32, size int) error {
	m := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := img[(y*size+x)*3:]
			q := func(v float32) uint8 { return uint8(clamp01(v)*255 + 0.5) }
			m.SetNRGBA(x, y, color.NRGBA{q(p[0]), q(p[1]), q(p[2]), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
