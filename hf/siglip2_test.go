package hf

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSiglip2FixRes: SigLIP 2's fixed-resolution checkpoints (google/siglip2-*-patch16-224 …) are
// SiglipModel checkpoints ("model_type": "siglip"; transformers' model_doc/siglip2 calls them
// "backwards compatible with SigLIP"); their config.json states little beyond the 256000-token
// Gemma vocabulary, so SiglipConfig's defaults give the base model. The numerics are the siglip
// fixture's (TestFixtureLogits). The NaFlex variant (Siglip2Model, "model_type": "siglip2") is
// refused with the list of what reel implements.
func TestSiglip2FixRes(t *testing.T) {
	c, err := ParseConfig(map[string]any{"architectures": []any{"SiglipModel"}, "model_type": "siglip", "initializer_factor": 1.0,
		"text_config":   map[string]any{"model_type": "siglip_text_model", "torch_dtype": "float32", "vocab_size": 256000.0},
		"vision_config": map[string]any{"model_type": "siglip_vision_model", "torch_dtype": "float32"}, "torch_dtype": "float32"})
	require.NoError(t, err)
	cc := c.Contrastive
	require.Equal(t, KindContrastive, c.Kind)
	require.Equal(t, 256000, cc.Text.VocabSize)
	require.Equal(t, 64, cc.Text.MaxPositions)
	require.Equal(t, 768, cc.Vision.Hidden)
	require.Equal(t, 196, cc.Vision.NumPatches(), "224-pixel images of 16-pixel patches")
	require.True(t, cc.Vision.UseHead)
	_, err = ParseConfig(map[string]any{"architectures": []any{"Siglip2Model"}, "model_type": "siglip2"})
	require.ErrorContains(t, err, "Siglip2Model is not an architecture reel implements")
}
