package hf

import (
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
)

// TestPixelValues: preprocessing a PNG reproduces, value for value, what PIL and NumPy compute
// following transformers' slow SiglipImageProcessor (bicubic resize of an RGBA image) and
// CLIPImageProcessor (bilinear shortest-edge resize and center crop) — testdata/gen_fixtures.py.
func TestPixelValues(t *testing.T) {
	for _, name := range []string{"siglip", "clip"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "image")
			p, err := ReadPreprocessorFile(filepath.Join(dir, name+"_preprocessor_config.json"), 0)
			require.NoError(t, err)
			rgb, w, h, err := LoadImage(filepath.Join(dir, name+".png"))
			require.NoError(t, err)
			got := p.PixelValues(rgb, w, h)
			want, err := ReadNPY(filepath.Join(dir, name+".npy"))
			require.NoError(t, err)
			require.Equal(t, want.Shape().Dimensions, got.Shape().Dimensions)
			require.Equal(t, tensors.MustCopyFlatData[float32](want), tensors.MustCopyFlatData[float32](got))
		})
	}
}
