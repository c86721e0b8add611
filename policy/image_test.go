package policy

import (
	"math"
	"testing"
)

// ramp returns a w×h image whose red channel is the x index, green the y index and blue 1.
func ramp(w, h int) Image {
	im := NewImage(w, h)
	for y := range h {
		for x := range w {
			p := im.Pix[(y*w+x)*3:]
			p[0], p[1], p[2] = float32(x), float32(y), 1
		}
	}
	return im
}

func at(im Image, x, y, c int) float32 { return im.Pix[(y*im.W+x)*3+c] }

func near(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-4 }

func TestResizeSameSizeIsIdentity(t *testing.T) {
	im := ramp(5, 3)
	for _, m := range []string{ResizePad, ResizeCrop, ResizeStretch} {
		out, err := Resize(im, 5, 3, m)
		if err != nil || &out.Pix[0] != &im.Pix[0] {
			t.Fatalf("%s: same size must return the image itself (err %v)", m, err)
		}
	}
}

// A 2× downscale with the antialiased triangle filter weights the four nearest source pixels
// 1/8, 3/8, 3/8, 1/8 (PIL's BILINEAR reduce), renormalised at the borders.
func TestResizeHalvingIsTriangleFilter(t *testing.T) {
	im := ramp(8, 8)
	out, err := Resize(im, 4, 4, ResizeStretch)
	if err != nil {
		t.Fatal(err)
	}
	// Interior output pixel o covers source 2o−1 … 2o+2: (2o−1)/8 + 3·2o/8 + 3(2o+1)/8 + (2o+2)/8 = 2o + 0.5.
	for o := 1; o < 3; o++ {
		if got, want := at(out, o, 1, 0), float32(2*o)+0.5; !near(got, want) {
			t.Errorf("x=%d: got %v, want %v", o, got, want)
		}
	}
	// At the left border the weight of pixel −1 is dropped: (0·3 + 1·3 + 2·1)/7 = 5/7.
	if got := at(out, 0, 1, 0); !near(got, 5.0/7) {
		t.Errorf("border: got %v, want %v", got, 5.0/7)
	}
	// The constant channel stays constant.
	for i := 2; i < len(out.Pix); i += 3 {
		if !near(out.Pix[i], 1) {
			t.Fatalf("blue channel %v at %d, want 1", out.Pix[i], i)
		}
	}
}

// Upscaling is plain bilinear interpolation between pixel centres (align_corners=False).
func TestResizeDoublingIsBilinear(t *testing.T) {
	im := ramp(4, 4)
	out, err := Resize(im, 8, 8, ResizeStretch)
	if err != nil {
		t.Fatal(err)
	}
	// Output pixel o has its centre at source coordinate (o+0.5)/2 − 0.5 in pixel-index units.
	for o := 1; o < 7; o++ {
		want := (float32(o)+0.5)/2 - 0.5
		if got := at(out, o, 3, 0); !near(got, want) {
			t.Errorf("x=%d: got %v, want %v", o, got, want)
		}
	}
}

func TestResizePadKeepsAspectAndCentres(t *testing.T) {
	im := ramp(64, 32)
	out, err := Resize(im, 32, 32, ResizePad)
	if err != nil {
		t.Fatal(err)
	}
	// The image becomes 32×16 in rows 8…23; rows 0…7 and 24…31 are black.
	for y := range 32 {
		blue := at(out, 10, y, 2)
		if inside := y >= 8 && y < 24; inside != near(blue, 1) || !inside && !near(blue, 0) {
			t.Fatalf("row %d: blue %v (inside the picture: %v)", y, blue, inside)
		}
	}
	if got := at(out, 5, 8, 0); !near(got, 10.5) { // a 2× reduce of the x ramp
		t.Errorf("padded picture x=5: got %v, want 10.5", got)
	}
}

func TestResizeCropCutsTheCentre(t *testing.T) {
	im := ramp(64, 32)
	out, err := Resize(im, 32, 32, ResizeCrop)
	if err != nil {
		t.Fatal(err)
	}
	// Scale 1: the centre 32 columns 16…47, copied.
	for x := range 32 {
		if got := at(out, x, 4, 0); !near(got, float32(16+x)) {
			t.Fatalf("x=%d: got %v, want %d", x, got, 16+x)
		}
		if got := at(out, x, 4, 1); !near(got, 4) {
			t.Fatalf("x=%d: row %v, want 4", x, got)
		}
	}
}

func TestResizeRejectsBadInput(t *testing.T) {
	if _, err := Resize(Image{W: 2, H: 2, Pix: make([]float32, 5)}, 4, 4, ""); err == nil {
		t.Error("a short buffer must be refused")
	}
	if _, err := Resize(ramp(2, 2), 4, 4, "zoom"); err == nil {
		t.Error("an unknown mode must be refused")
	}
}
