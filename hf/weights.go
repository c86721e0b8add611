package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/safeio"
)

// Key layouts of a checkpoint's tensor names.
const (
	// Layout5 is transformers 5.x (and 4.52+): a VLM nests model.language_model.*,
	// model.vision_tower.*, model.multi_modal_projector.* with lm_head.* at the top. Causal LMs
	// and SigLIP/CLIP use the same names in every version. reel's names are these.
	Layout5 = "transformers-5"
	// Layout4 is the VLM layout of transformers 4.x: language_model.model.*,
	// language_model.lm_head.*, vision_tower.*, multi_modal_projector.*.
	Layout4 = "transformers-4"
	// Layout5Flat is Layout5 with the vision tower's modules directly under model.vision_tower
	// (model.vision_tower.{embeddings, pre_layrnorm, encoder, post_layernorm, head}.*), without the
	// vision_model level: how transformers 5 saves PaliGemma and LLaVA, whose towers it builds as
	// the bare SigLIP / CLIP vision transformer.
	Layout5Flat = "transformers-5-flat-vision"
)

// Weights are a checkpoint's tensors under their canonical (Layout5) names.
type Weights struct {
	Dir     string
	Files   []string // the safetensors files read, relative to Dir
	Layout  string
	Shapes  map[string]shapes.Shape    // canonical name → stored shape and dtype (F32, BF16 or F16)
	Tensors map[string]*tensors.Tensor // canonical name → tensor as stored (nil: headers only)
	Source  map[string]string          // canonical name → name in the checkpoint
	File    map[string]string          // canonical name → file holding it
}

// ReadWeights reads DIR/model.safetensors, or the shards listed in DIR/model.safetensors.index.json,
// and renames the tensors of a transformers 4.x VLM, or of a VLM whose vision tower has no
// vision_model level (Layout5Flat), to the Layout5 names.
func ReadWeights(dir string) (*Weights, error) { return readWeights(dir, true) }

// ReadWeightShapes is ReadWeights reading only the files' headers (Tensors stays nil).
func ReadWeightShapes(dir string) (*Weights, error) { return readWeights(dir, false) }

func readWeights(dir string, data bool) (*Weights, error) {
	files, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	w := &Weights{Dir: dir, Files: files, Layout: Layout5, Shapes: map[string]shapes.Shape{},
		Source: map[string]string{}, File: map[string]string{}}
	raw := map[string]shapes.Shape{}
	rawT := map[string]*tensors.Tensor{}
	rawFile := map[string]string{}
	if data { // the shards' declared sizes together, from their headers, before reading any
		var total int64
		for _, f := range files {
			sh, _, err := checkpoints.SafetensorsShapes(filepath.Join(dir, f))
			if err != nil {
				return nil, fmt.Errorf("hf: %w", err)
			}
			for _, s := range sh {
				total += int64(s.Memory())
			}
		}
		if err := safeio.CheckMemory("the checkpoint's tensors", total); err != nil {
			return nil, fmt.Errorf("hf: %s: %w", dir, err)
		}
	}
	for _, f := range files {
		path := filepath.Join(dir, f)
		var sh map[string]shapes.Shape
		if data {
			ts, _, err := checkpoints.ReadSafetensors(path)
			if err != nil {
				return nil, fmt.Errorf("hf: %w", err)
			}
			sh = map[string]shapes.Shape{}
			for name, t := range ts {
				sh[name], rawT[name] = t.Shape(), t
			}
		} else if sh, _, err = checkpoints.SafetensorsShapes(path); err != nil {
			return nil, fmt.Errorf("hf: %w", err)
		}
		for name, s := range sh {
			if prev, dup := rawFile[name]; dup {
				return nil, fmt.Errorf("hf: %s: tensor %q is also in %s", path, name, prev)
			}
			raw[name], rawFile[name] = s, f
		}
	}
	rename := layout4To5
	names := map[string]bool{}
	for n := range raw {
		names[n] = true
	}
	switch {
	case isLayout4(raw):
		w.Layout = Layout4
	case isQwenLayout4(names):
		w.Layout, rename = Layout4, qwenLayout4To5
	case isFlatVision(raw):
		w.Layout = Layout5Flat
	}
	if data {
		w.Tensors = map[string]*tensors.Tensor{}
	}
	for name, s := range raw {
		canon := name
		switch w.Layout {
		case Layout4:
			canon = rename(name)
		case Layout5Flat:
			canon = flatTo5(name)
		}
		switch s.DType {
		case dtypes.Float32, dtypes.BFloat16, dtypes.Float16:
		default:
			return nil, fmt.Errorf("hf: %s: tensor %q has dtype %s (reel reads F32, BF16 and F16 checkpoints)",
				filepath.Join(dir, rawFile[name]), name, s.DType)
		}
		w.Shapes[canon], w.Source[canon], w.File[canon] = s, name, rawFile[name]
		if data {
			w.Tensors[canon] = rawT[name]
		}
	}
	return w, nil
}

// weightFiles lists the checkpoint's safetensors files.
func weightFiles(dir string) ([]string, error) {
	index := filepath.Join(dir, "model.safetensors.index.json")
	if data, err := safeio.ReadFile(index, safeio.JSONLimit); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("hf: %s: invalid JSON: %w", index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("hf: %s: field weight_map: expected an object of tensor name → file, got none", index)
		}
		set := map[string]bool{}
		for name, f := range idx.WeightMap {
			if f == "" || strings.Contains(f, "/") || strings.Contains(f, `\`) {
				return nil, fmt.Errorf("hf: %s: field weight_map.%s: expected a file name in the directory, got %q", index, name, f)
			}
			set[f] = true
		}
		files := slices.Sorted(maps.Keys(set))
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return nil, fmt.Errorf("hf: %s lists %s, which is missing", index, filepath.Join(dir, f))
			}
		}
		return files, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return []string{"model.safetensors"}, nil
	}
	hint := ""
	if _, err := os.Stat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
		hint = " (pytorch_model.bin is not read: save the model with safetensors)"
	}
	return nil, fmt.Errorf("hf: %s: no model.safetensors or model.safetensors.index.json%s", dir, hint)
}

// isLayout4 reports whether the names are those of a transformers 4.x VLM.
func isLayout4(names map[string]shapes.Shape) bool {
	for n := range names {
		if strings.HasPrefix(n, "language_model.model.") || strings.HasPrefix(n, "language_model.lm_head.") {
			return true
		}
	}
	return false
}

// The vision tower's prefix in Layout5 and in Layout5Flat.
const (
	visionTower5    = "model.vision_tower.vision_model."
	visionTowerFlat = "model.vision_tower."
)

// isFlatVision reports whether the names are those of a VLM whose vision tower has no
// vision_model level (Layout5Flat).
func isFlatVision(names map[string]shapes.Shape) bool {
	flat := false
	for n := range names {
		switch {
		case strings.HasPrefix(n, visionTower5):
			return false
		case strings.HasPrefix(n, visionTowerFlat):
			flat = true
		}
	}
	return flat
}

// flatTo5 renames a Layout5Flat tensor to its Layout5 name.
func flatTo5(n string) string {
	if strings.HasPrefix(n, visionTowerFlat) && !strings.HasPrefix(n, visionTower5) {
		return visionTower5 + strings.TrimPrefix(n, visionTowerFlat)
	}
	return n
}

// Layout5ToFlat renames a Layout5 tensor to its Layout5Flat name (the inverse of flatTo5).
func Layout5ToFlat(n string) string {
	if strings.HasPrefix(n, visionTower5) {
		return visionTowerFlat + strings.TrimPrefix(n, visionTower5)
	}
	return n
}

// layout4To5 renames a transformers 4.x VLM tensor to its 5.x name.
func layout4To5(n string) string {
	switch {
	case strings.HasPrefix(n, "language_model.model."):
		return "model.language_model." + strings.TrimPrefix(n, "language_model.model.")
	case strings.HasPrefix(n, "language_model.lm_head."):
		return strings.TrimPrefix(n, "language_model.")
	case strings.HasPrefix(n, "vision_tower."), strings.HasPrefix(n, "multi_modal_projector."):
		return "model." + n
	}
	return n
}

// Layout5To4 renames a 5.x VLM tensor to its transformers 4.x name (the inverse of the renaming
// ReadWeights applies; for exporting in the source's layout).
func Layout5To4(n string) string {
	switch {
	case strings.HasPrefix(n, "model.language_model."):
		return "language_model.model." + strings.TrimPrefix(n, "model.language_model.")
	case strings.HasPrefix(n, "lm_head."):
		return "language_model." + n
	case strings.HasPrefix(n, "model.vision_tower."), strings.HasPrefix(n, "model.multi_modal_projector."):
		return strings.TrimPrefix(n, "model.")
	}
	return n
}

// DTypes counts the stored tensors by dtype name ("F32", "BF16", "F16").
func (w *Weights) DTypes() map[string]int {
	out := map[string]int{}
	for _, s := range w.Shapes {
		out[dtypeName(s.DType)]++
	}
	return out
}

func dtypeName(d dtypes.DType) string {
	switch d {
	case dtypes.Float32:
		return "F32"
	case dtypes.BFloat16:
		return "BF16"
	case dtypes.Float16:
		return "F16"
	}
	return d.String()
}

// Float32Values returns t's values (float32, float64, bfloat16 or float16) as float32.
func Float32Values(t *tensors.Tensor) ([]float32, error) {
	switch t.DType() {
	case dtypes.Float32:
		return tensors.CopyFlatData[float32](t)
	case dtypes.Float64:
		v, err := tensors.CopyFlatData[float64](t)
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, err
	case dtypes.BFloat16:
		var out []float32
		err := tensors.ConstFlatData(t, func(v []bfloat16.BFloat16) {
			out = make([]float32, len(v))
			for i, x := range v {
				out[i] = x.Float32()
			}
		})
		return out, err
	case dtypes.Float16:
		var out []float32
		err := tensors.ConstFlatData(t, func(v []float16.Float16) {
			out = make([]float32, len(v))
			for i, x := range v {
				out[i] = x.Float32()
			}
		})
		return out, err
	}
	return nil, errors.New("unsupported dtype " + t.DType().String())
}

// IsModelDir reports whether dir looks like a Hugging Face model directory (a config.json beside
// model.safetensors or its index).
func IsModelDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	_, err := weightFiles(dir)
	return err == nil
}
