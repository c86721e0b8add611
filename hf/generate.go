package hf

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// GenerateOptions configure greedy decoding.
type GenerateOptions struct {
	MaxNewTokens int
	EOS          []int // end-of-sequence ids (default: generation_config.json / config.json)
}

// Generate continues prompt (token ids, with a VLM's image placeholders) greedily, as
// transformers' generate(do_sample=False) does: one prefill pass over the prompt (and the image),
// then one token at a time against a static KV cache, stopping after an end-of-sequence id (which
// is returned) or MaxNewTokens tokens. For PaliGemma the prompt is the bidirectional prefix and the
// generated tokens the causal suffix.
func (m *Model) Generate(backend compute.Backend, prompt []int, pixels *tensors.Tensor, opts GenerateOptions) (out []int, err error) {
	cfg := m.Config
	text := cfg.Text()
	if text == nil {
		return nil, fmt.Errorf("generate: %s is not a generative model", cfg.Arch)
	}
	if cfg.QwenVL != nil {
		if pixels != nil {
			return nil, fmt.Errorf("generate: a Qwen-VL image needs its grid (GenerateInputs)")
		}
		return m.GenerateQwenVL(backend, RunInputs{Tokens: [][]int{prompt}}, opts)
	}
	if opts.MaxNewTokens < 1 {
		return nil, fmt.Errorf("generate: --max-new-tokens %d must be ≥ 1", opts.MaxNewTokens)
	}
	if err := m.CheckInputs(RunInputs{Tokens: [][]int{prompt}, Pixels: pixels}); err != nil {
		return nil, err
	}
	eos := opts.EOS
	if eos == nil {
		eos = text.EOS
	}
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
	// Inputs: ids [1, T], start (int32 scalar), prefix [1, L] (bool), the caches, then pixels.
	layers := text.Layers
	exec, err := model.NewExecCanonical(backend, m.Store, func(scope *model.Scope, g *model.Graph, in []*model.Node) []*model.Node {
		b := bindStep(in, layers)
		logits := m.stepGraph(scope, b.IDs, b.Pixels, b.Prefix, b.Cache)
		return append(append([]*Node{logits}, b.Cache.K...), b.Cache.V...)
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
	pre := make([]bool, total)
	if cfg.PaliGemma != nil {
		for i := range n {
			pre[i] = true
		}
	}
	prefix := tensors.FromFlatDataAndDimensions(pre, 1, total)
	step := func(ids []int, start int, px *tensors.Tensor) (int, error) {
		args := append([]any{IntTensor([][]int{ids}), tensors.FromScalar(int32(start)), prefix}, caches...)
		if px != nil {
			args = append(args, px)
		}
		res, err := exec.Exec(args...)
		if err != nil {
			return 0, err
		}
		for i := range caches {
			caches[i] = res[1+i]
		}
		logits := tensors.MustCopyFlatData[float32](res[0])
		return argmax(logits), nil
	}
	next, err := step(prompt, 0, pixels)
	for err == nil {
		out = append(out, next)
		if slices.Contains(eos, next) || len(out) == opts.MaxNewTokens {
			break
		}
		next, err = step([]int{next}, n+len(out)-1, nil)
	}
	return out, err
}

// GenerateInputs is Generate for in.Tokens[0] with in's images (and, for Qwen-VL, their grids
// and videos; GenerateQwenVL).
func (m *Model) GenerateInputs(backend compute.Backend, in RunInputs, opts GenerateOptions) ([]int, error) {
	if m.Config.QwenVL != nil {
		return m.GenerateQwenVL(backend, in, opts)
	}
	if len(in.Tokens) != 1 {
		return nil, fmt.Errorf("generate: one prompt, got %d", len(in.Tokens))
	}
	return m.Generate(backend, in.Tokens[0], in.Pixels, opts)
}

// stepGraph runs the decoder over ids [1, T] written at cache.Start (with the image scattered in
// when pixels are given) and returns the logits of the last position [1, V].
func (m *Model) stepGraph(scope *model.Scope, ids, pixels, prefix *Node, cache *models.KVCache) *Node {
	cfg := m.Config
	scope = models.WithInit(scope)
	text := *cfg.Text()
	var dec *model.Scope
	var x *Node
	offset := 0
	switch {
	case cfg.PaliGemma != nil:
		dec = scope.At("model").In("language_model")
		x = models.PaliGemmaEmbeds(scope, *cfg.PaliGemma, ids, pixels)
		offset = 1
	case cfg.Llava != nil:
		dec = scope.At("model").In("language_model")
		x = models.LlavaEmbeds(scope, *cfg.Llava, ids, pixels)
	case cfg.Idefics3 != nil:
		dec = models.Idefics3TextScope(scope)
		x = models.Idefics3Embeds(scope, *cfg.Idefics3, ids, pixels)
	default:
		dec = scope.In("model")
		x = models.DecoderEmbed(dec, text, ids, dtypes.Float32)
	}
	t := ids.Shape().Dimensions[1]
	pos := Add(models.Positions(ids.Graph(), 1, t, offset), cache.Start)
	var pre *Node
	if cfg.PaliGemma != nil {
		pre = prefix
	}
	h := models.Decoder(dec, text, x, pos, pre, cache)
	h = Slice(h, AxisRange(), AxisRange(t-1, t), AxisRange())
	logits := models.LMHead(scope.In("lm_head"), dec, text, h)
	return Reshape(logits, 1, text.VocabSize)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// stepBatch is the input of one generation step.
type stepBatch struct {
	IDs    *Node           // [1, T] int32: the tokens of this step
	Prefix *Node           // [1, L] bool: the positions of the bidirectional prefix
	Cache  *models.KVCache // Start (int32 scalar) and each layer's K and V caches
	Pixels *Node           // the image's pixel values; nil for text-only models
}

// bindStep binds a generation step's positional inputs: ids, start, prefix, the layers K caches,
// the layers V caches, then optionally the pixels.
func bindStep(nodes []*Node, layers int) stepBatch {
	ids, start, prefix, caches := nodes[0], nodes[1], nodes[2], nodes[3:]
	b := stepBatch{IDs: ids, Prefix: prefix,
		Cache: &models.KVCache{Start: start, K: slices.Clone(caches[:layers]), V: slices.Clone(caches[layers : 2*layers])}}
	if rest := caches[2*layers:]; len(rest) > 0 {
		b.Pixels = rest[0]
	}
	return b
}
