package hf

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// RunInputs are the inputs of one forward pass.
type RunInputs struct {
	Tokens     [][]int         // one sequence per batch row (SigLIP/CLIP: one per text)
	TokenTypes [][]int         // PaliGemma's token_type_ids, one per sequence (optional)
	Pixels     *tensors.Tensor // pixel_values [Bi, C, H, W] f32 (Qwen-VL: patches [N, C·T·P·P])

	// Qwen2-VL / Qwen2.5-VL
	VideoPixels            *tensors.Tensor // pixel_values_videos [N, C·T·P·P] f32
	ImageGrids, VideoGrids []models.Grid   // image_grid_thw, video_grid_thw
	SecondsPerGrid         []float64       // second_per_grid_ts, one per video (nil: 1 s)
	Grids                  []ImageGrid     // Idefics3 / SmolVLM: each image's split (ImageInput); nil: each row one image
}

// RunResult holds a forward pass's outputs under transformers' names.
type RunResult struct {
	Logits          [][][]float32 `json:"logits,omitempty"`
	ImageEmbeds     [][]float32   `json:"image_embeds,omitempty"`
	TextEmbeds      [][]float32   `json:"text_embeds,omitempty"`
	LogitsPerImage  [][]float32   `json:"logits_per_image,omitempty"`
	LastHiddenState [][][]float32 `json:"last_hidden_state,omitempty"`
	PoolerOutput    [][]float32   `json:"pooler_output,omitempty"`
}

// CheckInputs validates in against the model (one error naming the input and what was expected).
func (m *Model) CheckInputs(in RunInputs) error {
	cfg := m.Config
	if cfg.Kind == KindVision {
		if len(in.Tokens) > 0 {
			return fmt.Errorf("--tokens: %s takes no tokens, only --pixels", cfg.Arch)
		}
	} else {
		if len(in.Tokens) == 0 {
			return fmt.Errorf("--tokens: %s needs token ids (--tokens 1,2,3)", cfg.Arch)
		}
		n := len(in.Tokens[0])
		for i, seq := range in.Tokens {
			if len(seq) == 0 || len(seq) != n {
				return fmt.Errorf("--tokens: every sequence must have the same, non-zero length (sequence %d has %d ids, the first %d)", i+1, len(seq), n)
			}
		}
		vocab, maxLen := 0, 0
		if t := cfg.Text(); t != nil {
			vocab, maxLen = t.VocabSize, t.MaxPositions
		} else {
			vocab, maxLen = cfg.Contrastive.Text.VocabSize, cfg.Contrastive.Text.MaxPositions
		}
		if maxLen > 0 && n > maxLen {
			return fmt.Errorf("--tokens: %d ids exceed max_position_embeddings %d", n, maxLen)
		}
		img := cfg.ImageToken()
		for i, seq := range in.Tokens {
			for _, id := range seq {
				if (id < 0 || id >= vocab) && (id != img || img < 0) { // img is -1 without image tokens
					return fmt.Errorf("--tokens: id %d of sequence %d is outside the vocabulary [0, %d)", id, i+1, vocab)
				}
			}
		}
	}
	if len(in.TokenTypes) > 0 {
		if cfg.PaliGemma == nil {
			return fmt.Errorf("--token-types: only PaliGemma takes token types, not %s", cfg.Arch)
		}
		if len(in.TokenTypes) != len(in.Tokens) {
			return fmt.Errorf("--token-types: %d lists for %d --tokens sequences", len(in.TokenTypes), len(in.Tokens))
		}
		for i, tt := range in.TokenTypes {
			if len(tt) != len(in.Tokens[i]) {
				return fmt.Errorf("--token-types: list %d has %d entries for %d tokens", i+1, len(tt), len(in.Tokens[i]))
			}
			for _, v := range tt {
				if v != 0 && v != 1 {
					return fmt.Errorf("--token-types: %d is not 0 (prefix) or 1 (suffix)", v)
				}
			}
		}
	}
	if cfg.QwenVL != nil {
		return m.qwenCheckInputs(in)
	}
	v := cfg.VisionTower()
	images := 0
	if in.Pixels != nil {
		if v == nil {
			return fmt.Errorf("--pixels: %s is a text-only model", cfg.Arch)
		}
		d := in.Pixels.Shape().Dimensions
		if in.Pixels.DType() != dtypes.Float32 || len(d) != 4 || d[1] != v.Channels || d[2] != v.ImageSize || d[3] != v.ImageSize {
			return fmt.Errorf("--pixels: want float32 pixel_values [N, %d, %d, %d], got %s %v", v.Channels, v.ImageSize, v.ImageSize, in.Pixels.DType(), d)
		}
		images = d[0]
	} else if cfg.Kind == KindContrastive || cfg.Kind == KindVision {
		return fmt.Errorf("--pixels: %s needs pixel_values (a float32 .npy [1, %d, %d, %d])", cfg.Arch, v.Channels, v.ImageSize, v.ImageSize)
	}
	if len(in.Grids) > 0 {
		tiles := 0
		for _, g := range in.Grids {
			tiles += g.Tiles()
		}
		if cfg.Idefics3 == nil && tiles != len(in.Grids) {
			return fmt.Errorf("--image: only Idefics3 / SmolVLM split images into tiles, not %s", cfg.Arch)
		}
		if tiles != images {
			return fmt.Errorf("--pixels: %d rows for %d image(s) of %d tiles in all", images, len(in.Grids), tiles)
		}
	}
	if cfg.Kind == KindVLM {
		placeholders := 0
		for _, seq := range in.Tokens {
			for _, id := range seq {
				if id == cfg.ImageToken() {
					placeholders++
				}
			}
		}
		if want := images * cfg.ImageTokens(); placeholders != want && cfg.Idefics3 != nil {
			return fmt.Errorf("--tokens: %d image placeholders (id %d) for %d image tiles (splits and global images) of %d tokens each (want %d)",
				placeholders, cfg.ImageToken(), images, cfg.ImageTokens(), want)
		} else if placeholders != want {
			return fmt.Errorf("--tokens: %d image placeholders (id %d) for %d image(s) of %d tokens each (want %d)",
				placeholders, cfg.ImageToken(), images, cfg.ImageTokens(), want)
		}
	}
	return nil
}

// Run runs one forward pass.
func (m *Model) Run(backend compute.Backend, in RunInputs) (res *RunResult, err error) {
	if err := m.CheckInputs(in); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hf: %s forward pass: %v", m.Config.Arch, r)
		}
	}()
	var args []any
	var kinds []string
	if len(in.Tokens) > 0 {
		args, kinds = append(args, IntTensor(in.Tokens)), append(kinds, "ids")
	}
	if in.Pixels != nil {
		args, kinds = append(args, in.Pixels), append(kinds, "pixels")
	}
	if len(in.TokenTypes) > 0 {
		args, kinds = append(args, IntTensor(in.TokenTypes)), append(kinds, "types")
	}
	cfg := m.Config
	if cfg.QwenVL != nil {
		if in.VideoPixels != nil {
			args, kinds = append(args, in.VideoPixels), append(kinds, "videos")
		}
		pos, _ := m.QwenPositions(in)
		args, kinds = append(args, tensors.FromFlatDataAndDimensions(pos, 3, len(in.Tokens), len(in.Tokens[0]))), append(kinds, "positions")
	}
	exec, err := model.NewExecCanonical(backend, m.Store, func(scope *model.Scope, g *model.Graph, nodes []*model.Node) []*model.Node {
		var fin Inputs
		for i, k := range kinds {
			switch k {
			case "ids":
				fin.IDs = nodes[i]
			case "pixels":
				fin.Pixels = nodes[i]
			case "types":
				fin.TokenTypes = nodes[i]
			case "videos":
				fin.VideoPixels = nodes[i]
			case "positions":
				fin.Positions = nodes[i]
			}
		}
		fin.ImageGrids, fin.VideoGrids = in.ImageGrids, in.VideoGrids
		o := Forward(scope, cfg, fin)
		var outs []*model.Node
		for _, n := range []*model.Node{o.Logits, o.ImageEmbeds, o.TextEmbeds, o.LogitsPerImage, o.LastHiddenState, o.PoolerOutput} {
			if n != nil {
				outs = append(outs, n)
			}
		}
		return outs
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	out, err := exec.Exec(args...)
	if err != nil {
		return nil, err
	}
	res = &RunResult{}
	next := func() *tensors.Tensor { t := out[0]; out = out[1:]; return t }
	switch cfg.Kind {
	case KindCausalLM, KindVLM:
		res.Logits = floats3(next())
	case KindContrastive:
		res.ImageEmbeds, res.TextEmbeds, res.LogitsPerImage = floats2(next()), floats2(next()), floats2(next())
	case KindVision:
		res.LastHiddenState = floats3(next())
		if len(out) > 0 {
			res.PoolerOutput = floats2(next())
		}
	}
	// NaN and Inf have no JSON form: name the output instead of failing to print it.
	for _, o := range []struct {
		name string
		v    [][][]float32
	}{{"logits", res.Logits}, {"image_embeds", [][][]float32{res.ImageEmbeds}}, {"text_embeds", [][][]float32{res.TextEmbeds}},
		{"logits_per_image", [][][]float32{res.LogitsPerImage}}, {"last_hidden_state", res.LastHiddenState}, {"pooler_output", [][][]float32{res.PoolerOutput}}} {
		for _, a := range o.v {
			for _, b := range a {
				for _, x := range b {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						return nil, fmt.Errorf("hf: %s: the forward pass gave %v in %s: the checkpoint's weights or the inputs are not finite", m.Dir, x, o.name)
					}
				}
			}
		}
	}
	return res, nil
}

// IntTensor is rows of ints as an int32 [len(rows), len(rows[0])] tensor.
func IntTensor(rows [][]int) *tensors.Tensor {
	flat := make([]int32, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		for _, v := range r {
			flat = append(flat, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, len(rows), len(rows[0]))
}

func floats2(t *tensors.Tensor) [][]float32 {
	d := t.Shape().Dimensions
	flat := tensors.MustCopyFlatData[float32](t)
	out := make([][]float32, d[0])
	for i := range out {
		out[i] = slices.Clone(flat[i*d[1] : (i+1)*d[1]])
	}
	return out
}

func floats3(t *tensors.Tensor) [][][]float32 {
	d := t.Shape().Dimensions
	flat := tensors.MustCopyFlatData[float32](t)
	out := make([][][]float32, d[0])
	for i := range out {
		out[i] = make([][]float32, d[1])
		for j := range out[i] {
			k := (i*d[1] + j) * d[2]
			out[i][j] = slices.Clone(flat[k : k+d[2]])
		}
	}
	return out
}
