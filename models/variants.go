package models

import (
	"fmt"
	"slices"
	"strings"
)

// Named model sizes, as big_vision's decode_variant ("Ti/16", "S/16", "B/16") names ViTs: the
// reference models of `reel bench` and what a recipe or a benchmark asks for by name.

// ViTVariant returns a named ViT: "tiny" (64 px, 8-px patches, D192 × 6, 3 heads), "s"
// (ViT-S/16 at 224 px: D384 × 12, 6 heads) or "b" (ViT-B/16 at 224 px: D768 × 12, 12 heads).
func ViTVariant(name string) (ViTConfig, error) {
	v, ok := map[string]ViTConfig{
		"tiny": {ImageSize: 64, PatchSize: 8, Dim: 192, Layers: 6, Heads: 3, MLPRatio: 4},
		"s":    {ImageSize: 224, PatchSize: 16, Dim: 384, Layers: 12, Heads: 6, MLPRatio: 4},
		"b":    {ImageSize: 224, PatchSize: 16, Dim: 768, Layers: 12, Heads: 12, MLPRatio: 4},
	}[name]
	if !ok {
		return v, unknownVariant("ViT", name, "tiny", "s", "b")
	}
	return v, nil
}

// STTSVariant returns a named STTS video encoder (a VideoVLM's vision side with 3 × 3 group
// pooling): "tiny" (16 frames of 48 px, 4-px patches, D192 × 6) or "b" (32 frames of 216 px, 8-px
// patches, D768 × 12), scoring at the paper's relative depth (STTSPaperScoreAfter).
func STTSVariant(name string) (cfg VideoVLMConfig, group int, err error) {
	switch name {
	case "tiny":
		cfg = VideoVLMConfig{Vision: ViTConfig{ImageSize: 48, PatchSize: 4, Dim: 192, Layers: 6, Heads: 3, MLPRatio: 4}, Frames: 16}
	case "b":
		cfg = VideoVLMConfig{Vision: ViTConfig{ImageSize: 216, PatchSize: 8, Dim: 768, Layers: 12, Heads: 12, MLPRatio: 4}, Frames: 32}
	default:
		return cfg, 0, unknownVariant("STTS encoder", name, "tiny", "b")
	}
	cfg.ScoreAfter = STTSPaperScoreAfter(cfg.Vision.Layers)
	return cfg, 3, nil
}

func unknownVariant(what, name string, known ...string) error {
	if slices.Contains(known, name) {
		return nil
	}
	return fmt.Errorf("unknown %s variant %q (want %s)", what, name, strings.Join(known, ", "))
}
