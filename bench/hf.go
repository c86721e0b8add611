package bench

import (
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/train"
)

// The models of `reel bench hf`: a training step (next-token or classification cross-entropy,
// AdamW) of random-weight Hugging Face architectures at the shapes of real checkpoints. Their
// PyTorch twins are in bench/hf_torch.py.

// SmolLM2Config is HuggingFaceTB/SmolLM2-135M's config.json as a Llama decoder: 30 layers of
// width 576, 9 heads over 3 key/value heads of 64, MLP 1536, 49152 tied embeddings, RoPE base 1e5.
func SmolLM2Config() models.DecoderConfig {
	c := models.DecoderConfig{Arch: "llama", VocabSize: 49152, Hidden: 576, Intermediate: 1536, Layers: 30,
		Heads: 9, KVHeads: 3, HeadDim: 64, Eps: 1e-5, Act: "silu", TieEmbeddings: true, MaxPositions: 8192,
		Rope: models.Rope{Theta: 100000, Dim: 64, Type: "default"}}
	c.LayerTypes = make([]string, c.Layers)
	for i := range c.LayerTypes {
		c.LayerTypes[i] = "full_attention"
	}
	return c
}

// SiglipB16Config is google/siglip-base-patch16-224's vision tower: 224² pixels in 16² patches
// (196 tokens), 12 layers of width 768, 12 heads, MLP 3072, tanh GELU, the attention-pooling head.
func SiglipB16Config() models.VisionConfig {
	return models.VisionConfig{Arch: "siglip", EncoderConfig: models.EncoderConfig{Hidden: 768, Intermediate: 3072,
		Layers: 12, Heads: 12, Eps: 1e-6, Act: "gelu_pytorch_tanh"}, ImageSize: 224, PatchSize: 16, Channels: 3, UseHead: true}
}

// LMBench trains a decoder LM on one fixed batch of random tokens [B, T] (next-token targets).
type LMBench struct {
	fixedBatch
	Cfg models.DecoderConfig
}

// NewLMBench builds the benchmark with a batch drawn from a PCG stream seeded by seed.
func NewLMBench(cfg models.DecoderConfig, batch, seq int, seed uint64) *LMBench {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	ids := make([]int32, batch*(seq+1))
	for i := range ids {
		ids[i] = int32(rng.IntN(cfg.VocabSize))
	}
	in := make([]int32, 0, batch*seq)
	tg := make([]int32, 0, batch*seq)
	for b := range batch {
		row := ids[b*(seq+1) : (b+1)*(seq+1)]
		in, tg = append(in, row[:seq]...), append(tg, row[1:]...)
	}
	return &LMBench{Cfg: cfg, fixedBatch: fixedBatch{[]*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(in, batch, seq), tensors.FromFlatDataAndDimensions(tg, batch, seq)}}}
}

// Loss implements train.Task.
func (t *LMBench) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[benchInputs](in)
	return b.loss(models.CausalLM(scope, t.Cfg, b.Inputs))
}

// VisionBench trains a vision tower's pooled output through a linear head on one fixed batch of
// random pixels [B, 3, H, W] and labels.
type VisionBench struct {
	fixedBatch
	Cfg     models.VisionConfig
	Classes int
}

// NewVisionBench builds the benchmark with a batch drawn from a PCG stream seeded by seed.
func NewVisionBench(cfg models.VisionConfig, batch, classes int, seed uint64) *VisionBench {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	px := make([]float32, batch*cfg.Channels*cfg.ImageSize*cfg.ImageSize)
	for i := range px {
		px[i] = 2*rng.Float32() - 1
	}
	lab := make([]int32, batch)
	for i := range lab {
		lab[i] = int32(rng.IntN(classes))
	}
	return &VisionBench{Cfg: cfg, Classes: classes, fixedBatch: fixedBatch{[]*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(px, batch, cfg.Channels, cfg.ImageSize, cfg.ImageSize),
		tensors.FromFlatDataAndDimensions(lab, batch)}}}
}

// Loss implements train.Task.
func (t *VisionBench) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[benchInputs](in)
	scope = models.WithInit(scope)
	out := models.SiglipVisionTransformer(scope.In("vision_model"), t.Cfg, b.Inputs)
	logits := models.Linear(scope.In("classifier"), out.Pooled, t.Classes, true) // [B, C]
	return b.loss(logits)
}

// benchInputs is the graph side of a benchBatch, bound once by train.Bind.
type benchInputs struct {
	Inputs *Node // [B, T] int32 token ids (LMBench) or [B, 3, H, W] float32 pixels (VisionBench)
	Labels *Node // [B, T] next tokens or [B] classes, int32
}

// loss is the mean cross-entropy of logits against the labels.
func (b benchInputs) loss(logits *Node) *Node {
	return losses.MaskedCrossEntropy(logits, b.Labels, OnesLike(ConvertDType(b.Labels, dtypes.Float32)))
}
