package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// ViTConfig configures a Vision Transformer image encoder (Dosovitskiy et al., 2021).
type ViTConfig struct {
	ImageSize, PatchSize int
	Dim, Layers, Heads   int
	MLPRatio             float64
}

// NumPatches is the number of tokens the encoder produces per image.
func (c ViTConfig) NumPatches() int { n := c.ImageSize / c.PatchSize; return n * n }

// Patchify turns images [B, H, W, C] into non-overlapping patches [B, N, P·P·C] (row-major patch order).
func Patchify(images *Node, patch int) *Node {
	d := images.Shape().Dimensions
	b, h, w, c := d[0], d[1], d[2], d[3]
	x := Reshape(images, b, h/patch, patch, w/patch, patch, c)
	x = TransposeAllAxes(x, 0, 1, 3, 2, 4, 5) // [B, H/p, W/p, p, p, C]
	return Reshape(x, b, (h/patch)*(w/patch), patch*patch*c)
}

// ViT encodes images [B, H, W, 3] (values in [0, 1]) into patch features [B, N, Dim]:
// linear patch embedding + learned positions, pre-norm transformer blocks, final LayerNorm.
func ViT(scope *model.Scope, cfg ViTConfig, images *Node) *Node {
	return ViTTapped(scope, cfg, images, nil, "")
}

// ViTTapped is ViT with taps at site+"/block_<i>" (each block's output [B, N, Dim]) and inside
// each block (see BlockTapped).
func ViTTapped(scope *model.Scope, cfg ViTConfig, images *Node, tap Tap, site string) *Node {
	x := Patchify(images, cfg.PatchSize)
	x = AddScalar(MulScalar(x, 2), -1) // [0,1] → [-1,1]
	x = Linear(scope.In("patch_embed"), x, cfg.Dim, true)
	x = PositionEmbedding(scope.In("pos_embed"), x)
	for i := range cfg.Layers {
		x = BlockTapped(scope.In("block_%d", i), x, cfg.Heads, cfg.MLPRatio, nil, tap, fmt.Sprintf("%s/block_%d", site, i))
	}
	return LayerNorm(scope.In("ln_final"), x)
}
