package sim

import (
	"math"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
)

var (
	tableColor   = [3]float32{0.42, 0.40, 0.38}
	floorColor   = [3]float32{0.08, 0.08, 0.08}
	gripperColor = [3]float32{0.03, 0.03, 0.03}
)

const (
	wristView   = 0.35  // side of the wrist camera's square field of view, in table units
	ringWidth   = 0.03  // bowl rim thickness
	fingerHalfW = 0.016 // gripper finger half-width
	fingerHalfH = 0.04  // gripper finger half-height
	fingerOpen  = 0.05  // finger centre offset from the gripper centre, open
	fingerShut  = 0.025 // and closed
	supersample = 3     // anti-aliasing: supersample² coverage samples per pixel
)

// look holds a world's rendering parameters, drawn from its seed and Config.Variation.
type look struct {
	kind           int // 0 solid, 1 gradient, 2 checker
	base, base2    [3]float32
	gdx, gdy       float64 // gradient direction
	cells          float64 // checker cells per table side
	noiseSeed      uint64
	light          [3]float32 // per-channel brightness × tint
	shiftX, shiftY float64    // scene camera shift, in pixels
	scene          []float32  // cached scene-camera background (lit)
}

func newLook(cfg Config, seed uint64) look {
	v := cfg.Variation
	rng := data.NewRand(seed ^ 0x5eed100c)
	l := look{base: tableColor, light: [3]float32{1, 1, 1}, noiseSeed: rng.Uint64()}
	sym := func(a float64) float64 { return a * (2*rng.Float64() - 1) }
	if v > 0 {
		for c := range 3 {
			l.base[c] += float32(sym(0.12 * v))
			l.base2[c] = l.base[c] + float32(sym(0.2*v))
		}
		if rng.Float64() < v {
			l.kind = 1 + rng.IntN(2)
		}
		a := 2 * math.Pi * rng.Float64()
		l.gdx, l.gdy, l.cells = math.Cos(a), math.Sin(a), float64(4+rng.IntN(7))
		b := 1 + sym(0.2*v)
		for c := range 3 {
			l.light[c] = float32(b * (1 + sym(0.08*v)))
		}
		l.shiftX, l.shiftY = sym(1.5*v), sym(1.5*v)
	}
	return l
}

// background is the table colour at (x, y), unlit.
func (l *look) background(x, y float64) [3]float32 {
	if x < 0 || x > 1 || y < 0 || y > 1 {
		return floorColor
	}
	switch l.kind {
	case 1:
		t := float32(clamp((x-0.5)*l.gdx+(y-0.5)*l.gdy+0.5, 0, 1))
		var c [3]float32
		for i := range 3 {
			c[i] = l.base[i]*(1-t) + l.base2[i]*t
		}
		return c
	case 2:
		cx, cy := int(x*l.cells), int(y*l.cells)
		h := (uint64(cx)*0x9e3779b97f4a7c15 ^ uint64(cy)*0xc2b2ae3d27d4eb4f ^ l.noiseSeed) * 0xff51afd7ed558ccd
		s := float32(0.9) + 0.1*float32(h>>40)/float32(1<<24)
		if (cx+cy)%2 == 1 {
			s -= 0.12
		}
		return [3]float32{l.base[0] * s, l.base[1] * s, l.base[2] * s}
	}
	return l.base
}

// view maps pixel (i, j) (column, row) to table coordinates x = ox + (i+0.5)·scale.
type view struct{ ox, oy, scale float64 }

func (w *World) view(camera string) view {
	n := float64(w.cfg.ImageSize)
	if camera == CameraWrist {
		return view{w.gx - wristView/2, w.gy - wristView/2, wristView / n}
	}
	return view{-w.look.shiftX / n, -w.look.shiftY / n, 1 / n}
}

// Cameras lists the camera names this world renders.
func (w *World) Cameras() []string {
	if w.cfg.Wrist {
		return []string{CameraScene, CameraWrist}
	}
	return []string{CameraScene}
}

// Observe renders every camera and returns what a policy sees now.
func (w *World) Observe() policy.Observation {
	n := w.cfg.ImageSize
	obs := policy.Observation{Images: map[string]policy.Image{}, State: w.State(), Instruction: w.instr}
	for _, c := range w.Cameras() {
		img := policy.NewImage(n, n)
		w.Render(img.Pix, c)
		obs.Images[c] = img
	}
	return obs
}

// Render draws camera ("scene" or "wrist") into dst, ImageSize×ImageSize×3 (HWC) in [0, 1]:
// the background, the bowls as rings, the objects (a held one last), then the gripper as a
// dark U whose two fingers are apart when open and together when closed.
func (w *World) Render(dst []float32, camera string) {
	n, v, l := w.cfg.ImageSize, w.view(camera), &w.look
	if camera == CameraScene && l.scene != nil {
		copy(dst, l.scene)
	} else {
		for j := range n {
			for i := range n {
				c := l.background(v.ox+(float64(i)+0.5)*v.scale, v.oy+(float64(j)+0.5)*v.scale)
				for k := range 3 {
					dst[(j*n+i)*3+k] = min(1, c[k]*l.light[k])
				}
			}
		}
		if camera == CameraScene {
			l.scene = append([]float32(nil), dst[:n*n*3]...)
		}
	}
	for _, b := range w.bowls {
		d := func(x, y float64) float64 { return math.Hypot(x-b.X, y-b.Y) }
		w.paint(dst, v, b.X, b.Y, b.R, data.ColorRGB(b.Color), 0.3, func(x, y float64) bool { return d(x, y) <= b.R-ringWidth })
		w.paint(dst, v, b.X, b.Y, b.R, data.ColorRGB(b.Color), 1, func(x, y float64) bool {
			r := d(x, y)
			return r <= b.R && r > b.R-ringWidth
		})
	}
	for i, o := range w.objs {
		if i != w.held {
			w.paintObject(dst, v, o)
		}
	}
	if w.held >= 0 {
		w.paintObject(dst, v, w.objs[w.held])
	}
	off := fingerOpen
	if w.closed {
		off = fingerShut
	}
	for _, s := range []float64{-1, 1} {
		fx := w.gx + s*off
		w.paint(dst, v, fx, w.gy, fingerHalfH, gripperColor, 1, func(x, y float64) bool {
			return math.Abs(x-fx) <= fingerHalfW && math.Abs(y-w.gy) <= fingerHalfH
		})
	}
	py := w.gy - fingerHalfH // the palm joins the fingers' tops
	w.paint(dst, v, w.gx, py, off+fingerHalfW, gripperColor, 1, func(x, y float64) bool {
		return math.Abs(x-w.gx) <= off+fingerHalfW && math.Abs(y-py) <= fingerHalfW
	})
}

func (w *World) paintObject(dst []float32, v view, o object) {
	w.paint(dst, v, o.X, o.Y, o.R, data.ColorRGB(o.Color), 1, func(x, y float64) bool {
		return data.InsideShape(o.Shape, (x-o.X)/o.R, (y-o.Y)/o.R)
	})
}

// paint blends colour c (lit) with opacity alpha times the anti-aliased coverage of inside
// over the pixels of the square of half-side half around (cx, cy).
func (w *World) paint(dst []float32, v view, cx, cy, half float64, c [3]float32, alpha float32, inside func(x, y float64) bool) {
	n, l := w.cfg.ImageSize, &w.look
	i0 := max(0, int(math.Floor((cx-half-v.ox)/v.scale)))
	i1 := min(n-1, int(math.Floor((cx+half-v.ox)/v.scale)))
	j0 := max(0, int(math.Floor((cy-half-v.oy)/v.scale)))
	j1 := min(n-1, int(math.Floor((cy+half-v.oy)/v.scale)))
	var lit [3]float32
	for k := range 3 {
		lit[k] = min(1, c[k]*l.light[k])
	}
	const ss = supersample
	for j := j0; j <= j1; j++ {
		for i := i0; i <= i1; i++ {
			hits := 0
			for sj := range ss {
				y := v.oy + (float64(j)+(float64(sj)+0.5)/ss)*v.scale
				for si := range ss {
					if inside(v.ox+(float64(i)+(float64(si)+0.5)/ss)*v.scale, y) {
						hits++
					}
				}
			}
			if hits == 0 {
				continue
			}
			a := alpha * float32(hits) / (ss * ss)
			p := dst[(j*n+i)*3 : (j*n+i)*3+3]
			for k := range 3 {
				p[k] = p[k]*(1-a) + lit[k]*a
			}
		}
	}
}
