package tasks

import (
	"fmt"
	"maps"

	"github.com/reelml/reel/augment"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// augmentConfig is data.augment as package augment takes it.
func augmentConfig(a recipes.AugmentConfig) augment.Config {
	return augment.Config{Crop: a.Crop, Rotate: a.Rotate, Brightness: a.Brightness, Contrast: a.Contrast,
		Saturation: a.Saturation, Cameras: a.Cameras, ColorOnly: a.ColorOnly}
}

// augmentExamples perturbs the camera images of training micro-batch i (data.augment): each is
// first fitted to model.image_size as ObservationTensors would (openpi augments at the model's
// resolution), then drawn from the micro-batch's own stream (the recipe's seed and i, apart from
// the examples' and the noise's, so that turning augmentation on changes nothing else). The
// examples get new image maps; the images a data source may cache are never modified. Only
// MicroBatch calls it: evaluation and serving see the images as recorded.
func (t *VLA) augmentExamples(ex []vlaExample, i int64) error {
	c := augmentConfig(t.r.Data.Augment)
	if !c.Enabled() {
		return nil
	}
	rng := data.NewRand(seedFor(t.r.Train.Seed, "vla/augment", i))
	s := t.r.Model.ImageSize
	for k := range ex {
		images := maps.Clone(ex[k].obs.Images)
		for _, cam := range t.spec.Cameras {
			im, ok := images[cam.Name]
			if !ok {
				return fmt.Errorf("training example %d: no image from camera %q", k, cam.Name)
			}
			fit, err := policy.Resize(im, s, s, t.spec.Resize)
			if err != nil {
				return fmt.Errorf("training example %d: camera %q: %w", k, cam.Name, err)
			}
			images[cam.Name] = c.Image(rng, cam.Name, fit)
		}
		ex[k].obs.Images = images
	}
	return nil
}
