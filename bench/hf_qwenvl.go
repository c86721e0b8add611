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

// QwenVLBenchConfig is Qwen/Qwen2.5-VL-3B-Instruct's config.json with fewer layers, so that a
// training step fits a CPU: the tower's per-block shapes (width 1280, 16 heads, SwiGLU MLP 3420,
// 14-pixel patches, temporal patch 2, 2×2 merge, 112-pixel windows) with 2 blocks instead of 32
// (block 0 windowed, block 1 full attention, as blocks 0 and 7 of the 32), the merger to 2048;
// the decoder's per-layer shapes (width 2048, 16 query / 2 key-value heads of 128, MLP 11008,
// M-RoPE sections 16/24/24, RoPE base 1e6, tied embeddings) with 2 layers instead of 36 and a
// vocabulary of 16384 instead of 151936 (the full one's tied head would be 2/3 of the step).
func QwenVLBenchConfig() models.QwenVLConfig {
	return models.QwenVLConfig{
		Vision: models.QwenVisionConfig{Arch: models.Qwen25VL, Depth: 2, Hidden: 1280, Intermediate: 3420, Heads: 16, OutHidden: 2048,
			Act: "silu", Channels: 3, PatchSize: 14, TemporalPatch: 2, MergeSize: 2, WindowSize: 112, FullAttBlocks: []int{1},
			TokensPerSecond: 2},
		Text: models.DecoderConfig{Arch: "qwen2", VocabSize: 16384, Hidden: 2048, Intermediate: 11008, Layers: 2, Heads: 16, KVHeads: 2,
			HeadDim: 128, Eps: 1e-6, Act: "silu", AttnBias: true, TieEmbeddings: true, Rope: models.Rope{Theta: 1e6, Dim: 128, Type: "default"}},
		MRopeSection: []int{16, 24, 24}, VisionStart: 16380, VisionEnd: 16381, ImageToken: 16382, VideoToken: 16383,
	}
}

// QwenVLBench trains a Qwen2.5-VL (vision tower, merger and decoder) on one fixed batch: per
// example one image×image image (image_grid_thw (1, image/14, image/14)) as vision_start, its
// placeholders, vision_end, then seq random text tokens; the loss is the cross-entropy of every
// position against random labels.
type QwenVLBench struct {
	fixedBatch
	Cfg   models.QwenVLConfig
	Image int
}

// QwenVLBenchIDs is the prompt of one example of the benchmark (its text tokens from rng).
func QwenVLBenchIDs(cfg models.QwenVLConfig, image, seq int, rng *rand.Rand) []int {
	g := models.Grid{T: 1, H: image / cfg.Vision.PatchSize, W: image / cfg.Vision.PatchSize}
	ids := []int{cfg.VisionStart}
	for range g.Tokens(cfg.Vision.MergeSize) {
		ids = append(ids, cfg.ImageToken)
	}
	ids = append(ids, cfg.VisionEnd)
	for range seq {
		ids = append(ids, rng.IntN(cfg.VisionStart))
	}
	return ids
}

// NewQwenVLBench builds the benchmark with a batch drawn from a PCG stream seeded by seed.
func NewQwenVLBench(cfg models.QwenVLConfig, batch, image, seq int, seed uint64) *QwenVLBench {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	g := models.Grid{T: 1, H: image / cfg.Vision.PatchSize, W: image / cfg.Vision.PatchSize}
	var ids, labels []int32
	var pos [3][]int32
	for range batch {
		p := QwenVLBenchIDs(cfg, image, seq, rng)
		rp, _ := models.QwenRopeIndex(cfg, p, []models.Grid{g}, nil, nil)
		for i, id := range p {
			ids, labels = append(ids, int32(id)), append(labels, int32(rng.IntN(cfg.Text.VocabSize)))
			for c := range 3 {
				pos[c] = append(pos[c], int32(rp[c][i]))
			}
		}
	}
	l := len(ids) / batch
	px := make([]float32, batch*g.Patches()*cfg.Vision.PatchDim())
	for i := range px {
		px[i] = 2*rng.Float32() - 1
	}
	return &QwenVLBench{Cfg: cfg, Image: image, fixedBatch: fixedBatch{[]*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(ids, batch, l), tensors.FromFlatDataAndDimensions(labels, batch, l),
		tensors.FromFlatDataAndDimensions(px, batch*g.Patches(), cfg.Vision.PatchDim()),
		tensors.FromFlatDataAndDimensions(append(append(pos[0], pos[1]...), pos[2]...), 3, batch, l)}}}
}

// qwenVLBenchInputs is the graph side of QwenVLBench's batch.
type qwenVLBenchInputs struct {
	IDs, Labels *Node // [B, L] int32
	Pixels      *Node // [B·N, C·T·P·P] float32 pixel_values
	Positions   *Node // [3, B, L] int32
}

// Loss implements train.Task.
func (t *QwenVLBench) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[qwenVLBenchInputs](in)
	n := b.IDs.Shape().Dimensions[0]
	grids := make([]models.Grid, n)
	for i := range grids {
		grids[i] = models.Grid{T: 1, H: t.Image / t.Cfg.Vision.PatchSize, W: t.Image / t.Cfg.Vision.PatchSize}
	}
	logits := models.QwenVL(scope, t.Cfg, models.QwenVLInputs{IDs: b.IDs, Positions: b.Positions, Images: b.Pixels, ImageGrids: grids})
	return losses.MaskedCrossEntropy(logits, b.Labels, OnesLike(ConvertDType(b.Labels, dtypes.Float32)))
}
