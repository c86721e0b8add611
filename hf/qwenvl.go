package hf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// Qwen2-VL and Qwen2.5-VL checkpoints (models/qwen2vl.go): their config.json in both layouts
// (transformers 4.x: the text fields at the top level beside vision_config; 5.x: text_config and
// vision_config), their key layouts (4.x: model.* for the decoder, visual.*, lm_head; 5.x:
// model.language_model.*, model.visual.*, lm_head) and their inputs (image_grid_thw,
// video_grid_thw, M-RoPE positions).

// parseQwenVL reads a Qwen2-VL / Qwen2.5-VL config.json; absent vision fields take the defaults
// of transformers' Qwen2VLVisionConfig and Qwen2_5_VLVisionConfig (configuration_qwen2_vl.py,
// configuration_qwen2_5_vl.py), absent text fields Qwen2Config's.
func parseQwenVL(o obj, arch string) *models.QwenVLConfig {
	to := o
	if o.has("text_config") {
		to = o.sub("text_config")
	}
	c := &models.QwenVLConfig{Text: parseDecoder(to, "qwen2")}
	if to.path != "" && o.has("tie_word_embeddings") { // nested configs keep it at the top level
		c.Text.TieEmbeddings = o.bool("tie_word_embeddings", false)
	}
	if arch == "Qwen3VLForConditionalGeneration" { // Qwen3's attention: q/k RMSNorm, attention_bias
		c.Text.QKNorm = true
		c.Text.AttnBias = to.bool("attention_bias", false)
		c.Text.OBias = c.Text.AttnBias
	}
	tok := func(key string, def int) int { return o.int(key, to.int(key, def)) }
	c.ImageToken, c.VideoToken = tok("image_token_id", 151655), tok("video_token_id", 151656)
	c.VisionStart, c.VisionEnd = tok("vision_start_token_id", 151652), tok("vision_end_token_id", 151653)
	// mrope_section: rope_scaling (4.x, type "mrope" or "default") or rope_parameters (5.x).
	rope := to.sub("rope_scaling")
	if to.has("rope_parameters") {
		rope = to.sub("rope_parameters")
	}
	var defSection []int
	if arch == "Qwen3VLForConditionalGeneration" {
		defSection = []int{24, 20, 20}
	}
	c.MRopeSection = rope.ints("mrope_section", defSection)
	if c.MRopeSection == nil {
		rope.fail("mrope_section", "a list of 3 integers (multimodal rotary sections)", nil)
	}
	if c.Text.Rope.Type == "mrope" { // transformers maps the legacy type to "default"
		c.Text.Rope.Type = "default"
	}
	vo := o.sub("vision_config")
	v := models.QwenVisionConfig{Channels: vo.int("in_channels", vo.int("in_chans", 3)),
		PatchSize: vo.int("patch_size", 14), TemporalPatch: vo.int("temporal_patch_size", 2),
		MergeSize: vo.int("spatial_merge_size", 2), Depth: vo.int("depth", 32), Heads: vo.int("num_heads", 16)}
	switch arch {
	case "Qwen3VLForConditionalGeneration":
		v.Arch = models.Qwen3VL
		v.PatchSize = vo.int("patch_size", 16)
		v.Depth = vo.int("depth", 27)
		v.Hidden = vo.int("hidden_size", 1152)
		v.OutHidden = vo.int("out_hidden_size", 3584)
		v.Intermediate = vo.int("intermediate_size", 4304)
		v.Act = vo.str("hidden_act", "gelu_pytorch_tanh")
		v.NumPositionEmbeddings = vo.int("num_position_embeddings", 2304)
		v.DeepstackIndexes = vo.ints("deepstack_visual_indexes", []int{8, 16, 24})
	case "Qwen2VLForConditionalGeneration":
		v.Arch = models.Qwen2VL
		v.Hidden = vo.int("embed_dim", 1280)
		v.OutHidden = vo.int("hidden_size", 3584)
		v.Intermediate = int(float64(v.Hidden) * vo.float("mlp_ratio", 4))
		v.Act = vo.str("hidden_act", "quick_gelu")
	default:
		v.Arch = models.Qwen25VL
		v.Hidden = vo.int("hidden_size", 3584)
		v.OutHidden = vo.int("out_hidden_size", 3584)
		v.Intermediate = vo.int("intermediate_size", 3420)
		v.Act = vo.str("hidden_act", "silu")
		v.WindowSize = vo.int("window_size", 112)
		v.FullAttBlocks = vo.ints("fullatt_block_indexes", []int{7, 15, 23, 31})
		v.TokensPerSecond = vo.float("tokens_per_second", 4)
	}
	c.Vision = v
	return c
}

// isQwenLayout4 reports a transformers 4.x Qwen2-VL / Qwen2.5-VL checkpoint (its vision tower
// at the top level, visual.*).
func isQwenLayout4(names map[string]bool) bool {
	for n := range names {
		if strings.HasPrefix(n, "visual.") {
			return true
		}
	}
	return false
}

// qwenLayout4To5 renames a transformers 4.x Qwen2-VL / Qwen2.5-VL tensor to its 5.x name.
func qwenLayout4To5(n string) string {
	switch {
	case strings.HasPrefix(n, "visual."):
		return "model." + n
	case strings.HasPrefix(n, "model.") && !strings.HasPrefix(n, "model.language_model.") && !strings.HasPrefix(n, "model.visual."):
		return "model.language_model." + strings.TrimPrefix(n, "model.")
	}
	return n
}

// qwenLayout5To4 is the inverse of qwenLayout4To5 (exporting in a 4.x checkpoint's names).
func qwenLayout5To4(n string) string {
	switch {
	case strings.HasPrefix(n, "model.visual."):
		return strings.TrimPrefix(n, "model.")
	case strings.HasPrefix(n, "model.language_model."):
		return "model." + strings.TrimPrefix(n, "model.language_model.")
	}
	return n
}

// qwenCheckInputs validates a Qwen-VL forward pass's inputs: the patch rows of each kind against
// their grids, and the placeholders against the merged tokens.
func (m *Model) qwenCheckInputs(in RunInputs) error {
	q := m.Config.QwenVL
	v := q.Vision
	check := func(flag string, dims []int, present bool, grids []models.Grid, token int) error {
		if !present && len(grids) > 0 {
			return fmt.Errorf("%s: %d grids but no patches", flag, len(grids))
		}
		rows, tokens := 0, 0
		for _, g := range grids {
			if g.T < 1 || g.H < 1 || g.W < 1 || g.H%v.MergeSize != 0 || g.W%v.MergeSize != 0 {
				return fmt.Errorf("%s: grid %v: t, h, w must be positive, h and w multiples of spatial_merge_size %d", flag, g, v.MergeSize)
			}
			rows += g.Patches()
			tokens += g.Tokens(v.MergeSize)
		}
		if present && (len(dims) != 2 || dims[1] != v.PatchDim() || dims[0] != rows) {
			return fmt.Errorf("%s: want patches [%d, %d] (C·T·P·P) for grids %v, got %v", flag, rows, v.PatchDim(), grids, dims)
		}
		n := 0
		for _, seq := range in.Tokens {
			for _, id := range seq {
				if id == token {
					n++
				}
			}
		}
		if n != tokens {
			return fmt.Errorf("--tokens: %d placeholders (id %d) for %s of %d merged tokens", n, token, flag, tokens)
		}
		return nil
	}
	var imgDims, vidDims []int
	if in.Pixels != nil {
		imgDims = in.Pixels.Shape().Dimensions
	}
	if in.VideoPixels != nil {
		vidDims = in.VideoPixels.Shape().Dimensions
	}
	if in.Pixels != nil && len(in.ImageGrids) == 0 {
		return fmt.Errorf("--image: pixel_values without image_grid_thw")
	}
	if in.VideoPixels != nil && len(in.VideoGrids) == 0 {
		return fmt.Errorf("--video: pixel_values_videos without video_grid_thw")
	}
	if err := check("--image", imgDims, in.Pixels != nil, in.ImageGrids, q.ImageToken); err != nil {
		return err
	}
	if err := check("--video", vidDims, in.VideoPixels != nil, in.VideoGrids, q.VideoToken); err != nil {
		return err
	}
	if len(in.Tokens) > 1 && (in.Pixels != nil || in.VideoPixels != nil) {
		return fmt.Errorf("--tokens: one sequence with images or videos (got %d)", len(in.Tokens))
	}
	if s := in.SecondsPerGrid; s != nil && len(s) != len(in.VideoGrids) {
		return fmt.Errorf("second_per_grid_ts: %d values for %d videos", len(s), len(in.VideoGrids))
	}
	return nil
}

// QwenPositions is the M-RoPE position tensor [3, B, T] (int32) of the inputs' sequences and
// each sequence's rope delta (get_rope_index).
func (m *Model) QwenPositions(in RunInputs) (flat []int32, deltas []int) {
	q := *m.Config.QwenVL
	b, t := len(in.Tokens), len(in.Tokens[0])
	flat = make([]int32, 3*b*t)
	for i, seq := range in.Tokens {
		pos, d := models.QwenRopeIndex(q, seq, in.ImageGrids, in.VideoGrids, in.SecondsPerGrid)
		for c := range 3 {
			for j, p := range pos[c] {
				flat[(c*b+i)*t+j] = int32(p)
			}
		}
		deltas = append(deltas, d)
	}
	return flat, deltas
}

// QwenVisionEmbeds runs the vision tower alone (Qwen2VLModel.get_image_features): patches
// [N, C·T·P·P] of the grids → merged features [N/merge², hidden] (and Qwen3-VL's DeepStack
// features, one such matrix per deepstack layer).
func (m *Model) QwenVisionEmbeds(backend compute.Backend, patches *tensors.Tensor, grids []models.Grid) (out [][]float32, deep [][][]float32, err error) {
	q := m.Config.QwenVL
	if q == nil {
		return nil, nil, fmt.Errorf("%s has no Qwen-VL vision tower", m.Config.Arch)
	}
	n := 0
	for _, g := range grids {
		n += g.Patches()
	}
	if d := patches.Shape().Dimensions; len(d) != 2 || d[0] != n || d[1] != q.Vision.PatchDim() {
		return nil, nil, fmt.Errorf("patches: want [%d, %d] for grids %v, got %v", n, q.Vision.PatchDim(), grids, d)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hf: %s vision tower: %v", m.Config.Arch, r)
		}
	}()
	exec, err := model.NewExecCanonical(backend, m.Store, func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		vis := models.WithInit(scope).At("model").In("visual")
		patches := in[len(in)-1] // the one input: pixel patches [N, C·T·P·P]
		if q.Vision.Arch == models.Qwen3VL {
			f, d := models.Qwen3VisionTower(vis, q.Vision, patches, grids)
			return append([]*model.Node{f}, d...)
		}
		return []*model.Node{models.QwenVisionTower(vis, q.Vision, patches, grids)}
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, nil, err
	}
	defer exec.Finalize()
	res, err := exec.Exec(patches)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range res[1:] {
		deep = append(deep, floats2(r))
	}
	return floats2(res[0]), deep, nil
}

// GenerateQwenVL continues in.Tokens[0] (with its image and video placeholders, in.Pixels,
// in.VideoPixels and their grids) greedily, as Generate does: one prefill pass at get_rope_index's
// positions, then one token at a time against a static KV cache, the new token at position
// index + rope delta on all three M-RoPE axes (Qwen2VLModel.forward with cache_position).
func (m *Model) GenerateQwenVL(backend compute.Backend, in RunInputs, opts GenerateOptions) (out []int, err error) {
	cfg := m.Config
	q := cfg.QwenVL
	if q == nil {
		return nil, fmt.Errorf("generate: %s is not a Qwen-VL model", cfg.Arch)
	}
	text := q.Text
	if opts.MaxNewTokens < 1 {
		return nil, fmt.Errorf("generate: --max-new-tokens %d must be ≥ 1", opts.MaxNewTokens)
	}
	if len(in.Tokens) != 1 {
		return nil, fmt.Errorf("generate: one prompt, got %d", len(in.Tokens))
	}
	if err := m.CheckInputs(in); err != nil {
		return nil, err
	}
	eos := opts.EOS
	if eos == nil {
		eos = text.EOS
	}
	prompt := in.Tokens[0]
	n := len(prompt)
	total := n + opts.MaxNewTokens
	if text.MaxPositions > 0 && total > text.MaxPositions {
		return nil, fmt.Errorf("generate: %d prompt + %d new tokens exceed max_position_embeddings %d", n, opts.MaxNewTokens, text.MaxPositions)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hf: %s generation: %v", cfg.Arch, r)
		}
	}()
	pos, deltas := m.QwenPositions(in)
	delta := deltas[0]
	hasImg, hasVid := in.Pixels != nil, in.VideoPixels != nil
	layers := text.Layers
	// Inputs: ids [1, T], start (int32 scalar), positions [3, 1, T], the caches, then the prefill's
	// images and videos.
	exec, err := model.NewExecCanonical(backend, m.Store, func(scope *model.Scope, g *model.Graph, nodes []*model.Node) []*model.Node {
		ids, start, positions := nodes[0], nodes[1], nodes[2]
		cache := &models.KVCache{Start: start, K: slices.Clone(nodes[3 : 3+layers]), V: slices.Clone(nodes[3+layers : 3+2*layers])}
		vin := models.QwenVLInputs{IDs: ids}
		if rest := nodes[3+2*layers:]; len(rest) > 0 {
			if hasImg {
				vin.Images, vin.ImageGrids, rest = rest[0], in.ImageGrids, rest[1:]
			}
			if hasVid {
				vin.Videos, vin.VideoGrids = rest[0], in.VideoGrids
			}
		}
		scope = models.WithInit(scope)
		dec := scope.At("model").In("language_model")
		x, deep := models.QwenVLEmbeds(scope, *q, vin)
		cos, sin := models.MRopeCosSin(text.Rope, q.MRopeBands(), positions)
		h := models.DecoderRotary(dec, text, x, cos, sin, nil, cache, models.DeepstackAfter(deep))
		t := ids.Shape().Dimensions[1]
		h = graph.Slice(h, graph.AxisRange(), graph.AxisRange(t-1, t), graph.AxisRange())
		logits := graph.Reshape(models.LMHead(scope.In("lm_head"), dec, text, h), 1, text.VocabSize)
		return append(append([]*model.Node{logits}, cache.K...), cache.V...)
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	kvShape := shapes.Make(dtypes.Float32, 1, total, text.KVHeads, text.HeadDim)
	caches := make([]any, 2*layers)
	for i := range caches {
		caches[i] = tensors.FromShape(kvShape)
	}
	step := func(ids []int, start int, positions []int32, vision ...*tensors.Tensor) (int, error) {
		args := append([]any{IntTensor([][]int{ids}), tensors.FromScalar(int32(start)),
			tensors.FromFlatDataAndDimensions(positions, 3, 1, len(ids))}, caches...)
		for _, v := range vision {
			args = append(args, v)
		}
		res, err := exec.Exec(args...)
		if err != nil {
			return 0, err
		}
		for i := range caches {
			caches[i] = res[1+i]
		}
		return argmax(tensors.MustCopyFlatData[float32](res[0])), nil
	}
	var vision []*tensors.Tensor
	if hasImg {
		vision = append(vision, in.Pixels)
	}
	if hasVid {
		vision = append(vision, in.VideoPixels)
	}
	next, err := step(prompt, 0, pos, vision...)
	for err == nil {
		out = append(out, next)
		if slices.Contains(eos, next) || len(out) == opts.MaxNewTokens {
			break
		}
		at := n + len(out) - 1
		p := int32(at + delta)
		next, err = step([]int{next}, at, []int32{p, p, p})
	}
	return out, err
}
