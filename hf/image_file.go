package hf

import (
	"fmt"

	"github.com/gomlx/gomlx/core/tensors"
)

// ImagePixels is the pixel_values of the PNG or JPEG at path, preprocessed as the model's
// preprocessor_config.json says (`reel hf run|generate --image`).
func (m *Model) ImagePixels(path string) (*tensors.Tensor, error) {
	v := m.Config.VisionTower()
	if v == nil {
		return nil, fmt.Errorf("%s is a text-only model", m.Config.Arch)
	}
	p, err := ReadPreprocessor(m.Dir, v.ImageSize)
	if err != nil {
		return nil, err
	}
	rgb, w, h, err := LoadImage(path)
	if err != nil {
		return nil, err
	}
	return p.PixelValues(rgb, w, h), nil
}
