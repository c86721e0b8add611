package hf

import (
	"encoding/json"
	"fmt"
	"github.com/reelml/reel/internal/safeio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/text"
)

// QwenProcessor is the image and video preprocessing of Qwen2-VL and Qwen2.5-VL, as
// huggingface/transformers src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py
// (Qwen2VLImageProcessor) and video_processing_qwen2_vl.py (Qwen2VLVideoProcessor) do it: each
// image (or video frame) resized by smart_resize to a multiple of patch_size × merge_size with
// min_pixels ≤ H·W ≤ max_pixels, keeping the aspect ratio, with PIL's filter; x·rescale_factor;
// (x − mean) / std; the frames (an image repeated to temporal_patch_size) cut into
// temporal_patch_size × patch × patch patches, flattened to rows [C·T·P·P] in the order the vision
// tower expects (merge_size × merge_size neighbours consecutive), with the grid (T, H, W).
type QwenProcessor struct {
	Preprocessor                 // resample, rescale_factor, image_mean, image_std, do_*
	MinPixels, MaxPixels     int // smart_resize's bounds
	PatchSize, TemporalPatch int
	MergeSize                int
	FPS                      float64 // video: frames sampled per second
}

// qwenProcessorJSON are the fields of preprocessor_config.json / video_preprocessor_config.json
// beyond Preprocessor's; the bounds are min_pixels/max_pixels (transformers 4.x) or
// size.shortest_edge/size.longest_edge (later versions).
type qwenProcessorJSON struct {
	MinPixels         *int     `json:"min_pixels"`
	MaxPixels         *int     `json:"max_pixels"`
	PatchSize         *int     `json:"patch_size"`
	TemporalPatchSize *int     `json:"temporal_patch_size"`
	MergeSize         *int     `json:"merge_size"`
	FPS               *float64 `json:"fps"`
	Size              *struct {
		ShortestEdge *int `json:"shortest_edge"`
		LongestEdge  *int `json:"longest_edge"`
	} `json:"size"`
}

// ReadQwenProcessor reads DIR/preprocessor_config.json (video: DIR/video_preprocessor_config.json
// when it exists, else the image one) with the defaults of transformers' Qwen2VLImageProcessor
// (min_pixels 56·56, max_pixels 28·28·1280) and Qwen2VLVideoProcessor (128·28·28, 768·28·28,
// fps 2), the patch sizes defaulting to the vision config's.
func ReadQwenProcessor(dir string, v models.QwenVisionConfig, video bool) (*QwenProcessor, error) {
	p := &QwenProcessor{Preprocessor: Preprocessor{DoResize: true, Resample: 3, DoRescale: true, RescaleFactor: 1.0 / 255,
		DoNormalize: true, ImageMean: []float64{0.48145466, 0.4578275, 0.40821073}, ImageStd: []float64{0.26862954, 0.26130258, 0.27577711}},
		MinPixels: 56 * 56, MaxPixels: 28 * 28 * 1280, PatchSize: v.PatchSize, TemporalPatch: v.TemporalPatch, MergeSize: v.MergeSize, FPS: 2}
	if v.Arch == models.Qwen3VL { // Qwen3-VL's processor configs normalise to [−1, 1]
		p.ImageMean, p.ImageStd = []float64{0.5, 0.5, 0.5}, []float64{0.5, 0.5, 0.5}
	}
	path := filepath.Join(dir, "preprocessor_config.json")
	if video {
		p.MinPixels, p.MaxPixels = 128*28*28, 768*28*28
		if vp := filepath.Join(dir, "video_preprocessor_config.json"); fileExists(vp) {
			path = vp
		}
	}
	data, err := safeio.ReadFile(path, safeio.JSONLimit)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hf: %s: %w", path, err)
	}
	var q qwenProcessorJSON
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("hf: %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(data, &raw)
	for _, k := range []string{"do_resize", "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"} {
		if v, ok := raw[k]; ok {
			one := map[string]json.RawMessage{k: v}
			b, _ := json.Marshal(one)
			if err := json.Unmarshal(b, &p.Preprocessor); err != nil {
				return nil, fmt.Errorf("hf: %s: field %s: %w", path, k, err)
			}
		}
	}
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	if q.Size != nil {
		set(&p.MinPixels, q.Size.ShortestEdge)
		set(&p.MaxPixels, q.Size.LongestEdge)
	}
	set(&p.MinPixels, q.MinPixels)
	set(&p.MaxPixels, q.MaxPixels)
	set(&p.PatchSize, q.PatchSize)
	set(&p.TemporalPatch, q.TemporalPatchSize)
	set(&p.MergeSize, q.MergeSize)
	if q.FPS != nil {
		p.FPS = *q.FPS
	}
	switch {
	case p.Resample != 2 && p.Resample != 3:
		return nil, fmt.Errorf("hf: %s: field resample: %d is not supported (2 bilinear, 3 bicubic)", path, p.Resample)
	case p.DoNormalize && (len(p.ImageMean) != 3 || len(p.ImageStd) != 3):
		return nil, fmt.Errorf("hf: %s: fields image_mean and image_std: expected 3 values each", path)
	case p.MinPixels <= 0 || p.MaxPixels < p.MinPixels:
		return nil, fmt.Errorf("hf: %s: fields min_pixels/max_pixels: expected 0 < min ≤ max, got %d, %d", path, p.MinPixels, p.MaxPixels)
	case p.PatchSize != v.PatchSize || p.TemporalPatch != v.TemporalPatch || p.MergeSize != v.MergeSize:
		return nil, fmt.Errorf("hf: %s: patch_size %d, temporal_patch_size %d, merge_size %d differ from the vision config's %d, %d, %d",
			path, p.PatchSize, p.TemporalPatch, p.MergeSize, v.PatchSize, v.TemporalPatch, v.MergeSize)
	case p.FPS <= 0:
		return nil, fmt.Errorf("hf: %s: field fps: %g must be positive", path, p.FPS)
	}
	return p, nil
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// SmartResize is transformers' smart_resize: the (height, width) nearest to h × w that are
// multiples of factor, scaled down (floor) or up (ceil) by one factor when the area leaves
// [minPixels, maxPixels]. Python's round (half to even) is math.RoundToEven.
func SmartResize(h, w, factor, minPixels, maxPixels int) (int, int, error) {
	if h < 10 || w < 10 {
		return 0, 0, fmt.Errorf("image %d×%d: height and width must be at least 10 pixels", w, h)
	}
	if float64(max(h, w))/float64(min(h, w)) > 200 {
		return 0, 0, fmt.Errorf("image %d×%d: the aspect ratio must be under 200", w, h)
	}
	f := float64(factor)
	hb := int(math.RoundToEven(float64(h)/f)) * factor
	wb := int(math.RoundToEven(float64(w)/f)) * factor
	if hb*wb > maxPixels {
		beta := math.Sqrt(float64(h*w) / float64(maxPixels))
		hb = max(factor, int(math.Floor(float64(h)/beta/f))*factor)
		wb = max(factor, int(math.Floor(float64(w)/beta/f))*factor)
	} else if hb*wb < minPixels {
		beta := math.Sqrt(float64(minPixels) / float64(h*w))
		hb = int(math.Ceil(float64(h)*beta/f)) * factor
		wb = int(math.Ceil(float64(w)*beta/f)) * factor
	}
	return hb, wb, nil
}

// Patches preprocesses frames (8-bit RGB, HWC, all w × h; one image or a video's frames) into
// pixel_values [grid.T·grid.H·grid.W, C·T·P·P] and the grid.
func (p *QwenProcessor) Patches(frames [][]uint8, w, h int) (*tensors.Tensor, models.Grid, error) {
	if len(frames) == 0 {
		return nil, models.Grid{}, fmt.Errorf("no frames")
	}
	rh, rw := h, w
	if p.DoResize {
		var err error
		if rh, rw, err = SmartResize(h, w, p.PatchSize*p.MergeSize, p.MinPixels, p.MaxPixels); err != nil {
			return nil, models.Grid{}, err
		}
	}
	base := p.Preprocessor
	base.DoResize, base.DoCenterCrop = false, false
	var chw [][]float32 // [F][C·H·W]
	for _, f := range frames {
		if rh != h || rw != w {
			f = ResizePIL(f, w, h, rw, rh, p.Resample)
		}
		chw = append(chw, tensors.MustCopyFlatData[float32](base.PixelValues(f, rw, rh)))
	}
	px, g := QwenPatchify(chw, 3, rh, rw, p.TemporalPatch, p.PatchSize, p.MergeSize)
	return px, g, nil
}

// QwenPatchify cuts normalised frames [F][C·H·W] into the vision tower's patch rows: the last
// frame repeated to a multiple of temporal, then patches.reshape(gt, T, C, gh/m, m, P, gw/m, m, P)
// .permute(0, 3, 6, 4, 7, 2, 1, 5, 8) flattened to [gt·gh·gw, C·T·P·P].
func QwenPatchify(frames [][]float32, c, h, w, temporal, patch, merge int) (*tensors.Tensor, models.Grid) {
	for len(frames)%temporal != 0 {
		frames = append(frames, frames[len(frames)-1])
	}
	gt, gh, gw := len(frames)/temporal, h/patch, w/patch
	row := c * temporal * patch * patch
	out := make([]float32, 0, gt*gh*gw*row)
	for t := range gt {
		for bh := range gh / merge {
			for bw := range gw / merge {
				for ih := range merge {
					for iw := range merge {
						y0, x0 := (bh*merge+ih)*patch, (bw*merge+iw)*patch
						for ci := range c {
							for ti := range temporal {
								f := frames[t*temporal+ti]
								for py := range patch {
									off := (ci*h+y0+py)*w + x0
									out = append(out, f[off:off+patch]...)
								}
							}
						}
					}
				}
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(out, gt*gh*gw, row), models.Grid{T: gt, H: gh, W: gw}
}

// Describe is a one-line summary of the preprocessing.
func (p *QwenProcessor) Describe() string {
	base := p.Preprocessor
	base.DoResize, base.DoCenterCrop = false, false
	return fmt.Sprintf("smart_resize to multiples of %d within [%d, %d] pixels (%s), %s; patches %d×%d×%d (merge %d)",
		p.PatchSize*p.MergeSize, p.MinPixels, p.MaxPixels, map[int]string{2: "bilinear", 3: "bicubic"}[p.Resample], base.Describe(), p.TemporalPatch, p.PatchSize, p.PatchSize, p.MergeSize)
}

// QwenImage preprocesses a PNG or JPEG for a Qwen-VL model: pixel_values and image_grid_thw.
func (m *Model) QwenImage(path string) (*tensors.Tensor, models.Grid, error) {
	q := m.Config.QwenVL
	if q == nil {
		return nil, models.Grid{}, fmt.Errorf("%s is not a Qwen-VL model", m.Config.Arch)
	}
	p, err := ReadQwenProcessor(m.Dir, q.Vision, false)
	if err != nil {
		return nil, models.Grid{}, err
	}
	rgb, w, h, err := LoadImage(path)
	if err != nil {
		return nil, models.Grid{}, err
	}
	px, g, err := p.Patches([][]uint8{rgb}, w, h)
	if err != nil {
		return nil, models.Grid{}, fmt.Errorf("image %s: %w", path, err)
	}
	return px, g, nil
}

// QwenVideo decodes a video file with ffmpeg (data.DecodeVideo) at the video processor's fps,
// `frames` frames (a shorter video's last frame repeated), and preprocesses them for a Qwen-VL
// model: pixel_values_videos, video_grid_thw and second_per_grid_ts (temporal_patch_size / fps, as
// Qwen2_5_VLProcessor computes it). reel's decoder gives square frames (side: the largest multiple
// of patch_size × merge_size within max_pixels, at most 448), so unlike transformers' video
// processor the aspect ratio is not kept.
func (m *Model) QwenVideo(path string, frames int) (*tensors.Tensor, models.Grid, float64, error) {
	q := m.Config.QwenVL
	if q == nil {
		return nil, models.Grid{}, 0, fmt.Errorf("%s is not a Qwen-VL model", m.Config.Arch)
	}
	p, err := ReadQwenProcessor(m.Dir, q.Vision, true)
	if err != nil {
		return nil, models.Grid{}, 0, err
	}
	f := p.PatchSize * p.MergeSize
	side := max(f, min(448, int(math.Sqrt(float64(p.MaxPixels))))/f*f)
	v, err := data.DecodeVideo(path, p.FPS, side, frames)
	if err != nil {
		return nil, models.Grid{}, 0, err
	}
	n := side * side * 3
	var rgb [][]uint8
	for t := range v.T {
		fr := make([]uint8, n)
		for i, x := range v.Frames[t*n : (t+1)*n] {
			fr[i] = uint8(math.Round(float64(x) * 255))
		}
		rgb = append(rgb, fr)
	}
	px, g, err := p.Patches(rgb, side, side)
	if err != nil {
		return nil, models.Grid{}, 0, fmt.Errorf("video %s: %w", path, err)
	}
	return px, g, float64(p.TemporalPatch) / p.FPS, nil
}

// Qwen-VL prompt markers (the Qwen2-VL tokenizer's special tokens).
const (
	QwenImageBlock = "<|vision_start|><|image_pad|><|vision_end|>"
	QwenVideoBlock = "<|vision_start|><|video_pad|><|vision_end|>"
)

// QwenPromptIDs tokenises a prompt as Qwen2VLProcessor lays it out: each QwenImageBlock /
// QwenVideoBlock in the prompt (one is put first for each image or video the prompt does not
// mark) becomes vision_start, one image_pad (video_pad) per merged token of its grid, vision_end;
// the text between is encoded without special tokens. Qwen3-VL (Qwen3VLProcessor) writes a video
// as one block per temporal patch, each after its timestamp "<t.t seconds>" (the mean time of
// the patch's frames; secondsPerGrid: one per video, nil = 1 s).
func (m *Model) QwenPromptIDs(tok text.Tokenizer, prompt string, images, videos []models.Grid, secondsPerGrid []float64) ([]int, error) {
	q := m.Config.QwenVL
	ni, nv := strings.Count(prompt, QwenImageBlock), strings.Count(prompt, QwenVideoBlock)
	if ni == 0 && len(images) > 0 {
		prompt, ni = strings.Repeat(QwenImageBlock, len(images))+prompt, len(images)
	}
	if nv == 0 && len(videos) > 0 {
		prompt, nv = strings.Repeat(QwenVideoBlock, len(videos))+prompt, len(videos)
	}
	if ni != len(images) || nv != len(videos) {
		return nil, fmt.Errorf("--prompt marks %d image(s) and %d video(s) (%s, %s) for %d and %d given", ni, nv, QwenImageBlock, QwenVideoBlock, len(images), len(videos))
	}
	var ids []int
	ii, vi := 0, 0
	for prompt != "" {
		i, j := strings.Index(prompt, QwenImageBlock), strings.Index(prompt, QwenVideoBlock)
		cut, block := -1, ""
		switch {
		case i >= 0 && (j < 0 || i < j):
			cut, block = i, QwenImageBlock
		case j >= 0:
			cut, block = j, QwenVideoBlock
		}
		if cut < 0 {
			ids = append(ids, tok.Encode(prompt)...)
			break
		}
		if cut > 0 {
			ids = append(ids, tok.Encode(prompt[:cut])...)
		}
		pads := func(tok, n int) {
			ids = append(ids, q.VisionStart)
			for range n {
				ids = append(ids, tok)
			}
			ids = append(ids, q.VisionEnd)
		}
		switch {
		case block == QwenImageBlock:
			pads(q.ImageToken, images[ii].Tokens(q.Vision.MergeSize))
			ii++
		case q.Vision.Arch == models.Qwen3VL:
			v := videos[vi]
			sec := 1.0
			if secondsPerGrid != nil {
				sec = secondsPerGrid[vi]
			}
			// _calculate_timestamps: the mean of the first and last frame times of each patch.
			frame := sec / float64(q.Vision.TemporalPatch)
			for t := range v.T {
				ts := (float64(t)*sec + float64(t)*sec + float64(q.Vision.TemporalPatch-1)*frame) / 2
				ids = append(ids, tok.Encode("<"+strconv.FormatFloat(ts, 'f', 1, 64)+" seconds>")...)
				pads(q.VideoToken, v.H/q.Vision.MergeSize*(v.W/q.Vision.MergeSize))
			}
			vi++
		default:
			pads(q.VideoToken, videos[vi].Tokens(q.Vision.MergeSize))
			vi++
		}
		prompt = prompt[cut+len(block):]
	}
	return ids, nil
}
