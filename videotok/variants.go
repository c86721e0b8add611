package videotok

import "fmt"

// Named video tokenizer sizes, the reference models of `reel bench video` (see models.ViTVariant
// for the encoder towers they feed: "tiny" D192 × 6, "b" D768 × 12).

// TubeletVariant returns a named ViViT tubelet embedding: "tiny" (16 frames of 64 px, 2 × 8 × 8
// tubelets, D192) or "b" (16 frames of 224 px, 2 × 16 × 16, D768).
func TubeletVariant(name string) (TubeletConfig, error) {
	switch name {
	case "tiny":
		return TubeletConfig{Frames: 16, ImageSize: 64, Tubelet: 2, Patch: 8, Dim: 192}, nil
	case "b":
		return TubeletConfig{Frames: 16, ImageSize: 224, Tubelet: 2, Patch: 16, Dim: 768}, nil
	}
	return TubeletConfig{}, fmt.Errorf("unknown tubelet variant %q (want tiny or b)", name)
}

// TrajTokVariant returns a named TrajTok: "tiny" (8 frames of 64 px, stride 4, 96 channels, 32
// latents, a 1-layer Perceiver) or "b" (16 frames of 128 px, stride 4, 192 channels, 128
// latents, 2 layers, as the paper's K = 128).
func TrajTokVariant(name string) (TrajTokConfig, error) {
	switch name {
	case "tiny":
		return TrajTokConfig{Frames: 8, ImageSize: 64, Stride: 4, FeatDim: 96, Latents: 32, GroupDim: 32, Heads: 3, Layers: 1}, nil
	case "b":
		return TrajTokConfig{Frames: 16, ImageSize: 128, Stride: 4, FeatDim: 192, Latents: 128, GroupDim: 64, Heads: 12, Layers: 2}, nil
	}
	return TrajTokConfig{}, fmt.Errorf("unknown TrajTok variant %q (want tiny or b)", name)
}
