package models

import (
	"fmt"
	"math"
	"math/bits"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
)

// ViTConfig configures a Vision Transformer image encoder (Dosovitskiy et al., 2021).
type ViTConfig struct {
	ImageSize, PatchSize int
	Dim, Layers, Heads   int
	MLPRatio             float64
	// SinCos adds fixed 2-D sine-cosine position features (MAE) to the learned positions: from
	// the first step every patch token says where it is, which a policy needs to steer to it
	// (learned positions start near zero and take long to carry precise coordinates).
	SinCos bool
	// ConvStem replaces the linear patch embedding by log2(PatchSize) stride-2 3×3 convolutions
	// (a hybrid ViT, Xiao et al. 2021: "Early convolutions help transformers see better"): the
	// locality prior makes small encoders trained from scratch learn much faster. PatchSize
	// must then be a power of two.
	ConvStem bool
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
// each block (see EncoderLayerBuilder.WithTap).
func ViTTapped(scope *model.Scope, cfg ViTConfig, images *Node, tap Tap, site string) *Node {
	x := PatchEmbed(scope, cfg, images)
	for i := range cfg.Layers {
		x = EncoderLayer(scope.In("block_%d", i), x, cfg.Heads).WithMLPRatio(cfg.MLPRatio).
			WithTap(tap, fmt.Sprintf("%s/block_%d", site, i)).Remat().Done()
	}
	return LayerNorm(scope.In("ln_final"), x)
}

// PatchEmbed maps images [B, H, W, 3] (values in [0, 1]) to position-encoded patch tokens
// [B, N, Dim]: a linear patch embedding (or the convolutional stem), learned positions and,
// with SinCos, fixed 2-D sine-cosine positions. Its variables live in scope's "patch_embed" (or
// "conv_stem") and "pos_embed".
func PatchEmbed(scope *model.Scope, cfg ViTConfig, images *Node) *Node {
	var x *Node
	if cfg.ConvStem {
		x = convStem(scope.In("conv_stem"), cfg, AddScalar(MulScalar(images, 2), -1))
	} else {
		x = Patchify(images, cfg.PatchSize)
		x = AddScalar(MulScalar(x, 2), -1) // [0,1] → [-1,1]
		x = Linear(scope.In("patch_embed"), x, cfg.Dim, true)
	}
	x = PositionEmbedding(scope.In("pos_embed"), x)
	if cfg.SinCos {
		x = Add(x, InsertAxes(ConvertDType(Const(x.Graph(), SinCos2D(cfg.ImageSize/cfg.PatchSize, cfg.Dim)), x.DType()), 0))
	}
	return x
}

// SinCos2D returns the fixed [grid², dim] 2-D sine-cosine position features of a grid×grid patch
// layout (row-major): the first half of the channels encodes the row, the second the column,
// each as sin/cos pairs at frequencies 10000^(−j/(dim/4)) (MAE, He et al. 2022).
func SinCos2D(grid, dim int) [][]float64 {
	quarter := dim / 4
	out := make([][]float64, grid*grid)
	for r := range grid {
		for c := range grid {
			row := make([]float64, dim)
			for j := range quarter {
				w := math.Pow(10000, -float64(j)/float64(max(1, quarter)))
				row[j], row[quarter+j] = math.Sin(float64(r)*w), math.Cos(float64(r)*w)
				row[2*quarter+j], row[3*quarter+j] = math.Sin(float64(c)*w), math.Cos(float64(c)*w)
			}
			out[r*grid+c] = row
		}
	}
	return out
}

// convStem maps images [B, H, W, 3] (in [−1, 1]) to patch tokens [B, N, Dim] with stride-2 3×3
// convolutions, GELU between them, the last one producing Dim channels.
func convStem(scope *model.Scope, cfg ViTConfig, x *Node) *Node {
	n := bits.Len(uint(cfg.PatchSize)) - 1
	for i := range n {
		ch := cfg.Dim >> (n - 1 - i)
		x = Conv2D(scope.In("conv_%d", i), x, max(ch, 8), 3, 2)
		if i < n-1 {
			x = activation.Apply(activation.TypeGelu, x)
		} else if ch != cfg.Dim {
			x = Linear(scope.In("proj"), x, cfg.Dim, true)
		}
	}
	d := x.Shape().Dimensions
	return Reshape(x, d[0], d[1]*d[2], cfg.Dim)
}
