package augment

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/reelml/reel/policy"
)

// openpi's training augmentation (src/openpi/models/model.py preprocess_observation).
var openpi = Config{Crop: 0.05, Rotate: 5, Brightness: 0.3, Contrast: 0.4, Saturation: 0.5, ColorOnly: []string{"wrist"}}

func noise(w, h int, seed uint64) policy.Image {
	rng := rand.New(rand.NewPCG(seed, 1))
	im := policy.NewImage(w, h)
	for i := range im.Pix {
		im.Pix[i] = rng.Float32()
	}
	return im
}

func TestIdentityAtStrengthZero(t *testing.T) {
	im := noise(17, 11, 1)
	for _, c := range []Config{{}, {Cameras: []string{"scene"}, ColorOnly: []string{"wrist"}}} {
		if c.Enabled() {
			t.Fatalf("%+v is enabled", c)
		}
		out := c.Image(rand.New(rand.NewPCG(1, 2)), "scene", im)
		if !slices.Equal(out.Pix, im.Pix) {
			t.Errorf("%+v changed the image", c)
		}
	}
	if out := Apply(im, Identity(im.W, im.H)); !slices.Equal(out.Pix, im.Pix) || &out.Pix[0] == &im.Pix[0] {
		t.Error("Apply(Identity) is not an equal copy")
	}
	// Strength 0 on one operation leaves its factor at exactly 1.
	p := Config{Brightness: 0.3}.Draw(rand.New(rand.NewPCG(3, 4)), "scene", 8, 8)
	if p.Contrast != 1 || p.Saturation != 1 || p.Angle != 0 || p.W != 8 || p.Brightness == 1 {
		t.Errorf("brightness only: %+v", p)
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	im := noise(24, 24, 2)
	run := func(seed uint64) []float32 {
		return openpi.Image(rand.New(rand.NewPCG(seed, 7)), "scene", im).Pix
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different images")
	}
	if slices.Equal(a, c) || slices.Equal(a, im.Pix) {
		t.Error("another seed gave the same image, or nothing changed")
	}
}

// Brightness multiplies a constant image by its factor (clamped at 1); contrast leaves a
// constant image alone (its mean is its value); saturation leaves a grey image alone.
func TestColorClosedForm(t *testing.T) {
	im := policy.NewImage(5, 4)
	for i := range im.Pix {
		im.Pix[i] = 0.4
	}
	p := Identity(5, 4)
	p.Brightness = 1.2
	for _, v := range Apply(im, p).Pix {
		if math.Abs(float64(v)-0.48) > 1e-6 {
			t.Fatalf("brightness 1.2 of 0.4 = %v", v)
		}
	}
	p.Brightness = 3
	for _, v := range Apply(im, p).Pix {
		if v != 1 {
			t.Fatalf("brightness 3 of 0.4 = %v, want clamped 1", v)
		}
	}
	p = Identity(5, 4)
	p.Contrast, p.Saturation = 0.3, 1.7
	if out := Apply(im, p); !slices.Equal(out.Pix, im.Pix) {
		t.Error("contrast/saturation changed a constant grey image")
	}
	// Contrast on a two-level grey image: m + (x - m)·f with m the mean.
	two := policy.NewImage(2, 1)
	for c := range 3 {
		two.Pix[c], two.Pix[3+c] = 0.2, 0.6
	}
	p = Identity(2, 1)
	p.Contrast = 0.5
	out := Apply(two, p)
	m := float32(0.4) * (0.2989 + 0.587 + 0.114) // grey level of the mean
	for c := range 3 {
		if want := m + (0.2-m)*0.5; math.Abs(float64(out.Pix[c]-want)) > 1e-6 {
			t.Errorf("contrast: %v, want %v", out.Pix[c], want)
		}
	}
	// Saturation 0 makes every pixel its grey level.
	px := policy.Image{W: 1, H: 1, Pix: []float32{0.9, 0.1, 0.3}}
	p = Identity(1, 1)
	p.Saturation = 0
	g := 0.2989*0.9 + 0.587*0.1 + 0.114*0.3
	for _, v := range Apply(px, p).Pix {
		if math.Abs(float64(v)-g) > 1e-6 {
			t.Errorf("saturation 0: %v, want %v", v, g)
		}
	}
}

// A random 95% crop lies inside the image; resized back, a linear ramp stays the same ramp
// mapped through the box: out(x) = X + (x + 0.5)·W/w - 0.5 (bilinear is exact on it).
func TestCropBox(t *testing.T) {
	const w, h = 40, 20
	c := Config{Crop: 0.05}
	rng := rand.New(rand.NewPCG(5, 6))
	ramp := policy.NewImage(w, h)
	for y := range h {
		for x := range w {
			ramp.Pix[(y*w+x)*3], ramp.Pix[(y*w+x)*3+1] = float32(x), float32(y)
		}
	}
	for range 50 {
		p := c.Draw(rng, "scene", w, h)
		if p.W != 0.95*w || p.H != 0.95*h || p.X < 0 || p.X > w-p.W || p.Y < 0 || p.Y > h-p.H || p.Angle != 0 {
			t.Fatalf("crop box %+v", p)
		}
		out := Apply(ramp, p)
		for y := range h {
			for x := range w {
				fx := p.X + (float64(x)+0.5)*p.W/w - 0.5
				fy := p.Y + (float64(y)+0.5)*p.H/h - 0.5
				if fx < 0 || fy < 0 || fx > w-1 || fy > h-1 {
					continue // the half-pixel border is extended
				}
				got := out.Pix[(y*w+x)*3 : (y*w+x)*3+2]
				if math.Abs(float64(got[0])-fx) > 1e-4 || math.Abs(float64(got[1])-fy) > 1e-4 {
					t.Fatalf("box %+v: pixel (%d,%d) = %v, want (%v, %v)", p, x, y, got, fx, fy)
				}
			}
		}
	}
}

// A 90° rotation (counter-clockwise as displayed) of a square image moves pixel (row r, col c) to
// (row W-1-c, col r): out[y][x] = in[x][W-1-y].
func TestRotate90(t *testing.T) {
	const n = 6
	im := noise(n, n, 9)
	p := Identity(n, n)
	p.Angle = 90
	out := Apply(im, p)
	for y := range n {
		for x := range n {
			for c := range 3 {
				got, want := out.Pix[(y*n+x)*3+c], im.Pix[(x*n+n-1-y)*3+c]
				if math.Abs(float64(got-want)) > 1e-5 {
					t.Fatalf("(%d,%d): %v, want %v", x, y, got, want)
				}
			}
		}
	}
	// Within ±5°: the angles drawn stay in range and cover both signs.
	rng := rand.New(rand.NewPCG(1, 1))
	var lo, hi float64
	for range 200 {
		a := Config{Rotate: 5}.Draw(rng, "scene", 8, 8).Angle
		lo, hi = min(lo, a), max(hi, a)
	}
	if lo < -5 || hi > 5 || lo > -4 || hi < 4 {
		t.Errorf("angles in [%v, %v], want about [-5, 5]", lo, hi)
	}
}

// Wrist cameras get colour jitter only (openpi); cameras not listed get nothing.
func TestCameras(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	p := openpi.Draw(rng, "observation.images.wrist_left", 16, 16)
	if p.X != 0 || p.Y != 0 || p.W != 16 || p.H != 16 || p.Angle != 0 {
		t.Errorf("wrist camera got a geometric transform: %+v", p)
	}
	if p.Brightness == 1 || p.Contrast == 1 || p.Saturation == 1 {
		t.Errorf("wrist camera got no colour jitter: %+v", p)
	}
	if p := openpi.Draw(rng, "scene", 16, 16); p.W == 16 || p.Angle == 0 {
		t.Errorf("scene camera got no geometric transform: %+v", p)
	}
	only := openpi
	only.Cameras = []string{"top"}
	if p := only.Draw(rng, "scene", 16, 16); p != Identity(16, 16) {
		t.Errorf("a camera not in cameras was augmented: %+v", p)
	}
	for _, f := range []float64{openpi.Draw(rng, "scene", 4, 4).Saturation, openpi.Draw(rng, "scene", 4, 4).Brightness} {
		if f < 0.5 || f > 1.5 {
			t.Errorf("factor %v outside [1-s, 1+s]", f)
		}
	}
}

// BenchmarkOpenPI224 is openpi's augmentation of one 224×224 camera image (crop, rotation and
// colour jitter).
func BenchmarkOpenPI224(b *testing.B) {
	im := noise(224, 224, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		openpi.Image(rng, "scene", im)
	}
}
