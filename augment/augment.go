// Package augment perturbs the camera images of policy training examples on the host: a random
// crop resized back to the full image, a small random rotation, and colour jitter of brightness,
// contrast and saturation. It follows openpi's training-time preprocess_observation
// (Physical-Intelligence/openpi src/openpi/models/model.py: RandomCrop to 95% of each side + Resize
// back, Rotate ±5°, ColorJitter(brightness=0.3, contrast=0.4, saturation=0.5); cameras whose name
// contains "wrist" get the colour jitter only), with the colour operations as torchvision's
// ColorJitter defines them (the transforms LeRobot's src/lerobot/transforms/transforms.py
// ImageTransformsConfig composes): each factor f is uniform in [max(0, 1-s), 1+s] for strength s,
// and
//
//	brightness: x·f
//	contrast:   m + (x - m)·f, m the mean grey level (0.2989 R + 0.587 G + 0.114 B) of the image
//	saturation: g + (x - g)·f, g the pixel's grey level
//
// each clamped to [0, 1], applied in that order. Where reel differs: openpi's augmax jitters in HSV
// with GIMP's brightness/contrast formulas; torchvision (and LeRobot) shuffle the order of the
// colour operations, reel keeps it fixed. Crop and rotation are one bilinear resampling (pixels
// rotated in from outside the crop are black, as augmax's Rotate fills them).
//
// Every draw comes from the caller's random stream, so a training run that seeds it from its seed
// and the micro-batch index reproduces its augmentations exactly on resume.
package augment

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/reelml/reel/policy"
)

// Config says what is applied, how strongly and to which cameras; the zero Config applies
// nothing.
type Config struct {
	Crop       float64  // fraction of each side cut away by the random crop before resizing back (openpi: 0.05)
	Rotate     float64  // largest rotation, degrees; the angle is uniform in [-Rotate, Rotate] (openpi: 5)
	Brightness float64  // colour jitter strengths s: factors uniform in [max(0, 1-s), 1+s] (openpi: 0.3, 0.4, 0.5)
	Contrast   float64  //
	Saturation float64  //
	Cameras    []string // cameras augmented; empty: every camera
	ColorOnly  []string // cameras whose name contains one of these get no crop or rotation (openpi: "wrist")
}

// Enabled reports whether c changes any image.
func (c Config) Enabled() bool {
	return c.Crop > 0 || c.Rotate > 0 || c.Brightness > 0 || c.Contrast > 0 || c.Saturation > 0
}

// applies reports whether camera is augmented at all, and whether geometrically.
func (c Config) applies(camera string) (on, geometric bool) {
	if len(c.Cameras) > 0 {
		found := false
		for _, n := range c.Cameras {
			found = found || n == camera
		}
		if !found {
			return false, false
		}
	}
	for _, s := range c.ColorOnly {
		if s != "" && strings.Contains(camera, s) {
			return true, false
		}
	}
	return true, true
}

// Params are the random choices for one image.
type Params struct {
	// Crop box in source pixels: left, top, width, height (the whole image: 0, 0, W, H).
	X, Y, W, H float64
	Angle      float64 // rotation, degrees, counter-clockwise as displayed (y down)
	// Colour factors (1 = unchanged).
	Brightness, Contrast, Saturation float64
}

// Identity are the parameters that leave a w×h image unchanged.
func Identity(w, h int) Params {
	return Params{W: float64(w), H: float64(h), Brightness: 1, Contrast: 1, Saturation: 1}
}

// Draw picks the parameters for one w×h image of camera; geometric transforms are drawn only for
// cameras that get them. The stream is always advanced by the same number of draws, so one
// camera's settings do not shift another's randomness.
func (c Config) Draw(rng *rand.Rand, camera string, w, h int) Params {
	u := [6]float64{}
	for i := range u {
		u[i] = rng.Float64()
	}
	p := Identity(w, h)
	on, geometric := c.applies(camera)
	if !on {
		return p
	}
	if geometric && c.Crop > 0 {
		s := 1 - c.Crop
		p.W, p.H = s*float64(w), s*float64(h)
		p.X, p.Y = u[0]*(float64(w)-p.W), u[1]*(float64(h)-p.H)
	}
	if geometric && c.Rotate > 0 {
		p.Angle = (2*u[2] - 1) * c.Rotate
	}
	factor := func(s, u float64) float64 {
		if s <= 0 {
			return 1
		}
		lo := max(0, 1-s)
		return lo + u*(1+s-lo)
	}
	p.Brightness = factor(c.Brightness, u[3])
	p.Contrast = factor(c.Contrast, u[4])
	p.Saturation = factor(c.Saturation, u[5])
	return p
}

// Image draws parameters for im (camera's image) and applies them; a camera c leaves alone, or
// a disabled c, returns im itself.
func (c Config) Image(rng *rand.Rand, camera string, im policy.Image) policy.Image {
	if !c.Enabled() {
		return im
	}
	p := c.Draw(rng, camera, im.W, im.H)
	if p == Identity(im.W, im.H) {
		return im
	}
	return Apply(im, p)
}

// Apply returns a new image: im cropped to p's box and resized back to im's size, rotated by
// p.Angle about the centre, then colour-jittered.
func Apply(im policy.Image, p Params) policy.Image {
	out := im
	if p.X != 0 || p.Y != 0 || p.W != float64(im.W) || p.H != float64(im.H) || p.Angle != 0 {
		out = geometric(im, p)
	} else {
		out.Pix = append([]float32(nil), im.Pix...)
	}
	color(out, p)
	return out
}

// geometric resamples im bilinearly: output pixel centre q (in the w×h frame) is rotated back by
// -Angle about the centre, then mapped from the resized crop into the source.
func geometric(im policy.Image, p Params) policy.Image {
	w, h := im.W, im.H
	out := policy.NewImage(w, h)
	sin, cos := math.Sincos(p.Angle * math.Pi / 180)
	cx, cy := float64(w)/2, float64(h)/2
	sx, sy := p.W/float64(w), p.H/float64(h)
	// Counter-clockwise as displayed with y pointing down: the inverse map turns the output point
	// clockwise, then maps the resized crop into source pixel coordinates (centres at integer +
	// 0.5). Both are affine: fx = ax·x + bx·y + cx0, fy = ay·x + by·y + cy0.
	ax, bx := cos*sx, -sin*sx
	ay, by := sin*sy, cos*sy
	dx0, dy0 := 0.5-cx, 0.5-cy
	cx0 := p.X + (cos*dx0-sin*dy0+cx)*sx - 0.5
	cy0 := p.Y + (sin*dx0+cos*dy0+cy)*sy - 0.5
	for y := range h {
		fy, fx := cy0+by*float64(y), cx0+bx*float64(y)
		row := out.Pix[y*w*3 : (y+1)*w*3]
		for x := range w {
			sample(im, fx+ax*float64(x), fy+ay*float64(x), row[x*3:x*3+3])
		}
	}
	return out
}

// sample writes the bilinear interpolation of im at (fx, fy) (pixel indices) to px; a point
// outside the image by more than half a pixel is black, and the border is extended within that
// half pixel.
func sample(im policy.Image, fx, fy float64, px []float32) {
	if fx < -0.5 || fy < -0.5 || fx > float64(im.W)-0.5 || fy > float64(im.H)-0.5 {
		px[0], px[1], px[2] = 0, 0, 0
		return
	}
	fx = min(max(fx, 0), float64(im.W-1))
	fy = min(max(fy, 0), float64(im.H-1))
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, im.W-1), min(y0+1, im.H-1)
	ax, ay := float32(fx-float64(x0)), float32(fy-float64(y0))
	for c := range 3 {
		v00 := im.Pix[(y0*im.W+x0)*3+c]
		v01 := im.Pix[(y0*im.W+x1)*3+c]
		v10 := im.Pix[(y1*im.W+x0)*3+c]
		v11 := im.Pix[(y1*im.W+x1)*3+c]
		top := v00 + (v01-v00)*ax
		bot := v10 + (v11-v10)*ax
		px[c] = top + (bot-top)*ay
	}
}

func grey(r, g, b float32) float32 { return 0.2989*r + 0.587*g + 0.114*b }

func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// color applies brightness, contrast and saturation in place (torchvision's formulas).
func color(im policy.Image, p Params) {
	pix := im.Pix
	if f := float32(p.Brightness); f != 1 {
		for i, v := range pix {
			pix[i] = clamp01(v * f)
		}
	}
	if f := float32(p.Contrast); f != 1 {
		var sum float64
		for i := 0; i < len(pix); i += 3 {
			sum += float64(grey(pix[i], pix[i+1], pix[i+2]))
		}
		m := float32(sum / float64(len(pix)/3))
		for i, v := range pix {
			pix[i] = clamp01(m + (v-m)*f)
		}
	}
	if f := float32(p.Saturation); f != 1 {
		for i := 0; i < len(pix); i += 3 {
			g := grey(pix[i], pix[i+1], pix[i+2])
			for c := range 3 {
				pix[i+c] = clamp01(g + (pix[i+c]-g)*f)
			}
		}
	}
}
